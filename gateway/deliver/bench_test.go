package deliver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway/deliver"
	dsmtp "github.com/octgw/oct/gateway/deliver/smtp"
	"github.com/octgw/oct/gateway/sim"
	"github.com/octgw/oct/referentials"
)

const benchBox = "01422@422.01.rss.fr"

// benchLotFile is a valid 50-invoice B2 lot file.
func benchLotFile(b *testing.B) []byte {
	b.Helper()
	var buf bytes.Buffer
	if err := b2.Generate(&buf, b2.GenOptions{Seed: 42, Invoices: 50}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// benchSim starts the simulator with one RSA-2048 caisse on a FakeClock
// that never moves: each file is decrypted, decoded, validated and its ARL
// scheduled, but no return is generated during the benchmark.
func benchSim(b *testing.B) *sim.Sim {
	b.Helper()
	s, err := sim.New(sim.Config{Mailboxes: []string{benchBox}, KeyBits: 2048,
		Clock: sim.NewFakeClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)),
		Sink:  sim.SinkFunc(func(context.Context, sim.Return) error { return nil })})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// sendParallel sends b.N copies of body through snd from 2×GOMAXPROCS
// goroutines and reports files/s.
func sendParallel(b *testing.B, snd *dsmtp.Sender, s *sim.Sim, body []byte) {
	b.Helper()
	m := deliver.Message{Lot: "L", Emitter: "750000001", Invoices: 50,
		Dest: deliver.Destination{ID: "cpam", Transport: referentials.SMTP, Address: benchBox, Cipher: referentials.AES128},
		Cert: s.Cert(benchBox), Body: body}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var failed atomic.Int64
	b.SetBytes(int64(len(body)))
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := snd.Send(ctx, m); err != nil {
				if failed.Add(1) == 1 {
					b.Error(err)
				}
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkSMTPToSimulator: 50-invoice B2 lot files through deliver/smtp
// (gzip + S/MIME AES-128 to the caisse's RSA-2048 certificate, STARTTLS
// verified, one connection per file) to the in-process simulator, which
// decrypts, decodes, validates and schedules the ARL before its 250.
func BenchmarkSMTPToSimulator(b *testing.B) {
	s := benchSim(b)
	addr, err := s.StartSMTP("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	snd, err := dsmtp.New(dsmtp.Config{Relay: addr, From: "oct@oct.test", RootCAs: s.RootCAs(), ServerName: "localhost"})
	if err != nil {
		b.Fatal(err)
	}
	sendParallel(b, snd, s, benchLotFile(b))
	if got := s.Stats().Files; got < b.N {
		b.Fatalf("simulator took %d files of %d", got, b.N)
	}
}

// BenchmarkSMTPSenderOnly: the same sender work (compose, gzip, S/MIME,
// STARTTLS, SMTP) against a minimal go-smtp sink that only reads DATA,
// with the simulator's TLS certificate: the sender's own throughput.
func BenchmarkSMTPSenderOnly(b *testing.B) {
	s := benchSim(b) // for the caisse certificate and the TLS certificate only
	addr := startDiscardSMTP(b, s.TLSCertificate())
	snd, err := dsmtp.New(dsmtp.Config{Relay: addr, From: "oct@oct.test", RootCAs: s.RootCAs(), ServerName: "localhost"})
	if err != nil {
		b.Fatal(err)
	}
	sendParallel(b, snd, s, benchLotFile(b))
}

// startDiscardSMTP serves STARTTLS SMTP on loopback and discards DATA.
func startDiscardSMTP(b *testing.B, crt tls.Certificate) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return discardSession{}, nil }))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{crt}, MinVersion: tls.VersionTLS12}
	srv.MaxMessageBytes = 64 << 20
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.ErrorLog = log.New(io.Discard, "", 0)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	b.Cleanup(func() {
		srv.Close()
		<-done
	})
	return l.Addr().String()
}

type discardSession struct{}

func (discardSession) AuthMechanisms() []string               { return []string{sasl.Plain} }
func (discardSession) Auth(string) (sasl.Server, error)       { return nil, gosmtp.ErrAuthUnsupported }
func (discardSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (discardSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (discardSession) Data(r io.Reader) error                 { _, err := io.Copy(io.Discard, r); return err }
func (discardSession) Reset()                                 {}
func (discardSession) Logout() error                          { return nil }
