package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/octgw/oct/gateway/node"
)

func routeCmd(g *globals) *cobra.Command {
	var (
		explain, asJSON bool
		tenant, at      string
	)
	cmd := &cobra.Command{
		Use:   "route --explain FILE",
		Short: "Show where each lot of a B2 file would go, by which rule, from which referential version",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !explain {
				return fmt.Errorf("only --explain is supported: routing itself happens in oct serve")
			}
			when := time.Now()
			if at != "" {
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return fmt.Errorf("--at: RFC 3339 time: %w", err)
				}
				when = t
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			return g.withNode(cmd, func(n *node.Node) error {
				ex, err := n.Explain(tenant, data, when)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				for _, e := range ex {
					if asJSON {
						b, _ := json.Marshal(e)
						fmt.Fprintln(w, string(b))
						continue
					}
					fmt.Fprintf(w, "lot %d (emitter %s, régime %s, caisse %s, AMC %q, %s%s): ", e.Lot, e.Input.Emitter, e.Input.GrandRegime, e.Input.Caisse, e.Input.AMC, e.Input.Variant, map[bool]string{true: ", test"}[e.Input.Test])
					if e.Decision == nil {
						fmt.Fprintf(w, "UNROUTABLE: %s\n", e.Error)
						continue
					}
					var dst []string
					for _, d := range e.Decision.Destinations {
						dst = append(dst, fmt.Sprintf("%s (%s %s, %s)", d.ID, d.Transport, d.Address, d.Cipher))
					}
					fmt.Fprintf(w, "%s\n    because %s; referential version %d (%s)\n", strings.Join(dst, ", "), e.Decision.Reason, e.Decision.Version, short(e.Decision.VersionSHA))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&explain, "explain", false, "explain the routing of every lot of FILE")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per lot")
	cmd.Flags().StringVar(&tenant, "tenant", "", "route as this tenant (rules may match on it)")
	cmd.Flags().StringVar(&at, "at", "", "route at this instant (RFC 3339): effective-dated entries in force then")
	return cmd
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
