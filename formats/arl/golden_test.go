package arl

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

func goldenInputs(t *testing.T) map[string][]byte {
	in := map[string][]byte{}
	var buf bytes.Buffer
	if err := Write(&buf, sampleARLs()...); err != nil {
		t.Fatal(err)
	}
	in["sample"] = buf.Bytes()
	gen := func(name string, opt GenOptions) {
		var buf bytes.Buffer
		if err := Generate(&buf, opt); err != nil {
			t.Fatal(err)
		}
		in[name] = buf.Bytes()
	}
	gen("gen-stream", GenOptions{Seed: 1, Lots: 4, NegativeRate: 0.5})
	for _, code := range Faults {
		gen("fault-"+string(code), GenOptions{Seed: 2, Lots: 2, NegativeRate: 0.5, Fault: code, LineBreaks: true})
	}
	return in
}

func TestGolden(t *testing.T) {
	for name, made := range goldenInputs(t) {
		path := filepath.Join("testdata", "golden", name+".arl")
		if *update {
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, made, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if !bytes.Equal(data, made) {
			t.Errorf("%s: the writer no longer makes these bytes", path)
		}
		f, err := DefaultRegistry().Decode(bytes.NewReader(data), Options{})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := json.MarshalIndent(f, "", "  ")
		got = append(got, '\n')
		jpath := filepath.Join("testdata", "golden", name+".json")
		if *update {
			os.WriteFile(jpath, got, 0o644)
		}
		want, err := os.ReadFile(jpath)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: decoding changed:\n%s", jpath, got)
		}
	}
}
