package noemie

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
)

// TestStreamingReaders: the same findings and data whatever the sizes of
// the reads from the source, and an I/O error comes back as an error.
func TestStreamingReaders(t *testing.T) {
	files, _ := filepath.Glob("testdata/golden/*.noe")
	if len(files) < 10 {
		t.Fatal("golden files missing")
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := Read(bytes.NewReader(data), Options{})
		for _, r := range []interface{ Read([]byte) (int, error) }{
			iotest.OneByteReader(bytes.NewReader(data)), iotest.HalfReader(bytes.NewReader(data)), iotest.DataErrReader(bytes.NewReader(data)),
		} {
			got, err := Read(r, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(summary(got), summary(want)) {
				t.Errorf("%s: differs with small reads:\n%s", name, summary(got))
			}
		}
	}
	boom := errors.New("disk on fire")
	data, _ := os.ReadFile(files[0])
	if _, err := Read(iotest.TimeoutReader(bytes.NewReader(data)), Options{}); !errors.Is(err, iotest.ErrTimeout) {
		t.Fatalf("timeout: %v", err)
	}
	if _, err := Read(iotest.ErrReader(boom), Options{}); !errors.Is(err, boom) {
		t.Fatalf("error: %v", err)
	}
}
