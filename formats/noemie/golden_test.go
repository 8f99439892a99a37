package noemie

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenInputs are the files of testdata/golden, each with the bytes our
// writer or generator makes for it: the test checks both that the writer
// still makes those bytes and that the reader still reads them the same way.
func goldenInputs(t *testing.T) map[string][]byte {
	in := map[string][]byte{}
	for name, form := range map[string]WriteOptions{"sample": {LineBreaks: true}, "sample-prefixed": {LengthPrefix: true, LineBreaks: true}, "sample-stream": {}} {
		var buf bytes.Buffer
		if err := Write(&buf, sampleHeader, sampleBatches(), form); err != nil {
			t.Fatal(err)
		}
		in[name] = buf.Bytes()
	}
	gen := func(name string, opt GenOptions) {
		var buf bytes.Buffer
		if err := Generate(&buf, opt); err != nil {
			t.Fatal(err)
		}
		in[name] = buf.Bytes()
	}
	gen("gen-zero-sums", GenOptions{Seed: 1, Lots: 2, Invoices: 5, RejectRate: 0.3, Form: WriteOptions{LineBreaks: true, ZeroSums: true}})
	for _, code := range Faults {
		gen("fault-"+string(code), GenOptions{Seed: 2, Lots: 1, Invoices: 3, RejectRate: 0.3, Fault: code, Form: WriteOptions{LineBreaks: true}})
	}
	return in
}

// summary is what the golden JSON records: findings, counts and the typed
// data that matters for reconciliation (never the NIR).
func summary(f *File) []byte {
	type inv struct {
		Number, Lot, LotDate, Payment, Return string
		AMO, AMC                              string
		Rejects                               []string `json:",omitempty"`
	}
	out := struct {
		Valid    bool
		Errors   any
		Stats    Stats
		Form     WriteOptions
		Invoices []inv
	}{Valid: f.Valid, Errors: f.Errors, Stats: f.Stats, Form: f.Form}
	part := func(p Part) string {
		if p == (Part{}) {
			return ""
		}
		return fmt.Sprintf("%c req %s paid %s %s", p.State, cents(p.Requested), cents(p.Paid), p.AMCNumber)
	}
	for _, i := range f.Invoices {
		x := inv{Number: i.Number, Lot: fmt.Sprint(i.LotNumber), LotDate: i.LotDate.String(),
			Payment: i.AccountingDate.String() + " " + i.PaymentRef, Return: i.ReturnType, AMO: part(i.AMO), AMC: part(i.AMC)}
		for _, r := range i.Rejects {
			x.Rejects = append(x.Rejects, fmt.Sprintf("%s %s line %d level %c part %c warning %v: %s", r.Entity, r.Code, r.Line, r.Level, r.Part, r.Warning, r.Label))
		}
		out.Invoices = append(out.Invoices, x)
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	return append(b, '\n')
}

func TestGolden(t *testing.T) {
	for name, made := range goldenInputs(t) {
		path := filepath.Join("testdata", "golden", name+".noe")
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
		f, err := Read(bytes.NewReader(data), Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := summary(f)
		jpath := filepath.Join("testdata", "golden", name+".json")
		if *update {
			os.WriteFile(jpath, got, 0o644)
		}
		want, err := os.ReadFile(jpath)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: reading changed:\n%s", jpath, got)
		}
	}
}
