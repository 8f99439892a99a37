package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/octgw/oct/gateway/sim"
)

func simCmd() *cobra.Command {
	var (
		smtpAddr, sftpAddr, httpsAddr, out     string
		imapAddr, imapUser, imapPassFile       string
		mailboxes                              []string
		arlDelay, rspDelay                     time.Duration
		negRate, rejectRate, lostRate, dupRate float64
		arlJitter, rspJitter                   time.Duration
		seed                                   int64
		ssaAddr                                string
		flows                                  flowFlags
	)
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run the insurer simulator: caisses over SMTP+S/MIME, AMC operators over SFTP and HTTPS, answering ARL and RSP",
		Long: `Plays the insurers an OCT talks to, on loopback. Each file received is decrypted,
validated and answered after --arl-delay with an ARL (OCT layout v1) and, for a
positive one, after --rsp-delay with a NOEMIE 580 RSP. Returns are APPENDed to the
OCT's return mailbox (--imap) or, without it, written to --out/returns.

The caisses also take SCOR attachments (PDF checked at --scor-min-dpi, own ARL);
the AMC HTTPS endpoint answers PEC requests at /amc/<id>/pec (--pec-* rates); the
SSA endpoint (--ssa, FHIR, /ssa/<id>/Bundle and /ssa/<id>/Task) takes medical
certificates and moves them through their statuses (--ssa-* delays and rates).
"oct sim ssa" runs the SSA alone.

--out receives what the gateway needs to talk to it: sim-root-ca.pem (verifies the
simulator's TLS), certs/<mailbox>.pem (the caisses' encryption certificates, for
certificates.dir) and sftp_known_hosts.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(filepath.Join(out, "certs"), 0o755); err != nil {
				return err
			}
			var sink sim.ReturnSink
			if imapAddr != "" {
				pw, err := os.ReadFile(imapPassFile)
				if err != nil {
					return fmt.Errorf("--imap-password-file: %w", err)
				}
				sink = &sim.IMAPSink{Addr: imapAddr, Username: imapUser, Password: strings.TrimSpace(string(pw))}
			} else {
				dir := filepath.Join(out, "returns")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				sink = &sim.DirSink{Dir: dir}
			}
			cfg := sim.Config{Mailboxes: mailboxes, AnyMailbox: true, Sink: sink, ARLDelay: arlDelay, RSPDelay: rspDelay,
				NegativeARLRate: negRate, RejectRate: rejectRate, Seed: uint64(seed), Logger: newLogger(defaultLogConfig()),
				LostARLRate: lostRate, DuplicateReturnRate: dupRate, ARLDelayJitter: arlJitter, RSPDelayJitter: rspJitter}
			flows.apply(&cfg)
			s, err := sim.New(cfg)
			if err != nil {
				return err
			}
			defer s.Close()
			w := cmd.ErrOrStderr()
			if smtpAddr != "" {
				a, err := s.StartSMTP(smtpAddr)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "caisses (SMTP, STARTTLS) on %s\n", a)
			}
			if sftpAddr != "" {
				a, line, err := s.StartSFTP(sftpAddr)
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(out, "sftp_known_hosts"), []byte(line+"\n"), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(w, "AMC drop boxes (SFTP) on %s\n", a)
			}
			if httpsAddr != "" {
				a, err := s.StartHTTPS(httpsAddr)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "AMC API (HTTPS, mTLS; PEC at /amc/<id>/pec) on %s\n", a)
			}
			if ssaAddr != "" {
				a, err := s.StartSSA(ssaAddr)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "SSA (FHIR over HTTPS, mTLS) on %s: /ssa/<id>/Bundle, /ssa/<id>/Task\n", a)
			}
			tc := s.TLSCertificate()
			if err := os.WriteFile(filepath.Join(out, "sim-root-ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tc.Certificate[0]}), 0o644); err != nil {
				return err
			}
			for _, m := range mailboxes {
				c := s.Cert(m)
				if c == nil {
					continue
				}
				p := filepath.Join(out, "certs", strings.ToLower(m)+".pem")
				if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644); err != nil {
					return err
				}
			}
			fmt.Fprintf(w, "gateway material in %s; Ctrl-C to stop\n", out)
			<-cmd.Context().Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&smtpAddr, "smtp", "127.0.0.1:2525", "caisses' SMTP address (\"\" disables)")
	f.StringVar(&sftpAddr, "sftp", "127.0.0.1:2223", "AMC SFTP address (\"\" disables)")
	f.StringVar(&httpsAddr, "https", "127.0.0.1:8443", "AMC HTTPS address (\"\" disables)")
	f.StringVar(&out, "out", "oct-sim", "directory for the gateway's material (root CA, caisse certificates, known_hosts)")
	f.StringSliceVar(&mailboxes, "mailbox", []string{"01422@422.01.rss.fr", "01131@131.01.rss.fr", "01996@996.01.rss.fr"}, "caisse mailboxes whose certificates are written to --out/certs")
	f.StringVar(&imapAddr, "imap", "", "APPEND returns to this IMAP server (the OCT's return mailbox)")
	f.StringVar(&imapUser, "imap-user", "", "IMAP user")
	f.StringVar(&imapPassFile, "imap-password-file", "", "file holding the IMAP password")
	f.DurationVar(&arlDelay, "arl-delay", 5*time.Second, "ARL after reception")
	f.DurationVar(&rspDelay, "rsp-delay", 15*time.Second, "RSP after a positive ARL")
	f.Float64Var(&negRate, "negative-rate", 0.05, "share of negative ARLs")
	f.Float64Var(&rejectRate, "reject-rate", 0.1, "share of rejected invoices")
	f.Int64Var(&seed, "seed", 1, "decision seed")
	f.Float64Var(&lostRate, "lost-arl-rate", 0, "share of lots never answered (no ARL, no RSP): exercises the chase")
	f.Float64Var(&dupRate, "duplicate-rate", 0, "share of returns delivered twice")
	f.DurationVar(&arlJitter, "arl-jitter", 0, "uniform extra ARL delay in [0, jitter)")
	f.DurationVar(&rspJitter, "rsp-jitter", 0, "uniform extra RSP delay in [0, jitter)")
	f.StringVar(&ssaAddr, "ssa", "127.0.0.1:8444", "SSA FHIR address (\"\" disables)")
	flows.register(f)
	cmd.AddCommand(simSSACmd())
	return cmd
}

// flowFlags are the PEC, SSA and SCOR settings of the simulator.
type flowFlags struct {
	pecAgree, pecPartial, pecPending float64
	pecDelay                         time.Duration
	ssaReview, ssaDecision           time.Duration
	ssaRefuse, ssaArbiter            float64
	ssaPage, scorDPI                 int
}

func (ff *flowFlags) register(f *pflag.FlagSet) {
	f.Float64Var(&ff.pecAgree, "pec-agreement-rate", 0.8, "share of PEC requests given an agreement (the requested amount)")
	f.Float64Var(&ff.pecPartial, "pec-partial-rate", 0.1, "share of PEC requests given a partial agreement (60 %); the rest is refused")
	f.Float64Var(&ff.pecPending, "pec-pending-rate", 0, "share of PEC requests first answered pending, decided after --pec-decision-delay")
	f.DurationVar(&ff.pecDelay, "pec-decision-delay", time.Minute, "pending PEC requests are decided after this")
	ff.registerSSA(f)
	f.IntVar(&ff.scorDPI, "scor-min-dpi", 200, "resolution the caisses require of SCOR PDF scans")
}

func (ff *flowFlags) registerSSA(f *pflag.FlagSet) {
	f.DurationVar(&ff.ssaReview, "ssa-review-delay", 20*time.Second, "certificate under medical review after reception")
	f.DurationVar(&ff.ssaDecision, "ssa-decision-delay", time.Minute, "final status after the review started")
	f.Float64Var(&ff.ssaRefuse, "ssa-refuse-rate", 0.1, "share of certificates refused (with a reason)")
	f.Float64Var(&ff.ssaArbiter, "ssa-arbiter-rate", 0.05, "share of certificates returned by the arbiter (with a reason)")
	f.IntVar(&ff.ssaPage, "ssa-page-size", 100, "Tasks per page of the feed when _count is absent")
}

// rate maps a flag's 0 to the Config's "none" (negative; 0 there means
// the default).
func rate(v float64) float64 {
	if v == 0 {
		return -1
	}
	return v
}

func (ff *flowFlags) apply(c *sim.Config) {
	c.PECAgreementRate, c.PECPartialRate = rate(ff.pecAgree), ff.pecPartial
	if ff.pecAgree == 0 && ff.pecPartial == 0 {
		c.PECPartialRate = -1
	}
	c.PECPendingRate, c.PECDecisionDelay = ff.pecPending, ff.pecDelay
	c.SSAReviewDelay, c.SSADecisionDelay = ff.ssaReview, ff.ssaDecision
	c.SSARefuseRate, c.SSAArbiterRate = rate(ff.ssaRefuse), rate(ff.ssaArbiter)
	c.SSAPageSize, c.SCORMinDPI = ff.ssaPage, ff.scorDPI
}

// simSSACmd is "oct sim ssa": the simulated SSA alone.
func simSSACmd() *cobra.Command {
	var (
		listen, out, certFile, keyFile, clientCA string
		seed                                     int64
		ff                                       flowFlags
	)
	cmd := &cobra.Command{
		Use:   "ssa",
		Short: "Run the simulated SSA: medical certificates over FHIR R4 (HTTPS, mTLS), statuses over time",
		Long: `Serves POST /ssa/<id>/Bundle (a certificate as a FHIR R4 Bundle: 201 Task received, or 400
OperationOutcome with the findings) and GET /ssa/<id>/Task?_lastUpdated=gt<instant>&_sort=_lastUpdated&_count=N
(the status feed: under_review after --ssa-review-delay, then accepted, refused or
arbiter_returned after --ssa-decision-delay, at --ssa-refuse-rate and --ssa-arbiter-rate).

TLS: --tls-cert/--tls-key, or a self-signed certificate whose PEM is written to
--out/sim-root-ca.pem. Client certificates: verified against --client-ca, or any
accepted without it.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := sim.Config{Seed: uint64(seed), Logger: newLogger(defaultLogConfig()),
				Sink: sim.SinkFunc(func(context.Context, sim.Return) error { return nil })}
			ff.apply(&cfg)
			if certFile != "" || keyFile != "" {
				c, err := tls.LoadX509KeyPair(certFile, keyFile)
				if err != nil {
					return fmt.Errorf("--tls-cert/--tls-key: %w", err)
				}
				cfg.TLSCertificate = &c
			}
			if clientCA != "" {
				b, err := os.ReadFile(clientCA)
				if err != nil {
					return fmt.Errorf("--client-ca: %w", err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(b) {
					return fmt.Errorf("--client-ca: no PEM certificate in %s", clientCA)
				}
				cfg.HTTPSClientCAs = pool
			}
			s, err := sim.New(cfg)
			if err != nil {
				return err
			}
			defer s.Close()
			a, err := s.StartSSA(listen)
			if err != nil {
				return err
			}
			w := cmd.ErrOrStderr()
			if cfg.TLSCertificate == nil {
				if err := os.MkdirAll(out, 0o755); err != nil {
					return err
				}
				tc := s.TLSCertificate()
				p := filepath.Join(out, "sim-root-ca.pem")
				if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tc.Certificate[0]}), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(w, "TLS certificate to trust in %s\n", p)
			}
			fmt.Fprintf(w, "SSA (FHIR over HTTPS, mTLS) on %s: /ssa/<id>/Bundle, /ssa/<id>/Task; Ctrl-C to stop\n", a)
			<-cmd.Context().Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8444", "address to listen on")
	f.StringVar(&out, "out", "oct-sim", "directory for sim-root-ca.pem (generated certificate only)")
	f.StringVar(&certFile, "tls-cert", "", "PEM certificate to serve (with --tls-key) instead of a generated one")
	f.StringVar(&keyFile, "tls-key", "", "PEM key of --tls-cert")
	f.StringVar(&clientCA, "client-ca", "", "PEM CA(s) that client certificates must chain to (default: any client certificate)")
	f.Int64Var(&seed, "seed", 1, "decision seed")
	ff.registerSSA(f)
	return cmd
}
