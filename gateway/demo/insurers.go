package demo

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/octgw/oct/gateway/deliver"
	deliverfhir "github.com/octgw/oct/gateway/deliver/fhir"
	deliverhttps "github.com/octgw/oct/gateway/deliver/https"
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
	https   *deliverhttps.Config // the gateway's HTTPS client (AMC PEC, SSA)
	feed    referentials.Feed    // the demo referential, SSA and PEC at the simulator
	proc    atomic.Pointer[returns.Processor]
	lost    atomic.Int64 // returns the node could not take (counted, shown)
	nextID  atomic.Int64
	once    sync.Once

	// Answers lost on the way (Options.LostARLRate): decided per answer,
	// not per lot, so the answer to a resend has its own chance.
	seed     int64
	lostRate float64
	mu       sync.Mutex
	answers  map[string]int  // ARLs the caisses sent per lot key (emitter/file/lots)
	dropped  map[string]bool // Message-IDs of deliveries whose answer was lost
	lostARL  int
	lostRSP  int
}

// startInsurers starts the simulator; returns reach the node's return
// processor (bound later, once the node is open).
func startInsurers(o Options, keyFile, certFile string) (*insurers, error) {
	in := &insurers{seed: o.Seed, lostRate: o.LostARLRate, answers: map[string]int{}, dropped: map[string]bool{}}
	s, err := sim.New(sim.Config{
		AnyMailbox: true, ReturnTo: "returns@oct.demo", Seed: uint64(o.Seed),
		NegativeARLRate: o.NegativeARLRate, RejectRate: o.RejectRate,
		ARLDelay: o.ARLDelay, RSPDelay: o.RSPDelay, KeyBits: 2048,
		Sink:           sim.SinkFunc(in.take),
		SSAReviewDelay: o.ARLDelay, SSADecisionDelay: o.RSPDelay,
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
	// The AMC (PEC) and SSA (certificates) endpoints over HTTPS, the
	// gateway authenticated by the demo's key.
	amcAddr, err := s.StartHTTPS("127.0.0.1:0")
	if err != nil {
		s.Close()
		return nil, err
	}
	ssaAddr, err := s.StartSSA("127.0.0.1:0")
	if err != nil {
		s.Close()
		return nil, err
	}
	client, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		s.Close()
		return nil, err
	}
	in.https = &deliverhttps.Config{ClientCert: client, RootCAs: s.RootCAs()}
	httpsSender, err := deliverhttps.New(*in.https)
	if err != nil {
		s.Close()
		return nil, err
	}
	fhirSender, err := deliverfhir.New(*in.https)
	if err != nil {
		s.Close()
		return nil, err
	}
	in.feed = flowSeed(ssaAddr, amcAddr)
	d, err := deliver.NewDispatcher(deliver.DispatcherConfig{Senders: map[referentials.Transport]deliver.Sender{
		referentials.SMTP:  smtpSender,
		referentials.HTTPS: deliver.ByFlow{Default: httpsSender, Flows: map[string]deliver.Sender{deliver.FlowCertificate: fhirSender}},
	}})
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
	if in.lose(r) {
		return nil
	}
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

// lose says whether the answer r is lost on its way to the gateway. An ARL
// is lost with probability lostRate, decided by a hash of the seed, the lot
// keys and the rank of this answer among the ARLs of the same lots (the
// first send's answer, the first resend's...), so a run is reproducible
// whatever the concurrency. The RSPs answering the same delivery
// (In-Reply-To) are lost with it: the caisse's whole answer to that send
// never arrives, as the simulator's own LostARLRate does per lot.
func (in *insurers) lose(r sim.Return) bool {
	if in.lostRate <= 0 {
		return false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	ref := r.InReplyTo
	key := fmt.Sprintf("%s/%s/%v", r.Emitter, r.FileID, r.Lots)
	if ref == "" {
		ref = key
	}
	switch r.Kind {
	case "arl":
		n := in.answers[key]
		in.answers[key]++
		if chance(in.seed, key, strconv.Itoa(n), "lost") < in.lostRate {
			in.dropped[ref] = true
			in.lostARL++
			return true
		}
	case "rsp":
		if in.dropped[ref] {
			in.lostRSP++
			return true
		}
	}
	return false
}

// lostAnswers returns the ARLs and RSPs lost on the way so far.
func (in *insurers) lostAnswers() (arls, rsps int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.lostARL, in.lostRSP
}

// chance is a deterministic number in [0,1) from the seed and parts.
func chance(seed int64, parts ...string) float64 {
	h := sha256.New()
	fmt.Fprint(h, seed)
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return float64(binary.BigEndian.Uint64(h.Sum(nil))>>11) / (1 << 53)
}

func (in *insurers) close() { in.once.Do(func() { in.sim.Close() }) }

// received counts the lots the insurers received, by lot key (émetteur,
// number, date): the gateway's send attempts are compared with it.
func (in *insurers) received() map[lotKey]int {
	seen := map[lotKey]int{}
	for _, r := range in.sim.Received() {
		if r.Flow != "" { // a SCOR attachment has its B2 lot's key
			continue
		}
		for _, l := range r.Lots {
			seen[lotKey{emitter9(r.Header.Sender), l.Number, l.Date}]++
		}
	}
	return seen
}

// emitter9 is an émetteur number as a lot carries it: the 000 record's
// sender is the 9-digit number left-padded with zeros to 14.
func emitter9(s string) string {
	s = strings.TrimSpace(s)
	if n := len(s); n > 9 && strings.Trim(s[:n-9], "0") == "" {
		return s[n-9:]
	}
	return s
}

// lotKey is how a caisse knows a lot.
type lotKey struct {
	emitter string
	number  int
	date    string
}

// signingConfig is the demo's pool: one software member.
func signingConfig(keyFile, certFile string) signing.Config {
	return signing.Config{Members: []signing.MemberConfig{{
		ID: "demo-software", Kind: signing.KindSoftware, Profile: "default", KeyFile: keyFile, CertFile: certFile,
	}}}
}
