package sftp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/intake/mailbox"
	"github.com/octgw/oct/gateway/store/blobdir"
	"github.com/octgw/oct/gateway/store/sqlite"
	"github.com/octgw/oct/internal/testenv"
)

// followRecorder is the real gateway, noting whether each take-in used
// what was followed during the upload.
type followRecorder struct {
	*gateway.Gateway
	mu       sync.Mutex
	followed []bool
}

func (r *followRecorder) IntakeFollowed(ctx context.Context, tenant string, src gateway.Source, f *os.File, fl *gateway.Follower) (gateway.Ack, error) {
	ack, err := r.Gateway.IntakeFollowed(ctx, tenant, src, f, fl)
	r.mu.Lock()
	r.followed = append(r.followed, fl.Followed())
	r.mu.Unlock()
	return ack, err
}

func (r *followRecorder) Intake(ctx context.Context, tenant string, src gateway.Source, rd io.Reader) (gateway.Ack, error) {
	ack, err := r.Gateway.Intake(ctx, tenant, src, rd)
	r.mu.Lock()
	r.followed = append(r.followed, false)
	r.mu.Unlock()
	return ack, err
}

func (r *followRecorder) last(t *testing.T) bool {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.followed) == 0 {
		t.Fatal("no take-in")
	}
	return r.followed[len(r.followed)-1]
}

func newGatewayIntaker(t *testing.T) *followRecorder {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "oct.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	blobs, err := blobdir.Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Options{Store: st, Blobs: blobs, NIRKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := gateway.AddTenant(ctx, st, "acme", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	return &followRecorder{Gateway: g}
}

// TestUploadFollowedByTheGateway: the gateway hashes and validates an
// upload as its bytes arrive, whatever order the client writes them in,
// and takes it in at close without reading it again; when it cannot vouch
// for the bytes (written twice, a gap wider than maxPending), the take-in
// reads the file, with the same acknowledgement. Both with direct writes
// (the default: whole 1 MiB blocks with O_DIRECT, the rest through the
// page cache) and without (the default: Config.DirectWrites false).
func TestUploadFollowedByTheGateway(t *testing.T) {
	for _, direct := range []bool{false, true} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) { testUploadFollowed(t, direct) })
	}
}

func testUploadFollowed(t *testing.T, direct bool) {
	rec := newGatewayIntaker(t)
	e := startEnv(t, func(c *Config) {
		c.Intaker = rec
		c.Limits = func(string) Limits { return Limits{MaxFileSize: 64 << 20, DiskQuota: 1 << 30} }
		c.DirectWrites = direct
	})
	c := e.client("acme")
	data := b2OfSize(t, 6<<20)
	const chunk = 32 << 10
	chunks := (len(data) + chunk - 1) / chunk

	order := func(name string) []int {
		o := make([]int, chunks)
		for i := range o {
			o[i] = i
		}
		switch name {
		case "swapped-pairs-and-a-reversed-run":
			for i := 0; i+1 < chunks; i += 2 {
				o[i], o[i+1] = o[i+1], o[i]
			}
			for i, j := 10, 40; i < j; i, j = i+1, j-1 {
				o[i], o[j] = o[j], o[i]
			}
		case "chunk-rewritten":
			o = append([]int{0, 1, 0}, o[2:]...)
		case "gap-wider-than-held":
			// The last 5 MiB first: more than maxPending waits for the
			// start.
			tail := chunks - (5<<20)/chunk
			o = append(append([]int(nil), o[tail:]...), o[:tail]...)
		}
		return o
	}
	for i, tc := range []struct {
		name     string
		followed bool
	}{
		{"in-order", true},
		{"swapped-pairs-and-a-reversed-run", true},
		{"chunk-rewritten", false},
		{"gap-wider-than-held", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A distinct file each time (not an idempotent replay).
			d := append([]byte(nil), data...)
			setFileNumber(d, i+1)
			name := mailbox.Inbox + "/" + tc.name + ".b2"
			if tc.name == "in-order" {
				if err := put(t, c, name, d); err != nil {
					t.Fatal(err)
				}
			} else {
				writeChunks(t, c, name, d, chunk, order(tc.name))
			}
			if got := rec.last(t); got != tc.followed {
				t.Fatalf("taken in without reading again: %v, want %v", got, tc.followed)
			}
			ack := outboxAck(t, e, "acme", tc.name+".b2")
			sum := sha256.Sum256(d)
			if ack.Status != gateway.StatusAccepted || ack.SHA256 != hex.EncodeToString(sum[:]) || ack.Size != int64(len(d)) {
				t.Fatalf("acknowledgement %+v", ack)
			}
			rc, err := rec.Blobs().Open(context.Background(), ack.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			var stored bytes.Buffer
			_, _ = stored.ReadFrom(rc)
			rc.Close()
			if !bytes.Equal(stored.Bytes(), d) {
				t.Fatal("the stored blob differs from the upload")
			}
		})
	}
	// Every case wrote whole blocks directly before anything stopped the
	// following, with direct writes (unless the filesystem refuses O_DIRECT).
	if n := e.srv.directBlocks.Load(); !direct && n != 0 {
		t.Fatalf("%d blocks written directly without DirectWrites", n)
	} else if direct && n == 0 && !e.srv.noDirect.Load() {
		t.Fatal("no block written directly")
	}
}

// TestOverlappingWritesKeepTheirOrder: a write over bytes held out of
// order wins over them, as it does on disk when every write goes through
// the page cache; with direct writes too (the held bytes are not in the
// file yet). The following stops: the take-in reads the file.
func TestOverlappingWritesKeepTheirOrder(t *testing.T) {
	for _, direct := range []bool{false, true} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			rec := newGatewayIntaker(t)
			e := startEnv(t, func(c *Config) { c.Intaker, c.DirectWrites = rec, direct })
			c := e.client("acme")
			data := b2OfSize(t, 3<<20)
			const k = 32 << 10
			f, err := c.OpenFile(mailbox.Inbox+"/OVER.b2", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
			if err != nil {
				t.Fatal(err)
			}
			stale := bytes.Repeat([]byte("X"), k)
			for _, w := range []struct {
				at  int
				buf []byte
			}{
				{0, data[:2*k]},
				{5 * k / 2, stale},       // held: the gap before it is open
				{2 * k, data[2*k : 4*k]}, // in order, over the held bytes: wins
				{4 * k, data[4*k:]},
			} {
				if _, err := f.WriteAt(w.buf, int64(w.at)); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if rec.last(t) {
				t.Fatal("taken in as followed, over bytes written twice")
			}
			ack := outboxAck(t, e, "acme", "OVER.b2")
			sum := sha256.Sum256(data)
			if ack.SHA256 != hex.EncodeToString(sum[:]) || ack.Status != gateway.StatusAccepted {
				t.Fatalf("acknowledgement %+v: the file is not what the client wrote last", ack)
			}
		})
	}
}

// TestDirectWritesRefused: where the filesystem refuses O_DIRECT (EINVAL),
// the upload goes on through the page cache, still followed, and the
// next uploads do not try again; another failure of a direct write fails
// the upload, which is not taken in.
func TestDirectWritesRefused(t *testing.T) {
	data := b2OfSize(t, 3<<20)
	einval := &os.PathError{Op: "open", Path: "/proc/self/fd/N", Err: syscall.EINVAL}
	for _, at := range []string{"open", "write"} {
		t.Run("einval-at-"+at, func(t *testing.T) {
			testDirectRefused(t, data, func(*os.File) (directFile, error) {
				if at == "open" {
					return nil, einval
				}
				return refusingFile{einval}, nil
			})
		})
	}
	for name, open := range map[string]func(*os.File) (directFile, error){
		// A descriptor that cannot write: the first block fails (EBADF).
		"write-error": func(f *os.File) (directFile, error) { return os.Open(f.Name()) },
		// EINVAL after a block went through: not a refusal of O_DIRECT,
		// the block is lost.
		"einval-at-a-later-block": func(f *os.File) (directFile, error) {
			d, err := reopenDirect(f)
			if err != nil {
				return nil, err
			}
			return laterRefusal{d, einval}, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			d := data
			if name == "einval-at-a-later-block" {
				needDirectIO(t)
				// Three blocks filled: the second's refusal is seen while
				// the third is staged, not at close.
				d = b2OfSize(t, 4<<20)
			}
			testDirectFails(t, d, open)
		})
	}
}

// needDirectIO skips t unless the temporary directories (where the tests'
// tenant folders are) take O_DIRECT.
func needDirectIO(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "probe"), os.O_CREATE|os.O_WRONLY|syscall.O_DIRECT, 0o600)
	if err != nil {
		t.Skipf("no O_DIRECT in the temporary directory: %v", err)
	}
	f.Close()
}

// laterRefusal writes the first block and refuses the others with err.
type laterRefusal struct {
	directFile
	err error
}

func (f laterRefusal) WriteAt(p []byte, off int64) (int, error) {
	if off > 0 {
		return 0, f.err
	}
	return f.directFile.WriteAt(p, off)
}

// testDirectFails uploads a file with open as Server.openDirect, whose
// writes fail: the client is told, nothing is taken in or left behind, and
// O_DIRECT is not taken as refused.
func testDirectFails(t *testing.T, data []byte, open func(*os.File) (directFile, error)) {
	rec := newGatewayIntaker(t)
	e := startEnv(t, func(c *Config) { c.Intaker, c.DirectWrites = rec, true })
	e.srv.openDirect = open
	c := e.client("acme")
	if err := put(t, c, mailbox.Inbox+"/C.b2", data); err == nil {
		t.Fatal("upload succeeded though its writes failed")
	}
	e.logs.waitLog(t, "sftp upload write failed")
	rec.mu.Lock()
	n := len(rec.followed)
	rec.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d files taken in", n)
	}
	if names := e.folderNames("acme", mailbox.Inbox); len(names) != 0 {
		t.Fatalf("inbox holds %v", names)
	}
	if e.srv.noDirect.Load() {
		t.Fatal("a write error is not a refusal of O_DIRECT")
	}
}

// refusingFile refuses every write with err.
type refusingFile struct{ err error }

func (f refusingFile) WriteAt([]byte, int64) (int, error) { return 0, f.err }
func (refusingFile) Close() error                         { return nil }

// testDirectRefused uploads two files with open as Server.openDirect, which
// refuses O_DIRECT: both are followed and taken in whole, and only the
// first upload tries direct writes.
func testDirectRefused(t *testing.T, data []byte, open func(*os.File) (directFile, error)) {
	rec := newGatewayIntaker(t)
	e := startEnv(t, func(c *Config) { c.Intaker, c.DirectWrites = rec, true })
	tries := 0
	e.srv.openDirect = func(f *os.File) (directFile, error) {
		tries++
		return open(f)
	}
	c := e.client("acme")
	for i, name := range []string{"A.b2", "B.b2"} {
		d := append([]byte(nil), data...)
		setFileNumber(d, i+1)
		if err := put(t, c, mailbox.Inbox+"/"+name, d); err != nil {
			t.Fatal(err)
		}
		if !rec.last(t) {
			t.Fatalf("%s not followed", name)
		}
		ack := outboxAck(t, e, "acme", name)
		sum := sha256.Sum256(d)
		if ack.Status != gateway.StatusAccepted || ack.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("%s: acknowledgement %+v", name, ack)
		}
	}
	if tries != 1 || !e.srv.noDirect.Load() || e.srv.directBlocks.Load() != 0 {
		t.Fatalf("direct opens tried %d times (want 1), noDirect %v, %d blocks", tries, e.srv.noDirect.Load(), e.srv.directBlocks.Load())
	}
}

// writeChunks uploads data with one WriteAt per chunk, in the given order.
func writeChunks(t *testing.T, c *sftp.Client, name string, data []byte, chunk int, order []int) {
	t.Helper()
	f, err := c.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range order {
		off := i * chunk
		if _, err := f.WriteAt(data[off:min(off+chunk, len(data))], int64(off)); err != nil {
			f.Close()
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// outboxAck reads the JSON acknowledgement of an uploaded file.
func outboxAck(t *testing.T, e *env, tenant, name string) gateway.Ack {
	t.Helper()
	for _, n := range e.folderNames(tenant, mailbox.Outbox) {
		if strings.HasPrefix(n, name) && strings.HasSuffix(n, mailbox.AckJSONSuffix) {
			s, _ := e.tenantFile(tenant, mailbox.Outbox+"/"+n)
			var ack gateway.Ack
			if err := json.Unmarshal([]byte(s), &ack); err != nil {
				t.Fatal(err)
			}
			return ack
		}
	}
	t.Fatalf("no acknowledgement of %s in outbox/: %v", name, e.folderNames(tenant, mailbox.Outbox))
	return gateway.Ack{}
}

// TestFollowedUploadCut: a connection lost in the middle of a followed
// upload takes nothing in, and the validation started for it ends.
func TestFollowedUploadCut(t *testing.T) {
	rec := newGatewayIntaker(t)
	e := startEnv(t, func(c *Config) { c.Intaker = rec })
	data := b2OfSize(t, 1<<20)
	before := runtime.NumGoroutine()
	e.cutUpload(t, "/inbox/CUT.b2", data[:len(data)/2])
	rec.mu.Lock()
	n := len(rec.followed)
	rec.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d files taken in", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := testenv.Poll(ctx, 5*time.Millisecond, func() (bool, error) {
		return runtime.NumGoroutine() <= before, nil
	}); err != nil {
		t.Fatalf("%d goroutines left, %d before the upload", runtime.NumGoroutine(), before)
	}
}

// TestFollowAndUploadLimits: at most MaxFollowed uploads are followed at
// once (the others are taken in at close, by reading them), every slot
// comes back, and a tenant holds at most MaxUploads files open for writing.
func TestFollowAndUploadLimits(t *testing.T) {
	rec := newGatewayIntaker(t)
	e := startEnv(t, func(c *Config) {
		c.Intaker = rec
		c.MaxFollowed = 1
		c.Limits = func(string) Limits { return Limits{MaxUploads: 2, FilesPerMinute: 100} }
	})
	c := e.client("acme")
	data := b2OfSize(t, 64<<10)
	open := func(name string) *sftp.File {
		t.Helper()
		f, err := c.OpenFile("/inbox/"+name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		return f
	}
	a, b := open("A.b2"), open("B.b2")
	if _, err := c.OpenFile("/inbox/C.b2", os.O_WRONLY|os.O_CREATE|os.O_TRUNC); err == nil {
		t.Fatal("a third open upload was allowed with max_uploads 2")
	}
	for i, f := range []*sftp.File{a, b} {
		d := append([]byte(nil), data...)
		copy(d[54:55], []byte{byte('1' + i)})
		copy(d[len(d)-128+54:len(d)-128+55], []byte{byte('1' + i)})
		if _, err := f.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if !rec.last(t) {
		t.Fatal("the first upload was not followed")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if rec.last(t) {
		t.Fatal("a second upload was followed beyond MaxFollowed 1")
	}
	e.srv.mu.Lock()
	n := e.srv.followed
	e.srv.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d follow slots still taken after every close", n)
	}
	// Slots and names are back: a new upload is followed again.
	d := append([]byte(nil), data...)
	copy(d[54:55], "9")
	copy(d[len(d)-128+54:len(d)-128+55], "9")
	if err := put(t, c, "/inbox/C.b2", d); err != nil {
		t.Fatal(err)
	}
	if !rec.last(t) {
		t.Fatal("the upload after the others was not followed")
	}
}

// TestTempNameUploadFollowed: an upload under a temporary name is followed
// and parked at close; its rename takes it in from what was followed. A
// rewrite of the temporary file, its removal or the end of its session
// drop what was parked (and its follow slot). What was parked is the
// tenant's: a rename from another session of the tenant uses it too (any
// rewrite, from any session, drops it first).
func TestTempNameUploadFollowed(t *testing.T) {
	rec := newGatewayIntaker(t)
	e := startEnv(t, func(c *Config) {
		c.Intaker = rec
		c.Limits = func(string) Limits { return Limits{FilesPerMinute: 100} }
	})
	c := e.client("acme")
	base := b2OfSize(t, 200<<10)
	variant := func(k byte) []byte {
		d := append([]byte(nil), base...)
		setFileNumber(d, int(k-'0'))
		return d
	}
	slots := func() int {
		e.srv.mu.Lock()
		defer e.srv.mu.Unlock()
		return e.srv.followed
	}
	checkAck := func(name string, d []byte) {
		t.Helper()
		ack := outboxAck(t, e, "acme", name)
		sum := sha256.Sum256(d)
		if ack.Status != gateway.StatusAccepted || ack.SHA256 != hex.EncodeToString(sum[:]) || ack.Name != name {
			t.Fatalf("%s: acknowledgement %+v", name, ack)
		}
	}

	// Upload, close, rename: followed.
	a := variant('1')
	if err := put(t, c, "/inbox/A.b2.filepart", a); err != nil {
		t.Fatal(err)
	}
	if n := slots(); n != 1 {
		t.Fatalf("%d follow slots after a temporary upload, want 1 (parked)", n)
	}
	if err := c.Rename("/inbox/A.b2.filepart", "/inbox/A.b2"); err != nil {
		t.Fatal(err)
	}
	if !rec.last(t) {
		t.Fatal("the renamed upload was not taken in from what was followed")
	}
	checkAck("A.b2", a)

	// Rewritten under the same temporary name: the second bytes count.
	if err := put(t, c, "/inbox/B.b2.part", variant('2')); err != nil {
		t.Fatal(err)
	}
	b := variant('3')
	if err := put(t, c, "/inbox/B.b2.part", b); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("/inbox/B.b2.part", "/inbox/B.b2"); err != nil {
		t.Fatal(err)
	}
	if !rec.last(t) {
		t.Fatal("the rewritten upload was not followed")
	}
	checkAck("B.b2", b)

	// Removed: nothing parked is left.
	if err := put(t, c, "/inbox/C.b2.tmp", variant('4')); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove("/inbox/C.b2.tmp"); err != nil {
		t.Fatal(err)
	}
	if n := slots(); n != 0 {
		t.Fatalf("%d follow slots after the removal", n)
	}

	// Renamed from another session of the tenant: taken in from what was
	// followed as well.
	d := variant('5')
	if err := put(t, c, "/inbox/D.b2.upload", d); err != nil {
		t.Fatal(err)
	}
	if err := e.client("acme").Rename("/inbox/D.b2.upload", "/inbox/D.b2"); err != nil {
		t.Fatal(err)
	}
	if !rec.last(t) {
		t.Fatal("a rename from another session did not use what was followed")
	}
	checkAck("D.b2", d)

	// The session ends with a parked upload: its slot comes back.
	sc, _, err := e.dial(e.keys["acme"])
	if err != nil {
		t.Fatal(err)
	}
	c2, err := sftp.NewClient(sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := put(t, c2, "/inbox/E.b2.part", variant('6')); err != nil {
		t.Fatal(err)
	}
	c2.Close()
	sc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := testenv.Poll(ctx, 5*time.Millisecond, func() (bool, error) { return slots() == 0, nil }); err != nil {
		t.Fatalf("%d follow slots after the session that parked one ended", slots())
	}
}
