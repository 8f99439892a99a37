package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/octgw/oct/gateway/config"
	"github.com/octgw/oct/internal/testenv"
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

// TestExplainRoutesEveryLotWithItsReason is `oct route --explain`: each
// lot's destination, the rule or default that chose it and the referential
// version; a lot for an unknown caisse is unroutable with its reason.
func TestExplainRoutesEveryLotWithItsReason(t *testing.T) {
	n := startNode(t, nil)
	if _, err := n.Referentials.Import(context.Background(), referentials.DemoFeed(), referentials.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	data := genFile(t, 11, "")
	ex, err := n.Explain("acme", data, time.Now())
	if err != nil || len(ex) != 2 {
		t.Fatalf("%v %+v", err, ex)
	}
	for _, e := range ex {
		if e.Decision == nil || len(e.Decision.Destinations) == 0 || e.Decision.Version == 0 || e.Decision.Reason.String() == "" {
			t.Fatalf("lot %d: %+v", e.Lot, e)
		}
	}
	// The same file addressed to a caisse the directory does not know.
	bad := append([]byte(nil), data...)
	for i := 0; i+128 <= len(bad); i += 128 {
		if bad[i] == '1' { // type 1 lot header: destination caisse at col 17
			copy(bad[i+16:i+19], "999")
		}
	}
	ex, err = n.Explain("acme", bad, time.Now())
	if err != nil || len(ex) != 2 || ex[0].Decision != nil || ex[0].Why == nil || ex[0].Why.Why == "" {
		t.Fatalf("unknown caisse: %v %+v", err, ex)
	}
}

// TestReferentialSyncFromDropDirectory: feeds dropped in the sync
// directory become a new version at start, the files move to done/.
func TestReferentialSyncFromDropDirectory(t *testing.T) {
	drop := t.TempDir()
	for _, f := range referentials.DemoFeed().Files {
		if err := os.WriteFile(filepath.Join(drop, f.Name), f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n := startNode(t, func(c *config.Config) { c.Refs.Sync.DropDir = drop })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var left []string
	if err := testenv.Poll(ctx, 10*time.Millisecond, func() (bool, error) {
		left, _ = filepath.Glob(filepath.Join(drop, "*.csv"))
		return n.Referentials.Current().Version.ID == 1 && len(left) == 0, nil // imported, then moved to done/
	}); err != nil {
		t.Fatalf("the dropped feed was not imported and moved (version %d, left %v): %v", n.Referentials.Current().Version.ID, left, err)
	}
	if done, _ := filepath.Glob(filepath.Join(drop, "done", "*")); len(done) == 0 {
		t.Fatal("nothing in done/")
	}
}
