package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/octgw/oct/formats/check"
)

// TestGenFlowsValidate: what `oct gen` writes for the flows beside B2 is
// what `oct validate` takes, and an injected fault is reported with its code.
func TestGenFlowsValidate(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args  []string
		valid bool
		code  string
	}{
		{[]string{"certificate", "--seed", "4"}, true, ""},
		{[]string{"certificate", "--seed", "4", "--fhir"}, true, ""},
		{[]string{"certificate", "--fault", "date-order"}, false, "date-order"},
		{[]string{"pec", "--seed", "2"}, true, ""},
		{[]string{"pec", "--fault", "totals"}, false, "totals"},
		{[]string{"scor", "--lots", "3"}, true, ""},
		{[]string{"scor", "--fault", "low-resolution"}, false, "low-resolution"},
	}
	for i, c := range cases {
		out := filepath.Join(dir, []string{"a.json", "b.json", "c.json", "d.json", "e.json", "f.pdf", "g.pdf"}[i])
		cmd := genCmd()
		cmd.SetArgs(append(c.args, "-o", out))
		cmd.SetOut(&bytes.Buffer{})
		if err := cmd.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("gen %v: %v", c.args, err)
		}
		var stdout, stderr bytes.Buffer
		code := check.Run(context.Background(), []string{out}, check.RunOptions{JSON: true}, &stdout, &stderr)
		if (code == check.ExitValid) != c.valid || (c.code != "" && !bytes.Contains(stdout.Bytes(), []byte(`"code":"`+c.code+`"`))) {
			t.Errorf("gen %v → validate exit %d: %s %s", c.args, code, stdout.String(), stderr.String())
		}
	}
}
