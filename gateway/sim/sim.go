// Package sim is the insurer simulator used by `oct sim` and `oct demo`.
//
// It plays AMO caisses behind an in-process SMTP server (STARTTLS with its
// own self-signed certificate, any AUTH accepted) and AMC operators behind
// SFTP and HTTPS endpoints. Every file it receives is decrypted (one RSA key
// and self-signed certificate per caisse mailbox, see Cert), decoded with the
// gateway's own IRIS decoder (gateway/intake/smtp.Extract), checked with
// formats/b2 and answered, after configurable delays on an injectable Clock:
// an ARL (formats/arl) for each lot, negative for an invalid lot or at a
// configurable rate, then for each accepted lot a NOEMIE 580 RSP
// (formats/noemie) paying most invoices and rejecting some. Decisions are
// deterministic for a given Seed. Returns go to a ReturnSink.
//
// See docs/simulator.md.
package sim

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/scor"
	"github.com/octgw/oct/gateway/signing"
)

// Errors (errors.Is).
var (
	ErrClosed         = errors.New("sim: closed")
	ErrUnknownMailbox = errors.New("sim: unknown mailbox")
)

// Config configures a Sim. Zero values take the defaults in brackets.
type Config struct {
	// Mailboxes are the caisse mailboxes played (e.g. 01422@422.01.rss.fr);
	// a key and certificate is made for each at New. With AnyMailbox, any
	// other mailbox gets one on first use (Cert or RCPT); otherwise RCPT to
	// another mailbox is refused with 550.
	Mailboxes  []string
	AnyMailbox bool
	// ReturnTo is the address returns are sent to (the OCT's return
	// mailbox) [oct-returns@localhost].
	ReturnTo string
	Sink     ReturnSink // where returns go (required)

	NegativeARLRate float64       // share of valid lots given a negative ARL anyway [0]
	RejectRate      float64       // share of invoices rejected in the RSP [0.1]
	Seed            uint64        // decisions are a function of Seed and the lot
	ARLDelay        time.Duration // after reception [1m]
	RSPDelay        time.Duration // after the positive ARL [5m]

	// LostARLRate is the share of lots that get no answer at all: no ARL
	// record and no RSP (a file whose lots are all lost gets no ARL file)
	// [0]. Decided per Seed and lot, like the other rates.
	LostARLRate float64
	// DuplicateReturnRate is the share of returns (ARL files, RSP files)
	// delivered twice to the Sink, with identical Return values [0].
	// Decided per Seed and the lots the return answers.
	DuplicateReturnRate float64
	// ARLDelayJitter and RSPDelayJitter add a uniform extra delay in
	// [0, jitter) to ARLDelay (per received file) and RSPDelay (per lot)
	// [0: none]. Deterministic per Seed and file or lot.
	ARLDelayJitter time.Duration
	RSPDelayJitter time.Duration

	Hostname string // TLS certificate name and SMTP greeting [localhost]
	// TLSCertificate, when set, is served by every TLS endpoint instead of
	// the self-signed certificate made at New; RootCAs then holds its leaf.
	TLSCertificate *tls.Certificate
	KeyBits        int          // RSA size of the caisse keys [2048]
	Clock          Clock        // [RealClock]
	Logger         *slog.Logger // [discard]
	// HTTPSClientCAs verifies the gateway's client certificate on the
	// HTTPS endpoints [any client certificate accepted].
	HTTPSClientCAs *x509.CertPool
	// MaxFileSize bounds one decoded file [64 MiB].
	MaxFileSize int64

	// PEC answers (POST /amc/<endpoint>/pec, pec.go). PECAgreementRate
	// and PECPartialRate are the shares of requests given an agreement and
	// a partial agreement, the rest is refused; both 0 means 0.8 and 0.1.
	// Set PECAgreementRate negative for "no agreement at all".
	PECAgreementRate float64
	PECPartialRate   float64
	// PECPendingRate is the share of requests first answered pending and
	// decided PECDecisionDelay later (then a status query gets the
	// decision) [0; delay 1m].
	PECPendingRate   float64
	PECDecisionDelay time.Duration

	// SSA (medical certificates over FHIR, ssa.go): after SSAReviewDelay a
	// received certificate goes under_review, SSADecisionDelay later it is
	// accepted, or refused at SSARefuseRate, or returned by the arbiter at
	// SSAArbiterRate (decided per Seed and certificate) [1m, 5m, 0.1,
	// 0.05]. Set a rate negative for 0.
	SSAReviewDelay   time.Duration
	SSADecisionDelay time.Duration
	SSARefuseRate    float64
	SSAArbiterRate   float64
	// SSAPageSize bounds the Tasks of one page of GET /Task [100, max 1000].
	SSAPageSize int

	// SCORMinDPI is the resolution the simulated caisse requires of SCOR
	// attachments [scor.DefaultMinDPI, 200].
	SCORMinDPI int
}

// Sim is the simulator. Start its servers with StartSMTP, StartSFTP and
// StartHTTPS; Close stops everything.
type Sim struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	tlsCrt tls.Certificate
	roots  *x509.CertPool

	mu        sync.Mutex
	closed    bool
	boxes     map[string]*caisse
	received  []Received
	returns   int
	stops     map[int]func() bool
	nextStop  int
	faults    map[string][]Fault
	fileSeq   int
	closers   []func() error
	wg        sync.WaitGroup // every goroutine the Sim started
	timerWG   sync.WaitGroup // scheduled returns not yet run or stopped
	subscribe chan struct{}  // closed and replaced on every change
	stats     Stats
	pecs      map[string]*pecCase
	ssa       ssaState
}

// Stats counts protocol events, for tests and the demo.
type Stats struct {
	SMTPSessions int // SMTP connections that got a session
	Auths        int // AUTH commands accepted for processing
	Mails        int // MAIL FROM commands accepted
	Files        int // files received (all channels)
	Returns      int // returns handed to the sink without error
	ReturnErrors int // returns the sink refused
	LostLots     int // lots left unanswered (LostARLRate)
	Duplicates   int // second deliveries of a return (DuplicateReturnRate), counted in Returns too
	PEC          int // valid PEC messages answered (request, status, cancel)
	Certificates int // certificates accepted by the SSA endpoint (201)
	SCOR         int // SCOR attachments received
}

// Stats returns the counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Sim) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

type caisse struct {
	mailbox string
	key     *rsa.PrivateKey
	cert    *x509.Certificate
}

// New makes the caisse keys and the TLS certificate. Nothing listens yet.
func New(cfg Config) (*Sim, error) {
	if cfg.Sink == nil {
		return nil, errors.New("sim: a ReturnSink is required")
	}
	if cfg.ReturnTo == "" {
		cfg.ReturnTo = "oct-returns@localhost"
	}
	if cfg.RejectRate == 0 {
		cfg.RejectRate = 0.1
	}
	if cfg.ARLDelay <= 0 {
		cfg.ARLDelay = time.Minute
	}
	if cfg.RSPDelay <= 0 {
		cfg.RSPDelay = 5 * time.Minute
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if cfg.KeyBits == 0 {
		cfg.KeyBits = 2048
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxFileSize <= 0 {
		cfg.MaxFileSize = 64 << 20
	}
	if cfg.PECAgreementRate == 0 && cfg.PECPartialRate == 0 {
		cfg.PECAgreementRate, cfg.PECPartialRate = 0.8, 0.1
	}
	if cfg.PECDecisionDelay <= 0 {
		cfg.PECDecisionDelay = time.Minute
	}
	if cfg.SSAReviewDelay <= 0 {
		cfg.SSAReviewDelay = time.Minute
	}
	if cfg.SSADecisionDelay <= 0 {
		cfg.SSADecisionDelay = 5 * time.Minute
	}
	if cfg.SSARefuseRate == 0 {
		cfg.SSARefuseRate = 0.1
	}
	if cfg.SSAArbiterRate == 0 {
		cfg.SSAArbiterRate = 0.05
	}
	if cfg.SSAPageSize <= 0 {
		cfg.SSAPageSize = 100
	}
	cfg.SSAPageSize = min(cfg.SSAPageSize, 1000)
	if cfg.SCORMinDPI == 0 {
		cfg.SCORMinDPI = scor.DefaultMinDPI
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sim{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel, boxes: map[string]*caisse{},
		stops: map[int]func() bool{}, faults: map[string][]Fault{}, subscribe: make(chan struct{}),
		pecs: map[string]*pecCase{}, ssa: newSSAState()}
	var (
		crt   tls.Certificate
		roots *x509.CertPool
		err   error
	)
	if cfg.TLSCertificate != nil {
		crt, roots, err = ownCertificate(*cfg.TLSCertificate)
	} else {
		crt, roots, err = selfSigned(cfg.Hostname, cfg.Clock.Now())
	}
	if err != nil {
		cancel()
		return nil, err
	}
	s.tlsCrt, s.roots = crt, roots
	for _, m := range cfg.Mailboxes {
		if _, err := s.mailbox(m, true); err != nil {
			cancel()
			return nil, err
		}
	}
	return s, nil
}

// Cert returns the encryption certificate of a caisse mailbox, so that the
// gateway's delivery encrypts to it; nil for a mailbox the Sim does not play.
func (s *Sim) Cert(mailbox string) *x509.Certificate {
	c, err := s.mailbox(mailbox, s.cfg.AnyMailbox)
	if err != nil {
		return nil
	}
	return c.cert
}

// RootCAs returns a pool holding the Sim's TLS certificate (SMTP STARTTLS
// and HTTPS), for the gateway's senders.
func (s *Sim) RootCAs() *x509.CertPool { return s.roots }

// TLSCertificate returns the Sim's TLS certificate.
func (s *Sim) TLSCertificate() tls.Certificate { return s.tlsCrt }

func (s *Sim) mailbox(m string, create bool) (*caisse, error) {
	m = strings.ToLower(strings.TrimSpace(m))
	s.mu.Lock()
	c, ok := s.boxes[m]
	s.mu.Unlock()
	if ok {
		return c, nil
	}
	if !create || m == "" {
		return nil, fmt.Errorf("%w: %q", ErrUnknownMailbox, m)
	}
	key, err := rsa.GenerateKey(rand.Reader, s.cfg.KeyBits)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now()
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        pkix.Name{CommonName: m, Organization: []string{"OCT simulator caisse"}},
		NotBefore:      now.Add(-time.Hour),
		NotAfter:       now.AddDate(2, 0, 0),
		KeyUsage:       x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
		EmailAddresses: []string{m},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.boxes[m]; ok { // made concurrently
		return c, nil
	}
	c = &caisse{mailbox: m, key: key, cert: cert}
	s.boxes[m] = c
	return c, nil
}

// ownCertificate checks a given TLS certificate and returns a pool with
// its leaf.
func ownCertificate(c tls.Certificate) (tls.Certificate, *x509.CertPool, error) {
	if len(c.Certificate) == 0 || c.PrivateKey == nil {
		return tls.Certificate{}, nil, errors.New("sim: TLSCertificate without certificate or key")
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	c.Leaf = leaf
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return c, pool, nil
}

// selfSigned makes an ECDSA certificate for host, localhost and 127.0.0.1.
func selfSigned(host string, now time.Time) (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: host, Organization: []string{"OCT simulator"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              dedup([]string{host, "localhost"}),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool, nil
}

func dedup(v []string) []string {
	var out []string
	for _, s := range v {
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func contains(v []string, s string) bool {
	for _, x := range v {
		if x == s {
			return true
		}
	}
	return false
}

// Received is what the Sim saw of one file.
type Received struct {
	Channel      string // smtp, sftp, https
	Flow         string // "" for B2; "pec", "certificate", "scor"
	Ref          string // pec_id (pec), certificate id (certificate), SCOR file id (scor)
	Status       string // pec: the answer's status; certificate: the Task status given
	Answer       []byte // pec: the answer sent; certificate: the Task or OperationOutcome sent
	Endpoint     string // caisse mailbox, SFTP user, HTTPS path
	MessageID    string // SMTP Message-ID; file name otherwise
	Subject      string // SMTP only
	Description  string // Content-Description of the EDI part (SMTP)
	Cipher       string // aes128, 3des, or "" when not encrypted
	TLS          bool   // SMTP: STARTTLS was in force
	User         string // SMTP AUTH user
	Signed       bool   // a signature came with the file
	SignatureOK  bool   // and signing.Verify accepted it
	SignatureErr string
	File         []byte        // the decoded B2 file (the JSON or PDF for the other flows)
	Header       envelope.Info // its 000 header
	Valid        bool          // formats/b2 found no error
	Errors       []string      // first validation findings
	Lots         []LotOutcome
	At           time.Time
}

// LotOutcome is the simulator's decision about one lot.
type LotOutcome struct {
	Number   int
	Date     string // YYMMDD
	Invoices int
	Positive bool         // ARL
	Reasons  []arl.Reason // of a negative ARL
	Rejected []string     // invoice numbers the RSP rejects
	Paid     int64        // cents the RSP pays (AMO part)
	// Lost: the lot is never answered (LostARLRate): no ARL record, no RSP.
	Lost bool
	// ARLDelay is the delay after reception of the ARL file carrying this
	// lot (ARLDelay plus the file's jitter); RSPDelay the delay after that
	// ARL of the lot's RSP (RSPDelay plus the lot's jitter), 0 when no RSP
	// is due (negative or lost lot).
	ARLDelay time.Duration
	RSPDelay time.Duration
}

// Received returns a copy of everything received so far, in order.
func (s *Sim) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// Changed returns a channel closed at the next change (file received or
// return delivered): tests wait on it instead of sleeping.
func (s *Sim) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subscribe
}

func (s *Sim) notifyLocked() {
	close(s.subscribe)
	s.subscribe = make(chan struct{})
}

// Fault makes the SMTP server answer an error instead of accepting.
type Fault struct {
	Stage   string // "rcpt" or "data"
	Code    int    // e.g. 451 or 554
	Message string
	Times   int // how many times; 0 means once
}

// InjectFault queues a fault for a mailbox (SMTP), SFTP user or HTTPS
// endpoint id.
func (s *Sim) InjectFault(endpoint string, f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := strings.ToLower(endpoint)
	s.faults[k] = append(s.faults[k], f)
}

// takeFault pops the first fault of endpoint for stage.
func (s *Sim) takeFault(endpoint, stage string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := strings.ToLower(endpoint)
	fs := s.faults[k]
	for i := range fs {
		if fs[i].Stage == stage {
			f := fs[i]
			fs[i].Times--
			if fs[i].Times <= 0 {
				s.faults[k] = append(fs[:i:i], fs[i+1:]...)
			}
			return &f
		}
	}
	return nil
}

// inbound is one decoded file handed to accept.
type inbound struct {
	channel, endpoint, messageID, subject, description, cipher, user string
	tls                                                              bool
	file, signature                                                  []byte
}

// receivedOf is what is recorded of an inbound message, its signature
// checked.
func (s *Sim) receivedOf(in inbound) Received {
	r := Received{Channel: in.channel, Endpoint: in.endpoint, MessageID: in.messageID, Subject: in.subject,
		Description: in.description, Cipher: in.cipher, TLS: in.tls, User: in.user, File: in.file, At: s.cfg.Clock.Now()}
	if len(in.signature) > 0 {
		r.verify(in.signature)
	}
	return r
}

// verify records whether sig is a valid detached CMS signature of the
// received file.
func (r *Received) verify(sig []byte) {
	r.Signed = true
	if _, err := signing.Verify(sig, r.File); err != nil {
		r.SignatureErr = err.Error()
		return
	}
	r.SignatureOK = true
}

// accept validates a received file, records it and schedules its returns.
func (s *Sim) accept(in inbound) Received {
	r := s.receivedOf(in)
	rep, err := b2.Validate(bytes.NewReader(in.file), b2.Options{Summaries: true})
	if err != nil {
		r.Errors = []string{err.Error()}
	} else {
		r.Header = rep.Header
		r.Valid = rep.Valid
		for i, e := range rep.Errors {
			if i == 5 {
				break
			}
			r.Errors = append(r.Errors, e.Error())
		}
	}
	var lots []b2.Lot
	if rep != nil {
		lots = rep.Lots
	}
	plan := s.decide(r, rep, lots)
	r.Lots = plan.outcomes
	if !s.record(r, func(st *Stats) { st.Files++ }) {
		return r
	}
	s.log.Info("sim: file received", "channel", in.channel, "endpoint", in.endpoint, "message_id", in.messageID,
		"valid", r.Valid, "lots", len(r.Lots), "cipher", in.cipher, "signed", r.Signed, "signature_ok", r.SignatureOK)
	if plan.answered() == 0 {
		s.count(func(st *Stats) { st.LostLots += len(plan.outcomes) })
		s.log.Info("sim: no answer for this file (lost)", "endpoint", in.endpoint, "message_id", in.messageID, "lots", len(plan.outcomes))
		return r
	}
	if lost := len(plan.outcomes) - plan.answered(); lost > 0 {
		s.count(func(st *Stats) { st.LostLots += lost })
	}
	s.schedule(plan.arlDelay, func() { s.sendARL(in, r, plan) })
	return r
}

// schedule runs f after d on the Clock, tracked so that Close stops it.
func (s *Sim) schedule(d time.Duration, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.nextStop++
	id := s.nextStop
	s.timerWG.Add(1)
	var once sync.Once
	done := func() { once.Do(s.timerWG.Done) }
	stop := s.cfg.Clock.AfterFunc(d, func() {
		defer done()
		s.mu.Lock()
		_, live := s.stops[id]
		delete(s.stops, id)
		closed := s.closed
		s.mu.Unlock()
		if !live || closed {
			return
		}
		f()
	})
	s.stops[id] = func() bool {
		if stop() {
			done()
			return true
		}
		return false
	}
}

// chance returns a deterministic number in [0,1) from the seed and parts.
func (s *Sim) chance(parts ...string) float64 {
	return float64(s.hash(parts...)>>11) / (1 << 53)
}

// jitter returns a deterministic duration in [0, max) from the seed and
// parts; 0 when max <= 0.
func (s *Sim) jitter(max time.Duration, parts ...string) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(s.hash(parts...) % uint64(max))
}

// hash is a deterministic 64-bit value of the seed and parts.
func (s *Sim) hash(parts ...string) uint64 {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], s.cfg.Seed)
	h.Write(b[:])
	for _, p := range parts {
		io.WriteString(h, p)
		h.Write([]byte{0})
	}
	sum := h.Sum(nil)
	return binary.BigEndian.Uint64(sum[:8])
}

// startServer registers closer for Close and runs serve in a goroutine
// Close waits for; false (nothing started) when the Sim is closed.
func (s *Sim) startServer(closer func() error, serve func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.closers = append(s.closers, closer)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		serve()
	}()
	return true
}

// Close stops the servers and every pending return, and waits for every
// goroutine the Sim started. Returns in progress see a cancelled context.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	stops := s.stops
	s.stops = map[int]func() bool{}
	closers := s.closers
	s.notifyLocked()
	s.mu.Unlock()
	s.cancel()
	for _, stop := range stops {
		stop()
	}
	var err error
	for _, c := range closers {
		if cerr := c(); cerr != nil && err == nil {
			err = cerr
		}
	}
	s.wg.Wait()
	s.timerWG.Wait()
	return err
}
