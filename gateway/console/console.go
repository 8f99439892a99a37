// Package console is the operators' web console, served on the API port:
// the overview at / (tenants, files and lots by state, pending jobs, open
// anomalies) and, under /console/, the support work queue: login, queue
// with filters, anomaly pages with their history and actions, bulk actions
// and lot pages. Server-rendered HTML, no script, nothing fetched from
// elsewhere; every POST carries the session's CSRF token. See
// docs/console.md.
package console

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// Handler serves the overview at GET /.
func Handler(st store.Store, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		v, err := overview(ctx, st)
		if err != nil {
			log.Warn("console overview failed", "error", err)
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		secureHeaders(w)
		if err := overviewPage.Execute(w, v); err != nil {
			log.Warn("console render failed", "error", err)
		}
	})
}

type tenantRow struct {
	ID          string
	Files, Lots int
	FileStates  map[lifecycle.State]int
	LotStates   map[lifecycle.State]int
}

type view struct {
	Now       string
	Tenants   []tenantRow
	Pending   map[string]int
	Anomalies []store.Anomaly
}

// overview reads at most a bounded number of rows per tenant.
func overview(ctx context.Context, st store.Store) (view, error) {
	v := view{Now: time.Now().UTC().Format(time.RFC3339)}
	ts, err := st.Tenants(ctx)
	if err != nil {
		return v, err
	}
	for _, t := range ts {
		row := tenantRow{ID: t.ID, FileStates: map[lifecycle.State]int{}, LotStates: map[lifecycle.State]int{}}
		files, err := st.Files(ctx, t.ID, "", 5000)
		if err != nil {
			return v, err
		}
		for _, f := range files {
			row.Files++
			row.FileStates[f.State]++
		}
		lots, err := st.Lots(ctx, store.LotQuery{Tenant: t.ID, Limit: 5000})
		if err != nil {
			return v, err
		}
		for _, l := range lots {
			row.Lots++
			row.LotStates[l.State]++
		}
		v.Tenants = append(v.Tenants, row)
	}
	sort.Slice(v.Tenants, func(i, j int) bool { return v.Tenants[i].ID < v.Tenants[j].ID })
	if v.Pending, err = st.PendingJobs(ctx); err != nil {
		return v, err
	}
	v.Anomalies, err = st.Anomalies(ctx, store.AnomalyQuery{State: lifecycle.AnomalyOpen, Limit: 50})
	return v, err
}

var overviewPage = template.Must(template.New("console").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>OCT console</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f4f4f4}code{background:#f4f4f4;padding:0 .2em}</style>
</head><body>
<h1>OCT console</h1>
<p>Overview at {{.Now}} · <a href="/console/">support work queue</a> · <a href="/v1/openapi.yaml">API (OpenAPI)</a> · <a href="/metrics">metrics</a> · <a href="/readyz">readiness</a></p>
<h2>Tenants</h2>
<table><tr><th>tenant</th><th>files</th><th>files by state</th><th>lots</th><th>lots by state</th></tr>
{{range .Tenants}}<tr><td>{{.ID}}</td><td>{{.Files}}</td><td>{{range $s, $n := .FileStates}}<code>{{$s}}</code> {{$n}} {{end}}</td>
<td>{{.Lots}}</td><td>{{range $s, $n := .LotStates}}<code>{{$s}}</code> {{$n}} {{end}}</td></tr>
{{else}}<tr><td colspan="5">no tenant yet: <code>oct tenant add NAME</code></td></tr>{{end}}
</table>
<h2>Work in progress</h2>
<table><tr><th>job kind</th><th>pending</th></tr>
{{range $k, $n := .Pending}}<tr><td>{{$k}}</td><td>{{$n}}</td></tr>{{else}}<tr><td colspan="2">nothing pending</td></tr>{{end}}
</table>
<h2>Open anomalies</h2>
<table><tr><th>kind</th><th>subject</th><th>tenant</th><th>reason</th><th>SLA</th></tr>
{{range .Anomalies}}<tr><td>{{.Kind}}</td><td>{{.Subject}}</td><td>{{.Tenant}}</td><td>{{.Reason}}</td><td>{{.SLA.Format "2006-01-02 15:04"}}</td></tr>
{{else}}<tr><td colspan="5">none</td></tr>{{end}}
</table>
</body></html>
`))
