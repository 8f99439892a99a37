package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/formats/envelope"
)

func b2File(t testing.TB, o b2.GenOptions) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := b2.Generate(&b, o); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func header(norm string) []byte {
	h, _ := envelope.Encode(envelope.Info{SenderType: "TE", Norm: norm, Version: "B2", FileID: "A1"})
	return h
}

func TestDetect(t *testing.T) {
	cases := map[string]string{
		string(header("CP")):           FormatB2,
		string(header("ES")):           FormatB2,
		string(header("PS1")):          FormatB2,
		"\r\n" + string(header("CP")):  FormatB2,
		string(header("580")):          FormatNOEMIE,
		string(header("576")):          FormatNOEMIE,
		string(header("OCTA")):         FormatARL,
		"0128" + string(header("580")): FormatNOEMIE, // 4-digit line-length prefix
		string(header("")):             FormatUnknown,
		"":                             FormatUnknown,
		"hello world":                  FormatUnknown,
		"000 too short":                FormatUnknown,
	}
	for in, want := range cases {
		if got := Detect([]byte(in)); got != want {
			t.Errorf("%.20q: %s, want %s", in, got, want)
		}
	}
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunExitCodesAndJSON(t *testing.T) {
	dir := t.TempDir()
	good := write(t, dir, "good.b2", b2File(t, b2.GenOptions{Seed: 1, Lots: 2, Invoices: 3, Framing: b2.FramingCRLF}))
	bad := write(t, dir, "bad.b2", b2File(t, b2.GenOptions{Seed: 1, Fault: b2.ErrNIRKey}))
	junk := write(t, dir, "junk.txt", []byte("hello\n"))
	missing := filepath.Join(dir, "missing.b2")
	ctx := context.Background()

	run := func(opt RunOptions, files ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Run(ctx, files, opt, &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, _ := run(RunOptions{}, good); code != ExitValid || !strings.Contains(out, "good.b2: b2: valid") {
		t.Fatalf("good: %d %q", code, out)
	}
	code, out, _ := run(RunOptions{}, good, bad)
	if code != ExitInvalid || !strings.Contains(out, bad+":3: nir-key nir_key: ") {
		t.Fatalf("bad: %d %q", code, out)
	}
	if code, _, _ := run(RunOptions{}, junk); code != ExitInvalid {
		t.Fatalf("junk: %d", code)
	}
	code, out, errs := run(RunOptions{JSON: true}, good, bad, missing)
	if code != ExitUnread || !strings.Contains(errs, "missing.b2") {
		t.Fatalf("missing: %d %q", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d JSON lines: %q", len(lines), out)
	}
	var objs []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, m)
	}
	for _, k := range []string{"file", "format", "valid", "errors", "stats"} {
		if _, ok := objs[0][k]; !ok {
			t.Fatalf("key %s missing in %s", k, lines[0])
		}
	}
	st := objs[0]["stats"].(map[string]any)
	if st["lots"].(float64) != 2 || st["invoices"].(float64) != 6 || objs[0]["valid"] != true {
		t.Fatalf("stats %v", objs[0])
	}
	e := objs[1]["errors"].([]any)[0].(map[string]any)
	for _, k := range []string{"code", "record", "field", "message"} {
		if _, ok := e[k]; !ok {
			t.Fatalf("error key %s missing: %v", k, e)
		}
	}
	if e["code"] != "nir-key" || e["record"].(float64) != 3 || objs[1]["valid"] != false {
		t.Fatalf("error %v", e)
	}
	if objs[2]["read_error"] == nil || objs[2]["valid"] != false {
		t.Fatalf("missing file object %v", objs[2])
	}
	if code, _, errs := run(RunOptions{Format: "xml"}, good); code != ExitUnread || errs == "" {
		t.Fatalf("bad format: %d", code)
	}
	// Forcing b2 on junk reports not-b2.
	code, out, _ = run(RunOptions{Format: FormatB2}, junk)
	if code != ExitInvalid || !strings.Contains(out, "not-b2") {
		t.Fatalf("forced b2: %d %q", code, out)
	}
}

func TestFileLimitsAndCancel(t *testing.T) {
	data := b2File(t, b2.GenOptions{Seed: 2, Lots: 3, Invoices: 10})
	res, err := File(context.Background(), bytes.NewReader(data), "x", FormatAuto, Limits{MaxBytes: 1000})
	if err != nil || res.Valid || res.Errors[len(res.Errors)-1].Code != b2.ErrFileTooLarge {
		t.Fatalf("%v %+v", err, res)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := File(ctx, bytes.NewReader(data), "x", FormatAuto, Limits{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
	if _, err := File(context.Background(), bytes.NewReader(data), "x", "nope", Limits{}); !errors.Is(err, ErrUnsupportedFormat) {
		t.Fatalf("unsupported: %v", err)
	}
}
