package check

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/octgw/oct/formats/b2"
)

// TestWriteFuzzCorpus writes the committed seeds of FuzzFile
// (testdata/fuzz/FuzzFile). Run with OCT_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("OCT_WRITE_CORPUS") == "" {
		t.Skip("set OCT_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzFile")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seeds := [][]byte{[]byte("000"), header("580"), header("OCTA"), header("CP")}
	for _, fr := range []b2.Framing{b2.FramingNone, b2.FramingLF, b2.FramingCRLF} {
		var b bytes.Buffer
		_ = b2.Generate(&b, b2.GenOptions{Seed: 1, Invoices: 2, Framing: fr})
		seeds = append(seeds, b.Bytes())
	}
	for _, s := range seeds {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
		name := fmt.Sprintf("seed-%x", sha256.Sum256(s))[:21]
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
