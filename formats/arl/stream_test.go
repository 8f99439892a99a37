package arl

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
)

func TestStreamingReaders(t *testing.T) {
	files, _ := filepath.Glob("testdata/golden/*.arl")
	if len(files) < 10 {
		t.Fatal("golden files missing")
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := DefaultRegistry().Decode(bytes.NewReader(data), Options{})
		wj, _ := json.Marshal(want)
		for _, r := range []io.Reader{iotest.OneByteReader(bytes.NewReader(data)), iotest.HalfReader(bytes.NewReader(data)), iotest.DataErrReader(bytes.NewReader(data))} {
			got, err := DefaultRegistry().Decode(r, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if gj, _ := json.Marshal(got); !bytes.Equal(gj, wj) {
				t.Errorf("%s: differs with small reads:\n%s", name, gj)
			}
		}
	}
	boom := errors.New("disk on fire")
	if _, err := DefaultRegistry().Decode(iotest.ErrReader(boom), Options{}); !errors.Is(err, boom) {
		t.Fatalf("error: %v", err)
	}
	data, _ := os.ReadFile(files[0])
	if _, err := (OCTv1{}).Decode(iotest.TimeoutReader(bytes.NewReader(data)), Options{}); !errors.Is(err, iotest.ErrTimeout) {
		t.Fatalf("timeout: %v", err)
	}
}
