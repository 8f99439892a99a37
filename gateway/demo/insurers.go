package demo

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/octgw/oct/gateway/deliver"
	deliversmtp "github.com/octgw/oct/gateway/deliver/smtp"
	"github.com/octgw/oct/gateway/node"
	"github.com/octgw/oct/gateway/returns"
	"github.com/octgw/oct/gateway/signing"
	"github.com/octgw/oct/gateway/sim"
	"github.com/octgw/oct/referentials"
)

// insurers is the demo's outside world: the simulated caisses (SMTP with
// S/MIME, returning ARL and NOEMIE RSP) and the pieces the node needs to
// reach them.
type insurers struct {
	sim     *sim.Sim
	deliver deliver.Sender
	certs   node.Certs
	proc    atomic.Pointer[returns.Processor]
	lost    atomic.Int64 // returns the node could not take (counted, shown)
	nextID  atomic.Int64
	once    sync.Once
}

// startInsurers starts the simulator; returns reach the node's return
// processor (bound later, once the node is open).
func startInsurers(o Options) (*insurers, error) {
	in := &insurers{}
	s, err := sim.New(sim.Config{
		AnyMailbox: true, ReturnTo: "returns@oct.demo", Seed: uint64(o.Seed),
		NegativeARLRate: o.NegativeARLRate, RejectRate: o.RejectRate,
		ARLDelay: o.ARLDelay, RSPDelay: o.RSPDelay, KeyBits: 2048,
		Sink: sim.SinkFunc(in.take),
	})
	if err != nil {
		return nil, err
	}
	addr, err := s.StartSMTP("127.0.0.1:0")
	if err != nil {
		s.Close()
		return nil, err
	}
	smtpSender, err := deliversmtp.New(deliversmtp.Config{Relay: addr, From: "oct@oct.demo", RootCAs: s.RootCAs(), ServerName: "localhost"})
	if err != nil {
		s.Close()
		return nil, err
	}
	d, err := deliver.NewDispatcher(deliver.DispatcherConfig{Senders: map[referentials.Transport]deliver.Sender{referentials.SMTP: smtpSender}})
	if err != nil {
		s.Close()
		return nil, err
	}
	in.sim, in.deliver = s, d
	in.certs = node.CertsFunc(func(_ context.Context, mailbox string) (*x509.Certificate, error) {
		if c := s.Cert(mailbox); c != nil {
			return c, nil
		}
		return nil, fmt.Errorf("no certificate for %s", mailbox)
	})
	return in, nil
}

// take is the simulator's return sink: the mail a caisse sends, handed to
// the node's return processor as the IMAP poller would.
func (in *insurers) take(ctx context.Context, r sim.Return) error {
	p := in.proc.Load()
	if p == nil {
		in.lost.Add(1)
		return errors.New("node not ready")
	}
	raw, err := r.Message(time.Now(), fmt.Sprintf("<ret-%d@caisse.demo>", in.nextID.Add(1)))
	if err != nil {
		return err
	}
	// A return may overtake the commit of the send it answers: retry it a
	// little later, as the IMAP poller does with a message left in the box.
	for attempt := 0; ; attempt++ {
		_, err = p.Process(ctx, raw)
		if !errors.Is(err, returns.ErrNotYet) || attempt == 200 {
			return err
		}
		t := time.NewTimer(25 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (in *insurers) close() { in.once.Do(func() { in.sim.Close() }) }

// doubleSent counts lots the insurers received more than once without the
// gateway having asked for a resend.
func (in *insurers) doubleSent() int {
	seen := map[string]int{}
	for _, r := range in.sim.Received() {
		for _, l := range r.Lots {
			seen[fmt.Sprintf("%s/%s/%d/%s", r.Header.Sender, r.Header.FileID, l.Number, l.Date)]++
		}
	}
	n := 0
	for _, c := range seen {
		if c > 1 {
			n++
		}
	}
	return n
}

// signingConfig is the demo's pool: one software member.
func signingConfig(keyFile, certFile string) signing.Config {
	return signing.Config{Members: []signing.MemberConfig{{
		ID: "demo-software", Kind: signing.KindSoftware, Profile: "default", KeyFile: keyFile, CertFile: certFile,
	}}}
}
