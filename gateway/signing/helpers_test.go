package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// selfSigned makes a certificate for key, valid from an hour ago for a day.
func selfSigned(t testing.TB, key crypto.Signer, cn string) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"OCT test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func newP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	rsaOnce sync.Once
	rsaKeys []*rsa.PrivateKey
)

// testRSA returns one of a few RSA-2048 keys generated once per test binary
// (key generation is slow under -race).
func testRSA(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys = append(rsaKeys, k)
		}
	})
	return rsaKeys[i%len(rsaKeys)]
}

func x509Pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// writeSoftware writes key and certificate PEM files and returns the
// member configuration that loads them.
func writeSoftware(t testing.TB, dir, id, profile string, key crypto.Signer) (MemberConfig, *x509.Certificate) {
	t.Helper()
	cert := selfSigned(t, key, id)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	kf := filepath.Join(dir, id+".key")
	cf := filepath.Join(dir, id+".crt")
	if err := os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return MemberConfig{ID: id, Kind: KindSoftware, Profile: profile, KeyFile: kf, CertFile: cf}, cert
}

// fakeClock is a Clock moved by hand.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// pending returns the number of timers waiting.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// fakeMember is a programmable member backed by a software key.
type fakeMember struct {
	id   string
	key  crypto.Signer
	cert *x509.Certificate

	mu        sync.Mutex
	signErrs  []error // returned by the next Sign calls, in order
	healthErr error
	gate      chan struct{} // when set, Sign waits for it to close

	calls       atomic.Int32
	successes   atomic.Int32
	healths     atomic.Int32
	inflight    atomic.Int32
	maxInflight atomic.Int32
	closed      atomic.Int32
	entered     chan struct{} // receives one value per Sign call (buffered)
}

func newFake(t testing.TB, id string) *fakeMember {
	k := newP256(t)
	return &fakeMember{id: id, key: k, cert: selfSigned(t, k, id), entered: make(chan struct{}, 1024)}
}

func (f *fakeMember) failNext(errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signErrs = append(f.signErrs, errs...)
}

func (f *fakeMember) setHealth(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.healthErr = err
}

func (f *fakeMember) setGate(g chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = g
}

func (f *fakeMember) ID() string                     { return f.id }
func (f *fakeMember) Public() crypto.PublicKey       { return f.key.Public() }
func (f *fakeMember) Certificate() *x509.Certificate { return f.cert }
func (f *fakeMember) Close() error                   { f.closed.Add(1); return nil }

func (f *fakeMember) Health(context.Context) error {
	f.healths.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.healthErr
}

func (f *fakeMember) Sign(_ io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return f.SignContext(context.Background(), d, o)
}

func (f *fakeMember) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	f.calls.Add(1)
	n := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for {
		m := f.maxInflight.Load()
		if n <= m || f.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case f.entered <- struct{}{}:
	default: // nobody is listening (long runs)
	}
	f.mu.Lock()
	gate := f.gate
	var err error
	if len(f.signErrs) > 0 {
		err, f.signErrs = f.signErrs[0], f.signErrs[1:]
	}
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	f.successes.Add(1)
	return f.key.Sign(rand.Reader, digest, opts)
}

// recorder is an Observer that keeps every event.
type recorder struct {
	mu  sync.Mutex
	evs []Event
}

func (r *recorder) OnEvent(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
}

func (r *recorder) of(kind EventKind) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.evs {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// fakePool builds a pool over fake members (kind software with dummy files:
// the Open hook returns the fakes).
type fakePool struct {
	*Pool
	clock *fakeClock
	rec   *recorder
	fakes map[string]*fakeMember
	opens map[string]int
	mu    sync.Mutex
	// openErr, when set for an id, is returned by the Open hook.
	openErr map[string]error
}

func fakeConfig(id, profile string) MemberConfig {
	return MemberConfig{ID: id, Kind: KindSoftware, Profile: profile, KeyFile: "unused", CertFile: "unused"}
}

func newFakePool(t *testing.T, cfg Config, fakes ...*fakeMember) *fakePool {
	t.Helper()
	fp := &fakePool{clock: newFakeClock(), rec: &recorder{}, fakes: map[string]*fakeMember{}, opens: map[string]int{}, openErr: map[string]error{}}
	for _, f := range fakes {
		fp.fakes[f.id] = f
	}
	p, err := New(context.Background(), cfg, Options{
		Clock:    fp.clock,
		Observer: fp.rec,
		Open: func(ctx context.Context, mc MemberConfig) (Member, error) {
			fp.mu.Lock()
			defer fp.mu.Unlock()
			fp.opens[mc.ID]++
			if err := fp.openErr[mc.ID]; err != nil {
				return nil, err
			}
			f, ok := fp.fakes[mc.ID]
			if !ok {
				return nil, errors.New("no fake " + mc.ID)
			}
			return f, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	fp.Pool = p
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return fp
}

func (fp *fakePool) openCount(id string) int {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return fp.opens[id]
}

func (fp *fakePool) status(t *testing.T, id string) MemberStatus {
	t.Helper()
	for _, s := range fp.Members() {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no member %s", id)
	return MemberStatus{}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
