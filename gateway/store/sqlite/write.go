package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// CreateFile implements store.Store.
func (s *Store) CreateFile(ctx context.Context, f store.File, then *store.Change) (store.File, bool, error) {
	if f.ID == "" || f.Tenant == "" || f.SHA256 == "" {
		return store.File{}, false, fmt.Errorf("sqlite: create file: id, tenant and sha256 are required: %w", store.ErrInvalid)
	}
	if then != nil {
		if err := store.ValidateChange(then); err != nil {
			return store.File{}, false, err
		}
	}
	var out store.File
	var created bool
	err := s.do(ctx, func(w *wtx) error {
		out, created = store.File{}, false
		existing, found, err := w.findFile(f.Tenant, f.SHA256, f.IdemKey)
		if err != nil {
			return err
		}
		if found {
			out = existing
			return nil
		}
		// The id must be new: CreateFile never updates another file.
		if _, taken, err := w.currentState("files", f.ID); err != nil {
			return err
		} else if taken {
			return fmt.Errorf("sqlite: create file %s: id taken: %w", f.ID, store.ErrDuplicate)
		}
		actor := ""
		if then != nil {
			actor = then.Actor
		}
		stored, err := w.putFile(f, actor)
		if err != nil {
			return err
		}
		if then != nil {
			if err := w.apply(then); err != nil {
				return err
			}
		}
		out, created = stored, true
		return nil
	})
	if err != nil {
		return store.File{}, false, err
	}
	return out, created, nil
}

// Commit implements store.Store.
func (s *Store) Commit(ctx context.Context, c *store.Change) error {
	if c == nil {
		return nil
	}
	if err := store.ValidateChange(c); err != nil {
		return err
	}
	return s.do(ctx, func(w *wtx) error { return w.apply(c) })
}

// stateTables maps a lifecycle kind to the table holding its state.
var stateTables = map[lifecycle.Kind]string{
	lifecycle.File:    "files",
	lifecycle.Lot:     "lots",
	lifecycle.Invoice: "invoices",
	lifecycle.Anomaly: "anomalies",
}

// apply writes c inside the current savepoint, in this order: tenants,
// files, lots, invoices, attempts, expectations, returns, anomalies,
// transitions, events, enqueued jobs, done jobs, retried jobs.
func (w *wtx) apply(c *store.Change) error {
	for _, t := range c.Tenants {
		if err := w.putTenant(t); err != nil {
			return err
		}
	}
	for _, f := range c.Files {
		if _, err := w.putFile(f, c.Actor); err != nil {
			return err
		}
	}
	for _, l := range c.Lots {
		if err := w.putLot(l, c.Actor); err != nil {
			return err
		}
	}
	for _, i := range c.Invoices {
		if err := w.putInvoice(i, c.Actor); err != nil {
			return err
		}
	}
	for _, a := range c.Attempts {
		if err := w.putAttempt(a); err != nil {
			return err
		}
	}
	for _, e := range c.Expectations {
		if err := w.putExpectation(e); err != nil {
			return err
		}
	}
	for _, r := range c.Returns {
		if err := w.putReturn(r); err != nil {
			return err
		}
	}
	for _, a := range c.Anomalies {
		if err := w.putAnomaly(a, c.Actor); err != nil {
			return err
		}
	}
	for _, t := range c.Transitions {
		if err := w.transition(t, c.Actor); err != nil {
			return err
		}
	}
	for _, e := range c.Events {
		if e.Actor == "" {
			e.Actor = c.Actor
		}
		if err := w.appendEvent(e); err != nil {
			return err
		}
	}
	for _, j := range c.Enqueue {
		if err := w.enqueue(j); err != nil {
			return err
		}
	}
	for _, l := range c.Done {
		if err := w.done(l); err != nil {
			return err
		}
	}
	for _, r := range c.Retry {
		if err := w.retry(r); err != nil {
			return err
		}
	}
	return nil
}

// currentState returns the state of a record, found == false if absent.
func (w *wtx) currentState(table, id string) (lifecycle.State, bool, error) {
	var st string
	err := w.queryRow(`SELECT state FROM `+table+` WHERE id = ?`, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("sqlite: %s %s: %w", table, id, err)
	}
	return lifecycle.State(st), true, nil
}

// created checks the state of a new record and writes its creation event.
func (w *wtx) created(kind lifecycle.Kind, id, tenant string, st lifecycle.State, actor string) error {
	w.countDay(tenant, kind, st)
	return w.appendEvent(store.Event{
		Subject: string(kind) + ":" + id,
		Type:    "transition",
		To:      st,
		Actor:   actor,
		Reason:  "created",
	})
}

func (w *wtx) putTenant(t store.Tenant) error {
	if t.Created.IsZero() {
		t.Created = w.now
	}
	keys, _ := json.Marshal(nonNil(t.SSHKeys))
	_, err := w.exec(`INSERT INTO tenants(id, name, token_hash, ssh_keys, disabled, created) VALUES (?,?,?,?,?,?)
		ON CONFLICT(id) DO UPDATE SET name=excluded.name, token_hash=excluded.token_hash,
			ssh_keys=excluded.ssh_keys, disabled=excluded.disabled, created=excluded.created`,
		t.ID, t.Name, t.TokenHash, string(keys), b2i(t.Disabled), tn(t.Created))
	if err != nil {
		return dup("tenant", t.ID, err)
	}
	return nil
}

func (w *wtx) findFile(tenant, sha, key string) (store.File, bool, error) {
	f, err := scanFile(w.queryRow(`SELECT `+fileCols+` FROM files WHERE tenant = ? AND sha256 = ? AND sha256 <> ''`, tenant, sha))
	if err == nil {
		return f, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return store.File{}, false, fmt.Errorf("sqlite: find file: %w", err)
	}
	if key == "" {
		return store.File{}, false, nil
	}
	f, err = scanFile(w.queryRow(`SELECT `+fileCols+` FROM files WHERE tenant = ? AND idem_key = ? AND idem_key <> ''`, tenant, key))
	if err == nil {
		return f, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return store.File{}, false, fmt.Errorf("sqlite: find file: %w", err)
	}
	return store.File{}, false, nil
}

func (w *wtx) putFile(f store.File, actor string) (store.File, error) {
	cur, found, err := w.currentState("files", f.ID)
	if err != nil {
		return f, err
	}
	if f.ReceivedAt.IsZero() {
		f.ReceivedAt = w.now
	}
	f.ReceivedAt = f.ReceivedAt.UTC()
	if found {
		f.State = cur
		_, err := w.exec(`UPDATE files SET tenant=?, channel=?, name=?, sha256=?, size=?, idem_key=?, format=?,
			received_at=?, ack=?, lots=?, invoices=? WHERE id=?`,
			f.Tenant, f.Channel, f.Name, f.SHA256, f.Size, f.IdemKey, f.Format,
			tn(f.ReceivedAt), nullBytes(f.Ack), f.Lots, f.Invoices, f.ID)
		if err != nil {
			return f, dup("file", f.ID, err)
		}
		return f, nil
	}
	if err := lifecycle.Check(lifecycle.File, "", f.State); err != nil {
		return f, fmt.Errorf("sqlite: new file %s: %w", f.ID, err)
	}
	_, err = w.exec(`INSERT INTO files(id, tenant, channel, name, sha256, size, idem_key, format, state,
		received_at, ack, lots, invoices) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		f.ID, f.Tenant, f.Channel, f.Name, f.SHA256, f.Size, f.IdemKey, f.Format, string(f.State),
		tn(f.ReceivedAt), nullBytes(f.Ack), f.Lots, f.Invoices)
	if err != nil {
		return f, dup("file", f.ID, err)
	}
	return f, w.created(lifecycle.File, f.ID, f.Tenant, f.State, actor)
}

func (w *wtx) putLot(l store.Lot, actor string) error {
	_, found, err := w.currentState("lots", l.ID)
	if err != nil {
		return err
	}
	if l.UpdatedAt.IsZero() {
		l.UpdatedAt = w.now
	}
	if found {
		_, err := w.exec(`UPDATE lots SET file=?, tenant=?, idx=?, emitter=?, number=?, date=?, destination=?,
			ref_version=?, test=?, invoices=?, amount=?, blob=?, replaces=?, updated_at=?, signed=?,
			flow=?, ref=?, status=?, pec=? WHERE id=?`,
			l.File, l.Tenant, l.Index, l.Emitter, l.Number, l.Date, l.Destination,
			l.RefVersion, b2i(l.Test), l.Invoices, l.Amount, l.Blob, l.Replaces, tn(l.UpdatedAt), l.Signed,
			l.Flow, l.Ref, l.Status, l.PEC, l.ID)
		if err != nil {
			return dup("lot", l.ID, err)
		}
		return nil
	}
	if err := lifecycle.Check(lifecycle.Lot, "", l.State); err != nil {
		return fmt.Errorf("sqlite: new lot %s: %w", l.ID, err)
	}
	_, err = w.exec(`INSERT INTO lots(id, file, tenant, idx, emitter, number, date, destination, ref_version,
		test, state, invoices, amount, blob, replaces, updated_at, signed, flow, ref, status, pec)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		l.ID, l.File, l.Tenant, l.Index, l.Emitter, l.Number, l.Date, l.Destination, l.RefVersion,
		b2i(l.Test), string(l.State), l.Invoices, l.Amount, l.Blob, l.Replaces, tn(l.UpdatedAt), l.Signed,
		l.Flow, l.Ref, l.Status, l.PEC)
	if err != nil {
		return dup("lot", l.ID, err)
	}
	return w.created(lifecycle.Lot, l.ID, l.Tenant, l.State, actor)
}

func (w *wtx) putInvoice(i store.Invoice, actor string) error {
	_, found, err := w.currentState("invoices", i.ID)
	if err != nil {
		return err
	}
	codes := ""
	if len(i.Codes) > 0 {
		b, _ := json.Marshal(i.Codes)
		codes = string(b)
	}
	if found {
		_, err := w.exec(`UPDATE invoices SET lot=?, tenant=?, number=?, nir_hash=?, amc=?, pec=?, billed=?, amo=?,
			amc_part=?, codes=? WHERE id=?`,
			i.Lot, i.Tenant, i.Number, i.NIRHash, i.AMC, i.PEC, i.Billed, i.AMO, i.AMCPart, codes, i.ID)
		if err != nil {
			return dup("invoice", i.ID, err)
		}
		return nil
	}
	if err := lifecycle.Check(lifecycle.Invoice, "", i.State); err != nil {
		return fmt.Errorf("sqlite: new invoice %s: %w", i.ID, err)
	}
	_, err = w.exec(`INSERT INTO invoices(id, lot, tenant, number, nir_hash, amc, pec, billed, amo, amc_part,
		state, codes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		i.ID, i.Lot, i.Tenant, i.Number, i.NIRHash, i.AMC, i.PEC, i.Billed, i.AMO, i.AMCPart, string(i.State), codes)
	if err != nil {
		return dup("invoice", i.ID, err)
	}
	return w.created(lifecycle.Invoice, i.ID, i.Tenant, i.State, actor)
}

func (w *wtx) putAnomaly(a store.Anomaly, actor string) error {
	_, found, err := w.currentState("anomalies", a.ID)
	if err != nil {
		return err
	}
	if a.Created.IsZero() {
		a.Created = w.now
	}
	if found {
		_, err := w.exec(`UPDATE anomalies SET kind=?, subject=?, tenant=?, destination=?, assignee=?, reason=?,
			sla=?, created=? WHERE id=?`,
			a.Kind, a.Subject, a.Tenant, a.Destination, a.Assignee, a.Reason, tn(a.SLA), tn(a.Created), a.ID)
		if err != nil {
			return dup("anomaly", a.ID, err)
		}
		return nil
	}
	if err := lifecycle.Check(lifecycle.Anomaly, "", a.State); err != nil {
		return fmt.Errorf("sqlite: new anomaly %s: %w", a.ID, err)
	}
	_, err = w.exec(`INSERT INTO anomalies(id, kind, subject, tenant, destination, state, assignee, reason, sla,
		created) VALUES (?,?,?,?,?,?,?,?,?,?)`,
		a.ID, a.Kind, a.Subject, a.Tenant, a.Destination, string(a.State), a.Assignee, a.Reason, tn(a.SLA), tn(a.Created))
	if err != nil {
		return dup("anomaly", a.ID, err)
	}
	return w.created(lifecycle.Anomaly, a.ID, a.Tenant, a.State, actor)
}

func (w *wtx) putAttempt(a store.Attempt) error {
	_, err := w.exec(`INSERT INTO attempts(id, lot, destination, message_id, resend, started, ended, outcome, detail)
		VALUES (?,?,?,?,?,?,?,?,?)
		ON CONFLICT(id) DO UPDATE SET lot=excluded.lot, destination=excluded.destination,
			message_id=excluded.message_id, resend=excluded.resend, started=excluded.started,
			ended=excluded.ended, outcome=excluded.outcome, detail=excluded.detail`,
		a.ID, a.Lot, a.Destination, a.MessageID, b2i(a.Resend), tn(a.Started), tn(a.Ended), a.Outcome, a.Detail)
	if err != nil {
		return dup("attempt", a.ID, err)
	}
	return nil
}

func (w *wtx) putExpectation(e store.Expectation) error {
	_, err := w.exec(`INSERT INTO expectations(id, lot, kind, due_at, satisfied_by, fired) VALUES (?,?,?,?,?,?)
		ON CONFLICT(id) DO UPDATE SET lot=excluded.lot, kind=excluded.kind, due_at=excluded.due_at,
			satisfied_by=excluded.satisfied_by, fired=excluded.fired`,
		e.ID, e.Lot, e.Kind, tn(e.DueAt), e.SatisfiedBy, b2i(e.Fired))
	if err != nil {
		return dup("expectation", e.ID, err)
	}
	return nil
}

func (w *wtx) putReturn(r store.Return) error {
	if r.Received.IsZero() {
		r.Received = w.now
	}
	// Seq is assigned once, on insert: an update keeps the row's place in
	// the feed.
	_, err := w.exec(`INSERT INTO returns(id, seq, tenant, kind, blob, lot, orphan, summary, received)
		VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM returns), ?,?,?,?,?,?,?)
		ON CONFLICT(id) DO UPDATE SET tenant=excluded.tenant, kind=excluded.kind, blob=excluded.blob,
			lot=excluded.lot, orphan=excluded.orphan, summary=excluded.summary, received=excluded.received`,
		r.ID, r.Tenant, r.Kind, r.Blob, r.Lot, b2i(r.Orphan), nullBytes(r.Summary), tn(r.Received))
	if err != nil {
		return dup("return", r.ID, err)
	}
	return nil
}

func (w *wtx) transition(t store.Transition, actor string) error {
	if err := lifecycle.Check(t.Kind, t.From, t.To); err != nil {
		return fmt.Errorf("sqlite: %s %s: %w", t.Kind, t.ID, err)
	}
	table := stateTables[t.Kind]
	var row *sql.Row
	if t.Kind == lifecycle.Lot {
		row = w.queryRow(`UPDATE lots SET state = ?, updated_at = ? WHERE id = ? AND state = ? RETURNING tenant`,
			string(t.To), tn(w.now), t.ID, string(t.From))
	} else {
		row = w.queryRow(`UPDATE `+table+` SET state = ? WHERE id = ? AND state = ? RETURNING tenant`,
			string(t.To), t.ID, string(t.From))
	}
	var tenant string
	err := row.Scan(&tenant)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s %s: %w", t.Kind, t.ID, err)
	}
	if errors.Is(err, sql.ErrNoRows) {
		cur, found, err := w.currentState(table, t.ID)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("sqlite: %s %s: %w", t.Kind, t.ID, store.ErrNotFound)
		}
		return fmt.Errorf("sqlite: %s %s is %q, not %q: %w", t.Kind, t.ID, cur, t.From, store.ErrConflict)
	}
	w.countDay(tenant, t.Kind, t.To)
	if t.Actor == "" {
		t.Actor = actor
	}
	return w.appendEvent(store.Event{
		Subject: string(t.Kind) + ":" + t.ID,
		Type:    "transition",
		From:    t.From,
		To:      t.To,
		Actor:   t.Actor,
		Reason:  t.Reason,
	})
}

// countDay counts one record of tenant entering state, for the request's
// day counters.
func (w *wtx) countDay(tenant string, kind lifecycle.Kind, st lifecycle.State) {
	if w.days == nil {
		w.days = map[dayKey]int64{}
	}
	w.days[dayKey{tenant, string(kind), string(st)}]++
}

// flushDays writes the request's day counters, one upsert per key (a lot
// of 50 invoices is one, not 50), in the request's transaction.
func (w *wtx) flushDays() error {
	day := w.now.UTC().Format(time.DateOnly)
	for k, n := range w.days {
		if _, err := w.exec(`INSERT INTO daily(day, tenant, kind, state, n) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT(day, tenant, kind, state) DO UPDATE SET n = n + excluded.n`, day, k.tenant, k.kind, k.state, n); err != nil {
			return fmt.Errorf("sqlite: day counters: %w", err)
		}
	}
	return nil
}

// --- jobs ---

func (w *wtx) enqueue(j store.Job) error {
	if j.ID == "" {
		j.ID = randomID()
	}
	if j.RunAt.IsZero() {
		j.RunAt = w.now
	}
	_, err := w.exec(`INSERT INTO jobs(id, kind, subject, key, run_at, attempts, last_err) VALUES (?,?,?,?,?,?,?)
		ON CONFLICT(kind, subject, key) DO NOTHING`,
		j.ID, j.Kind, j.Subject, j.Key, tn(j.RunAt), j.Attempts, j.LastErr)
	if err != nil {
		return dup("job", j.ID, err)
	}
	return nil
}

func (w *wtx) done(l store.Lease) error {
	res, err := w.exec(`UPDATE jobs SET done = 1, owner = '', token = '', until = 0
		WHERE id = ? AND token = ? AND token <> '' AND until > ? AND done = 0`,
		l.ID, l.Token, tn(w.now))
	return leaseResult("done", l.ID, res, err)
}

func (w *wtx) retry(r store.Retry) error {
	at := r.At
	if at.IsZero() {
		at = w.now
	}
	res, err := w.exec(`UPDATE jobs SET run_at = ?, attempts = attempts + 1, last_err = ?, owner = '', token = '', until = 0
		WHERE id = ? AND token = ? AND token <> '' AND until > ? AND done = 0`,
		tn(at), r.Err, r.Lease.ID, r.Lease.Token, tn(w.now))
	return leaseResult("retry", r.Lease.ID, res, err)
}

func leaseResult(op, id string, res sql.Result, err error) error {
	if err != nil {
		return fmt.Errorf("sqlite: %s job %s: %w", op, id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: %s job %s: %w", op, id, store.ErrLeaseLost)
	}
	return nil
}

// Lease implements store.Store. An empty kinds list means every kind.
func (s *Store) Lease(ctx context.Context, owner string, kinds []string, n int, ttl time.Duration) ([]store.Lease, error) {
	if n <= 0 {
		return nil, nil
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("sqlite: lease ttl %v: %w", ttl, store.ErrInvalid)
	}
	var out []store.Lease
	err := s.do(ctx, func(w *wtx) error {
		out = out[:0]
		now := tn(w.now)
		q := `SELECT id, kind, subject, key, run_at, attempts, last_err FROM jobs
			WHERE done = 0 AND run_at <= ? AND until <= ?`
		args := []any{now, now}
		if len(kinds) > 0 {
			q += ` AND kind IN (?` + strings.Repeat(",?", len(kinds)-1) + `)`
			for _, k := range kinds {
				args = append(args, k)
			}
		}
		q += ` ORDER BY run_at, id LIMIT ?`
		args = append(args, n)
		rows, err := w.query(q, args...)
		if err != nil {
			return fmt.Errorf("sqlite: lease: %w", err)
		}
		var jobs []store.Job
		for rows.Next() {
			var j store.Job
			var runAt int64
			if err := rows.Scan(&j.ID, &j.Kind, &j.Subject, &j.Key, &runAt, &j.Attempts, &j.LastErr); err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: lease: %w", err)
			}
			j.RunAt = nt(runAt)
			jobs = append(jobs, j)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: lease: %w", err)
		}
		until := w.now.Add(ttl)
		for _, j := range jobs {
			l := store.Lease{Job: j, Owner: owner, Token: randomID(), Until: until}
			if _, err := w.exec(`UPDATE jobs SET owner = ?, token = ?, until = ? WHERE id = ?`,
				l.Owner, l.Token, tn(l.Until), l.ID); err != nil {
				return fmt.Errorf("sqlite: lease: %w", err)
			}
			out = append(out, l)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Extend implements store.Store.
func (s *Store) Extend(ctx context.Context, l store.Lease, ttl time.Duration) (store.Lease, error) {
	if ttl <= 0 {
		return l, fmt.Errorf("sqlite: extend ttl %v: %w", ttl, store.ErrInvalid)
	}
	var until time.Time
	err := s.do(ctx, func(w *wtx) error {
		until = w.now.Add(ttl)
		res, err := w.exec(`UPDATE jobs SET until = ? WHERE id = ? AND token = ? AND token <> '' AND until > ? AND done = 0`,
			tn(until), l.ID, l.Token, tn(w.now))
		return leaseResult("extend", l.ID, res, err)
	})
	if err != nil {
		return l, err
	}
	l.Until = until
	return l, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
