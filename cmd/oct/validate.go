package main

import (
	"github.com/spf13/cobra"

	"github.com/octgw/oct/formats/check"
)

func validateCmd() *cobra.Command {
	var opt check.RunOptions
	cmd := &cobra.Command{
		Use:   "validate [--format auto|b2|noemie|arl|certificate|pec|scor] [--json] FILE...",
		Short: "Validate files offline; exit 0 all valid, 1 any invalid, 2 unreadable",
		Long: `Validate B2, NOEMIE or ARL files, medical certificates (oct-cert/1 JSON or FHIR),
PEC messages and SCOR PDFs with the gateway's own checks. With --json, one
JSON object per file per line: {"file","format","valid","errors":[{"code","record",
"field","message"}],"stats":{"records","lots","invoices"}}. record is the 1-based
physical record number, the 000 header being record 1. Error codes are listed in
docs/formats/validation.md.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := check.Run(cmd.Context(), args, opt, cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opt.Format, "format", "auto", "auto, b2, noemie, arl, certificate, pec or scor")
	cmd.Flags().BoolVar(&opt.JSON, "json", false, "one JSON object per file per line")
	return cmd
}
