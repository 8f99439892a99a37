package sftp

import (
	"bytes"
	"crypto/rand"
	"os"
	"testing"

	"github.com/pkg/sftp"
)

// A large upload written with many concurrent, out-of-order writes (as
// fast clients do) is taken in byte for byte: the write-out hints given
// along the way (writebackEvery) change nothing to what is read at close.
func TestLargeConcurrentUploadTakenInWhole(t *testing.T) {
	e := startEnv(t, nil)
	sc, _, err := e.dial(e.keys["acme"])
	if err != nil {
		t.Fatal(err)
	}
	c, err := sftp.NewClient(sc, sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); sc.Close() })
	data := make([]byte, 3*writebackEvery+777)
	rand.Read(data)
	f, err := c.OpenFile("/inbox/BIG.b2", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	calls := e.intake.Calls()
	if len(calls) != 1 || !bytes.Equal(calls[0].data, data) {
		t.Fatalf("intake got %d calls, data equal: %v", len(calls), len(calls) == 1 && bytes.Equal(calls[0].data, data))
	}
	if n := e.folderNames("acme", "inbox"); len(n) != 0 {
		t.Fatalf("inbox still holds %v", n)
	}
}
