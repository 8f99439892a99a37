package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"

	"github.com/octgw/oct/gateway/signing/internal/cardemu"
)

// memTransport drives an emulated card in process: the APDU flow of the
// card member without pcscd.
type memTransport struct {
	card *cardemu.Card

	mu         sync.Mutex
	removed    bool
	reconnects int
	closed     bool
}

func (t *memTransport) Transmit(ctx context.Context, apdu []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.removed {
		return nil, newErr(CodeDeviceGone, "", "", errors.New("card removed"))
	}
	return t.card.Process(apdu), nil
}

func (t *memTransport) Reconnect(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reconnects++
	if t.removed {
		return newErr(CodeDeviceGone, "", "reconnect", errors.New("no card"))
	}
	t.card.Reset()
	return nil
}

func (t *memTransport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	return nil
}

func (t *memTransport) setRemoved(v bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removed = v
	if v {
		t.card.Reset()
	}
}

type emuCard struct {
	card  *cardemu.Card
	ecKey *ecdsa.PrivateKey
	rsa   *rsa.PrivateKey
}

func newEmuCard(t *testing.T, chunk int) emuCard {
	t.Helper()
	ec, rk := newP256(t), testRSA(t, 1)
	return emuCard{
		card: cardemu.New(cardemu.Config{
			PIN:   []byte("1234"),
			Chunk: chunk,
			Keys: map[byte]cardemu.Key{
				1: {Signer: ec, CertDER: selfSigned(t, ec, "card ec").Raw},
				2: {Signer: rk, CertDER: selfSigned(t, rk, "card rsa").Raw},
			},
		}),
		ecKey: ec, rsa: rk,
	}
}

func cardConfig(id string, ref int) MemberConfig {
	return MemberConfig{ID: id, Kind: KindPCSC, Profile: "amo", Reader: "mem", KeyRef: ref, PINEnv: "X"}.withDefaults()
}

func TestCardMemberSigns(t *testing.T) {
	for _, chunk := range []int{64, 256} { // 64: certificate and RSA signature come by GET RESPONSE
		ec := newEmuCard(t, chunk)
		for _, ref := range []int{1, 2} {
			tr := &memTransport{card: ec.card}
			m, err := newCardMember(context.Background(), cardConfig("card", ref), pin("1234"), tr)
			if err != nil {
				t.Fatalf("chunk %d key %d: %v", chunk, ref, err)
			}
			d := sha256.Sum256([]byte("hello"))
			sig, err := m.SignContext(context.Background(), d[:], crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if err := verifyRaw("card", m.Public(), d[:], sig); err != nil {
				t.Fatalf("key %d: %v", ref, err)
			}
			// Through the CMS path as well.
			der, err := SignCMS(context.Background(), m, m.Certificate(), fileData)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(der, fileData); err != nil {
				t.Fatal(err)
			}
			if err := m.Health(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := m.Close(); err != nil || !tr.closed {
				t.Fatalf("close: %v", err)
			}
		}
	}
}

func TestCardMemberPIN(t *testing.T) {
	ctx := context.Background()
	ec := newEmuCard(t, 128)

	// Wrong PIN: reported with the tries left, presented once.
	_, err := newCardMember(ctx, cardConfig("card", 1), pin("9999"), &memTransport{card: ec.card})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodePINIncorrect || e.TriesLeft != 2 {
		t.Fatalf("wrong PIN: %v", err)
	}
	if v := ec.card.Stats().Verifies; v != 1 {
		t.Fatalf("%d VERIFY with a PIN, want 1", v)
	}

	// Blocked PIN: the card never sees the PIN.
	ec.card.SetTries(0)
	_, err = newCardMember(ctx, cardConfig("card", 1), pin("1234"), &memTransport{card: ec.card})
	if !errors.Is(err, ErrPINBlocked) {
		t.Fatalf("blocked: %v", err)
	}
	if v := ec.card.Stats().Verifies; v != 1 {
		t.Fatalf("PIN presented to a blocked card (%d VERIFY)", v)
	}

	// Last try wrong: blocked.
	ec.card.SetTries(1)
	_, err = newCardMember(ctx, cardConfig("card", 1), pin("0000"), &memTransport{card: ec.card})
	if !errors.Is(err, ErrPINBlocked) {
		t.Fatalf("last try: %v", err)
	}
}

func TestCardMemberFaults(t *testing.T) {
	ctx := context.Background()
	ec := newEmuCard(t, 128)
	tr := &memTransport{card: ec.card}
	m, err := newCardMember(ctx, cardConfig("card", 1), pin("1234"), tr)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("x"))

	// Wrong status word from PSO: a device error, the session stays.
	ec.card.Fail(insPSO, 0x6F00, 1)
	if _, err := m.SignContext(ctx, d[:], crypto.SHA256); !errors.Is(err, ErrDevice) {
		t.Fatalf("6F00: %v", err)
	}
	if _, err := m.SignContext(ctx, d[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}

	// Card removed: device gone until a health check reconnects.
	tr.setRemoved(true)
	if _, err := m.SignContext(ctx, d[:], crypto.SHA256); !errors.Is(err, ErrDeviceGone) {
		t.Fatalf("removed: %v", err)
	}
	if err := m.Health(ctx); !errors.Is(err, ErrDeviceGone) {
		t.Fatalf("health while removed: %v", err)
	}
	tr.setRemoved(false)
	if _, err := m.SignContext(ctx, d[:], crypto.SHA256); !errors.Is(err, ErrDeviceGone) {
		t.Fatalf("reinserted, before health: %v", err)
	}
	verifies := ec.card.Stats().Verifies
	if err := m.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if ec.card.Stats().Verifies != verifies+1 {
		t.Fatal("no new login after reinsertion")
	}
	if _, err := m.SignContext(ctx, d[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}

	// Reset behind our back: PSO answers 6982, the health check logs in again.
	ec.card.Reset()
	if _, err := m.SignContext(ctx, d[:], crypto.SHA256); !errors.Is(err, ErrDeviceGone) {
		t.Fatalf("after reset: %v", err)
	}
	if err := m.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SignContext(ctx, d[:], crypto.SHA256); err != nil {
		t.Fatal(err)
	}

	// PIN changed (or card swapped) between sessions: rejected once, reported.
	m.pin = pin("4321")
	ec.card.Reset()
	before := ec.card.Stats().Verifies
	if err := m.Health(ctx); !errors.Is(err, ErrPINIncorrect) {
		t.Fatalf("health with a rejected PIN: %v", err)
	}
	if ec.card.Stats().Verifies != before+1 {
		t.Fatal("PIN presented more than once")
	}

	// Unsupported requests fail before reaching the card.
	apdus := ec.card.Stats().APDUs
	if _, err := m.SignContext(ctx, d[:20], crypto.SHA256); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("short digest: %v", err)
	}
	if _, err := m.SignContext(ctx, d[:], &rsa.PSSOptions{Hash: crypto.SHA256}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("PSS: %v", err)
	}
	if ec.card.Stats().APDUs != apdus {
		t.Fatal("unsupported request reached the card")
	}
}

// TestPoolCardBlockedPIN runs the pool over in-process cards: a card whose
// PIN gets blocked is taken out, raises the event, and the request fails
// over to the other card without a second signature.
func TestPoolCardBlockedPIN(t *testing.T) {
	c1, c2 := newEmuCard(t, 128), newEmuCard(t, 128)
	cards := map[string]*cardemu.Card{"card1": c1.card, "card2": c2.card}
	rec := &recorder{}
	clock := newFakeClock()
	a, b := cardConfig("card1", 1), cardConfig("card2", 1)
	p, err := New(context.Background(), Config{Members: []MemberConfig{a, b}}, Options{
		Clock: clock, Observer: rec,
		Open: func(ctx context.Context, mc MemberConfig) (Member, error) {
			return newCardMember(ctx, mc, pin("1234"), &memTransport{card: cards[mc.ID]})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())

	// card1 is reset and its PIN blocked behind our back (someone else
	// exhausted the tries). The next signature on it fails with 6982,
	// the health check finds the PIN blocked.
	c1.card.Reset()
	c1.card.SetTries(0)
	before1, before2 := c1.card.Stats().Signatures, c2.card.Stats().Signatures
	der, err := p.SignFile(context.Background(), "amo", "lot-1", fileData)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(der, fileData); err != nil {
		t.Fatal(err)
	}
	if c1.card.Stats().Signatures != before1 || c2.card.Stats().Signatures != before2+1 {
		t.Fatalf("signatures card1 %d->%d card2 %d->%d", before1, c1.card.Stats().Signatures, before2, c2.card.Stats().Signatures)
	}
	p.CheckHealth(context.Background())
	var st MemberStatus
	for _, s := range p.Members() {
		if s.ID == "card1" {
			st = s
		}
	}
	if st.State != StateDisabled || len(rec.of(EventPINBlocked)) != 1 {
		t.Fatalf("card1 %+v, events %+v", st, rec.of(EventPINBlocked))
	}
	verifies := c1.card.Stats().Verifies
	for range 3 {
		p.CheckHealth(context.Background())
		if _, err := p.SignFile(context.Background(), "amo", "lot-2", fileData); err != nil {
			t.Fatal(err)
		}
	}
	if c1.card.Stats().Verifies != verifies {
		t.Fatal("PIN presented to a card taken out of the pool")
	}
}
