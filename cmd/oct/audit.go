package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/octgw/oct/gateway/node"
	"github.com/octgw/oct/gateway/store"
)

func auditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Check the journal"}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Verify the hash chain of the event log; report the first broken link",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withNode(cmd, func(n *node.Node) error {
				checked, broken, err := store.VerifyChain(cmd.Context(), n.Store, nil)
				if errors.Is(err, store.ErrBrokenChain) {
					fmt.Fprintf(cmd.OutOrStdout(), "BROKEN: event %d does not chain to its predecessor (%d events checked before it)\n", broken, checked)
					return exitError{1}
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "ok: %d events, chain intact\n", checked)
				return nil
			})
		},
	}
	cmd.AddCommand(verify)
	return cmd
}
