package main

import (
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

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
	)
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run the insurer simulator: caisses over SMTP+S/MIME, AMC operators over SFTP and HTTPS, answering ARL and RSP",
		Long: `Plays the insurers an OCT talks to, on loopback. Each file received is decrypted,
validated and answered after --arl-delay with an ARL (OCT layout v1) and, for a
positive one, after --rsp-delay with a NOEMIE 580 RSP. Returns are APPENDed to the
OCT's return mailbox (--imap) or, without it, written to --out/returns.

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
			s, err := sim.New(sim.Config{Mailboxes: mailboxes, AnyMailbox: true, Sink: sink, ARLDelay: arlDelay, RSPDelay: rspDelay,
				NegativeARLRate: negRate, RejectRate: rejectRate, Seed: uint64(seed), Logger: newLogger(defaultLogConfig()),
				LostARLRate: lostRate, DuplicateReturnRate: dupRate, ARLDelayJitter: arlJitter, RSPDelayJitter: rspJitter})
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
				fmt.Fprintf(w, "AMC API (HTTPS, mTLS) on %s\n", a)
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
	return cmd
}
