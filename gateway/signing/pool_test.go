package signing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fileSigner is the shape the gateway's outbound pipeline expects.
type fileSigner interface {
	SignFile(ctx context.Context, profile, ref string, data []byte) ([]byte, error)
}

var _ fileSigner = (*Pool)(nil)

var fileData = []byte("000 B2 lot 42 \n" + strings.Repeat("FACTURE ", 512) + "\n999\n")

func TestSignFileSoftwareVerify(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{
		{"p256", newP256(t)},
		{"rsa2048", testRSA(t, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mc, cert := writeSoftware(t, dir, "soft-"+tc.name, "amo", tc.key)
			rec := &recorder{}
			p, err := New(context.Background(), Config{Members: []MemberConfig{mc}}, Options{Observer: rec})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(context.Background())

			der, err := p.SignFile(context.Background(), "amo", "lot-42", fileData)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Verify(der, nil)
			if err != nil {
				t.Fatalf("Verify attached: %v", err)
			}
			if !got.Equal(cert) {
				t.Fatal("Verify returned another certificate")
			}
			if _, err := Verify(der, fileData); err != nil {
				t.Fatalf("Verify attached with data: %v", err)
			}
			content, _, err := Content(der)
			if err != nil || !bytes.Equal(content, fileData) {
				t.Fatalf("Content: %v", err)
			}
			if _, err := Verify(der, []byte("other file")); !errors.Is(err, ErrVerify) {
				t.Fatalf("Verify with other data: %v, want ErrVerify", err)
			}
			roots := x509Pool(cert)
			if _, err := VerifyChain(der, nil, roots); err != nil {
				t.Fatalf("VerifyChain: %v", err)
			}
			if _, err := VerifyChain(der, nil, x509Pool(selfSigned(t, newP256(t), "other"))); !errors.Is(err, ErrVerify) {
				t.Fatalf("VerifyChain with other root: %v, want ErrVerify", err)
			}

			det, err := p.SignFileDetached(context.Background(), "amo", "lot-43", fileData)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(det, fileData); err != nil {
				t.Fatalf("Verify detached: %v", err)
			}
			if _, err := Verify(det, nil); !errors.Is(err, ErrVerify) {
				t.Fatalf("Verify detached without data: %v", err)
			}
			tampered := bytes.Clone(fileData)
			tampered[0] ^= 1
			if _, err := Verify(det, tampered); !errors.Is(err, ErrVerify) {
				t.Fatalf("Verify detached tampered: %v", err)
			}

			signed := rec.of(EventSigned)
			if len(signed) != 2 {
				t.Fatalf("%d signed events, want 2", len(signed))
			}
			sum := sha256.Sum256(fileData)
			e := signed[0]
			if e.Ref != "lot-42" || e.MemberID != mc.ID || e.Profile != "amo" || !bytes.Equal(e.Digest, sum[:]) ||
				e.Hash != crypto.SHA256 || e.KeyID != KeyID(cert.PublicKey) || e.Attempt != 1 || e.Time.IsZero() || e.RequestID == 0 {
				t.Fatalf("audit event %+v", e)
			}
		})
	}
}

func TestSignerView(t *testing.T) {
	dir := t.TempDir()
	key := newP256(t)
	a, cert := writeSoftware(t, dir, "a", "amo", key)
	b := a
	b.ID = "b" // same key: a replicated key
	p, err := New(context.Background(), Config{Members: []MemberConfig{a, b}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	s := p.Signer("amo")
	if s.ID() != "pool/amo" || s.Health(context.Background()) != nil {
		t.Fatalf("view %s health %v", s.ID(), s.Health(context.Background()))
	}
	if !key.PublicKey.Equal(s.Public()) {
		t.Fatal("view Public is not the shared key")
	}
	// The view is a crypto.Signer: make a certificate with it.
	leaf := selfSigned(t, s, "via pool")
	if err := leaf.CheckSignatureFrom(leaf); err != nil {
		t.Fatal(err)
	}
	der, err := SignCMS(context.Background(), s, cert, fileData)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(der, fileData); err != nil {
		t.Fatal(err)
	}
	det, err := SignCMS(context.Background(), s, cert, fileData, Detached())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(det, fileData); err != nil || len(det) >= len(der) {
		t.Fatalf("detached SignCMS: %v (%d bytes, attached %d)", err, len(det), len(der))
	}

	// Different keys in one profile: the raw view refuses, SignFile works.
	c, _ := writeSoftware(t, dir, "c", "amo", newP256(t))
	if err := p.Update(context.Background(), []MemberConfig{a, b, c}); err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("x"))
	if _, err := s.SignContext(context.Background(), d[:], crypto.SHA256); !errors.Is(err, ErrMixedKeys) {
		t.Fatalf("mixed keys: %v", err)
	}
	if s.Public() != nil {
		t.Fatal("Public of a mixed profile should be nil")
	}
	if _, err := p.SignFile(context.Background(), "amo", "r", fileData); err != nil {
		t.Fatal(err)
	}
	if err := p.Signer("none").Health(context.Background()); !errors.Is(err, ErrNoMember) {
		t.Fatalf("empty profile health: %v", err)
	}
}

func TestDispatchLeastBusyFollowsWeights(t *testing.T) {
	a, b, c := newFake(t, "a"), newFake(t, "b"), newFake(t, "c")
	ca, cb, cc := fakeConfig("a", "amo"), fakeConfig("b", "amo"), fakeConfig("c", "amo")
	cc.Weight = 2
	other := newFake(t, "x")
	fp := newFakePool(t, Config{Members: []MemberConfig{ca, cb, cc, fakeConfig("x", "amc")}}, a, b, c, other)
	for i := range 400 {
		if _, err := fp.SignFile(context.Background(), "amo", fmt.Sprint(i), fileData); err != nil {
			t.Fatal(err)
		}
	}
	if a.calls.Load() != 100 || b.calls.Load() != 100 || c.calls.Load() != 200 || other.calls.Load() != 0 {
		t.Fatalf("calls a=%d b=%d c=%d x=%d, want 100/100/200/0", a.calls.Load(), b.calls.Load(), c.calls.Load(), other.calls.Load())
	}
	if _, err := fp.SignFile(context.Background(), "nope", "r", fileData); !errors.Is(err, ErrNoMember) {
		t.Fatalf("unknown profile: %v", err)
	}
}

func TestDispatchWeighted(t *testing.T) {
	a, b := newFake(t, "a"), newFake(t, "b")
	ca, cb := fakeConfig("a", "amo"), fakeConfig("b", "amo")
	cb.Weight = 3
	fp := newFakePool(t, Config{Strategy: StrategyWeighted, Members: []MemberConfig{ca, cb}}, a, b)
	d := sha256.Sum256(fileData)
	for i := range 2000 {
		if _, err := fp.SignDigest(context.Background(), "amo", fmt.Sprint(i), d[:], crypto.SHA256); err != nil {
			t.Fatal(err)
		}
	}
	// Expect 500/1500; 6 standard deviations is about +-116.
	if n := a.calls.Load(); n < 380 || n > 620 {
		t.Fatalf("weighted: a got %d of 2000, want about 500", n)
	}
}

func TestConcurrencyLimitPerMember(t *testing.T) {
	a := newFake(t, "a")
	gate := make(chan struct{})
	a.setGate(gate)
	ca := fakeConfig("a", "amo")
	ca.MaxConcurrency = 2
	fp := newFakePool(t, Config{Members: []MemberConfig{ca}}, a)

	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := fp.SignFile(context.Background(), "amo", fmt.Sprint(i), fileData)
			errs <- err
		}()
	}
	<-a.entered
	<-a.entered
	waitFor(t, "2 in flight", func() bool { return fp.status(t, "a").InFlight == 2 })
	// The other three wait for a slot: nobody else entered the member.
	select {
	case <-a.entered:
		t.Fatal("a third signature entered a member limited to 2")
	default:
	}
	// A waiting request gives up with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := fp.SignFile(ctx, "amo", "late", fileData); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting request: %v, want deadline exceeded", err)
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m := a.maxInflight.Load(); m != 2 {
		t.Fatalf("max in flight %d, want 2", m)
	}
	if a.successes.Load() != 5 {
		t.Fatalf("%d signatures, want 5", a.successes.Load())
	}
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	a := newFake(t, "a")
	fp := newFakePool(t, Config{BreakerThreshold: 3, BreakerCooldown: time.Minute, Members: []MemberConfig{fakeConfig("a", "amo")}}, a)
	ctx := context.Background()
	devErr := newErr(CodeDevice, "a", "sign", errors.New("HSM busy"))
	a.failNext(devErr, devErr, devErr)
	for i := range 3 {
		_, err := fp.SignFile(ctx, "amo", "r", fileData)
		if !errors.Is(err, ErrNoMember) || !errors.Is(err, ErrDevice) {
			t.Fatalf("attempt %d: %v, want no member wrapping device error", i, err)
		}
	}
	if got := fp.status(t, "a").Breaker; got != BreakerOpen {
		t.Fatalf("breaker %s, want open", got)
	}
	if n := len(fp.rec.of(EventBreakerOpen)); n != 1 {
		t.Fatalf("%d breaker_open events", n)
	}
	// Open: requests fail fast without reaching the member.
	if _, err := fp.SignFile(ctx, "amo", "r", fileData); !errors.Is(err, ErrNoMember) || a.calls.Load() != 3 {
		t.Fatalf("open breaker: %v, calls %d", err, a.calls.Load())
	}
	if fp.Signer("amo").Health(ctx) == nil {
		t.Fatal("profile healthy with its only breaker open")
	}
	// After the cooldown one probe goes through; a failure opens it again.
	fp.clock.Advance(time.Minute)
	a.failNext(devErr)
	if _, err := fp.SignFile(ctx, "amo", "r", fileData); !errors.Is(err, ErrDevice) || a.calls.Load() != 4 {
		t.Fatalf("failed probe: %v, calls %d", err, a.calls.Load())
	}
	if got := fp.status(t, "a").Breaker; got != BreakerOpen {
		t.Fatalf("after failed probe breaker %s, want open", got)
	}
	fp.clock.Advance(59 * time.Second)
	if _, err := fp.SignFile(ctx, "amo", "r", fileData); !errors.Is(err, ErrNoMember) || a.calls.Load() != 4 {
		t.Fatalf("cooldown restarted: %v, calls %d", err, a.calls.Load())
	}
	// A successful probe closes it.
	fp.clock.Advance(time.Second)
	if _, err := fp.SignFile(ctx, "amo", "r", fileData); err != nil {
		t.Fatal(err)
	}
	if got := fp.status(t, "a").Breaker; got != BreakerClosed {
		t.Fatalf("breaker %s, want closed", got)
	}
	if n := len(fp.rec.of(EventBreakerClosed)); n != 1 {
		t.Fatalf("%d breaker_closed events", n)
	}
	for range 5 {
		if _, err := fp.SignFile(ctx, "amo", "r", fileData); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFailoverDoesNotDuplicate(t *testing.T) {
	a, b := newFake(t, "a"), newFake(t, "b")
	fp := newFakePool(t, Config{Members: []MemberConfig{fakeConfig("a", "amo"), fakeConfig("b", "amo")}}, a, b)
	a.failNext(newErr(CodeDeviceGone, "a", "sign", errors.New("card removed")))

	der, err := fp.SignFile(context.Background(), "amo", "lot-7", fileData)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := Verify(der, fileData)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.Equal(b.cert) {
		t.Fatal("the CMS does not carry the certificate of the member that signed")
	}
	if a.calls.Load() != 1 || a.successes.Load() != 0 || b.calls.Load() != 1 || b.successes.Load() != 1 {
		t.Fatalf("a calls=%d ok=%d, b calls=%d ok=%d; want one failure on a and one signature on b",
			a.calls.Load(), a.successes.Load(), b.calls.Load(), b.successes.Load())
	}
	failed, signed := fp.rec.of(EventSignFailed), fp.rec.of(EventSigned)
	if len(failed) != 1 || len(signed) != 1 {
		t.Fatalf("%d failed and %d signed events, want 1 and 1", len(failed), len(signed))
	}
	if failed[0].RequestID != signed[0].RequestID || failed[0].MemberID != "a" || signed[0].MemberID != "b" ||
		failed[0].Attempt != 1 || signed[0].Attempt != 2 || failed[0].Code != CodeDeviceGone || signed[0].Ref != "lot-7" {
		t.Fatalf("events: failed %+v signed %+v", failed[0], signed[0])
	}
	// The removed card is marked down until a health check succeeds.
	if s := fp.status(t, "a"); s.State != StateDown {
		t.Fatalf("a is %s, want down", s.State)
	}
	fp.CheckHealth(context.Background())
	if s := fp.status(t, "a"); s.State != StateUp {
		t.Fatalf("a is %s after a good health check, want up", s.State)
	}
}

func TestFailoverBadDigestNotRetried(t *testing.T) {
	dir := t.TempDir()
	a, _ := writeSoftware(t, dir, "a", "amo", newP256(t))
	b, _ := writeSoftware(t, dir, "b", "amo", newP256(t))
	rec := &recorder{}
	p, err := New(context.Background(), Config{Members: []MemberConfig{a, b}}, Options{Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	_, err = p.SignDigest(context.Background(), "amo", "r", []byte("short"), crypto.SHA256)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("bad digest: %v, want ErrUnsupported", err)
	}
	if n := len(rec.of(EventSignFailed)); n != 1 {
		t.Fatalf("%d attempts for a request error, want 1", n)
	}
	for _, s := range p.Members() {
		if s.Breaker != BreakerClosed || s.State != StateUp {
			t.Fatalf("a request error changed member %s: %+v", s.ID, s)
		}
	}
}

func TestBlockedPINTakesMemberOut(t *testing.T) {
	a, b := newFake(t, "a"), newFake(t, "b")
	fp := newFakePool(t, Config{Members: []MemberConfig{fakeConfig("a", "amo"), fakeConfig("b", "amo")}}, a, b)
	a.failNext(newErr(CodePINBlocked, "a", "sign", nil))
	if _, err := fp.SignFile(context.Background(), "amo", "r", fileData); err != nil {
		t.Fatal(err)
	}
	if s := fp.status(t, "a"); s.State != StateDisabled || !errors.Is(s.LastError, ErrPINBlocked) {
		t.Fatalf("a: %+v", s)
	}
	if a.closed.Load() != 1 {
		t.Fatalf("blocked member closed %d times, want 1", a.closed.Load())
	}
	ev := fp.rec.of(EventPINBlocked)
	if len(ev) != 1 || ev[0].MemberID != "a" || ev[0].Code != CodePINBlocked {
		t.Fatalf("pin_blocked events %+v", ev)
	}
	for range 10 {
		if _, err := fp.SignFile(context.Background(), "amo", "r", fileData); err != nil {
			t.Fatal(err)
		}
	}
	fp.CheckHealth(context.Background())
	if a.calls.Load() != 1 || a.healths.Load() != 0 || fp.openCount("a") != 1 {
		t.Fatalf("disabled member used again: calls %d healths %d opens %d", a.calls.Load(), a.healths.Load(), fp.openCount("a"))
	}
	// Reopen (after an officer unblocked it) brings it back.
	if err := fp.Reopen(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	if s := fp.status(t, "a"); s.State != StateUp {
		t.Fatalf("after Reopen: %+v", s)
	}
}

func TestWrongPINNeverRetried(t *testing.T) {
	a, b := newFake(t, "a"), newFake(t, "b")
	fpl := newFakePoolWithOpenErr(t, map[string]error{"a": &Error{Code: CodePINIncorrect, Member: "a", Op: "verify pin", TriesLeft: 2}}, a, b)
	if s := fpl.status(t, "a"); s.State != StateDisabled || !errors.Is(s.LastError, ErrPINIncorrect) {
		t.Fatalf("a: %+v", s)
	}
	ev := fpl.rec.of(EventPINIncorrect)
	if len(ev) != 1 {
		t.Fatalf("%d pin_incorrect events, want 1", len(ev))
	}
	var pe *Error
	if !errors.As(ev[0].Err, &pe) || pe.TriesLeft != 2 {
		t.Fatalf("event error %v", ev[0].Err)
	}
	for range 3 {
		fpl.CheckHealth(context.Background())
		fpl.clock.Advance(time.Hour)
		if _, err := fpl.SignFile(context.Background(), "amo", "r", fileData); err != nil {
			t.Fatal(err)
		}
	}
	// Same configuration again: still not reopened.
	if err := fpl.Update(context.Background(), []MemberConfig{fakeConfig("a", "amo"), fakeConfig("b", "amo")}); err != nil {
		t.Fatal(err)
	}
	if n := fpl.openCount("a"); n != 1 {
		t.Fatalf("member with a wrong PIN opened %d times, want 1", n)
	}
}

func newFakePoolWithOpenErr(t *testing.T, openErr map[string]error, fakes ...*fakeMember) *fakePool {
	t.Helper()
	// Build with Open errors in place before New opens the members.
	fp := &fakePool{clock: newFakeClock(), rec: &recorder{}, fakes: map[string]*fakeMember{}, opens: map[string]int{}, openErr: openErr}
	var cfgs []MemberConfig
	for _, f := range fakes {
		fp.fakes[f.id] = f
		cfgs = append(cfgs, fakeConfig(f.id, "amo"))
	}
	p, err := New(context.Background(), Config{Members: cfgs}, Options{
		Clock: fp.clock, Observer: fp.rec,
		Open: func(ctx context.Context, mc MemberConfig) (Member, error) {
			fp.mu.Lock()
			defer fp.mu.Unlock()
			fp.opens[mc.ID]++
			if err := fp.openErr[mc.ID]; err != nil {
				return nil, err
			}
			return fp.fakes[mc.ID], nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	fp.Pool = p
	t.Cleanup(func() { p.Close(context.Background()) })
	return fp
}

func TestHealthDownUpAndReopen(t *testing.T) {
	a := newFake(t, "a")
	fp := newFakePoolWithOpenErr(t, map[string]error{"a": newErr(CodeDeviceGone, "a", "open", errors.New("no token"))}, a)
	if s := fp.status(t, "a"); s.State != StateDown {
		t.Fatalf("a: %+v", s)
	}
	if n := len(fp.rec.of(EventMemberDown)); n != 1 {
		t.Fatalf("%d member_down events after a failed open", n)
	}
	fp.CheckHealth(context.Background()) // still failing: no new event
	if n := len(fp.rec.of(EventMemberDown)); n != 1 || fp.openCount("a") != 2 {
		t.Fatalf("%d member_down events, %d opens", n, fp.openCount("a"))
	}
	fp.mu.Lock()
	delete(fp.openErr, "a")
	fp.mu.Unlock()
	fp.CheckHealth(context.Background())
	if s := fp.status(t, "a"); s.State != StateUp {
		t.Fatalf("a: %+v", s)
	}
	a.setHealth(newErr(CodeDevice, "a", "health", errors.New("probe failed")))
	fp.CheckHealth(context.Background())
	if s := fp.status(t, "a"); s.State != StateDown {
		t.Fatalf("a: %+v", s)
	}
	if _, err := fp.SignFile(context.Background(), "amo", "r", fileData); !errors.Is(err, ErrNoMember) {
		t.Fatalf("down member served: %v", err)
	}
	a.setHealth(nil)
	fp.CheckHealth(context.Background())
	if _, err := fp.SignFile(context.Background(), "amo", "r", fileData); err != nil {
		t.Fatal(err)
	}
	if n := len(fp.rec.of(EventMemberUp)); n != 2 {
		t.Fatalf("%d member_up events, want 2", n)
	}
}

func TestHealthLoopUsesClock(t *testing.T) {
	a := newFake(t, "a")
	fp := newFakePool(t, Config{HealthInterval: time.Minute, Members: []MemberConfig{fakeConfig("a", "amo")}}, a)
	for i := 1; i <= 3; i++ {
		waitFor(t, "health timer", func() bool { return fp.clock.pending() > 0 })
		fp.clock.Advance(time.Minute)
		waitFor(t, "health check", func() bool { return a.healths.Load() == int32(i) })
	}
}

func TestHotAddRemove(t *testing.T) {
	a, b := newFake(t, "a"), newFake(t, "b")
	fp := newFakePool(t, Config{Members: []MemberConfig{fakeConfig("a", "amo")}}, a, b)
	ctx := context.Background()

	// Add b.
	if err := fp.Update(ctx, []MemberConfig{fakeConfig("a", "amo"), fakeConfig("b", "amo")}); err != nil {
		t.Fatal(err)
	}
	if len(fp.Members()) != 2 || len(fp.rec.of(EventMemberAdded)) != 2 {
		t.Fatalf("members %+v", fp.Members())
	}
	// Hold a signature in flight on a, then remove a: Update waits for it.
	gate := make(chan struct{})
	a.setGate(gate)
	done := make(chan error, 1)
	go func() {
		_, err := fp.SignFile(ctx, "amo", "in-flight", fileData)
		done <- err
	}()
	<-a.entered // least busy with a tie: the first member in order
	updated := make(chan error, 1)
	go func() { updated <- fp.Update(ctx, []MemberConfig{fakeConfig("b", "amo")}) }()
	waitFor(t, "a draining", func() bool { return fp.status(t, "a").State == StateDraining })
	// While a drains, new requests go to b.
	if _, err := fp.SignFile(ctx, "amo", "during-drain", fileData); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-updated:
		t.Fatalf("Update returned before the in-flight signature ended: %v", err)
	default:
	}
	if a.closed.Load() != 0 {
		t.Fatal("a closed while a signature was in flight")
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatalf("in-flight signature lost: %v", err)
	}
	if err := <-updated; err != nil {
		t.Fatal(err)
	}
	if a.closed.Load() != 1 || len(fp.Members()) != 1 || len(fp.rec.of(EventMemberRemoved)) != 1 {
		t.Fatalf("after removal: closed=%d members=%+v", a.closed.Load(), fp.Members())
	}
	callsA := a.calls.Load()
	for range 5 {
		if _, err := fp.SignFile(ctx, "amo", "r", fileData); err != nil {
			t.Fatal(err)
		}
	}
	if a.calls.Load() != callsA {
		t.Fatal("removed member still used")
	}

	// A changed configuration reopens the member.
	nb := fakeConfig("b", "amo")
	nb.MaxConcurrency = 7
	if err := fp.Update(ctx, []MemberConfig{nb}); err != nil {
		t.Fatal(err)
	}
	if b.closed.Load() != 1 || fp.openCount("b") != 2 {
		t.Fatalf("changed member: closed %d, opens %d", b.closed.Load(), fp.openCount("b"))
	}
	// Unchanged configuration: nothing happens.
	if err := fp.Update(ctx, []MemberConfig{nb}); err != nil {
		t.Fatal(err)
	}
	if fp.openCount("b") != 2 {
		t.Fatal("unchanged member reopened")
	}
	// Invalid update changes nothing.
	if err := fp.Update(ctx, []MemberConfig{nb, nb}); !errors.Is(err, ErrConfig) {
		t.Fatalf("duplicate ids: %v", err)
	}
}

func TestProductionRefusesSoftware(t *testing.T) {
	dir := t.TempDir()
	mc, _ := writeSoftware(t, dir, "dev", "amo", newP256(t))
	_, err := New(context.Background(), Config{Production: true, Members: []MemberConfig{mc}}, Options{})
	var e *Error
	if !errors.Is(err, ErrSoftwareInProduction) || !errors.As(err, &e) || e.Member != "dev" {
		t.Fatalf("New: %v", err)
	}
	hsm := MemberConfig{ID: "hsm", Kind: KindPKCS11, Profile: "amo", Module: "/nonexistent.so", TokenLabel: "t", KeyLabel: "k", PINEnv: "OCT_TEST_NO_SUCH_PIN"}
	p, err := New(context.Background(), Config{Production: true, Members: []MemberConfig{hsm}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	if err := p.Update(context.Background(), []MemberConfig{hsm, mc}); !errors.Is(err, ErrSoftwareInProduction) {
		t.Fatalf("Update: %v", err)
	}
	if s := p.Members(); len(s) != 1 || s[0].State != StateDown || !errors.Is(s[0].LastError, ErrPIN) {
		t.Fatalf("members %+v", s)
	}
}

// healthLoops counts the goroutines running a pool's health loop.
func healthLoops() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Count(buf, []byte("signing.(*Pool).healthLoop("))
}

func TestCloseStopsGoroutines(t *testing.T) {
	before := healthLoops()
	a := newFake(t, "a")
	clock := newFakeClock()
	p, err := New(context.Background(), Config{HealthInterval: time.Second, Members: []MemberConfig{fakeConfig("a", "amo")}}, Options{
		Clock: clock,
		Open:  func(context.Context, MemberConfig) (Member, error) { return a, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "health timer", func() bool { return clock.pending() > 0 })
	if healthLoops() != before+1 {
		t.Fatal("no health checker goroutine")
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := healthLoops(); got != before {
		t.Fatalf("%d health loops after Close, %d before", got, before)
	}
	if a.closed.Load() != 1 {
		t.Fatal("member not closed")
	}
	if _, err := p.SignFile(context.Background(), "amo", "r", fileData); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := p.Update(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Update after Close: %v", err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestCloseWaitsForInFlight(t *testing.T) {
	a := newFake(t, "a")
	gate := make(chan struct{})
	a.setGate(gate)
	p, err := New(context.Background(), Config{Members: []MemberConfig{fakeConfig("a", "amo")}}, Options{
		Open: func(context.Context, MemberConfig) (Member, error) { return a, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.SignFile(context.Background(), "amo", "r", fileData)
		done <- err
	}()
	<-a.entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a signature in flight: %v", err)
	}
	if a.closed.Load() != 0 {
		t.Fatal("member closed under an in-flight signature")
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatalf("in-flight signature: %v", err)
	}
	waitFor(t, "member closed", func() bool { return a.closed.Load() == 1 })
}

func TestMetrics(t *testing.T) {
	a, b := newFake(t, "a"), newFake(t, "b")
	reg := prometheus.NewRegistry()
	p, err := New(context.Background(), Config{Members: []MemberConfig{fakeConfig("a", "amo"), fakeConfig("b", "amo")}}, Options{
		Registerer: reg,
		Open: func(_ context.Context, mc MemberConfig) (Member, error) {
			return map[string]*fakeMember{"a": a, "b": b}[mc.ID], nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	a.failNext(newErr(CodeDevice, "a", "sign", errors.New("x")))
	for range 4 {
		if _, err := p.SignFile(context.Background(), "amo", "r", fileData); err != nil {
			t.Fatal(err)
		}
	}
	// A second pool on the same registry is refused until the first closes.
	if _, err := New(context.Background(), Config{}, Options{Registerer: reg}); !errors.Is(err, ErrConfig) {
		t.Fatalf("double registration: %v", err)
	}
	got := gather(t, reg)
	want := map[string]float64{
		`oct_signing_signatures_total{member="a",profile="amo"}`:      2, // least busy, then first in order
		`oct_signing_signatures_total{member="b",profile="amo"}`:      2,
		`oct_signing_errors_total{member="a",profile="amo"}`:          1,
		`oct_signing_member_up{member="a",profile="amo"}`:             1,
		`oct_signing_latency_seconds_count{member="b",profile="amo"}`: 2,
		`oct_signing_inflight{member="b",profile="amo"}`:              0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if err := p.Update(context.Background(), []MemberConfig{fakeConfig("b", "amo")}); err != nil {
		t.Fatal(err)
	}
	if _, ok := gather(t, reg)[`oct_signing_member_up{member="a",profile="amo"}`]; ok {
		t.Error("metrics of a removed member kept")
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	p2, err := New(context.Background(), Config{}, Options{Registerer: reg})
	if err != nil {
		t.Fatalf("register after Close: %v", err)
	}
	p2.Close(context.Background())
}

// gather flattens a registry into "name{labels}" -> value (histograms: _count).
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				out[mf.GetName()+key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[mf.GetName()+key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[mf.GetName()+"_count"+key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}
