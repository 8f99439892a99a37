package b2

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestWriteFuzzCorpus writes fuzzSeeds as the committed seed corpus of
// FuzzReader and FuzzValidate (testdata/fuzz). Run with
// OCT_WRITE_CORPUS=1 after changing the generator.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("OCT_WRITE_CORPUS") == "" {
		t.Skip("set OCT_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	for _, target := range []string{"FuzzReader", "FuzzValidate"} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range fuzzSeeds() {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
			name := fmt.Sprintf("seed-%x", sha256.Sum256(s))[:21]
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
