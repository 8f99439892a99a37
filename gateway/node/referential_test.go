package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/octgw/oct/referentials"
)

// TestReferentialChangesReachVendors imports a referential version and
// finds its AMC diff both in the API feed and in the tenant's SFTP
// referentials/ folder.
func TestReferentialChangesReachVendors(t *testing.T) {
	n := startNode(t, nil)
	tok := n.tenant(t, "acme")
	res, err := n.Referentials.Import(context.Background(), referentials.DemoFeed(), referentials.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	code, b, _ := n.do(t, "GET", "/v1/referentials/amc/changes?since=0", tok, nil)
	var d referentials.Diff
	if code != http.StatusOK || json.Unmarshal(b, &d) != nil {
		t.Fatalf("%d %s", code, b)
	}
	if d.To != res.Version.ID || len(d.Changes) == 0 || d.Count(referentials.TableAMO, referentials.Added) != 0 {
		t.Fatalf("diff to %d with %d changes (AMO entries must not be pushed)", d.To, len(d.Changes))
	}
	name := filepath.Join(n.Config.DataDir, "tenants", "acme", "referentials", referentials.DiffFileName(d))
	if _, err := os.Stat(name); err != nil {
		t.Fatalf("diff not in the tenant's referentials/ folder: %v", err)
	}
	if code, _, _ = n.do(t, "GET", "/v1/referentials/amc/changes?since=99", tok, nil); code != http.StatusNotFound {
		t.Fatalf("unknown version: %d", code)
	}
}
