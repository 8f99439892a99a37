package redis

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// List limits, as in the SQLite store: a limit <= 0 means defaultLimit;
// larger ones are capped at maxLimit (page with the cursor).
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

// get reads one record hash; store.ErrNotFound if it does not exist.
func (s *Store) get(ctx context.Context, key string) (map[string]string, error) {
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	m, err := s.c.HGetAll(ctx, s.k(key)).Result()
	if err != nil {
		return nil, s.rerr("read", err)
	}
	if len(m) == 0 {
		return nil, store.ErrNotFound
	}
	return m, nil
}

// getMany reads record hashes in one round trip, skipping missing ones.
func (s *Store) getMany(ctx context.Context, keys []string) ([]map[string]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	pipe := s.c.Pipeline()
	cmds := make([]*goredis.MapStringStringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGetAll(ctx, s.k(k))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.rerr("read", err)
	}
	out := make([]map[string]string, 0, len(keys))
	for _, c := range cmds {
		if m := c.Val(); len(m) > 0 {
			out = append(out, m)
		}
	}
	return out, nil
}

// members lists members of a lexicographic index from min, up to n.
func (s *Store) members(ctx context.Context, index, min string, n int) ([]string, error) {
	ms, err := s.c.ZRangeByLex(ctx, s.k(index), &goredis.ZRangeBy{Min: min, Max: "+", Count: int64(n)}).Result()
	if err != nil {
		return nil, s.rerr("read", err)
	}
	return ms, nil
}

// idOf is the id in an index member "<padded>|<id>".
func idOf(m string) string {
	if len(m) > padLen && m[padLen] == '|' {
		return m[padLen+1:]
	}
	return m
}

// after is the ZRANGEBYLEX bound "members > id" ("-" for no cursor).
func after(id string) string {
	if id == "" {
		return "-"
	}
	return "(" + id
}

// scan pages through an index of ids from a cursor, keeping the records
// that match, until n are found or the index is exhausted.
func scan[T any](s *Store, ctx context.Context, index, rec, cursor string, n int,
	decode func(map[string]string) T, match func(T) bool) ([]T, error) {
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	n = limit(n)
	page := n
	if page < 64 {
		page = 64
	}
	var out []T
	for {
		ids, err := s.members(ctx, index, after(cursor), page)
		if err != nil {
			return nil, err
		}
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = rec + id
		}
		ms, err := s.getMany(ctx, keys)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if v := decode(m); match == nil || match(v) {
				out = append(out, v)
				if len(out) == n {
					return out, nil
				}
			}
		}
		if len(ids) < page {
			return out, nil
		}
		cursor = ids[len(ids)-1]
	}
}

// all reads every record of an ordered index ("<padded>|<id>" or id members).
func all[T any](s *Store, ctx context.Context, index, rec string, decode func(map[string]string) T) ([]T, error) {
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	ms, err := s.c.ZRangeByLex(ctx, s.k(index), &goredis.ZRangeBy{Min: "-", Max: "+"}).Result()
	if err != nil {
		return nil, s.rerr("read", err)
	}
	keys := make([]string, len(ms))
	for i, m := range ms {
		keys[i] = rec + idOf(m)
	}
	rows, err := s.getMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(rows))
	for i, m := range rows {
		out[i] = decode(m)
	}
	return out, nil
}

// --- tenants ---

// Tenant implements store.Store.
func (s *Store) Tenant(ctx context.Context, id string) (store.Tenant, error) {
	m, err := s.get(ctx, "r:ten:"+id)
	if err != nil {
		return store.Tenant{}, err
	}
	return tenantFrom(m), nil
}

// TenantByToken implements store.Store.
func (s *Store) TenantByToken(ctx context.Context, tokenHash string) (store.Tenant, error) {
	if err := s.start(ctx); err != nil {
		return store.Tenant{}, err
	}
	if tokenHash == "" {
		return store.Tenant{}, store.ErrNotFound
	}
	id, err := s.c.HGet(ctx, s.k("u:tok"), tokenHash).Result()
	if err != nil {
		return store.Tenant{}, s.rerr("read", err)
	}
	return s.Tenant(ctx, id)
}

// Tenants implements store.Store (every tenant, by id).
func (s *Store) Tenants(ctx context.Context) ([]store.Tenant, error) {
	return all(s, ctx, "i:ten", "r:ten:", tenantFrom)
}

// --- files ---

// File implements store.Store.
func (s *Store) File(ctx context.Context, id string) (store.File, error) {
	m, err := s.get(ctx, "r:file:"+id)
	if err != nil {
		return store.File{}, err
	}
	return fileFrom(m), nil
}

// Files implements store.Store: files with ID > after, by ID; an empty
// tenant lists every tenant's files.
func (s *Store) Files(ctx context.Context, tenant, after string, n int) ([]store.File, error) {
	index := "i:file"
	var match func(store.File) bool
	if tenant != "" {
		index = "i:file:t:" + tenant
		match = func(f store.File) bool { return f.Tenant == tenant }
	}
	return scan(s, ctx, index, "r:file:", after, n, fileFrom, match)
}

// --- lots ---

// Lot implements store.Store.
func (s *Store) Lot(ctx context.Context, id string) (store.Lot, error) {
	m, err := s.get(ctx, "r:lot:"+id)
	if err != nil {
		return store.Lot{}, err
	}
	return lotFrom(m), nil
}

// Lots implements store.Store, by ID. It walks the most selective index
// among file, emitter, tenant, destination and state (or every lot) and
// filters the records on the other fields.
func (s *Store) Lots(ctx context.Context, q store.LotQuery) ([]store.Lot, error) {
	index := "i:lot"
	switch {
	case q.Ref != "":
		index = "i:lot:r:" + q.Ref
	case q.PEC != "":
		index = "i:lot:p:" + q.PEC
	case q.File != "":
		index = "i:lot:f:" + q.File
	case q.Emitter != "":
		index = "i:lot:e:" + q.Emitter
	case q.Tenant != "":
		index = "i:lot:t:" + q.Tenant
	case q.Destination != "":
		index = "i:lot:d:" + q.Destination
	case q.State != "":
		index = "i:lot:S:" + string(q.State)
	}
	match := func(l store.Lot) bool {
		return (q.Tenant == "" || l.Tenant == q.Tenant) && (q.File == "" || l.File == q.File) &&
			(q.Emitter == "" || l.Emitter == q.Emitter) && (q.Number == 0 || l.Number == q.Number) &&
			(q.Date == "" || l.Date == q.Date) && (q.Destination == "" || l.Destination == q.Destination) &&
			(q.State == "" || l.State == q.State) && (q.Ref == "" || l.Ref == q.Ref) && (q.PEC == "" || l.PEC == q.PEC) &&
			(q.Flow == "" || l.Flow == q.Flow || (q.Flow == store.FlowB2 && l.Flow == ""))
	}
	return scan(s, ctx, index, "r:lot:", q.After, q.Limit, lotFrom, match)
}

// --- invoices, attempts, expectations ---

// Invoices implements store.Store, by ID.
func (s *Store) Invoices(ctx context.Context, lot string) ([]store.Invoice, error) {
	return all(s, ctx, "i:inv:l:"+lot, "r:inv:", invoiceFrom)
}

// FindInvoices implements store.Store, by ID.
func (s *Store) FindInvoices(ctx context.Context, q store.InvoiceQuery) ([]store.Invoice, error) {
	index := "i:inv:n:" + q.Number
	switch {
	case q.Number == "" && q.PEC == "":
		return nil, fmt.Errorf("redis: find invoices: a number or a PEC number is required: %w", store.ErrInvalid)
	case q.Number == "":
		index = "i:inv:p:" + q.PEC
	}
	match := func(i store.Invoice) bool {
		return (q.Tenant == "" || i.Tenant == q.Tenant) && (q.Number == "" || i.Number == q.Number) &&
			(q.PEC == "" || i.PEC == q.PEC)
	}
	return scan(s, ctx, index, "r:inv:", q.After, q.Limit, invoiceFrom, match)
}

// Daily implements store.Store: one hash per day, read from since to today
// (at most maxDays days).
func (s *Store) Daily(ctx context.Context, since time.Time, tenant string) ([]store.DailyCount, error) {
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	const maxDays = 400
	today := s.now().UTC().Truncate(24 * time.Hour)
	day := since.UTC().Truncate(24 * time.Hour)
	if today.Sub(day) > maxDays*24*time.Hour {
		day = today.Add(-maxDays * 24 * time.Hour)
	}
	pipe := s.c.Pipeline()
	var days []string
	var cmds []*goredis.MapStringStringCmd
	for ; !day.After(today); day = day.Add(24 * time.Hour) {
		d := day.Format(time.DateOnly)
		days = append(days, d)
		cmds = append(cmds, pipe.HGetAll(ctx, s.k("c:day:"+d)))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, s.rerr("read", err)
	}
	var out []store.DailyCount
	for i, cmd := range cmds {
		for field, v := range cmd.Val() {
			k := strings.LastIndexByte(field, '|')
			if k < 0 {
				continue
			}
			j := strings.LastIndexByte(field[:k], '|')
			if j < 0 || (tenant != "" && field[:j] != tenant) {
				continue
			}
			n, _ := strconv.ParseInt(v, 10, 64)
			out = append(out, store.DailyCount{Day: days[i], Tenant: field[:j], Kind: lifecycle.Kind(field[j+1 : k]),
				State: lifecycle.State(field[k+1:]), N: n})
		}
	}
	sort.Slice(out, func(a, b int) bool {
		x, y := out[a], out[b]
		if x.Day != y.Day {
			return x.Day < y.Day
		}
		if x.Tenant != y.Tenant {
			return x.Tenant < y.Tenant
		}
		if x.Kind != y.Kind {
			return x.Kind < y.Kind
		}
		return x.State < y.State
	})
	return out, nil
}

// Attempts implements store.Store, by start time then ID.
func (s *Store) Attempts(ctx context.Context, lot string) ([]store.Attempt, error) {
	return all(s, ctx, "i:att:l:"+lot, "r:att:", attemptFrom)
}

// Expectations implements store.Store, by due time then ID.
func (s *Store) Expectations(ctx context.Context, lot string) ([]store.Expectation, error) {
	return all(s, ctx, "i:exp:l:"+lot, "r:exp:", expectationFrom)
}

// DueExpectations implements store.Store, by due time then ID. The due
// index holds only unsatisfied, unfired expectations.
func (s *Store) DueExpectations(ctx context.Context, t time.Time, n int) ([]store.Expectation, error) {
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	max := "(" + padInt(t.UnixNano()+1)
	if t.IsZero() {
		max = "(" + padInt(1)
	}
	ms, err := s.c.ZRangeByLex(ctx, s.k("i:exp:due"), &goredis.ZRangeBy{Min: "-", Max: max, Count: int64(limit(n))}).Result()
	if err != nil {
		return nil, s.rerr("read", err)
	}
	keys := make([]string, len(ms))
	for i, m := range ms {
		keys[i] = "r:exp:" + idOf(m)
	}
	rows, err := s.getMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]store.Expectation, 0, len(rows))
	for _, m := range rows {
		if e := expectationFrom(m); e.SatisfiedBy == "" && !e.Fired {
			out = append(out, e)
		}
	}
	return out, nil
}

// --- returns ---

// Return implements store.Store.
func (s *Store) Return(ctx context.Context, id string) (store.Return, error) {
	m, err := s.get(ctx, "r:ret:"+id)
	if err != nil {
		return store.Return{}, err
	}
	return returnFrom(m), nil
}

// Returns implements store.Store: the tenant's feed index holds
// "<padded seq>|<id>".
func (s *Store) Returns(ctx context.Context, tenant string, after int64, n int) ([]store.Return, error) {
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	if after < 0 {
		after = 0
	}
	ms, err := s.members(ctx, "i:ret:t:"+tenant, "["+padInt(after+1), limit(n))
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(ms))
	for i, m := range ms {
		keys[i] = "r:ret:" + idOf(m)
	}
	rows, err := s.getMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make([]store.Return, len(rows))
	for i, m := range rows {
		out[i] = returnFrom(m)
	}
	return out, nil
}

// --- anomalies ---

// Anomaly implements store.Store.
func (s *Store) Anomaly(ctx context.Context, id string) (store.Anomaly, error) {
	m, err := s.get(ctx, "r:an:"+id)
	if err != nil {
		return store.Anomaly{}, err
	}
	return anomalyFrom(m), nil
}

// Anomalies implements store.Store, by ID (an index walk filtered like Lots).
func (s *Store) Anomalies(ctx context.Context, q store.AnomalyQuery) ([]store.Anomaly, error) {
	index := "i:an"
	switch {
	case q.Subject != "":
		index = "i:an:s:" + q.Subject
	case q.Assignee != "":
		index = "i:an:a:" + q.Assignee
	case q.Tenant != "":
		index = "i:an:t:" + q.Tenant
	case q.Kind != "":
		index = "i:an:k:" + q.Kind
	case q.Destination != "":
		index = "i:an:d:" + q.Destination
	case q.State != "":
		index = "i:an:S:" + string(q.State)
	}
	match := func(a store.Anomaly) bool {
		return (q.Tenant == "" || a.Tenant == q.Tenant) && (q.Kind == "" || a.Kind == q.Kind) &&
			(q.Destination == "" || a.Destination == q.Destination) && (q.Assignee == "" || a.Assignee == q.Assignee) &&
			(q.State == "" || a.State == q.State) && (q.Subject == "" || a.Subject == q.Subject)
	}
	if !q.BySLA {
		return scan(s, ctx, index, "r:an:", q.After, q.Limit, anomalyFrom, match)
	}
	// No index is ordered by deadline here: every match is read, then
	// sorted (cost grows with the backlog; docs/store-redis.md).
	var all []store.Anomaly
	for after := ""; ; {
		page, err := scan(s, ctx, index, "r:an:", after, maxLimit, anomalyFrom, match)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < maxLimit {
			break
		}
		after = page[len(page)-1].ID
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].SLA.Equal(all[j].SLA) {
			return all[i].SLA.Before(all[j].SLA)
		}
		return all[i].ID < all[j].ID
	})
	out := all[:0]
	for _, a := range all {
		if q.After != "" && (a.SLA.Before(q.AfterSLA) || (a.SLA.Equal(q.AfterSLA) && a.ID <= q.After)) {
			continue
		}
		out = append(out, a)
		if len(out) == limit(q.Limit) {
			break
		}
	}
	return out, nil
}

// --- events ---

// events reads events by sequence number, stopping at the first missing one.
func (s *Store) events(ctx context.Context, seqs []string) ([]store.Event, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	vals, err := s.c.HMGet(ctx, s.k("log:ev"), seqs...).Result()
	if err != nil {
		return nil, s.rerr("read events", err)
	}
	out := make([]store.Event, 0, len(vals))
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			break
		}
		e, err := decodeEvent(str)
		if err != nil {
			return nil, fmt.Errorf("redis: event %s: %w", seqs[i], err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, subject string) ([]store.Event, error) {
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	seqs, err := s.c.LRange(ctx, s.k("i:evs:"+subject), 0, -1).Result()
	if err != nil {
		return nil, s.rerr("read events", err)
	}
	return s.events(ctx, seqs)
}

// EventsAfter implements store.Store. Sequence numbers have no gaps (a
// script that fails writes nothing), so the page is the fields
// after+1..after+n of the log hash.
func (s *Store) EventsAfter(ctx context.Context, after int64, n int) ([]store.Event, error) {
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	if after < 0 {
		after = 0
	}
	n = limit(n)
	seqs := make([]string, n)
	for i := range seqs {
		seqs[i] = strconv.FormatInt(after+1+int64(i), 10)
	}
	return s.events(ctx, seqs)
}

// --- jobs ---

// PendingJobs implements store.Store: jobs not done (waiting or leased).
func (s *Store) PendingJobs(ctx context.Context) (map[string]int, error) {
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	m, err := s.c.HGetAll(ctx, s.k("c:pending")).Result()
	if err != nil {
		return nil, s.rerr("read", err)
	}
	out := make(map[string]int, len(m))
	for k, v := range m {
		if n := atoi(v); n > 0 {
			out[k] = n
		}
	}
	return out, nil
}
