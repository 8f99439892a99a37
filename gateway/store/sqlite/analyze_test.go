package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"testing"
)

// TestMigrationAnalyzesNewIndexes: a database an operator ANALYZEd, then
// migrated, gets statistics for the indexes the migration added (else the
// planner prefers them blindly); a database never analyzed stays so.
func TestMigrationAnalyzesNewIndexes(t *testing.T) {
	ctx := context.Background()
	for _, analyzed := range []bool{true, false} {
		path := filepath.Join(t.TempDir(), "oct.db")
		s, err := Open(ctx, Options{Path: path, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		// Back to schema 4 (the indexes of migration 5 gone), as analyzed
		// by an operator or not.
		for _, q := range []string{
			`DROP INDEX anomalies_state_sla`, `DROP INDEX anomalies_tenant_state_sla`, `DROP INDEX anomalies_kind_dest_state_sla`,
			`DROP INDEX anomalies_assignee_sla`, `DROP INDEX anomalies_kind_dest`, `DELETE FROM schema_version WHERE version = 5`,
			`INSERT INTO anomalies(id, kind, subject, tenant, destination, state, assignee, reason, sla, created) VALUES ('A1','k','lot:L1','t','d','open','','r',1,1)`,
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if analyzed {
			if _, err := db.Exec(`ANALYZE`); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		s, err = Open(ctx, Options{Path: path, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		db, _ = sql.Open("sqlite", path)
		var stats, table int
		_ = db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'`).Scan(&table)
		if table == 1 {
			_ = db.QueryRow(`SELECT count(*) FROM sqlite_stat1 WHERE idx = 'anomalies_state_sla'`).Scan(&stats)
		}
		db.Close()
		if analyzed && stats != 1 {
			t.Errorf("analyzed database: the new index has %d statistics rows", stats)
		}
		if !analyzed && table != 0 {
			t.Errorf("a database never analyzed was analyzed by the migration")
		}
	}
}
