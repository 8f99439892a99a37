package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// CreateFile implements store.Store.
func (s *Store) CreateFile(ctx context.Context, f store.File, then *store.Change) (store.File, bool, error) {
	if f.ID == "" || f.Tenant == "" || f.SHA256 == "" {
		return store.File{}, false, fmt.Errorf("redis: create file: id, tenant and sha256 are required: %w", store.ErrInvalid)
	}
	if then == nil {
		then = &store.Change{}
	}
	if err := store.ValidateChange(then); err != nil {
		return store.File{}, false, err
	}
	if err := s.start(ctx); err != nil {
		return store.File{}, false, err
	}
	var out store.File
	existing, err := s.write(ctx, then, &f, &out)
	if err != nil {
		return store.File{}, false, err
	}
	if existing != "" {
		got, err := s.File(ctx, existing)
		if err != nil {
			return store.File{}, false, err
		}
		return got, false, nil
	}
	return out, true, nil
}

// Commit implements store.Store.
func (s *Store) Commit(ctx context.Context, c *store.Change) error {
	if c == nil {
		return nil
	}
	if err := store.ValidateChange(c); err != nil {
		return err
	}
	if err := s.start(ctx); err != nil {
		return err
	}
	_, err := s.write(ctx, c, nil, nil)
	return err
}

// recordKinds maps a lifecycle kind to the key family of its records and
// the prefix of its state index ("" if none).
var recordKinds = map[lifecycle.Kind]struct{ rec, stateIx string }{
	lifecycle.File:    {"r:file:", ""},
	lifecycle.Lot:     {"r:lot:", "i:lot:S:"},
	lifecycle.Invoice: {"r:inv:", ""},
	lifecycle.Anomaly: {"r:an:", "i:an:S:"},
}

func recKey(kind lifecycle.Kind, id string) string { return recordKinds[kind].rec + id }

// opInfo says what an operation of the script was about, to turn its error
// code into a typed error.
type opInfo struct {
	what, id string
	err      error // lifecycle error for ILLEGAL
}

// plan is the script call for one write attempt.
type plan struct {
	args []any
	ops  []opInfo
	head head
	evs  []store.Event
}

type head struct {
	seq  int64
	hash string
}

func (p *plan) op(info opInfo, args ...any) {
	p.ops = append(p.ops, info)
	p.args = append(p.args, args...)
}

// pairs appends a counted list of pairs.
func pairs(kv []string) []any {
	out := make([]any, 0, len(kv)+1)
	out = append(out, strconv.Itoa(len(kv)/2))
	for _, v := range kv {
		out = append(out, v)
	}
	return out
}

// write applies c (after creating file when not nil) with one script call,
// recomputing when another writer moved the log head in between. It
// returns the id of an existing file when CreateFile found one.
func (s *Store) write(ctx context.Context, c *store.Change, file *store.File, created *store.File) (string, error) {
	select {
	case s.wsem <- struct{}{}:
	case <-s.quit:
		return "", store.ErrClosed
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.wsem }()
	if s.closed.Load() {
		return "", store.ErrClosed
	}

	// The records whose existence decides creation events.
	var keys []string
	if file != nil {
		keys = append(keys, recKey(lifecycle.File, file.ID))
	}
	for _, f := range c.Files {
		keys = append(keys, recKey(lifecycle.File, f.ID))
	}
	for _, l := range c.Lots {
		keys = append(keys, recKey(lifecycle.Lot, l.ID))
	}
	for _, i := range c.Invoices {
		keys = append(keys, recKey(lifecycle.Invoice, i.ID))
	}
	for _, a := range c.Anomalies {
		keys = append(keys, recKey(lifecycle.Anomaly, a.ID))
	}
	for attempt := 0; ; attempt++ {
		if attempt >= s.retries {
			return "", fmt.Errorf("redis: write: log head still moving after %d attempts", attempt)
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		h, exists, err := s.preread(ctx, keys)
		if err != nil {
			return "", err
		}
		p, err := s.build(c, file, created, h, exists)
		if err != nil {
			return "", err
		}
		res, err := applyScript.Run(ctx, s.c, []string{s.k("log:head")}, p.args...).Slice()
		if err != nil {
			return "", s.rerr("apply", err)
		}
		if len(res) == 0 {
			return "", fmt.Errorf("redis: apply: empty reply")
		}
		switch res[0] {
		case "OK":
			return "", nil
		case "EXISTS":
			return fmt.Sprint(res[1]), nil
		case "RETRY":
			s.conflicts.Add(1)
			continue
		case "ERR":
			return "", p.fail(res)
		default:
			return "", fmt.Errorf("redis: apply: unexpected reply %v", res)
		}
	}
}

// preread reads the log head and whether each key exists, in one round trip.
func (s *Store) preread(ctx context.Context, keys []string) (head, map[string]bool, error) {
	pipe := s.c.Pipeline()
	hc := pipe.HMGet(ctx, s.k("log:head"), "seq", "hash")
	ex := make([]*goredis.IntCmd, len(keys))
	for i, k := range keys {
		ex[i] = pipe.Exists(ctx, s.k(k))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return head{}, nil, s.rerr("read", err)
	}
	h := head{hash: store.GenesisHash}
	if v := hc.Val(); len(v) == 2 && v[0] != nil && v[1] != nil {
		h.seq, _ = strconv.ParseInt(fmt.Sprint(v[0]), 10, 64)
		h.hash = fmt.Sprint(v[1])
	}
	exists := make(map[string]bool, len(keys))
	for i, k := range keys {
		exists[k] = ex[i].Val() == 1
	}
	return h, exists, nil
}

// fail turns an ERR reply into a typed error.
func (p *plan) fail(res []any) error {
	code := fmt.Sprint(res[1])
	n, _ := strconv.Atoi(fmt.Sprint(res[2]))
	info := opInfo{what: "change"}
	if n >= 1 && n <= len(p.ops) {
		info = p.ops[n-1]
	}
	switch code {
	case "ILLEGAL":
		if info.err != nil {
			return fmt.Errorf("redis: %s %s: %w", info.what, info.id, info.err)
		}
		return fmt.Errorf("redis: %s %s: %w", info.what, info.id, lifecycle.ErrIllegal)
	case "CONFLICT":
		cur := ""
		if len(res) > 3 {
			cur = fmt.Sprint(res[3])
		}
		return fmt.Errorf("redis: %s %s is %q: %w", info.what, info.id, cur, store.ErrConflict)
	case "NOTFOUND":
		return fmt.Errorf("redis: %s %s: %w", info.what, info.id, store.ErrNotFound)
	case "DUP":
		return fmt.Errorf("redis: %s %s: %w", info.what, info.id, store.ErrDuplicate)
	case "LOST":
		return fmt.Errorf("redis: job %s: %w", info.id, store.ErrLeaseLost)
	}
	return fmt.Errorf("redis: apply: unknown error code %q", code)
}

// build makes the script call for c from the head and existence just read.
func (s *Store) build(c *store.Change, file *store.File, created *store.File, h head, exists map[string]bool) (*plan, error) {
	now := s.now().UTC()
	nowPad := pad(now)
	p := &plan{head: h}
	p.args = []any{s.p, nowPad, strconv.FormatInt(h.seq, 10), h.hash, now.Format(time.DateOnly)}
	seen := map[string]bool{}
	// existed reports whether the record exists before this put: as read,
	// or because an earlier put of this change created it.
	existed := func(key string) bool {
		if seen[key] {
			return true
		}
		seen[key] = true
		return exists[key]
	}
	creation := func(kind lifecycle.Kind, id string, st lifecycle.State, actor string) {
		p.evs = append(p.evs, store.Event{Subject: string(kind) + ":" + id, Type: "transition", To: st,
			Actor: actor, Reason: "created"})
	}
	// stateful is a P operation of a record with a lifecycle.
	stateful := func(kind lifecycle.Kind, id string, st lifecycle.State, mustNew bool, ux, ix, fields []string, actor string) {
		key := recKey(kind, id)
		e := existed(key)
		initErr := lifecycle.Check(kind, "", st)
		expect := b01(e)
		args := []any{"P", key, id, expect, b01(initErr == nil), string(st), recordKinds[kind].stateIx, b01(mustNew), ""}
		args = append(args, pairs(ux)...)
		args = append(args, pairs(ix)...)
		args = append(args, pairs(fields)...)
		p.op(opInfo{what: "new " + string(kind), id: id, err: initErr}, args...)
		if !e && initErr == nil {
			creation(kind, id, st, actor)
		}
	}
	plain := func(what, key, id, seqIx string, ux, ix, fields []string) {
		args := []any{"P", key, id, "-", "-", "", "", "0", seqIx}
		args = append(args, pairs(ux)...)
		args = append(args, pairs(ix)...)
		args = append(args, pairs(fields)...)
		p.op(opInfo{what: what, id: id}, args...)
	}
	nonEmpty := func(kv ...string) []string { // pairs whose value part is not empty
		var out []string
		for i := 0; i < len(kv); i += 3 {
			if kv[i+1] != "" {
				out = append(out, kv[i], kv[i+2])
			}
		}
		return out
	}
	fileOp := func(f store.File, mustNew bool, actor string) store.File {
		if f.ReceivedAt.IsZero() {
			f.ReceivedAt = now
		}
		f.ReceivedAt = f.ReceivedAt.UTC()
		ux := nonEmpty("u:fsha", f.SHA256, f.Tenant+"\x00"+f.SHA256, "u:fidem", f.IdemKey, f.Tenant+"\x00"+f.IdemKey)
		ix := []string{"i:file", f.ID, "i:file:t:" + f.Tenant, f.ID}
		stateful(lifecycle.File, f.ID, f.State, mustNew, ux, ix, fileFields(f), actor)
		return f
	}

	if file != nil {
		p.op(opInfo{what: "file", id: file.ID}, "C", file.Tenant, file.SHA256, file.IdemKey, file.ID)
		*created = fileOp(*file, true, c.Actor)
	}
	for _, t := range c.Tenants {
		if t.Created.IsZero() {
			t.Created = now
		}
		ux := nonEmpty("u:tok", t.TokenHash, t.TokenHash)
		plain("tenant", "r:ten:"+t.ID, t.ID, "", ux, []string{"i:ten", t.ID}, tenantFields(t))
	}
	for _, f := range c.Files {
		fileOp(f, false, c.Actor)
	}
	for _, l := range c.Lots {
		if l.UpdatedAt.IsZero() {
			l.UpdatedAt = now
		}
		ix := append([]string{"i:lot", l.ID}, nonEmpty(
			"i:lot:f:"+l.File, l.File, l.ID,
			"i:lot:t:"+l.Tenant, l.Tenant, l.ID,
			"i:lot:e:"+l.Emitter, l.Emitter, l.ID,
			"i:lot:d:"+l.Destination, l.Destination, l.ID,
			"i:lot:r:"+l.Ref, l.Ref, l.ID,
			"i:lot:p:"+l.PEC, l.PEC, l.ID)...)
		stateful(lifecycle.Lot, l.ID, l.State, false, nil, ix, lotFields(l), c.Actor)
	}
	for _, i := range c.Invoices {
		ix := append([]string{"i:inv:l:" + i.Lot, i.ID}, nonEmpty(
			"i:inv:n:"+i.Number, i.Number, i.ID,
			"i:inv:p:"+i.PEC, i.PEC, i.ID)...)
		stateful(lifecycle.Invoice, i.ID, i.State, false, nil, ix, invoiceFields(i), c.Actor)
	}
	for _, a := range c.Attempts {
		plain("attempt", "r:att:"+a.ID, a.ID, "", nil, []string{"i:att:l:" + a.Lot, pad(a.Started) + "|" + a.ID},
			attemptFields(a))
	}
	for _, e := range c.Expectations {
		m := pad(e.DueAt) + "|" + e.ID
		ix := []string{"i:exp:l:" + e.Lot, m}
		if e.SatisfiedBy == "" && !e.Fired {
			ix = append(ix, "i:exp:due", m)
		}
		plain("expectation", "r:exp:"+e.ID, e.ID, "", nil, ix, expectationFields(e))
	}
	for _, r := range c.Returns {
		if r.Received.IsZero() {
			r.Received = now
		}
		plain("return", "r:ret:"+r.ID, r.ID, "i:ret:t:"+r.Tenant, nil, nil, returnFields(r))
	}
	for _, a := range c.Anomalies {
		if a.Created.IsZero() {
			a.Created = now
		}
		ix := append([]string{"i:an", a.ID}, nonEmpty(
			"i:an:t:"+a.Tenant, a.Tenant, a.ID,
			"i:an:k:"+a.Kind, a.Kind, a.ID,
			"i:an:d:"+a.Destination, a.Destination, a.ID,
			"i:an:a:"+a.Assignee, a.Assignee, a.ID,
			"i:an:s:"+a.Subject, a.Subject, a.ID)...)
		stateful(lifecycle.Anomaly, a.ID, a.State, false, nil, ix, anomalyFields(a), c.Actor)
	}
	for _, t := range c.Transitions {
		err := lifecycle.Check(t.Kind, t.From, t.To)
		p.op(opInfo{what: string(t.Kind), id: t.ID, err: err},
			"X", recKey(t.Kind, t.ID), t.ID, b01(err == nil), string(t.From), string(t.To), b01(t.Kind == lifecycle.Lot))
		actor := t.Actor
		if actor == "" {
			actor = c.Actor
		}
		p.evs = append(p.evs, store.Event{Subject: string(t.Kind) + ":" + t.ID, Type: "transition",
			From: t.From, To: t.To, Actor: actor, Reason: t.Reason})
	}
	for _, e := range c.Events {
		if e.Actor == "" {
			e.Actor = c.Actor
		}
		p.evs = append(p.evs, store.Event{Subject: e.Subject, Type: e.Type, From: e.From, To: e.To,
			Actor: e.Actor, Reason: e.Reason, Data: e.Data})
	}
	for _, j := range c.Enqueue {
		if j.ID == "" {
			j.ID = randomID()
		}
		if j.RunAt.IsZero() {
			j.RunAt = now
		}
		p.op(opInfo{what: "job", id: j.ID},
			"J", j.ID, j.Kind, j.Subject, j.Key, pad(j.RunAt), strconv.Itoa(j.Attempts), j.LastErr)
	}
	for _, l := range c.Done {
		p.op(opInfo{what: "job", id: l.ID}, "D", l.ID, l.Token)
	}
	for _, r := range c.Retry {
		at := r.At
		if at.IsZero() {
			at = now
		}
		p.op(opInfo{what: "job", id: r.Lease.ID}, "Y", r.Lease.ID, r.Lease.Token, pad(at), r.Err)
	}
	// Chain the events after the head.
	prev, seq := h.hash, h.seq
	for _, e := range p.evs {
		seq++
		e.Seq, e.Time, e.PrevHash = seq, now, prev
		e.Hash = store.EventHash(prev, e)
		p.op(opInfo{what: "event", id: strconv.FormatInt(seq, 10)},
			"E", strconv.FormatInt(seq, 10), e.Subject, e.Hash, encodeEvent(e))
		prev = e.Hash
	}
	return p, nil
}
