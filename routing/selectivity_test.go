package routing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/octgw/oct/formats/certificate"
	"github.com/octgw/oct/formats/nir"
)

// memHistory is an in-memory History: issue times per patient key.
type memHistory struct {
	mu    sync.Mutex
	times map[string][]time.Time
	calls int
	err   error
}

func (h *memHistory) add(key string, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.times == nil {
		h.times = map[string][]time.Time{}
	}
	h.times[key] = append(h.times[key], t)
}

func (h *memHistory) CountSince(ctx context.Context, key string, since time.Time) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if h.err != nil {
		return 0, h.err
	}
	n := 0
	for _, t := range h.times[key] {
		if !t.Before(since) {
			n++
		}
	}
	return n, nil
}

var issued = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func facts(id string, days int) CertificateFacts {
	return CertificateFacts{ID: id, PatientKey: strings.Repeat("ab", 32), Benefit: "sickness", IncapacityDays: days, Issued: issued}
}

func TestSelectZeroRulesFlagNothing(t *testing.T) {
	h := &memHistory{}
	sel, err := SelectivityRules{}.Select(context.Background(), facts("C1", 400), h)
	if err != nil || sel.Flagged || len(sel.Reasons) != 0 || !math.IsNaN(sel.Draw) {
		t.Fatalf("%+v %v", sel, err)
	}
	if h.calls != 0 {
		t.Fatal("history read with the repeat rule off")
	}
	if (SelectivityRules{}).Enabled() || (SelectivityRules{Benefits: []string{"sickness"}}).Enabled() {
		t.Fatal("zero rules enabled")
	}
	for _, r := range []SelectivityRules{{LongIncapacityDays: 1}, {RepeatCount: 1, RepeatWindow: time.Hour}, {SampleRate: 0.5, SampleSeed: "s"}} {
		if !r.Enabled() {
			t.Fatalf("%+v not enabled", r)
		}
	}
	// No history is needed when the repeat rule is off.
	if _, err := (SelectivityRules{LongIncapacityDays: 30}).Select(context.Background(), facts("C1", 1), nil); err != nil {
		t.Fatal(err)
	}
}

func TestSelectLongIncapacity(t *testing.T) {
	r := SelectivityRules{LongIncapacityDays: 30}
	for days, want := range map[int]bool{0: false, 1: false, 29: false, 30: true, 365: true} {
		sel, err := r.Select(context.Background(), facts("C1", days), nil)
		if err != nil {
			t.Fatal(err)
		}
		if sel.Flagged != want || sel.Has(ReasonLongIncapacity) != want {
			t.Errorf("%d days: %+v", days, sel)
		}
		if want && sel.Reasons[0] != "long-incapacity: incapacity of "+strconv.Itoa(days)+" days, threshold 30" {
			t.Errorf("reason %q", sel.Reasons[0])
		}
	}
}

func TestSelectRepeat(t *testing.T) {
	r := SelectivityRules{RepeatCount: 3, RepeatWindow: 90 * 24 * time.Hour}
	f := facts("C9", 5)
	h := &memHistory{}
	// Two in the window, one just outside, one for another patient.
	h.add(f.PatientKey, issued.Add(-10*24*time.Hour))
	h.add(f.PatientKey, issued.Add(-90*24*time.Hour)) // exactly at the window's start: counted
	h.add(f.PatientKey, issued.Add(-91*24*time.Hour))
	h.add(strings.Repeat("cd", 32), issued.Add(-time.Hour))
	sel, err := r.Select(context.Background(), f, h)
	if err != nil || sel.Flagged {
		t.Fatalf("2 earlier: %+v %v", sel, err)
	}
	h.add(f.PatientKey, issued.Add(-time.Hour))
	sel, err = r.Select(context.Background(), f, h)
	if err != nil || !sel.Flagged || !sel.Has(ReasonRepeat) {
		t.Fatalf("3 earlier: %+v %v", sel, err)
	}
	if want := "repeat: 3 earlier certificates in the 90 days before this one, threshold 3"; sel.Reasons[0] != want {
		t.Fatalf("reason %q", sel.Reasons[0])
	}
}

func TestSelectRepeatErrors(t *testing.T) {
	r := SelectivityRules{RepeatCount: 1, RepeatWindow: time.Hour}
	boom := errors.New("redis down")
	_, err := r.Select(context.Background(), facts("C1", 1), &memHistory{err: boom})
	if !errors.Is(err, ErrSelectivityHistory) || !errors.Is(err, boom) {
		t.Fatalf("history failure: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Select(ctx, facts("C1", 1), &memHistory{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	if _, err := r.Select(context.Background(), facts("C1", 1), nil); !errors.Is(err, ErrSelectivityHistory) {
		t.Fatalf("nil history: %v", err)
	}
	f := facts("C1", 1)
	f.PatientKey = ""
	if _, err := r.Select(context.Background(), f, &memHistory{}); !errors.Is(err, ErrSelectivityFacts) {
		t.Fatalf("no key: %v", err)
	}
	f = facts("C1", 1)
	f.Issued = time.Time{}
	if _, err := r.Select(context.Background(), f, &memHistory{}); !errors.Is(err, ErrSelectivityFacts) {
		t.Fatalf("no issue time: %v", err)
	}
	// A raw NIR as the key is refused, and not echoed.
	n13 := "1841275123456"
	k, _ := nir.Key(n13)
	for _, raw := range []string{n13, n13 + fmt.Sprintf("%02d", k), "1 84 12 75 123 456"} {
		f = facts("C1", 1)
		f.PatientKey = raw
		h := &memHistory{}
		_, err := r.Select(context.Background(), f, h)
		if !errors.Is(err, ErrSelectivityFacts) || h.calls != 0 {
			t.Fatalf("raw NIR %q: %v (calls %d)", raw, err, h.calls)
		}
		if strings.Contains(err.Error(), "123456") {
			t.Fatalf("error echoes the NIR: %v", err)
		}
	}
}

func TestSelectRandomSampleIsReproducible(t *testing.T) {
	r := SelectivityRules{SampleRate: 0.1, SampleSeed: "2026-Q1"}
	flagged := 0
	const n = 20000
	for i := 0; i < n; i++ {
		id := "AT-" + strconv.Itoa(i)
		sel, err := r.Select(context.Background(), facts(id, 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := r.Select(context.Background(), facts(id, 1), nil)
		if sel.Flagged != again.Flagged || sel.Draw != again.Draw {
			t.Fatalf("%s: not reproducible", id)
		}
		if sel.Draw != SampleDraw("2026-Q1", id) || sel.Draw < 0 || sel.Draw >= 1 {
			t.Fatalf("%s: draw %v", id, sel.Draw)
		}
		if sel.Flagged != (sel.Draw < 0.1) || sel.Flagged != sel.Has(ReasonRandomSample) {
			t.Fatalf("%s: %+v", id, sel)
		}
		if sel.Flagged {
			flagged++
		}
	}
	// 10% of 20000 = 2000, σ ≈ 42: ±300 is over 7σ.
	if flagged < 1700 || flagged > 2300 {
		t.Fatalf("%d of %d drawn at rate 0.1", flagged, n)
	}
	// Another seed draws another sample.
	same := 0
	for i := 0; i < 1000; i++ {
		id := "AT-" + strconv.Itoa(i)
		a := SampleDraw("2026-Q1", id) < 0.1
		b := SampleDraw("2026-Q2", id) < 0.1
		if a && b {
			same++
		}
	}
	if same > 40 { // expected ≈ 10
		t.Fatalf("seeds not independent: %d common", same)
	}
	// Rate 1 draws everything.
	sel, _ := SelectivityRules{SampleRate: 1, SampleSeed: "s"}.Select(context.Background(), facts("X", 1), nil)
	if !sel.Flagged {
		t.Fatal("rate 1 did not draw")
	}
	if _, err := (SelectivityRules{SampleRate: 0.5, SampleSeed: "s"}).Select(context.Background(), facts("", 1), nil); !errors.Is(err, ErrSelectivityFacts) {
		t.Fatalf("no id: %v", err)
	}
}

// A pinned draw: the sample must not change across releases for the same
// seed and id (decisions are replayed from the audit trail).
func TestSampleDrawPinned(t *testing.T) {
	got := SampleDraw("2026-Q1", "AT-2026-000123")
	again := SampleDraw("2026-Q1", "AT-2026-000123")
	if got != again {
		t.Fatal("not deterministic")
	}
	if s := strconv.FormatFloat(got, 'g', -1, 64); s != pinnedDraw {
		t.Fatalf("draw %s, pinned %s", s, pinnedDraw)
	}
}

func TestSelectCombination(t *testing.T) {
	r := SelectivityRules{LongIncapacityDays: 30, RepeatCount: 1, RepeatWindow: 30 * 24 * time.Hour,
		SampleRate: 1, SampleSeed: "s", Benefits: []string{"sickness", "work_accident"}}
	f := facts("C1", 45)
	h := &memHistory{}
	h.add(f.PatientKey, issued.Add(-24*time.Hour))
	sel, err := r.Select(context.Background(), f, h)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range sel.Reasons {
		got = append(got, ReasonCode(s))
	}
	if !sel.Flagged || strings.Join(got, ",") != "long-incapacity,repeat,random-sample" {
		t.Fatalf("%+v", sel)
	}
	// Outside the listed benefits nothing applies (and no history is read).
	f.Benefit = "maternity"
	calls := h.calls
	sel, err = r.Select(context.Background(), f, h)
	if err != nil || sel.Flagged || h.calls != calls {
		t.Fatalf("maternity: %+v %v", sel, err)
	}
	// One rule firing is enough; the others are still evaluated.
	r.SampleRate = 0
	r.SampleSeed = ""
	f = facts("C2", 3)
	f.PatientKey = strings.Repeat("ef", 32) // a patient without history
	sel, err = r.Select(context.Background(), f, h)
	if err != nil || sel.Flagged {
		t.Fatalf("nothing fires: %+v %v", sel, err)
	}
	h.add(f.PatientKey, issued.Add(-time.Hour))
	sel, _ = r.Select(context.Background(), f, h)
	if !sel.Flagged || len(sel.Reasons) != 1 || !sel.Has(ReasonRepeat) {
		t.Fatalf("repeat only: %+v", sel)
	}
}

func TestSelectivityRulesValidate(t *testing.T) {
	for name, r := range map[string]SelectivityRules{
		"negative days":     {LongIncapacityDays: -1},
		"count no window":   {RepeatCount: 2},
		"window no count":   {RepeatWindow: time.Hour},
		"rate above 1":      {SampleRate: 1.5, SampleSeed: "s"},
		"rate NaN":          {SampleRate: math.NaN(), SampleSeed: "s"},
		"rate without seed": {SampleRate: 0.1},
		"unknown benefit":   {Benefits: []string{"holiday"}},
	} {
		err := r.Validate()
		if !errors.Is(err, ErrSelectivityConfig) {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := r.Select(context.Background(), facts("C", 1), &memHistory{}); !errors.Is(err, ErrSelectivityConfig) {
			t.Errorf("%s: Select ran with invalid rules: %v", name, err)
		}
	}
}

func TestSelectivityRulesYAML(t *testing.T) {
	const doc = `
long_incapacity_days: 30
repeat_count: 3
repeat_window: 2160h
sample_rate: 0.02
sample_seed: "2026-Q1"
benefits: [sickness, work_accident]
`
	var r SelectivityRules
	d := yaml.NewDecoder(bytes.NewReader([]byte(doc)))
	d.KnownFields(true)
	if err := d.Decode(&r); err != nil {
		t.Fatal(err)
	}
	want := SelectivityRules{LongIncapacityDays: 30, RepeatCount: 3, RepeatWindow: 90 * 24 * time.Hour,
		SampleRate: 0.02, SampleSeed: "2026-Q1", Benefits: []string{"sickness", "work_accident"}}
	if r.LongIncapacityDays != want.LongIncapacityDays || r.RepeatCount != want.RepeatCount || r.RepeatWindow != want.RepeatWindow ||
		r.SampleRate != want.SampleRate || r.SampleSeed != want.SampleSeed || strings.Join(r.Benefits, ",") != "sickness,work_accident" {
		t.Fatalf("%+v", r)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestCertificateFactsOf(t *testing.T) {
	c := certificate.GenCertificate(certificate.GenOptions{Seed: 4, Benefit: certificate.BenefitSickness, IncapacityDays: 40})
	h, err := nir.NewHasher([]byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	f := CertificateFactsOf(c, h)
	if f.ID != c.ID || f.IncapacityDays != 40 || f.Benefit != "sickness" || !f.Issued.Equal(c.Issued) {
		t.Fatalf("%+v", f)
	}
	if f.PatientKey != h.Sum(c.Patient.NIR) || strings.Contains(f.PatientKey, c.Patient.NIR[:13]) {
		t.Fatal("patient key is not the keyed hash")
	}
	sel, err := SelectivityRules{LongIncapacityDays: 30}.Select(context.Background(), f, nil)
	if err != nil || !sel.Has(ReasonLongIncapacity) {
		t.Fatalf("%+v %v", sel, err)
	}
	inv := certificate.GenCertificate(certificate.GenOptions{Seed: 4, Benefit: certificate.BenefitInvalidity})
	if CertificateFactsOf(inv, h).IncapacityDays != 0 {
		t.Fatal("invalidity has no incapacity")
	}
}

const pinnedDraw = "0.7782354168128762"
