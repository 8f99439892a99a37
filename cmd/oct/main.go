// Command oct is the OCT gateway: one binary for the server, the demo and
// the operator tools. This package only parses flags and wires packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/octgw/oct/gateway/config"
	"github.com/octgw/oct/gateway/node"
	"github.com/octgw/oct/gateway/observe"
)

// exitError carries a process exit code through cobra.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	var ee exitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "oct:", err)
		os.Exit(2)
	}
}

type globals struct {
	configPath string
	dataDir    string
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "oct",
		Short:         "OCT: technical concentrator and transmission gateway for health-insurance teletransmission",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.configPath, "config", "", "configuration file (YAML); defaults apply without one")
	root.PersistentFlags().StringVar(&g.dataDir, "data", "", "data directory (overrides data_dir)")
	root.AddCommand(serveCmd(g), demoCmd(g), validateCmd(), genCmd(), tenantCmd(g), auditCmd(g), referentialCmd(g), routeCmd(g), agentCmd(g), simCmd(), versionCmd())
	return root
}

// load reads the configuration and applies flag overrides.
func (g *globals) load() (config.Config, error) {
	c, err := config.Load(g.configPath)
	if err != nil {
		return c, err
	}
	if g.dataDir != "" {
		c.DataDir = g.dataDir
	}
	return c, nil
}

func defaultLogConfig() config.Config { return config.Defaults() }

// withNode opens the journal of the configured data directory (without
// taking the serving lock: a running oct serve may share it), runs fn and
// closes it.
func (g *globals) withNode(cmd *cobra.Command, fn func(n *node.Node) error) error {
	cfg, err := g.load()
	if err != nil {
		return err
	}
	n, err := node.Open(cmd.Context(), cfg, node.Options{})
	if err != nil {
		return err
	}
	defer n.Close()
	return fn(n)
}

func newLogger(c config.Config) *slog.Logger {
	l, _ := newLevelledLogger(c)
	return l
}

// newLevelledLogger builds the process logger: NIR-like values redacted,
// levels per component changeable at runtime through the returned Levels.
func newLevelledLogger(c config.Config) (*slog.Logger, *observe.Levels) {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Log.Level))
	levels := observe.NewLevels(lvl)
	opts := &slog.HandlerOptions{Level: slog.LevelDebug} // Levels filters
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if c.Log.Format == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return slog.New(observe.Redacting(levels.Handler(h))), levels
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := "devel"
			if bi, ok := debug.ReadBuildInfo(); ok {
				if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
					v = bi.Main.Version
				}
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						v += " " + s.Value
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "oct %s (%s)\n", v, bi.GoVersion)
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout(), "oct", v)
			return nil
		},
	}
}
