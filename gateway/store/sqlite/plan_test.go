package sqlite

import (
	"context"
	"strings"
	"testing"
)

// TestQueryPlans checks that the queries the store runs on every request
// search an index instead of scanning a table (a partial index is only used
// when the query repeats its condition).
func TestQueryPlans(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	cases := []struct {
		name, query string
		args        []any
		index       string
	}{
		{"file by sha", `SELECT ` + fileCols + ` FROM files WHERE tenant = ? AND sha256 = ? AND sha256 <> ''`, []any{"t", "s"}, "files_sha"},
		{"file by key", `SELECT ` + fileCols + ` FROM files WHERE tenant = ? AND idem_key = ? AND idem_key <> ''`, []any{"t", "k"}, "files_idem"},
		{"files of tenant", `SELECT ` + fileCols + ` FROM files WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?`, []any{"t", "", 10}, "files_tenant"},
		{"tenant by token", `SELECT ` + tenantCols + ` FROM tenants WHERE token_hash = ? AND token_hash <> ''`, []any{"h"}, "tenants_token"},
		{"lots by key", `SELECT id FROM lots WHERE emitter = ? AND number = ? AND date = ? ORDER BY id LIMIT ?`, []any{"e", 1, "d", 10}, "lots_key"},
		{"lots of file", `SELECT id FROM lots WHERE file = ? ORDER BY id LIMIT ?`, []any{"f", 10}, "lots_file"},
		{"lots by destination", `SELECT id FROM lots WHERE destination = ? AND state = ? ORDER BY id LIMIT ?`, []any{"d", "sent", 10}, "lots_destination"},
		{"invoices of lot", `SELECT id FROM invoices WHERE lot = ? ORDER BY id`, []any{"l"}, "invoices_lot"},
		{"attempts of lot", `SELECT id FROM attempts WHERE lot = ? ORDER BY started, id`, []any{"l"}, "attempts_lot"},
		{"expectations of lot", `SELECT id FROM expectations WHERE lot = ? ORDER BY due_at, id`, []any{"l"}, "expectations_lot"},
		{"due expectations", `SELECT id FROM expectations WHERE satisfied_by = '' AND fired = 0 AND due_at <= ? ORDER BY due_at, id LIMIT ?`, []any{1, 10}, "expectations_due"},
		{"returns feed", `SELECT id FROM returns WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?`, []any{"t", 0, 10}, "returns_feed"},
		{"anomalies by assignee", `SELECT id FROM anomalies WHERE assignee = ? AND state = ? AND assignee <> '' ORDER BY id LIMIT ?`, []any{"a", "open", 10}, "anomalies_assignee"},
		{"events of subject", `SELECT seq FROM events WHERE subject = ? ORDER BY seq`, []any{"lot:1"}, "events_subject"},
		{"events after", `SELECT seq FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, []any{0, 10}, "INTEGER PRIMARY KEY"},
		{"chain head", `SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1`, nil, ""},
		{"lease any kind", `SELECT id FROM jobs WHERE done = 0 AND run_at <= ? AND until <= ? ORDER BY run_at, id LIMIT ?`, []any{1, 1, 10}, "jobs_due_any"},
		{"lease", `SELECT id FROM jobs WHERE done = 0 AND run_at <= ? AND until <= ? AND kind IN (?,?) ORDER BY run_at, id LIMIT ?`, []any{1, 1, "a", "b", 10}, "jobs_due"},
	}
	for _, c := range cases {
		rows, err := s.rdb.QueryContext(ctx, "EXPLAIN QUERY PLAN "+c.query, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if c.index != "" && !strings.Contains(p, c.index) {
			t.Errorf("%s: plan %q does not use %s", c.name, p, c.index)
		}
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN ") && c.index != "" {
				t.Errorf("%s: plan scans: %q", c.name, p)
			}
		}
	}
}
