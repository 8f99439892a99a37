package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/formats/certificate"
	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/noemie"
	"github.com/octgw/oct/formats/pec"
	"github.com/octgw/oct/formats/scor"
)

func genCmd() *cobra.Command {
	var (
		seed                   int64
		lots, invoices         int
		fault, out, framing    string
		rejectRate, negRate    float64
		test, lengthPrefix, lf bool
		fhir                   bool
	)
	cmd := &cobra.Command{
		Use:   "gen b2|noemie|arl|certificate|pec|scor",
		Short: "Generate a deterministic, realistic file (optionally with one injected fault)",
		Long: `Generate a B2 invoice file, a NOEMIE 580 return, an ARL (OCT layout v1), a
medical certificate (oct-cert/1 JSON, --fhir for our FHIR R4 profile), a PEC
request (OCT-PEC v1) or a scanned SCOR PDF. The same seed and options give the
same bytes. --fault CODE injects exactly one fault that the validator reports
with that code; --fault list prints the codes.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"b2", "noemie", "arl", "certificate", "pec", "scor"},
		RunE: func(cmd *cobra.Command, args []string) error {
			var faults []fixed.Code
			switch args[0] {
			case "b2":
				faults = b2.GenFaults()
			case "noemie":
				faults = noemie.Faults
			case "arl":
				faults = arl.Faults
			case "certificate":
				faults = certificate.Faults
			case "pec":
				faults = pec.Faults
			case "scor": // no fault injection: --fault low-resolution gives a 100 dpi scan
				faults = []fixed.Code{scor.ErrLowRes, scor.ErrNotPDF}
			default:
				return fmt.Errorf("unknown format %q: b2, noemie, arl, certificate, pec or scor", args[0])
			}
			if fault == "list" {
				for _, f := range faults {
					fmt.Fprintln(cmd.OutOrStdout(), f)
				}
				return nil
			}
			code := fixed.Code(fault)
			if fault != "" && !containsCode(faults, code) {
				return fmt.Errorf("--fault %q cannot be injected in %s; one of: %s", fault, args[0], joinCodes(faults))
			}
			var w io.Writer = cmd.OutOrStdout()
			var f *os.File
			if out != "" && out != "-" {
				var err error
				if f, err = os.Create(out); err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			bw := bufio.NewWriterSize(w, 64<<10)
			var err error
			switch args[0] {
			case "b2":
				fr := b2.FramingNone
				switch strings.ToLower(framing) {
				case "", "none":
				case "lf":
					fr = b2.FramingLF
				case "crlf":
					fr = b2.FramingCRLF
				default:
					return fmt.Errorf("--framing %q: none, lf or crlf", framing)
				}
				err = b2.Generate(bw, b2.GenOptions{Seed: seed, Lots: lots, Invoices: invoices, Fault: code, Test: test, Framing: fr})
			case "noemie":
				err = noemie.Generate(bw, noemie.GenOptions{Seed: uint64(seed), Lots: lots, Invoices: invoices, RejectRate: rejectRate, Fault: code,
					Form: noemie.WriteOptions{LengthPrefix: lengthPrefix, LineBreaks: lf}})
			case "arl":
				err = arl.Generate(bw, arl.GenOptions{Seed: uint64(seed), Lots: lots, NegativeRate: negRate, Fault: code, LineBreaks: lf})
			case "certificate":
				_, err = bw.Write(certificate.Generate(certificate.GenOptions{Seed: uint64(seed), FHIR: fhir, Fault: code}))
			case "pec":
				_, err = bw.Write(pec.Generate(pec.GenOptions{Seed: uint64(seed), Fault: code}))
			case "scor":
				var pdf []byte
				switch code {
				case scor.ErrLowRes:
					pdf, err = scor.GenerateLowRes(uint64(seed))
				case scor.ErrNotPDF:
					pdf = scor.GenerateJPEG()
				default:
					pdf, err = scor.Generate(scor.GenOptions{Seed: uint64(seed), Pages: max(lots, 1)})
				}
				if err == nil {
					_, err = bw.Write(pdf)
				}
			}
			if err == nil {
				err = bw.Flush()
			}
			if err == nil && f != nil {
				err = f.Sync()
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.Int64Var(&seed, "seed", 1, "generator seed")
	fl.IntVar(&lots, "lots", 1, "lots in the file (scor: pages)")
	fl.BoolVar(&fhir, "fhir", false, "certificate: a FHIR R4 Bundle instead of oct-cert/1 JSON")
	fl.IntVar(&invoices, "invoices", 10, "invoices per lot (b2, noemie)")
	fl.StringVar(&fault, "fault", "", "inject one fault with this error code (\"list\" prints them)")
	fl.StringVarP(&out, "output", "o", "", "output file (default stdout)")
	fl.StringVar(&framing, "framing", "none", "b2 record separator: none, lf, crlf")
	fl.BoolVar(&test, "test", false, "b2: mark the file as a test flow (type de flux T)")
	fl.Float64Var(&rejectRate, "reject-rate", 0.1, "noemie: share of rejected invoices")
	fl.Float64Var(&negRate, "negative-rate", 0.1, "arl: share of negative ARLs")
	fl.BoolVar(&lengthPrefix, "length-prefix", false, "noemie: 4-digit line-length prefix")
	fl.BoolVar(&lf, "line-breaks", false, "noemie, arl: CR LF between records")
	return cmd
}

func containsCode(cs []fixed.Code, c fixed.Code) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

func joinCodes(cs []fixed.Code) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}
