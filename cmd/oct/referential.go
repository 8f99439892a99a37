package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/octgw/oct/gateway/node"
	"github.com/octgw/oct/referentials"
)

func referentialCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "referential", Short: "Versioned referentials: AMO directory, AMC referential, conventions"}
	var confirm bool
	imp := &cobra.Command{
		Use:   "import FILE...",
		Short: "Import files (CSV, JSON, SESAM tables) as one new version; refused whole with every bad line listed",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withNode(cmd, func(n *node.Node) error {
				feed := referentials.Feed{Source: "cli"}
				for _, p := range args {
					data, err := os.ReadFile(p)
					if err != nil {
						return err
					}
					f, err := referentials.DetectFile(filepath.Base(p), data)
					if err != nil {
						return fmt.Errorf("%s: %w", p, err)
					}
					feed.Files = append(feed.Files, f)
				}
				res, err := n.Referentials.Import(cmd.Context(), feed, referentials.ImportOptions{Confirm: confirm})
				if err != nil {
					return err
				}
				if res.Unchanged {
					fmt.Fprintf(cmd.OutOrStdout(), "unchanged: version %d already has this content\n", res.Version.ID)
					return nil
				}
				fmt.Fprintf(cmd.OutOrStdout(), "version %d (%s): %d change(s)\n", res.Version.ID, res.Version.SHA256[:12], len(res.Diff.Changes))
				return nil
			})
		},
	}
	imp.Flags().BoolVar(&confirm, "confirm", false, "apply even if the feed removes more than the allowed share of entries")
	versions := &cobra.Command{
		Use:   "versions",
		Short: "List versions (JSON lines)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withNode(cmd, func(n *node.Node) error {
				vs, err := n.Referentials.Versions(cmd.Context())
				if err != nil {
					return err
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				for _, v := range vs {
					if err := enc.Encode(v); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	diff := &cobra.Command{
		Use:   "diff V1 V2",
		Short: "Entries added, removed and changed between two versions (JSON lines)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v1, err1 := strconv.ParseUint(args[0], 10, 64)
			v2, err2 := strconv.ParseUint(args[1], 10, 64)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("versions are numbers: %q %q", args[0], args[1])
			}
			return g.withNode(cmd, func(n *node.Node) error {
				d, err := n.Referentials.Diff(cmd.Context(), v1, v2)
				if err != nil {
					return err
				}
				return referentials.WriteDiffJSONL(cmd.OutOrStdout(), d)
			})
		},
	}
	cmd.AddCommand(imp, versions, diff)
	return cmd
}
