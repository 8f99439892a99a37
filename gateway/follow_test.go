package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/internal/testenv"
)

// uploadFile writes data to a file in dir as an upload would, giving the
// follower the first follow bytes in chunks of chunk bytes, and returns the
// file reopened for reading.
func uploadFile(t *testing.T, fl *Follower, data []byte, chunk, follow int) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "upload.b2")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for off := 0; off < follow; off += chunk {
		if _, err := fl.Write(data[off:min(off+chunk, follow)]); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func genB2(t *testing.T, seed int64, lots int, fault fixed.Code) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b2.Generate(&buf, b2.GenOptions{Seed: seed, Lots: lots, Invoices: 20, Fault: fault}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sameAck compares what an acknowledgement says of the bytes (not its id
// and time).
func sameAck(t *testing.T, got, want Ack) {
	t.Helper()
	got.ID, got.Received, want.ID, want.Received = "", "", "", ""
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Fatalf("followed intake acknowledged\n%s\nIntake acknowledged\n%s", g, w)
	}
}

func mustJSON(t *testing.T, a Ack) string {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestIntakeFollowedMatchesIntake(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		data   []byte
		chunk  int
		follow func(n int) int // bytes given to the follower
		wantOK bool            // the bytes were not read again
	}{
		{"valid", genB2(t, 1, 40, ""), 32 << 10, func(n int) int { return n }, true},
		{"rejected", genB2(t, 2, 40, b2.ErrInvoiceTotal), 32 << 10, func(n int) int { return n }, true},
		{"odd-chunks", genB2(t, 3, 10, b2.ErrNIRKey), 777, func(n int) int { return n }, true},
		{"one-write-under-sniff", genB2(t, 4, 1, "")[:300], 1 << 20, func(n int) int { return n }, true},
		{"missing-tail", genB2(t, 5, 10, ""), 32 << 10, func(n int) int { return n - 1000 }, false},
		{"not-b2", []byte(`{"schema":"oct-cert/1"}` + string(bytes.Repeat([]byte(" "), 600))), 100, func(n int) int { return n }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestGateway(t, &fakeSender{})
			ref := newTestGateway(t, &fakeSender{})
			want, wantErr := ref.Intake(ctx, "acme", Source{Channel: "sftp", Name: "f.b2"}, bytes.NewReader(tc.data))

			before := runtime.NumGoroutine()
			fl := g.Follow(Source{Channel: "sftp", Name: "f.b2"})
			f := uploadFile(t, fl, tc.data, tc.chunk, tc.follow(len(tc.data)))
			got, err := g.IntakeFollowed(ctx, "acme", Source{Channel: "sftp", Name: "f.b2"}, f, fl)
			if !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
				t.Fatalf("IntakeFollowed: %v, Intake: %v", err, wantErr)
			}
			if err != nil {
				return
			}
			sameAck(t, got, want)
			sum := sha256.Sum256(tc.data)
			if got.SHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("sha256 %s, want that of the bytes", got.SHA256)
			}
			if fl.Followed() != tc.wantOK {
				t.Fatalf("taken in without reading again: %v, want %v", fl.Followed(), tc.wantOK)
			}
			// The blob holds exactly the bytes.
			stored, err := g.readBlob(ctx, got.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(stored, tc.data) {
				t.Fatal("the stored blob differs from the upload")
			}
			waitGoroutines(t, before)
		})
	}
}

func TestFollowerAbortAndLimits(t *testing.T) {
	ctx := context.Background()
	g := newTestGateway(t, &fakeSender{})
	small := openTestGateway(t, Options{Limits: Limits{MaxFileBytes: 4096}})
	data := genB2(t, 7, 5, "")
	before := runtime.NumGoroutine()

	// Aborted mid-way (a lost connection): the goroutine ends at once, and
	// a later IntakeFollowed still takes the file in by reading it.
	fl := g.Follow(Source{Channel: "sftp", Name: "a.b2"})
	f := uploadFile(t, fl, data, 4096, len(data)/2)
	if fl.v == nil {
		t.Fatal("validation did not start after the first bytes")
	}
	fl.Abort()
	fl.Abort()
	waitGoroutines(t, before)
	ack, err := g.IntakeFollowed(ctx, "acme", Source{Channel: "sftp", Name: "a.b2"}, f, fl)
	if err != nil || ack.Status != StatusAccepted || ack.Size != int64(len(data)) || fl.Followed() {
		t.Fatalf("after abort: %v %+v (taken without reading: %v)", err, ack, fl.Followed())
	}

	// Above the size limit: refused like Intake refuses it.
	fl = small.Follow(Source{Channel: "sftp", Name: "big.b2"})
	f = uploadFile(t, fl, data, 1024, len(data))
	if !fl.off {
		t.Fatal("still following above the size limit")
	}
	if _, err := small.IntakeFollowed(ctx, "acme", Source{Channel: "sftp", Name: "big.b2"}, f, fl); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("above the limit: %v, want ErrTooLarge", err)
	}

	// Unknown tenant: refused, and the follower's goroutine ended.
	fl = g.Follow(Source{Channel: "sftp", Name: "b.b2"})
	f = uploadFile(t, fl, data, 4096, len(data))
	if _, err := g.IntakeFollowed(ctx, "nobody", Source{Channel: "sftp", Name: "b.b2"}, f, fl); !errors.Is(err, ErrUnknownTenant) {
		t.Fatalf("unknown tenant: %v", err)
	}
	waitGoroutines(t, before)
}

// waitGoroutines waits (bounded) until no more goroutines run than before.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := testenv.Poll(ctx, 5*time.Millisecond, func() (bool, error) {
		return runtime.NumGoroutine() <= before, nil
	}); err != nil {
		t.Fatalf("%d goroutines left running, %d before", runtime.NumGoroutine(), before)
	}
}
