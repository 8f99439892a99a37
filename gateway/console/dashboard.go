package console

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// dashCap bounds the lots read per state (and per destination for an
// insurer): beyond it the count shows "N+".
const dashCap = 1000

// chartDays is the chart's span.
const chartDays = 14

type stateCount struct {
	State    lifecycle.State
	N        int
	More     bool // at least N: the read stopped at dashCap
	Terminal bool
}

type oldestRow struct {
	Destination string
	Lot         store.Lot
	Age         time.Duration
}

type dayRow struct {
	Day                               string
	Sent, ARLPos, ARLNeg, Paid, Rejct int64
}

type bar struct {
	X, Y, W, H int
	Class      string
	Title      string
}

type chart struct {
	W, H, Base int
	Bars       []bar
	Labels     []struct {
		X    int
		Text string
	}
	Max int64
}

type dashView struct {
	States     []stateCount
	Oldest     []oldestRow
	OldestCut  bool
	Days       []dayRow
	HasDaily   bool
	DailyNote  string
	ARLNegRate string
	RejectRate string
	Chart      chart
	Unacked    []lifecycle.State
	Insurer    bool
	CountCut   bool // the time budget ran out: the states after the last row were not counted
	Budget     time.Duration
	Pending    map[string]int // jobs waiting, per kind (admin, support)
}

// unacked are the states of a lot sent and not yet acknowledged (ARL).
var unacked = []lifecycle.State{lifecycle.LotSent, lifecycle.LotResent, lifecycle.LotARLOverdue}

func (c *Console) dashboardPage(w http.ResponseWriter, r *http.Request, s reqSession) {
	v, err := c.dashboard(r.Context(), s.u())
	if err != nil {
		c.fail(w, s, err)
		return
	}
	c.render(w, http.StatusOK, "dashboard", &s, v)
}

// lotQueries are the lot queries that cover the user's scope.
func lotQueries(u user) []store.LotQuery {
	switch u.Role {
	case RoleVendor:
		return []store.LotQuery{{Tenant: u.Tenant}}
	case RoleInsurer:
		qs := make([]store.LotQuery, 0, len(u.Destinations))
		for _, d := range u.Destinations {
			qs = append(qs, store.LotQuery{Destination: d})
		}
		return qs
	}
	return []store.LotQuery{{}}
}

func (c *Console) dashboard(ctx context.Context, u user) (dashView, error) {
	v := dashView{Unacked: unacked, Insurer: u.Role == RoleInsurer, Budget: c.o.DashboardBudget}
	now := c.now()
	oldest := map[string]oldestRow{}
	// The counts are bounded reads, but a store may have to walk a
	// tenant's or a destination's index to find a rare state: the counting
	// gets a time budget, and the page says what it could not count.
	cctx, cancel := context.WithTimeout(ctx, c.o.DashboardBudget)
	defer cancel()
	for _, st := range lifecycle.For(lifecycle.Lot).States() {
		sc := stateCount{State: st, Terminal: lifecycle.IsTerminal(lifecycle.Lot, st)}
		ls, err := c.lotsIn(cctx, u, st)
		if err != nil && ctx.Err() == nil && cctx.Err() != nil {
			v.CountCut = true
			break
		}
		if err != nil {
			return v, err
		}
		sc.N, sc.More = len(ls), len(ls) > dashCap
		if sc.More {
			sc.N = dashCap
		}
		v.States = append(v.States, sc)
		if !isUnacked(st) {
			continue
		}
		v.OldestCut = v.OldestCut || sc.More
		for _, l := range ls {
			o, ok := oldest[l.Destination]
			if !ok || l.UpdatedAt.Before(o.Lot.UpdatedAt) {
				oldest[l.Destination] = oldestRow{Destination: l.Destination, Lot: l, Age: now.Sub(l.UpdatedAt)}
			}
		}
	}
	for _, o := range oldest {
		v.Oldest = append(v.Oldest, o)
	}
	if u.Global() {
		var err error
		if v.Pending, err = c.o.Store.PendingJobs(ctx); err != nil {
			return v, err
		}
	}
	sort.Slice(v.Oldest, func(i, j int) bool { return v.Oldest[i].Lot.UpdatedAt.Before(v.Oldest[j].Lot.UpdatedAt) })

	switch {
	case u.Role == RoleInsurer:
		v.DailyNote = "rates and the daily chart are kept per tenant, not per destination: not shown for an insurer scope"
	default:
		tenant := ""
		if u.Role == RoleVendor {
			tenant = u.Tenant
		}
		first := now.Truncate(24*time.Hour).AddDate(0, 0, -(chartDays - 1))
		counts, err := c.o.Store.Daily(ctx, first, tenant)
		if err != nil {
			return v, err
		}
		v.HasDaily = true
		v.Days = days(first, counts)
		v.ARLNegRate, v.RejectRate = rates(v.Days)
		v.Chart = drawChart(v.Days)
	}
	return v, nil
}

// lotsIn reads the lots of the user's scope in state st: at most
// dashCap+1 (more means "at least dashCap"; an insurer's destinations are
// read one by one, so more is per destination).
//
// A global user's read uses the store's state index. For a scoped user,
// the same bounded read of the state's index comes first, filtered here:
// when the whole state holds at most dashCap lots (every rare state) that
// is exact and cheap. Only a state common across the gateway is read by
// tenant or destination, which a store may serve by walking that index.
func (c *Console) lotsIn(ctx context.Context, u user, st lifecycle.State) ([]store.Lot, error) {
	all, err := c.o.Store.Lots(ctx, store.LotQuery{State: st, Limit: dashCap + 1})
	if err != nil {
		return nil, err
	}
	if u.Global() || len(all) <= dashCap {
		return u.filterLots(all), nil
	}
	var out []store.Lot
	for _, q := range lotQueries(u) {
		q.State, q.Limit = st, dashCap+1
		ls, err := c.o.Store.Lots(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, u.filterLots(ls)...)
	}
	return out, nil
}

func isUnacked(s lifecycle.State) bool {
	for _, x := range unacked {
		if x == s {
			return true
		}
	}
	return false
}

func days(first time.Time, counts []store.DailyCount) []dayRow {
	rows := make([]dayRow, chartDays)
	idx := map[string]int{}
	for i := range rows {
		rows[i].Day = first.AddDate(0, 0, i).Format("2006-01-02")
		idx[rows[i].Day] = i
	}
	for _, dc := range counts {
		i, ok := idx[dc.Day]
		if !ok {
			continue
		}
		d := &rows[i]
		switch {
		case dc.Kind == lifecycle.Lot && (dc.State == lifecycle.LotSent || dc.State == lifecycle.LotResent):
			d.Sent += dc.N
		case dc.Kind == lifecycle.Lot && dc.State == lifecycle.LotARLPositive:
			d.ARLPos += dc.N
		case dc.Kind == lifecycle.Lot && dc.State == lifecycle.LotARLNegative:
			d.ARLNeg += dc.N
		case dc.Kind == lifecycle.Invoice && dc.State == lifecycle.InvoicePaid:
			d.Paid += dc.N
		case dc.Kind == lifecycle.Invoice && dc.State == lifecycle.InvoiceRejected:
			d.Rejct += dc.N
		}
	}
	return rows
}

func pct(n, total int64) string {
	if total == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f %% (%d / %d)", 100*float64(n)/float64(total), n, total)
}

// rates over the chart's days: ARL-negative = negative / (positive +
// negative) ARLs; reject = rejected / (paid + rejected) invoices.
func rates(rows []dayRow) (arl, reject string) {
	var pos, neg, paid, rej int64
	for _, d := range rows {
		pos, neg, paid, rej = pos+d.ARLPos, neg+d.ARLNeg, paid+d.Paid, rej+d.Rejct
	}
	return pct(neg, pos+neg), pct(rej, paid+rej)
}

// drawChart lays out grouped bars (lots sent, ARL negative, invoices
// rejected) per day, as inline SVG: no script, nothing fetched.
func drawChart(rows []dayRow) chart {
	const groupW, barW, left, top, plotH = 48, 12, 10, 10, 160
	ch := chart{W: left*2 + groupW*len(rows), H: top + plotH + 24, Base: top + plotH}
	for _, d := range rows {
		ch.Max = max(ch.Max, d.Sent, d.ARLNeg, d.Rejct)
	}
	scale := func(n int64) int {
		if ch.Max == 0 {
			return 0
		}
		return int(n * plotH / ch.Max)
	}
	for i, d := range rows {
		x := left + i*groupW + 6
		for j, s := range []struct {
			n     int64
			class string
			what  string
		}{{d.Sent, "sent", "lots sent"}, {d.ARLNeg, "neg", "negative ARLs"}, {d.Rejct, "rej", "invoices rejected"}} {
			h := scale(s.n)
			if s.n > 0 && h == 0 {
				h = 1
			}
			ch.Bars = append(ch.Bars, bar{X: x + j*barW, Y: ch.Base - h, W: barW - 1, H: h, Class: s.class,
				Title: fmt.Sprintf("%s: %d %s", d.Day, s.n, s.what)})
		}
		ch.Labels = append(ch.Labels, struct {
			X    int
			Text string
		}{x, d.Day[5:]})
	}
	return ch
}
