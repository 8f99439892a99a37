package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/octgw/oct/gateway/node"
)

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
			n, err := node.Open(ctx, cfg, node.Options{Logger: log, Exclusive: true, Levels: levels})
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
