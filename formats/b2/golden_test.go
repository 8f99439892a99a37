package b2

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the golden file (go test -run Golden -update after checking the change)", name)
	}
}

// The generator is deterministic and its output is pinned; the lot
// operations on it are pinned too.
func TestGoldenFiles(t *testing.T) {
	data := genFile(t, GenOptions{Seed: 1, Lots: 2, Invoices: 3, Framing: FramingCRLF})
	golden(t, "valid-cp-crlf.b2", data)
	golden(t, "valid-ps-none.b2", genFile(t, GenOptions{Seed: 2, Lots: 1, Invoices: 2, Variant: "PS"}))
	lot1, err := ExtractLot(data, 1)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "extract-lot1.b2", lot1)
	rep, _ := Validate(bytes.NewReader(data), Options{Summaries: true})
	re, err := RebuildLot(data, 0, []string{rep.Lots[0].Invoices[1].Number}, 7)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "rebuild-lot0-drop1-as7.b2", re)
}

// The report of every injectable fault (codes, records, fields, messages)
// is pinned: messages are part of what vendors see.
func TestGoldenReports(t *testing.T) {
	var all bytes.Buffer
	for _, c := range GenFaults() {
		data := genFile(t, GenOptions{Seed: 3, Lots: 2, Invoices: 3, Fault: c, Framing: FramingLF})
		rep, err := Validate(bytes.NewReader(data), Options{})
		if err != nil {
			t.Fatal(err)
		}
		line, _ := json.Marshal(struct {
			Fault  string `json:"fault"`
			Report any    `json:"errors"`
		}{string(c), rep.Errors})
		all.Write(line)
		all.WriteByte('\n')
	}
	golden(t, "fault-reports.jsonl", all.Bytes())
}
