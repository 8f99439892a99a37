package mailbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/gateway"
)

func TestCheckName(t *testing.T) {
	good := []string{"FSE001.b2", "lot 7 (copie).b2", "été.b2", strings.Repeat("a", MaxNameLen)}
	bad := []string{"", ".", "..", ".hidden", "a/b", `a\b`, "a\x00b", "a\nb", "a\x7fb", "a\u0085b", strings.Repeat("a", MaxNameLen+1), "\xff"}
	for _, n := range good {
		if err := CheckName(n); err != nil {
			t.Errorf("%q refused: %v", n, err)
		}
	}
	for _, n := range bad {
		if err := CheckName(n); !errors.Is(err, ErrBadName) {
			t.Errorf("%q accepted", n)
		}
	}
	for _, id := range []string{"../x", "a b", "é", ""} {
		if err := CheckTenant(id); !errors.Is(err, ErrBadTenant) {
			t.Errorf("tenant %q accepted", id)
		}
	}
}

func TestDeliverAckRefusal(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f, err := New(dir, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := f.Deliver(ctx, "acme", Returns, "ARL.txt", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := f.Deliver(ctx, "acme", Returns, "ARL.txt", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "acme", Returns, "ARL.txt")); string(b) != "v2" {
		t.Fatalf("delivered = %q", b)
	}
	for _, tc := range []struct{ tenant, folder, name string }{
		{"acme", Inbox, "x"}, {"acme", "../x", "x"}, {"acme", Returns, "../x"}, {"../acme", Returns, "x"},
	} {
		if err := f.Deliver(ctx, tc.tenant, tc.folder, tc.name, []byte("x")); err == nil {
			t.Errorf("deliver %+v accepted", tc)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := f.Deliver(cctx, "acme", Referentials, "d.json", []byte("x")); err == nil {
		t.Error("deliver with a cancelled context")
	}
	r, err := f.Open("acme")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ack := gateway.Ack{ID: "F1", Status: gateway.StatusRejected, SHA256: "ab", Size: 3, Errors: []fixed.Error{{Code: "bad-date", Record: 4, Field: "date", Message: "no such day"}}, Dropped: 2}
	name, err := WriteAck(ctx, r, "x.b2", ack)
	if err != nil || name != "x.b2.ack.json" {
		t.Fatalf("ack = %q, %v", name, err)
	}
	if name, _ = WriteAck(ctx, r, "x.b2", gateway.Ack{ID: "F2"}); name != "x.b2.F2.ack.json" {
		t.Fatalf("second ack = %q", name)
	}
	txt, _ := os.ReadFile(filepath.Join(dir, "acme", Outbox, "x.b2.ack.txt"))
	for _, want := range []string{"rejected", "bad-date at record 4, field date: no such day", "and 2 more", "Errors (3)"} {
		if !strings.Contains(string(txt), want) {
			t.Errorf("ack text lacks %q:\n%s", want, txt)
		}
	}
	if err := f.WriteRefusal(ctx, r, "big.b2", "too-large", "too big", nil); err != nil {
		t.Fatal(err)
	}
	js, _ := os.ReadFile(filepath.Join(dir, "acme", Errors, "big.b2.error.json"))
	if !strings.Contains(string(js), `"refused_at": "2026-01-02T03:04:05Z"`) || !strings.Contains(string(js), `"kept": false`) {
		t.Fatalf("refusal = %s", js)
	}
	// No temporary file is left behind.
	for _, folder := range Names() {
		ents, _ := os.ReadDir(filepath.Join(dir, "acme", folder))
		for _, e := range ents {
			if IsTemp(e.Name()) {
				t.Errorf("temporary file left: %s/%s", folder, e.Name())
			}
		}
	}
	if n, err := Usage(ctx, r); err != nil || n == 0 {
		t.Fatalf("usage = %d, %v", n, err)
	}
}

// TestWriteAtomicAll: every file appears whole under its name, no
// temporary file stays; a bad name refuses the whole set before writing.
func TestWriteAtomicAll(t *testing.T) {
	f, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.Open("acme")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if err := WriteAtomicAll(ctx, r, Outbox, []File{{"a.txt", strings.NewReader("one")}, {"a.json", strings.NewReader("{}")}}); err != nil {
		t.Fatal(err)
	}
	err = WriteAtomicAll(ctx, r, Outbox, []File{{"b.txt", strings.NewReader("x")}, {"../evil", strings.NewReader("y")}})
	if err == nil {
		t.Fatal("a bad name was accepted")
	}
	ents, err := os.ReadDir(filepath.Join(f.dir, "acme", Outbox))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "a.json,a.txt" {
		t.Fatalf("outbox holds %v", names)
	}
	b, _ := os.ReadFile(filepath.Join(f.dir, "acme", Outbox, "a.txt"))
	if string(b) != "one" {
		t.Fatalf("a.txt = %q", b)
	}
}
