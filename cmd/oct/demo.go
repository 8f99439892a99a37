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
anomalies, elapsed_s, and the returns figures: lots_sent,
lots_without_return, without_return_pct, resent, resent_after_positive_arl,
escalated, rejected_invoices, rejected_invoices_unhandled, targets_met,
failures (docs/anomalies.md, "The demo's figures").

--lost-arl-rate drops that share of the caisses' answers on their way
back; the chase runs in demo time (--arl-deadline after each send, up to
--max-resends resends, then an anomaly). Exit status 0 when every file
reached a terminal state with nothing lost and the targets are met: fewer
than 1 % of the sent lots without any return, no resend after a positive
ARL, every rejected invoice in the queue or handed back.`,
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
			if !s.TargetsMet || s.TimedOut || s.Lost > 0 || s.DoubleSent > 0 {
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
	f.Float64Var(&o.LostARLRate, "lost-arl-rate", 0, "share of the caisses' answers (ARL and its RSP) lost on the way, per answer")
	f.Float64Var(&o.RejectRate, "reject-rate", 0.05, "share of the invoices of an accepted lot the caisses reject")
	f.Float64Var(&o.NegativeARLRate, "negative-arl-rate", 0.03, "share of lots the caisses refuse (negative ARL)")
	f.DurationVar(&o.ARLDeadline, "arl-deadline", 3*time.Second, "ARL deadline after each send, in demo time (48h in production)")
	f.IntVar(&o.MaxResends, "max-resends", 0, "automatic resends before escalation (0: the product default, 1; negative: none)")
	f.BoolVar(&asJSON, "json", false, "print the summary as one JSON line on stdout")
	f.BoolVar(&keepData, "keep-data", false, "use --data (or ./oct-data) instead of a temp dir, and keep it")
	return cmd
}
