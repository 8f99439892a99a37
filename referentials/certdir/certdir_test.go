package certdir

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"
)

var now = time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)

// makeCert returns a DER self-signed certificate.
func makeCert(t testing.TB, cn string, serial int64, from, until time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: from, NotAfter: until, KeyUsage: x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

type fakeDir struct {
	mu    sync.Mutex
	data  map[string][][]byte
	calls int
	fail  error
}

func (f *fakeDir) fetch(_ context.Context, m string) ([][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return nil, f.fail
	}
	return f.data[m], nil
}

func newFake(t *testing.T, clock *time.Time, f *fakeDir) *Directory {
	d, err := New(Config{URL: "ldap://127.0.0.1:1", Now: func() time.Time { return *clock }, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	d.fetch = f.fetch
	return d
}

func TestSelectAndCache(t *testing.T) {
	const mb = "01422@422.01.rss.fr"
	clock := now
	f := &fakeDir{data: map[string][][]byte{
		mb: {
			makeCert(t, mb, 10, now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0)),
			makeCert(t, mb, 20, now.AddDate(0, 0, -1), now.AddDate(0, 0, 20)), // highest valid
			makeCert(t, mb, 30, now.AddDate(-2, 0, 0), now.AddDate(0, 0, -1)), // expired
			makeCert(t, mb, 40, now.AddDate(0, 0, 1), now.AddDate(2, 0, 0)),   // not yet valid
			[]byte("not a certificate"),
		},
		"old@x": {makeCert(t, "old", 1, now.AddDate(-2, 0, 0), now.AddDate(-1, 0, 0))},
	}}
	d := newFake(t, &clock, f)
	ctx := context.Background()
	c, err := d.Certificate(ctx, mb)
	if err != nil || c.SerialNumber.Int64() != 20 {
		t.Fatalf("selected %v %v", c, err)
	}
	if _, err := d.Certificate(ctx, mb); err != nil || f.calls != 1 {
		t.Fatalf("cache not used: %d calls", f.calls)
	}
	// After the TTL the directory is asked again.
	clock = now.Add(61 * time.Minute)
	if _, err := d.Certificate(ctx, mb); err != nil || f.calls != 2 {
		t.Fatalf("TTL: %d calls %v", f.calls, err)
	}
	// Directory down: the stale copy is served.
	f.fail = errors.New("connection refused")
	clock = now.Add(3 * time.Hour)
	if c, err := d.Certificate(ctx, mb); err != nil || c.SerialNumber.Int64() != 20 {
		t.Fatalf("stale: %v %v", c, err)
	}
	// ... but a mailbox never fetched fails with ErrDirectory.
	if _, err := d.Certificate(ctx, "new@x"); !errors.Is(err, ErrDirectory) {
		t.Fatalf("err = %v", err)
	}
	f.fail = nil
	if _, err := d.Certificate(ctx, "old@x"); !errors.Is(err, ErrNoValid) {
		t.Fatalf("expired only: %v", err)
	}
	if _, err := d.Certificate(ctx, "nobody@x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("none: %v", err)
	}
	// Once 40 becomes valid it wins (highest serial).
	clock = now.AddDate(0, 0, 2)
	if c, _ := d.Certificate(ctx, mb); c.SerialNumber.Int64() != 40 {
		t.Fatalf("rollover: %v", c.SerialNumber)
	}
}

func TestCheck(t *testing.T) {
	clock := now
	f := &fakeDir{data: map[string][][]byte{
		"soon@x":  {makeCert(t, "soon", 5, now.AddDate(-1, 0, 0), now.AddDate(0, 0, 10))},
		"later@x": {makeCert(t, "later", 6, now.AddDate(-1, 0, 0), now.AddDate(0, 0, 31))},
		// Rolled over: the old one expires soon but a newer one is valid for long.
		"rolled@x": {makeCert(t, "r", 7, now.AddDate(-1, 0, 0), now.AddDate(0, 0, 5)), makeCert(t, "r", 8, now.AddDate(0, 0, -1), now.AddDate(1, 0, 0))},
		"dead@x":   {makeCert(t, "dead", 9, now.AddDate(-1, 0, 0), now.AddDate(0, 0, -1))},
	}}
	d := newFake(t, &clock, f)
	got := d.Check(context.Background(), []string{"later@x", "soon@x", "rolled@x", "dead@x", "none@x"}, 0)
	byMB := map[string]Expiry{}
	for _, e := range got {
		byMB[e.Mailbox] = e
	}
	if len(got) != 3 || byMB["soon@x"].Problem != "expiring" || byMB["soon@x"].Remaining != 10*24*time.Hour ||
		byMB["soon@x"].Serial != "5" || byMB["dead@x"].Problem != "no-valid" || byMB["none@x"].Problem != "not-found" {
		t.Fatalf("check = %+v", got)
	}
	ticks := make(chan time.Time)
	reports := make(chan []Expiry)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- d.Watch(ctx, ticks, func() []string { return []string{"soon@x"} }, 0, func(e []Expiry) { reports <- e })
	}()
	ticks <- now
	if r := <-reports; len(r) != 1 || r[0].Mailbox != "soon@x" {
		t.Fatalf("watch = %+v", r)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func TestConfig(t *testing.T) {
	if _, err := New(Config{URL: "http://x", Now: time.Now}); !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v", err)
	}
	if _, err := New(Config{URL: "ldap://x:389"}); !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v", err)
	}
}
