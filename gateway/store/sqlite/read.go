package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// List limits: a limit <= 0 means defaultLimit; larger ones are capped at
// maxLimit (page with the cursor).
const (
	defaultLimit = 100
	maxLimit     = 10000
)

func limit(n int) int {
	switch {
	case n <= 0:
		return defaultLimit
	case n > maxLimit:
		return maxLimit
	}
	return n
}

type scanner interface{ Scan(dest ...any) error }

// list runs a query on the read pool and scans every row with scan.
func list[T any](s *Store, ctx context.Context, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.readErr(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.readErr(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr(err)
	}
	return out, nil
}

// one runs a single-row query on the read pool (store.ErrNotFound if none).
func one[T any](s *Store, ctx context.Context, scan func(scanner) (T, error), q string, args ...any) (T, error) {
	if s.closed.Load() {
		var zero T
		return zero, store.ErrClosed
	}
	v, err := scan(s.rdb.QueryRowContext(ctx, q, args...))
	if err != nil {
		var zero T
		return zero, s.readErr(err)
	}
	return v, nil
}

// --- tenants ---

const tenantCols = `id, name, token_hash, ssh_keys, disabled, created`

func scanTenant(r scanner) (store.Tenant, error) {
	var t store.Tenant
	var keys string
	var created int64
	if err := r.Scan(&t.ID, &t.Name, &t.TokenHash, &keys, &t.Disabled, &created); err != nil {
		return t, err
	}
	if err := json.Unmarshal([]byte(keys), &t.SSHKeys); err != nil {
		return t, fmt.Errorf("tenant %s: ssh_keys: %w", t.ID, err)
	}
	if len(t.SSHKeys) == 0 {
		t.SSHKeys = nil
	}
	t.Created = nt(created)
	return t, nil
}

// Tenant implements store.Store.
func (s *Store) Tenant(ctx context.Context, id string) (store.Tenant, error) {
	return one(s, ctx, scanTenant, `SELECT `+tenantCols+` FROM tenants WHERE id = ?`, id)
}

// TenantByToken implements store.Store.
func (s *Store) TenantByToken(ctx context.Context, tokenHash string) (store.Tenant, error) {
	if tokenHash == "" {
		return store.Tenant{}, store.ErrNotFound
	}
	return one(s, ctx, scanTenant, `SELECT `+tenantCols+` FROM tenants WHERE token_hash = ? AND token_hash <> ''`, tokenHash)
}

// Tenants implements store.Store (every tenant, by id).
func (s *Store) Tenants(ctx context.Context) ([]store.Tenant, error) {
	return list(s, ctx, scanTenant, `SELECT `+tenantCols+` FROM tenants ORDER BY id`)
}

// --- files ---

const fileCols = `id, tenant, channel, name, sha256, size, idem_key, format, state, received_at, ack, lots, invoices`

func scanFile(r scanner) (store.File, error) {
	var f store.File
	var received int64
	var state string
	if err := r.Scan(&f.ID, &f.Tenant, &f.Channel, &f.Name, &f.SHA256, &f.Size, &f.IdemKey, &f.Format, &state,
		&received, &f.Ack, &f.Lots, &f.Invoices); err != nil {
		return f, err
	}
	f.State = lifecycle.State(state)
	f.ReceivedAt = nt(received)
	return f, nil
}

// File implements store.Store.
func (s *Store) File(ctx context.Context, id string) (store.File, error) {
	return one(s, ctx, scanFile, `SELECT `+fileCols+` FROM files WHERE id = ?`, id)
}

// Files implements store.Store: files with ID > after, by ID; an empty
// tenant lists every tenant's files.
func (s *Store) Files(ctx context.Context, tenant, after string, n int) ([]store.File, error) {
	if tenant == "" {
		return list(s, ctx, scanFile, `SELECT `+fileCols+` FROM files WHERE id > ? ORDER BY id LIMIT ?`, after, limit(n))
	}
	return list(s, ctx, scanFile, `SELECT `+fileCols+` FROM files WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?`,
		tenant, after, limit(n))
}

// --- lots ---

const lotCols = `id, file, tenant, idx, emitter, number, date, destination, ref_version, test, state, invoices,
	amount, blob, replaces, updated_at, signed, flow, ref, status, pec`

func scanLot(r scanner) (store.Lot, error) {
	var l store.Lot
	var state string
	var updated int64
	if err := r.Scan(&l.ID, &l.File, &l.Tenant, &l.Index, &l.Emitter, &l.Number, &l.Date, &l.Destination,
		&l.RefVersion, &l.Test, &state, &l.Invoices, &l.Amount, &l.Blob, &l.Replaces, &updated, &l.Signed,
		&l.Flow, &l.Ref, &l.Status, &l.PEC); err != nil {
		return l, err
	}
	l.State = lifecycle.State(state)
	l.UpdatedAt = nt(updated)
	return l, nil
}

// Lot implements store.Store.
func (s *Store) Lot(ctx context.Context, id string) (store.Lot, error) {
	return one(s, ctx, scanLot, `SELECT `+lotCols+` FROM lots WHERE id = ?`, id)
}

// where builds a conjunction of equality filters, skipping empty values.
type where struct {
	conds []string
	args  []any
}

func (w *where) eq(col string, v any, skip bool) {
	if skip {
		return
	}
	w.conds = append(w.conds, col+" = ?")
	w.args = append(w.args, v)
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// Lots implements store.Store, by ID.
func (s *Store) Lots(ctx context.Context, q store.LotQuery) ([]store.Lot, error) {
	var w where
	w.eq("tenant", q.Tenant, q.Tenant == "")
	w.eq("file", q.File, q.File == "")
	w.eq("emitter", q.Emitter, q.Emitter == "")
	w.eq("number", q.Number, q.Number == 0)
	w.eq("date", q.Date, q.Date == "")
	w.eq("destination", q.Destination, q.Destination == "")
	w.eq("state", string(q.State), q.State == "")
	w.eq("ref", q.Ref, q.Ref == "")
	w.eq("pec", q.PEC, q.PEC == "")
	switch q.Flow {
	case "":
	case store.FlowB2:
		w.conds = append(w.conds, "flow IN ('', 'b2')")
	default:
		w.eq("flow", q.Flow, false)
	}
	if q.After != "" {
		w.conds = append(w.conds, "id > ?")
		w.args = append(w.args, q.After)
	}
	return list(s, ctx, scanLot, `SELECT `+lotCols+` FROM lots`+w.sql()+` ORDER BY id LIMIT ?`,
		append(w.args, limit(q.Limit))...)
}

// --- invoices ---

const invoiceCols = `id, lot, tenant, number, nir_hash, amc, pec, billed, amo, amc_part, state, codes`

func scanInvoice(r scanner) (store.Invoice, error) {
	var i store.Invoice
	var state, codes string
	if err := r.Scan(&i.ID, &i.Lot, &i.Tenant, &i.Number, &i.NIRHash, &i.AMC, &i.PEC, &i.Billed, &i.AMO,
		&i.AMCPart, &state, &codes); err != nil {
		return i, err
	}
	i.State = lifecycle.State(state)
	if codes != "" {
		if err := json.Unmarshal([]byte(codes), &i.Codes); err != nil {
			return i, fmt.Errorf("invoice %s: codes: %w", i.ID, err)
		}
	}
	return i, nil
}

// Invoices implements store.Store, by ID.
func (s *Store) Invoices(ctx context.Context, lot string) ([]store.Invoice, error) {
	return list(s, ctx, scanInvoice, `SELECT `+invoiceCols+` FROM invoices WHERE lot = ? ORDER BY id`, lot)
}

// FindInvoices implements store.Store, by ID.
func (s *Store) FindInvoices(ctx context.Context, q store.InvoiceQuery) ([]store.Invoice, error) {
	if q.Number == "" && q.PEC == "" {
		return nil, fmt.Errorf("sqlite: find invoices: a number or a PEC number is required: %w", store.ErrInvalid)
	}
	var w where
	w.eq("number", q.Number, q.Number == "")
	w.eq("pec", q.PEC, q.PEC == "")
	if q.PEC != "" {
		w.conds = append(w.conds, "pec <> ''") // lets the planner use the partial index
	}
	w.eq("tenant", q.Tenant, q.Tenant == "")
	if q.After != "" {
		w.conds = append(w.conds, "id > ?")
		w.args = append(w.args, q.After)
	}
	return list(s, ctx, scanInvoice, `SELECT `+invoiceCols+` FROM invoices`+w.sql()+` ORDER BY id LIMIT ?`,
		append(w.args, limit(q.Limit))...)
}

// Daily implements store.Store.
func (s *Store) Daily(ctx context.Context, since time.Time, tenant string) ([]store.DailyCount, error) {
	var w where
	w.conds = append(w.conds, "day >= ?")
	w.args = append(w.args, since.UTC().Format(time.DateOnly))
	w.eq("tenant", tenant, tenant == "")
	return list(s, ctx, func(r scanner) (store.DailyCount, error) {
		var d store.DailyCount
		var kind, state string
		err := r.Scan(&d.Day, &d.Tenant, &kind, &state, &d.N)
		d.Kind, d.State = lifecycle.Kind(kind), lifecycle.State(state)
		return d, err
	}, `SELECT day, tenant, kind, state, n FROM daily`+w.sql()+` ORDER BY day, tenant, kind, state LIMIT ?`,
		append(w.args, 100000)...)
}

// --- attempts, expectations ---

const attemptCols = `id, lot, destination, message_id, resend, started, ended, outcome, detail`

func scanAttempt(r scanner) (store.Attempt, error) {
	var a store.Attempt
	var started, ended int64
	if err := r.Scan(&a.ID, &a.Lot, &a.Destination, &a.MessageID, &a.Resend, &started, &ended, &a.Outcome,
		&a.Detail); err != nil {
		return a, err
	}
	a.Started, a.Ended = nt(started), nt(ended)
	return a, nil
}

// Attempts implements store.Store, by start time then ID.
func (s *Store) Attempts(ctx context.Context, lot string) ([]store.Attempt, error) {
	return list(s, ctx, scanAttempt, `SELECT `+attemptCols+` FROM attempts WHERE lot = ? ORDER BY started, id`, lot)
}

const expectationCols = `id, lot, kind, due_at, satisfied_by, fired`

func scanExpectation(r scanner) (store.Expectation, error) {
	var e store.Expectation
	var due int64
	if err := r.Scan(&e.ID, &e.Lot, &e.Kind, &due, &e.SatisfiedBy, &e.Fired); err != nil {
		return e, err
	}
	e.DueAt = nt(due)
	return e, nil
}

// Expectations implements store.Store, by due time then ID.
func (s *Store) Expectations(ctx context.Context, lot string) ([]store.Expectation, error) {
	return list(s, ctx, scanExpectation,
		`SELECT `+expectationCols+` FROM expectations WHERE lot = ? ORDER BY due_at, id`, lot)
}

// DueExpectations implements store.Store, by due time then ID.
func (s *Store) DueExpectations(ctx context.Context, t time.Time, n int) ([]store.Expectation, error) {
	return list(s, ctx, scanExpectation,
		`SELECT `+expectationCols+` FROM expectations
		 WHERE satisfied_by = '' AND fired = 0 AND due_at <= ? ORDER BY due_at, id LIMIT ?`, tn(t), limit(n))
}

// --- returns ---

const returnCols = `id, seq, tenant, kind, blob, lot, orphan, summary, received`

func scanReturn(r scanner) (store.Return, error) {
	var x store.Return
	var received int64
	if err := r.Scan(&x.ID, &x.Seq, &x.Tenant, &x.Kind, &x.Blob, &x.Lot, &x.Orphan, &x.Summary, &received); err != nil {
		return x, err
	}
	x.Received = nt(received)
	return x, nil
}

// Return implements store.Store.
func (s *Store) Return(ctx context.Context, id string) (store.Return, error) {
	return one(s, ctx, scanReturn, `SELECT `+returnCols+` FROM returns WHERE id = ?`, id)
}

// Returns implements store.Store.
func (s *Store) Returns(ctx context.Context, tenant string, after int64, n int) ([]store.Return, error) {
	return list(s, ctx, scanReturn,
		`SELECT `+returnCols+` FROM returns WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?`, tenant, after, limit(n))
}

// --- anomalies ---

const anomalyCols = `id, kind, subject, tenant, destination, state, assignee, reason, sla, created`

func scanAnomaly(r scanner) (store.Anomaly, error) {
	var a store.Anomaly
	var state string
	var sla, created int64
	if err := r.Scan(&a.ID, &a.Kind, &a.Subject, &a.Tenant, &a.Destination, &state, &a.Assignee, &a.Reason,
		&sla, &created); err != nil {
		return a, err
	}
	a.State = lifecycle.State(state)
	a.SLA, a.Created = nt(sla), nt(created)
	return a, nil
}

// Anomaly implements store.Store.
func (s *Store) Anomaly(ctx context.Context, id string) (store.Anomaly, error) {
	return one(s, ctx, scanAnomaly, `SELECT `+anomalyCols+` FROM anomalies WHERE id = ?`, id)
}

// Anomalies implements store.Store, by ID.
func (s *Store) Anomalies(ctx context.Context, q store.AnomalyQuery) ([]store.Anomaly, error) {
	var w where
	w.eq("tenant", q.Tenant, q.Tenant == "")
	w.eq("kind", q.Kind, q.Kind == "")
	w.eq("destination", q.Destination, q.Destination == "")
	w.eq("assignee", q.Assignee, q.Assignee == "")
	if q.Assignee != "" {
		w.conds = append(w.conds, "assignee <> ''") // lets the planner use the partial index
	}
	w.eq("state", string(q.State), q.State == "")
	w.eq("subject", q.Subject, q.Subject == "")
	order := " ORDER BY id"
	switch {
	case q.BySLA:
		order = " ORDER BY sla, id"
		if q.After != "" {
			sla := tn(q.AfterSLA)
			w.conds = append(w.conds, "(sla > ? OR (sla = ? AND id > ?))")
			w.args = append(w.args, sla, sla, q.After)
		}
	case q.After != "":
		w.conds = append(w.conds, "id > ?")
		w.args = append(w.args, q.After)
	}
	return list(s, ctx, scanAnomaly, `SELECT `+anomalyCols+` FROM anomalies`+w.sql()+order+` LIMIT ?`,
		append(w.args, limit(q.Limit))...)
}

// --- events ---

const eventCols = `seq, time, subject, type, from_state, to_state, actor, reason, data, prev_hash, hash`

func scanEvent(r scanner) (store.Event, error) {
	var e store.Event
	var t int64
	var from, to string
	if err := r.Scan(&e.Seq, &t, &e.Subject, &e.Type, &from, &to, &e.Actor, &e.Reason, &e.Data, &e.PrevHash,
		&e.Hash); err != nil {
		return e, err
	}
	e.Time = nt(t)
	e.From, e.To = lifecycle.State(from), lifecycle.State(to)
	return e, nil
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, subject string) ([]store.Event, error) {
	return list(s, ctx, scanEvent, `SELECT `+eventCols+` FROM events WHERE subject = ? ORDER BY seq`, subject)
}

// EventsAfter implements store.Store.
func (s *Store) EventsAfter(ctx context.Context, after int64, n int) ([]store.Event, error) {
	return list(s, ctx, scanEvent, `SELECT `+eventCols+` FROM events WHERE seq > ? ORDER BY seq LIMIT ?`,
		after, limit(n))
}

// --- jobs ---

// PendingJobs implements store.Store: jobs not done (waiting or leased).
func (s *Store) PendingJobs(ctx context.Context) (map[string]int, error) {
	type kc struct {
		kind string
		n    int
	}
	rows, err := list(s, ctx, func(r scanner) (kc, error) {
		var x kc
		err := r.Scan(&x.kind, &x.n)
		return x, err
	}, `SELECT kind, COUNT(*) FROM jobs WHERE done = 0 GROUP BY kind`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(rows))
	for _, x := range rows {
		out[x.kind] = x.n
	}
	return out, nil
}
