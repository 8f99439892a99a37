package main

import (
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/octgw/oct/gateway/node"
	"github.com/octgw/oct/gateway/store"
)

// failpoint is a crash-test hook read from OCT_FAILPOINT (never set in
// production): "kill-after-send" makes the process SIGKILL itself right
// after the first successful send, before its outcome is journalled — the
// worst instant for "never send twice" (docs/delivery.md).
func failpoint(name string, log *slog.Logger) (func(store.Lot), error) {
	switch name {
	case "kill-after-send":
		log.Warn("failpoint armed: the process kills itself after its first send", "failpoint", name)
		return func(l store.Lot) {
			log.Warn("failpoint: killing the process after a send, before its journal entry", "lot", l.ID)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // SIGKILL is not delivered synchronously: never return
		}, nil
	}
	return nil, fmt.Errorf("OCT_FAILPOINT=%q: unknown failpoint (kill-after-send)", name)
}

func serveCmd(g *globals) *cobra.Command {
	var listen, sftpListen string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway (API, console, pipeline); no configuration needed",
		Long: `Run one OCT node. Without --config it keeps its data in ./oct-data and
serves the API and console on 127.0.0.1:8080. SIGINT/SIGTERM drain it:
readiness goes down, in-flight uploads finish, workers stop.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load()
			if err != nil {
				return err
			}
			if listen != "" {
				cfg.HTTP.Listen = listen
			}
			if cmd.Flags().Changed("sftp-listen") {
				cfg.SFTP.Listen = sftpListen
			}
			log, levels := newLevelledLogger(cfg)
			ctx := cmd.Context()
			opts := node.Options{Logger: log, Exclusive: true, Levels: levels}
			if fp := os.Getenv("OCT_FAILPOINT"); fp != "" {
				if opts.AfterSend, err = failpoint(fp, log); err != nil {
					return err
				}
			}
			n, err := node.Open(ctx, cfg, opts)
			if err != nil {
				return err
			}
			defer n.Close()
			ln, err := n.Listen()
			if err != nil {
				return err
			}
			log.Info("oct serving", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "node", cfg.NodeID)
			fmt.Fprintf(cmd.ErrOrStderr(), "OCT listening on http://%s (console at /, API under /v1)\n", ln.Addr())
			if a := n.SFTPAddr(); a != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "SFTP intake on %s\n", a)
			}
			if a := n.SMTPAddr(); a != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "SMTP intake on %s\n", a)
			}
			return n.Run(ctx, ln)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "address to listen on (overrides http.listen)")
	cmd.Flags().StringVar(&sftpListen, "sftp-listen", "", "SFTP intake address (overrides sftp.listen; \"\" disables)")
	return cmd
}
