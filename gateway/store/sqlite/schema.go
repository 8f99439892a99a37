package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// ErrSchemaTooNew is returned by Open when the database was migrated by a
// newer build than this one.
var ErrSchemaTooNew = errors.New("sqlite: database schema is newer than this build")

// migrations are applied in order at Open; migrations[i] brings the schema
// from version i to version i+1. Never edit a released migration: append a
// new one.
//
// Times are INTEGER unix nanoseconds (0 = zero time). No foreign keys: the
// Redis implementation cannot enforce them and both must behave alike; the
// pipeline writes parents before children in the same Change.
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE tenants (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL DEFAULT '',
	token_hash TEXT NOT NULL DEFAULT '',
	ssh_keys   TEXT NOT NULL DEFAULT '[]',
	disabled   INTEGER NOT NULL DEFAULT 0,
	created    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE UNIQUE INDEX tenants_token ON tenants(token_hash) WHERE token_hash <> '';

CREATE TABLE files (
	id          TEXT PRIMARY KEY,
	tenant      TEXT NOT NULL,
	channel     TEXT NOT NULL DEFAULT '',
	name        TEXT NOT NULL DEFAULT '',
	sha256      TEXT NOT NULL DEFAULT '',
	size        INTEGER NOT NULL DEFAULT 0,
	idem_key    TEXT NOT NULL DEFAULT '',
	format      TEXT NOT NULL DEFAULT '',
	state       TEXT NOT NULL,
	received_at INTEGER NOT NULL DEFAULT 0,
	ack         BLOB,
	lots        INTEGER NOT NULL DEFAULT 0,
	invoices    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE UNIQUE INDEX files_sha ON files(tenant, sha256) WHERE sha256 <> '';
CREATE UNIQUE INDEX files_idem ON files(tenant, idem_key) WHERE idem_key <> '';
CREATE INDEX files_tenant ON files(tenant, id);

CREATE TABLE lots (
	id          TEXT PRIMARY KEY,
	file        TEXT NOT NULL DEFAULT '',
	tenant      TEXT NOT NULL DEFAULT '',
	idx         INTEGER NOT NULL DEFAULT 0,
	emitter     TEXT NOT NULL DEFAULT '',
	number      INTEGER NOT NULL DEFAULT 0,
	date        TEXT NOT NULL DEFAULT '',
	destination TEXT NOT NULL DEFAULT '',
	ref_version TEXT NOT NULL DEFAULT '',
	test        INTEGER NOT NULL DEFAULT 0,
	state       TEXT NOT NULL,
	invoices    INTEGER NOT NULL DEFAULT 0,
	amount      INTEGER NOT NULL DEFAULT 0,
	blob        TEXT NOT NULL DEFAULT '',
	replaces    TEXT NOT NULL DEFAULT '',
	updated_at  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX lots_file ON lots(file, id);
CREATE INDEX lots_tenant ON lots(tenant, id);
CREATE INDEX lots_key ON lots(emitter, number, date);
CREATE INDEX lots_destination ON lots(destination, state);
CREATE INDEX lots_state ON lots(state, id);

CREATE TABLE invoices (
	id       TEXT PRIMARY KEY,
	lot      TEXT NOT NULL DEFAULT '',
	tenant   TEXT NOT NULL DEFAULT '',
	number   TEXT NOT NULL DEFAULT '',
	nir_hash TEXT NOT NULL DEFAULT '',
	amc      TEXT NOT NULL DEFAULT '',
	pec      TEXT NOT NULL DEFAULT '',
	billed   INTEGER NOT NULL DEFAULT 0,
	amo      INTEGER NOT NULL DEFAULT 0,
	amc_part INTEGER NOT NULL DEFAULT 0,
	state    TEXT NOT NULL,
	codes    TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX invoices_lot ON invoices(lot, id);
CREATE INDEX invoices_number ON invoices(tenant, number);
CREATE INDEX invoices_nir ON invoices(nir_hash);

CREATE TABLE attempts (
	id          TEXT PRIMARY KEY,
	lot         TEXT NOT NULL DEFAULT '',
	destination TEXT NOT NULL DEFAULT '',
	message_id  TEXT NOT NULL DEFAULT '',
	resend      INTEGER NOT NULL DEFAULT 0,
	started     INTEGER NOT NULL DEFAULT 0,
	ended       INTEGER NOT NULL DEFAULT 0,
	outcome     TEXT NOT NULL DEFAULT '',
	detail      TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX attempts_lot ON attempts(lot, started, id);
CREATE INDEX attempts_message ON attempts(message_id) WHERE message_id <> '';

CREATE TABLE expectations (
	id           TEXT PRIMARY KEY,
	lot          TEXT NOT NULL DEFAULT '',
	kind         TEXT NOT NULL DEFAULT '',
	due_at       INTEGER NOT NULL DEFAULT 0,
	satisfied_by TEXT NOT NULL DEFAULT '',
	fired        INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX expectations_lot ON expectations(lot, due_at, id);
CREATE INDEX expectations_due ON expectations(due_at, id) WHERE satisfied_by = '' AND fired = 0;

CREATE TABLE returns (
	id       TEXT PRIMARY KEY,
	seq      INTEGER NOT NULL UNIQUE,
	tenant   TEXT NOT NULL DEFAULT '',
	kind     TEXT NOT NULL DEFAULT '',
	blob     TEXT NOT NULL DEFAULT '',
	lot      TEXT NOT NULL DEFAULT '',
	orphan   INTEGER NOT NULL DEFAULT 0,
	summary  BLOB,
	received INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX returns_feed ON returns(tenant, seq);
CREATE INDEX returns_lot ON returns(lot) WHERE lot <> '';

CREATE TABLE anomalies (
	id          TEXT PRIMARY KEY,
	kind        TEXT NOT NULL DEFAULT '',
	subject     TEXT NOT NULL DEFAULT '',
	tenant      TEXT NOT NULL DEFAULT '',
	destination TEXT NOT NULL DEFAULT '',
	state       TEXT NOT NULL,
	assignee    TEXT NOT NULL DEFAULT '',
	reason      TEXT NOT NULL DEFAULT '',
	sla         INTEGER NOT NULL DEFAULT 0,
	created     INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX anomalies_state ON anomalies(state, id);
CREATE INDEX anomalies_tenant ON anomalies(tenant, id);
CREATE INDEX anomalies_subject ON anomalies(subject);
CREATE INDEX anomalies_assignee ON anomalies(assignee, state) WHERE assignee <> '';

CREATE TABLE events (
	seq        INTEGER PRIMARY KEY,
	time       INTEGER NOT NULL,
	subject    TEXT NOT NULL,
	type       TEXT NOT NULL,
	from_state TEXT NOT NULL DEFAULT '',
	to_state   TEXT NOT NULL DEFAULT '',
	actor      TEXT NOT NULL DEFAULT '',
	reason     TEXT NOT NULL DEFAULT '',
	data       BLOB,
	prev_hash  TEXT NOT NULL,
	hash       TEXT NOT NULL
);
CREATE INDEX events_subject ON events(subject, seq);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
	BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
	BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

CREATE TABLE jobs (
	id       TEXT PRIMARY KEY,
	kind     TEXT NOT NULL,
	subject  TEXT NOT NULL DEFAULT '',
	key      TEXT NOT NULL DEFAULT '',
	run_at   INTEGER NOT NULL DEFAULT 0,
	attempts INTEGER NOT NULL DEFAULT 0,
	last_err TEXT NOT NULL DEFAULT '',
	owner    TEXT NOT NULL DEFAULT '',
	token    TEXT NOT NULL DEFAULT '',
	until    INTEGER NOT NULL DEFAULT 0,
	done     INTEGER NOT NULL DEFAULT 0,
	UNIQUE (kind, subject, key)
) WITHOUT ROWID;
CREATE INDEX jobs_due ON jobs(kind, run_at) WHERE done = 0;
`,
	// 2: Lease of every kind (nil kinds) searches by run_at alone.
	`
CREATE INDEX jobs_due_any ON jobs(run_at) WHERE done = 0;
`,
	// 3: the signed outbound file of a lot (CMS SignedData blob).
	`
ALTER TABLE lots ADD COLUMN signed TEXT NOT NULL DEFAULT '';
`,
	// 4: other flows (certificate, PEC, SCOR) on the lots table, business
	// searches on invoices, and day counters for the dashboard.
	`
ALTER TABLE lots ADD COLUMN flow TEXT NOT NULL DEFAULT '';
ALTER TABLE lots ADD COLUMN ref TEXT NOT NULL DEFAULT '';
ALTER TABLE lots ADD COLUMN status TEXT NOT NULL DEFAULT '';
ALTER TABLE lots ADD COLUMN pec TEXT NOT NULL DEFAULT '';
CREATE INDEX lots_ref ON lots(ref, id) WHERE ref <> '';
CREATE INDEX lots_pec ON lots(pec, id) WHERE pec <> '';
CREATE INDEX lots_flow ON lots(flow, id) WHERE flow <> '';
CREATE INDEX invoices_number_any ON invoices(number, id);
CREATE INDEX invoices_pec ON invoices(pec, id) WHERE pec <> '';
CREATE TABLE daily (
	day    TEXT NOT NULL,
	tenant TEXT NOT NULL,
	kind   TEXT NOT NULL,
	state  TEXT NOT NULL,
	n      INTEGER NOT NULL,
	PRIMARY KEY (day, tenant, kind, state)
) WITHOUT ROWID;
`,
	// 5: the support queue ordered by deadline at any backlog, and kind +
	// destination filters (measured at 1 M anomalies: docs/benchmarks.md).
	`
CREATE INDEX anomalies_state_sla ON anomalies(state, sla, id);
CREATE INDEX anomalies_tenant_state_sla ON anomalies(tenant, state, sla, id);
CREATE INDEX anomalies_kind_dest_state_sla ON anomalies(kind, destination, state, sla, id);
CREATE INDEX anomalies_assignee_sla ON anomalies(assignee, state, sla, id) WHERE assignee <> '';
CREATE INDEX anomalies_kind_dest ON anomalies(kind, destination, state, id);
`,
}

// migrate brings the schema of the database behind c to the latest version.
func migrate(ctx context.Context, c *sql.Conn) (from, to int, err error) {
	if _, err := c.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return 0, 0, fmt.Errorf("sqlite: schema_version: %w", err)
	}
	var v sql.NullInt64
	if err := c.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil {
		return 0, 0, fmt.Errorf("sqlite: schema_version: %w", err)
	}
	from = int(v.Int64)
	if from > len(migrations) {
		return from, from, fmt.Errorf("%w (database %d, build %d)", ErrSchemaTooNew, from, len(migrations))
	}
	for i := from; i < len(migrations); i++ {
		if err := migrateOne(ctx, c, i); err != nil {
			return from, i, err
		}
	}
	if from < len(migrations) {
		if err := analyzeNewIndexes(ctx, c); err != nil {
			return from, len(migrations), err
		}
	}
	return from, len(migrations), nil
}

// analyzeNewIndexes keeps the planner's statistics whole after a
// migration: OCT never runs ANALYZE itself, but an operator may have; an
// index added since then has no statistics while the older ones have, and
// the planner then prefers it blindly (measured: a queue listing going
// from 0.6 to 380 ms p99 at 1 M anomalies). The tables of such indexes are
// analyzed again; without any statistics nothing is done.
func analyzeNewIndexes(ctx context.Context, c *sql.Conn) error {
	var n int
	if err := c.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'`).Scan(&n); err != nil || n == 0 {
		return err
	}
	rows, err := c.QueryContext(ctx, `SELECT DISTINCT tbl_name FROM sqlite_master m WHERE type = 'index' AND sql IS NOT NULL
		AND EXISTS (SELECT 1 FROM sqlite_stat1 s WHERE s.tbl = m.tbl_name)
		AND NOT EXISTS (SELECT 1 FROM sqlite_stat1 s WHERE s.idx = m.name)`)
	if err != nil {
		return fmt.Errorf("sqlite: statistics: %w", err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	for _, t := range tables {
		if _, err := c.ExecContext(ctx, `ANALYZE "`+strings.ReplaceAll(t, `"`, `""`)+`"`); err != nil {
			return fmt.Errorf("sqlite: analyze %s: %w", t, err)
		}
	}
	return nil
}

func migrateOne(ctx context.Context, c *sql.Conn, i int) (err error) {
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlite: migration %d: %w", i+1, err)
	}
	defer func() {
		if err != nil {
			_, _ = c.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	// Another process may have migrated while we waited for the lock.
	var v sql.NullInt64
	if err := c.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil {
		return fmt.Errorf("sqlite: migration %d: %w", i+1, err)
	}
	if int(v.Int64) > i {
		_, err := c.ExecContext(ctx, "COMMIT")
		return err
	}
	if _, err := c.ExecContext(ctx, migrations[i]); err != nil {
		return fmt.Errorf("sqlite: migration %d: %w", i+1, err)
	}
	if _, err := c.ExecContext(ctx, `INSERT INTO schema_version(version) VALUES (?)`, i+1); err != nil {
		return fmt.Errorf("sqlite: migration %d: %w", i+1, err)
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("sqlite: migration %d: %w", i+1, err)
	}
	return nil
}
