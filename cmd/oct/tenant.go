package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/node"
)

func tenantCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Short: "Manage tenants (vendors, insurers, support organisations)"}
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Create a tenant and print its API token (shown once; only its hash is stored)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withNode(cmd, func(n *node.Node) error {
				t, token, err := gateway.AddTenant(cmd.Context(), n.Store, args[0], "cli", time.Now())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "tenant %s created; its API token (shown once):\n", t.ID)
				fmt.Fprintln(cmd.OutOrStdout(), token)
				return nil
			})
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List tenants (JSON lines)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withNode(cmd, func(n *node.Node) error {
				ts, err := n.Store.Tenants(cmd.Context())
				if err != nil {
					return err
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				for _, t := range ts {
					if err := enc.Encode(t); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	addKey := &cobra.Command{
		Use:   "add-key NAME AUTHORIZED_KEYS_FILE",
		Short: "Allow SSH public keys (authorized_keys lines) for a tenant's SFTP access; several keys allow rotation",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			return g.withNode(cmd, func(n *node.Node) error {
				added, err := gateway.AddSSHKeys(cmd.Context(), n.Store, args[0], data, "cli")
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%d key(s) added to tenant %s\n", added, args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(add, addKey, list)
	return cmd
}
