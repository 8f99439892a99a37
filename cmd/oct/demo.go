package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/octgw/oct/gateway/config"
	"github.com/octgw/oct/gateway/demo"
)

func demoCmd(g *globals) *cobra.Command {
	var (
		o        demo.Options
		asJSON   bool
		keepData bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Show the gateway at work on the embedded default, nothing to install",
		Long: `Start a gateway on a temporary data directory, let simulated vendors push
generated B2 files over the HTTP API, watch them go through the pipeline,
and print a summary. With --json the last stdout line is one JSON object:
files, terminal, lost, double_sent, arl_positive, arl_negative, rsp,
anomalies, elapsed_s (and more). Exit status 0 when every file reached a
terminal state with nothing lost.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config.Defaults()
			if keepData {
				o.DataDir = g.dataDir
				if o.DataDir == "" {
					o.DataDir = cfg.DataDir
				}
			}
			o.Progress = cmd.ErrOrStderr()
			if asJSON {
				o.Progress = io.Discard
			}
			s, err := demo.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				b, err := json.Marshal(s)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
			}
			if s.TimedOut || s.Lost > 0 || s.DoubleSent > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Files, "files", 200, "files to push")
	f.IntVar(&o.Vendors, "vendors", 4, "simulated vendors (tenants)")
	f.IntVar(&o.Invoices, "invoices", 50, "invoices per lot")
	f.Float64Var(&o.FaultRate, "fault-rate", 0.1, "share of files with one injected fault")
	f.Int64Var(&o.Seed, "seed", 1, "generator seed")
	f.DurationVar(&o.Timeout, "timeout", 2*time.Minute, "give up waiting after this long")
	f.StringVar(&o.Listen, "listen", "127.0.0.1:0", "address of the demo's API and console")
	f.BoolVar(&o.Keep, "keep", false, "keep serving the console after the summary (Ctrl-C to stop)")
	f.BoolVar(&asJSON, "json", false, "print the summary as one JSON line on stdout")
	f.BoolVar(&keepData, "keep-data", false, "use --data (or ./oct-data) instead of a temp dir, and keep it")
	return cmd
}
