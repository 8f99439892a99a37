package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/gateway/store/sqlite"
)

// BenchmarkListing measures the support queue's listings and the business
// searches on a journal the size of a large gateway: 1 M anomalies and 10 M
// invoices (200 000 lots of 50). It is opt-in: the database takes minutes
// to generate and about 5 GB of disk. The generated file is kept (in
// OCT_BENCH_DIR, default the system temp dir) and reused by later runs;
// generation is not measured.
//
//	OCT_BENCH_BIG=1 go test -run '^$' -bench BenchmarkListing -benchtime 2000x -timeout 2h ./gateway/store/sqlite/
//
// OCT_BENCH_SCALE (default 1) scales both volumes, e.g. 0.01 for a quick
// try of the code. OCT_BENCH_DB names an existing generated database to
// use as is (e.g. a copy with candidate indexes added). The sql/ ones run
// plain SQL on a read-only connection: the queries a store ordering the
// queue by SLA deadline would run (docs/benchmarks.md). Each sub-benchmark runs b.N queries with random
// parameters drawn from the generated data and reports p50-ms and p99-ms.
func BenchmarkListing(b *testing.B) {
	if os.Getenv("OCT_BENCH_BIG") == "" {
		b.Skip("set OCT_BENCH_BIG=1: generates a 1 M anomalies / 10 M invoices database (minutes, ~5 GB)")
	}
	scale := 1.0
	if v := os.Getenv("OCT_BENCH_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			b.Fatalf("OCT_BENCH_SCALE=%q", v)
		}
		scale = f
	}
	shape := bigShape(scale)
	ctx := context.Background()
	path := os.Getenv("OCT_BENCH_DB")
	if path == "" {
		var err error
		if path, err = bigDB(ctx, shape, b.Logf); err != nil {
			b.Fatal(err)
		}
	}
	raw, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := shape.now
	q, err := anomalies.New(anomalies.Options{Store: st, Clock: anomalies.ClockFunc(func() time.Time { return now })})
	if err != nil {
		b.Fatal(err)
	}

	page2 := map[string]string{} // state -> last id of page 1
	for _, s := range shape.anomalyStates {
		p, err := st.Anomalies(ctx, store.AnomalyQuery{State: s.state, Limit: 50})
		if err != nil || len(p) == 0 {
			b.Fatalf("page 1 of %s: %d, %v", s.state, len(p), err)
		}
		page2[string(s.state)] = p[len(p)-1].ID
	}

	type query struct {
		name string
		run  func(r *rand.Rand) (int, error)
	}
	anoms := func(q store.AnomalyQuery) (int, error) {
		l, err := st.Anomalies(ctx, q)
		return len(l), err
	}
	queries := []query{
		{"anomalies/state=open", func(r *rand.Rand) (int, error) {
			return anoms(store.AnomalyQuery{State: lifecycle.AnomalyOpen, Limit: 50})
		}},
		{"anomalies/state=open/page2", func(r *rand.Rand) (int, error) {
			return anoms(store.AnomalyQuery{State: lifecycle.AnomalyOpen, After: page2[string(lifecycle.AnomalyOpen)], Limit: 50})
		}},
		{"anomalies/kind+destination", func(r *rand.Rand) (int, error) {
			return anoms(store.AnomalyQuery{Kind: pick(r, shape.kinds), Destination: shape.destination(r.IntN(shape.destinations)), Limit: 50})
		}},
		{"anomalies/kind+destination+state=open", func(r *rand.Rand) (int, error) {
			return anoms(store.AnomalyQuery{Kind: pick(r, shape.kinds), Destination: shape.destination(r.IntN(shape.destinations)),
				State: lifecycle.AnomalyOpen, Limit: 50})
		}},
		{"anomalies/tenant", func(r *rand.Rand) (int, error) {
			return anoms(store.AnomalyQuery{Tenant: shape.tenant(r.IntN(shape.tenants)), Limit: 50})
		}},
		{"anomalies/tenant+state=open", func(r *rand.Rand) (int, error) {
			return anoms(store.AnomalyQuery{Tenant: shape.tenant(r.IntN(shape.tenants)), State: lifecycle.AnomalyOpen, Limit: 50})
		}},
		{"anomalies/assignee+state=assigned", func(r *rand.Rand) (int, error) {
			return anoms(store.AnomalyQuery{Assignee: shape.agent(r.IntN(shape.agents)), State: lifecycle.AnomalyAssigned, Limit: 50})
		}},
		{"anomalies/subject", func(r *rand.Rand) (int, error) {
			return anoms(store.AnomalyQuery{Subject: "lot:" + shape.lotID(r.IntN(shape.lots)), Limit: 50})
		}},
		{"invoices/number", func(r *rand.Rand) (int, error) {
			l, err := st.FindInvoices(ctx, store.InvoiceQuery{Number: shape.invoiceNumber(r.IntN(shape.lots), r.IntN(shape.perLot)), Limit: 50})
			return len(l), err
		}},
		{"invoices/tenant+number", func(r *rand.Rand) (int, error) {
			lot := r.IntN(shape.lots)
			l, err := st.FindInvoices(ctx, store.InvoiceQuery{Tenant: shape.tenant(lot % shape.tenants),
				Number: shape.invoiceNumber(lot, r.IntN(shape.perLot)), Limit: 50})
			return len(l), err
		}},
		{"invoices/pec", func(r *rand.Rand) (int, error) {
			lot := r.IntN(shape.lots) / 10 * 10 // one lot in ten carries PEC numbers
			l, err := st.FindInvoices(ctx, store.InvoiceQuery{PEC: shape.pec(lot, r.IntN(shape.perLot)), Limit: 50})
			return len(l), err
		}},
		{"lots/emitter", func(r *rand.Rand) (int, error) {
			l, err := st.Lots(ctx, store.LotQuery{Emitter: shape.emitter(r.IntN(shape.emitters)), Limit: 50})
			return len(l), err
		}},
		{"lots/emitter+number+date", func(r *rand.Rand) (int, error) {
			i := r.IntN(shape.lots)
			l, err := st.Lots(ctx, store.LotQuery{Emitter: shape.emitter(i % shape.emitters), Number: shape.lotNumber(i), Date: shape.lotDate(i), Limit: 50})
			if err == nil && len(l) == 0 {
				err = fmt.Errorf("lot %d not found by its key", i)
			}
			return len(l), err
		}},
		{"lots/emitter+number+date/invoices", func(r *rand.Rand) (int, error) {
			i := r.IntN(shape.lots)
			l, err := st.Lots(ctx, store.LotQuery{Emitter: shape.emitter(i % shape.emitters), Number: shape.lotNumber(i), Date: shape.lotDate(i), Limit: 50})
			if err != nil || len(l) == 0 {
				return 0, fmt.Errorf("lot %d: %d, %v", i, len(l), err)
			}
			inv, err := st.Invoices(ctx, l[0].ID)
			return len(inv), err
		}},
		{"queue/active", func(r *rand.Rand) (int, error) {
			l, err := q.List(ctx, anomalies.Filter{State: anomalies.StateActive, Limit: 50})
			return len(l), err
		}},
		{"queue/kind+destination/active", func(r *rand.Rand) (int, error) {
			l, err := q.List(ctx, anomalies.Filter{Kind: pick(r, shape.kinds), Destination: shape.destination(r.IntN(shape.destinations)),
				State: anomalies.StateActive, Limit: 50})
			return len(l), err
		}},
		{"queue/tenant/active", func(r *rand.Rand) (int, error) {
			l, err := q.List(ctx, anomalies.Filter{Tenant: shape.tenant(r.IntN(shape.tenants)), State: anomalies.StateActive, Limit: 50})
			return len(l), err
		}},
		{"queue/assignee/assigned", func(r *rand.Rand) (int, error) {
			l, err := q.List(ctx, anomalies.Filter{Assignee: shape.agent(r.IntN(shape.agents)), State: lifecycle.AnomalyAssigned, Limit: 50})
			return len(l), err
		}},
	}
	// bySLA lists the 50 most urgent anomalies of the given states (one
	// query per state, merged), as the queue shows them.
	bySLA := func(cond string, args []any, states ...lifecycle.State) (int, error) {
		type row struct {
			id  string
			sla int64
		}
		var all []row
		for _, st := range states {
			rows, err := raw.QueryContext(ctx, `SELECT id, kind, subject, tenant, destination, state, assignee, reason, sla, created
				FROM anomalies WHERE `+cond+` state = ? ORDER BY sla, id LIMIT 50`, append(args, string(st))...)
			if err != nil {
				return 0, err
			}
			for rows.Next() {
				var r row
				var kind, subject, tenant, dest, state, assignee, reason string
				var created int64
				if err := rows.Scan(&r.id, &kind, &subject, &tenant, &dest, &state, &assignee, &reason, &r.sla, &created); err != nil {
					rows.Close()
					return 0, err
				}
				all = append(all, r)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return 0, err
			}
		}
		slices.SortFunc(all, func(a, b row) int {
			if a.sla != b.sla {
				return int(a.sla - b.sla)
			}
			return strings.Compare(a.id, b.id)
		})
		return min(50, len(all)), nil
	}
	queries = append(queries,
		query{"sql/active-by-sla", func(r *rand.Rand) (int, error) {
			return bySLA("", nil, lifecycle.AnomalyOpen, lifecycle.AnomalyAssigned)
		}},
		query{"sql/tenant/active-by-sla", func(r *rand.Rand) (int, error) {
			return bySLA("tenant = ? AND", []any{shape.tenant(r.IntN(shape.tenants))}, lifecycle.AnomalyOpen, lifecycle.AnomalyAssigned)
		}},
		query{"sql/kind+destination/active-by-sla", func(r *rand.Rand) (int, error) {
			return bySLA("kind = ? AND destination = ? AND", []any{pick(r, shape.kinds), shape.destination(r.IntN(shape.destinations))},
				lifecycle.AnomalyOpen, lifecycle.AnomalyAssigned)
		}},
		query{"sql/assignee/assigned-by-sla", func(r *rand.Rand) (int, error) {
			return bySLA("assignee = ? AND assignee <> '' AND", []any{shape.agent(r.IntN(shape.agents))}, lifecycle.AnomalyAssigned)
		}},
		query{"sql/invoices/pec-partial-index", func(r *rand.Rand) (int, error) {
			lot := r.IntN(shape.lots) / 10 * 10
			rows, err := raw.QueryContext(ctx, `SELECT id FROM invoices WHERE pec = ? AND pec <> '' ORDER BY id LIMIT 50`, shape.pec(lot, r.IntN(shape.perLot)))
			if err != nil {
				return 0, err
			}
			n := 0
			for rows.Next() {
				n++
			}
			return n, errors.Join(rows.Err(), rows.Close())
		}},
	)
	for _, qu := range queries {
		b.Run(qu.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(7, uint64(len(qu.name))))
			lat := make([]time.Duration, 0, b.N)
			rows := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				n, err := qu.run(r)
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				rows += n
			}
			b.StopTimer()
			slices.Sort(lat)
			ms := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(ms(0.50), "p50-ms")
			b.ReportMetric(ms(0.99), "p99-ms")
			b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
		})
	}
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// shape is the generated data set: every value is a function of indexes,
// so the queries can draw existing keys without reading the database.
type shape struct {
	anomalies, lots, perLot                 int
	tenants, emitters, destinations, agents int
	kinds                                   []string
	anomalyStates                           []weighted
	now                                     time.Time
}

type weighted struct {
	state lifecycle.State
	w     float64
}

func bigShape(scale float64) shape {
	return shape{
		anomalies: int(1_000_000 * scale), lots: max(10, int(200_000*scale)), perLot: 50,
		tenants: 50, emitters: max(10, int(20_000*scale)), destinations: 100, agents: 30,
		kinds: []string{"refused-at-intake", "unroutable", "job-failed", "delivery-failed", "signature-failure",
			"arl-negative", "arl-missing-after-resend", "rsp-missing", "invoice-rejected", "orphan-return",
			"certificate-expiring", "referential-gap", "unparsable-return", "return-mismatch"},
		// A gateway that has run for a while: most anomalies are closed.
		anomalyStates: []weighted{{lifecycle.AnomalyResolved, 0.55}, {lifecycle.AnomalyHandedBack, 0.08},
			{lifecycle.AnomalyCancelled, 0.07}, {lifecycle.AnomalyOpen, 0.20}, {lifecycle.AnomalyAssigned, 0.10}},
		now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
	}
}

func (s shape) tenant(i int) string      { return fmt.Sprintf("vendor-%03d", i) }
func (s shape) emitter(i int) string     { return fmt.Sprintf("%09d", 100_000_000+i*37) }
func (s shape) destination(i int) string { return fmt.Sprintf("%02d%03d", 1+i%99, 100+i) }
func (s shape) agent(i int) string       { return fmt.Sprintf("agent-%02d", i) }
func (s shape) lotID(i int) string       { return fmt.Sprintf("01JBENCH%010d-%d", i/2, i%2) }
func (s shape) lotNumber(i int) int      { return 1 + (i/s.emitters)%999 }
func (s shape) lotDate(i int) string {
	return s.now.AddDate(0, 0, -(i*7)%365).Format(time.DateOnly)
}

// invoiceNumber is unique across the data set (9 digits, scrambled so
// that neighbours in the index are not neighbours in the lots).
func (s shape) invoiceNumber(lot, j int) string {
	n := uint64(lot*s.perLot+j)*2_654_435_761%1_000_000_007 + 1
	return fmt.Sprintf("%010d", n)
}

// pec is the PEC number of invoice j of a lot whose index is a multiple of
// ten (the others carry none).
func (s shape) pec(lot, j int) string { return fmt.Sprintf("PEC%08d%02d", lot, j) }

// bigDB returns the path of the generated database, generating it once.
// Rows are inserted with plain SQL in large transactions into the schema
// the store created (secondary indexes dropped during the load and created
// again after, as sorted builds): Commit would also write one creation event
// per record with its hash chain, which no listing reads.
func bigDB(ctx context.Context, sh shape, logf func(string, ...any)) (string, error) {
	dir := os.Getenv("OCT_BENCH_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, fmt.Sprintf("oct-listing-%d-%d-v1", sh.anomalies, sh.lots*sh.perLot))
	path := filepath.Join(dir, "oct.db")
	done := filepath.Join(dir, "complete")
	if _, err := os.Stat(done); err == nil {
		return path, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	start := time.Now()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return "", err
	}
	if err := st.Close(); err != nil {
		return "", err
	}
	db, err := sql.Open("sqlite", path+"?_pragma=synchronous(OFF)&_pragma=journal_mode(WAL)&_pragma=cache_size(-1048576)&_pragma=temp_store(MEMORY)")
	if err != nil {
		return "", err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	// Drop the secondary indexes of the loaded tables; keep their SQL.
	rows, err := conn.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('lots', 'invoices', 'anomalies')`)
	if err != nil {
		return "", err
	}
	var indexes [][2]string
	for rows.Next() {
		var n, s string
		if err := rows.Scan(&n, &s); err != nil {
			return "", err
		}
		indexes = append(indexes, [2]string{n, s})
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return "", err
	}
	for _, ix := range indexes {
		if _, err := conn.ExecContext(ctx, "DROP INDEX "+ix[0]); err != nil {
			return "", err
		}
	}
	r := rand.New(rand.NewPCG(42, 1))
	nano := func(t time.Time) int64 { return t.UnixNano() }

	// Tenants.
	err = bulk(ctx, conn, `INSERT INTO tenants(id, name, created) VALUES (?, ?, ?)`, sh.tenants, func(i int) []any {
		return []any{sh.tenant(i), sh.tenant(i), nano(sh.now)}
	})
	if err != nil {
		return "", err
	}
	// Lots, in id order; lot i belongs to tenant i%tenants and emitter i%emitters.
	lotStates := []lifecycle.State{lifecycle.LotSettled, lifecycle.LotSettled, lifecycle.LotSettled, lifecycle.LotARLPositive, lifecycle.LotSent}
	err = bulk(ctx, conn, `INSERT INTO lots(id, file, tenant, idx, emitter, number, date, destination, state, invoices, amount, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, sh.lots, func(i int) []any {
		id := sh.lotID(i)
		return []any{id, id[:len(id)-2], sh.tenant(i % sh.tenants), i % 2, sh.emitter(i % sh.emitters), sh.lotNumber(i), sh.lotDate(i),
			sh.destination(i % sh.destinations), string(lotStates[i%len(lotStates)]), sh.perLot, int64(sh.perLot) * 2500, nano(sh.now)}
	})
	if err != nil {
		return "", err
	}
	logf("lots: %d in %s", sh.lots, time.Since(start).Round(time.Second))
	// Invoices: perLot per lot, ids <lot>-<j>.
	nir := make([]byte, 32)
	err = bulk(ctx, conn, `INSERT INTO invoices(id, lot, tenant, number, nir_hash, pec, billed, amo, state, codes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sh.lots*sh.perLot, func(k int) []any {
			lot, j := k/sh.perLot, k%sh.perLot
			lid := sh.lotID(lot)
			for b := range nir {
				nir[b] = byte(r.Uint32())
			}
			pec, state, codes := "", string(lifecycle.InvoicePaid), ""
			if lot%10 == 0 {
				pec = sh.pec(lot, j)
			}
			if r.IntN(20) == 0 {
				state, codes = string(lifecycle.InvoiceRejected), `["S001"]`
			}
			return []any{lid + "-" + strconv.Itoa(j), lid, sh.tenant(lot % sh.tenants), sh.invoiceNumber(lot, j), hex.EncodeToString(nir),
				pec, 2500, 1750, state, codes}
		})
	if err != nil {
		return "", err
	}
	logf("invoices: %d in %s", sh.lots*sh.perLot, time.Since(start).Round(time.Second))
	// Anomalies: ids in creation order, spread over 90 days.
	err = bulk(ctx, conn, `INSERT INTO anomalies(id, kind, subject, tenant, destination, state, assignee, reason, sla, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, sh.anomalies, func(i int) []any {
		lot := r.IntN(sh.lots)
		state := sh.anomalyStates[len(sh.anomalyStates)-1].state
		x := r.Float64()
		for _, s := range sh.anomalyStates {
			if x < s.w {
				state = s.state
				break
			}
			x -= s.w
		}
		assignee := ""
		if state != lifecycle.AnomalyOpen && r.IntN(4) != 0 {
			assignee = sh.agent(r.IntN(sh.agents))
		}
		if state == lifecycle.AnomalyAssigned {
			assignee = sh.agent(r.IntN(sh.agents))
		}
		created := sh.now.Add(-90 * 24 * time.Hour).Add(time.Duration(i) * (90 * 24 * time.Hour / time.Duration(max(1, sh.anomalies))))
		kind := pick(r, sh.kinds)
		subject := "lot:" + sh.lotID(lot)
		if kind == "invoice-rejected" {
			subject = "invoice:" + sh.lotID(lot) + "-" + strconv.Itoa(r.IntN(sh.perLot))
		}
		return []any{fmt.Sprintf("anm-%012d", i), kind, subject, sh.tenant(lot % sh.tenants), sh.destination(r.IntN(sh.destinations)),
			string(state), assignee, "generated for the listing benchmark", nano(created.Add(time.Duration(4+r.IntN(120)) * time.Hour)), nano(created)}
	})
	if err != nil {
		return "", err
	}
	logf("anomalies: %d in %s", sh.anomalies, time.Since(start).Round(time.Second))
	for _, ix := range indexes {
		if _, err := conn.ExecContext(ctx, ix[1]); err != nil {
			return "", fmt.Errorf("%s: %w", ix[0], err)
		}
	}
	if _, err := conn.ExecContext(ctx, "ANALYZE"); err != nil {
		return "", err
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return "", err
	}
	logf("indexes and ANALYZE: %s in total", time.Since(start).Round(time.Second))
	if err := os.WriteFile(done, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// bulk inserts n rows made by row(i), 100 000 per transaction.
func bulk(ctx context.Context, c *sql.Conn, query string, n int, row func(i int) []any) error {
	for lo := 0; lo < n; lo += 100_000 {
		tx, err := c.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, query)
		if err != nil {
			_ = tx.Rollback()
			return err
		}
		for i := lo; i < min(n, lo+100_000); i++ {
			if _, err := stmt.ExecContext(ctx, row(i)...); err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("%s: row %d: %w", strings.Fields(query)[2], i, err)
			}
		}
		if err := errors.Join(stmt.Close(), tx.Commit()); err != nil {
			return err
		}
	}
	return nil
}
