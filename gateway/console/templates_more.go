package console

// morePages: the dashboard, search and referentials pages.
var morePages = map[string]string{
	"dashboard": `{{define "body"}}{{with .Data}}<h1>Dashboard</h1>
<h2>Lots by state</h2>
<table id="states"><tr><th>state</th><th>lots</th></tr>
{{range .States}}<tr data-state="{{.State}}"><td><code>{{.State}}</code>{{if .Terminal}} <small>(final)</small>{{end}}</td><td class="n">{{.N}}{{if .More}}+{{end}}</td></tr>{{end}}</table>
{{if .CountCut}}<p class="err" id="count-cut">Counting stopped after {{.Budget}}: the states not listed were not counted.</p>{{end}}
<h2>Oldest unacknowledged lot per destination</h2>
<p><small>Lots {{range $i, $s := .Unacked}}{{if $i}}, {{end}}<code>{{$s}}</code>{{end}} (sent, no ARL yet).</small></p>
<table id="oldest"><tr><th>destination</th><th>lot</th><th>state</th><th>since</th><th>waiting</th></tr>
{{range .Oldest}}<tr><td>{{.Destination}}</td><td><a href="/console/lot/{{.Lot.ID}}">{{.Lot.ID}}</a></td><td>{{.Lot.State}}</td><td>{{ts .Lot.UpdatedAt}}</td><td>{{age .Age}}</td></tr>
{{else}}<tr><td colspan="5">none: every lot sent is acknowledged</td></tr>{{end}}</table>
{{if .OldestCut}}<p><small>Many lots wait: only the oldest {{len .Oldest}} destinations among the first lots read are shown.</small></p>{{end}}
{{if .Pending}}<h2>Work in progress</h2>
<table id="pending"><tr><th>job kind</th><th>waiting</th></tr>{{range $k, $n := .Pending}}<tr><td>{{$k}}</td><td>{{$n}}</td></tr>{{end}}</table>{{end}}
<h2>Last 14 days</h2>
{{if .HasDaily}}<div class="cards"><div class="card">ARL-negative rate<strong id="arl-rate">{{.ARLNegRate}}</strong><small>negative / (positive + negative) ARLs</small></div>
<div class="card">invoice reject rate<strong id="reject-rate">{{.RejectRate}}</strong><small>rejected / (paid + rejected) invoices</small></div></div>
<p class="legend"><span style="background:#1d3557"></span>lots sent <span style="background:#b00020"></span>negative ARLs <span style="background:#f4a261"></span>invoices rejected</p>
{{with .Chart}}<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="daily activity, last 14 days">
<line x1="0" y1="{{.Base}}" x2="{{.W}}" y2="{{.Base}}" stroke="#999"/>
{{range .Bars}}<rect class="{{.Class}}" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"><title>{{.Title}}</title></rect>{{end}}
{{range .Labels}}<text x="{{.X}}" y="{{$.Data.Chart.H}}" dy="-6">{{.Text}}</text>{{end}}
<text x="4" y="12">max {{.Max}}</text></svg>{{end}}
<table id="days"><tr><th>day</th><th>lots sent</th><th>ARL +</th><th>ARL −</th><th>invoices paid</th><th>rejected</th></tr>
{{range .Days}}<tr><td>{{.Day}}</td><td>{{.Sent}}</td><td>{{.ARLPos}}</td><td>{{.ARLNeg}}</td><td>{{.Paid}}</td><td>{{.Rejct}}</td></tr>{{end}}</table>
{{else}}<p id="daily-note">{{.DailyNote}}</p>{{end}}
{{end}}{{end}}`,

	"search": `{{define "body"}}{{with .Data}}<h1>Search</h1>
<form method="get" action="/console/search" class="filters" id="search">
<fieldset><legend>Lot</legend>
<label>PS / émetteur <input name="emitter" id="q-emitter" value="{{.Form.Emitter}}" size="10"></label>
<label>lot number <input name="number" id="q-number" value="{{.Form.Number}}" size="4"></label>
<label>date <input name="date" id="q-date" value="{{.Form.Date}}" size="10" placeholder="YYYY-MM-DD"></label>
<label>destination <input name="destination" id="q-destination" value="{{.Form.Destination}}" size="10"></label>
{{if .Global}}<label>tenant <input name="tenant" value="{{.Form.Tenant}}" size="10"></label>{{end}}
<label>flow <select name="flow" id="q-flow">{{range $f := flows}}<option value="{{$f}}"{{if eq $f $.Data.Form.Flow}} selected{{end}}>{{or $f "any"}}</option>{{end}}</select></label>
<label>reference <input name="ref" id="q-ref" value="{{.Form.Ref}}" size="14"></label>
<label>PEC number <input name="pec" id="q-pec" value="{{.Form.PEC}}" size="12"></label></fieldset>
<fieldset><legend>By id</legend>
<label>lot id <input name="lot" id="q-lot" value="{{.Form.Lot}}" size="14"></label>
<label>file id <input name="file" id="q-file" value="{{.Form.File}}" size="14"></label>
<label>invoice number <input name="invoice" id="q-invoice" value="{{.Form.Invoice}}" size="10"></label></fieldset>
<button id="search-go">search</button></form>
{{with .Note}}<p class="err">{{.}}</p>{{end}}
{{if .Searched}}<p id="hits">{{len .Hits}} lot(s){{with .Files}}, {{len .}} file(s){{end}}{{if .Limited}} (the first {{len .Hits}}: narrow the search){{end}}</p>
{{with .Files}}<table id="files"><tr><th>file</th><th>tenant</th><th>name</th><th>received</th><th>state</th></tr>
{{range .}}<tr><td><a href="/console/file/{{.ID}}">{{.ID}}</a></td><td>{{.Tenant}}</td><td>{{.Name}}</td><td>{{ts .ReceivedAt}}</td><td>{{.State}}</td></tr>{{end}}</table>{{end}}
<table id="results"><tr><th>lot</th><th>tenant</th><th>émetteur</th><th>number</th><th>date</th><th>destination</th><th>flow</th><th>reference</th><th>state</th><th>status</th><th>invoices</th><th>amount</th><th>invoice</th></tr>
{{range .Hits}}<tr><td><a href="/console/lot/{{.ID}}">{{.ID}}</a></td><td>{{.Tenant}}</td><td>{{.Emitter}}</td><td>{{printf "%03d" .Number}}</td><td>{{.Date}}</td><td>{{.Destination}}</td><td>{{or .Flow "b2"}}</td><td>{{.Ref}}</td><td>{{.State}}</td><td>{{.Status}}</td><td>{{.Invoices}}</td><td>{{cents .Amount}}</td><td>{{.Invoice}}</td></tr>
{{else}}<tr><td colspan="13">nothing found</td></tr>{{end}}</table>{{end}}
{{end}}{{end}}`,

	"referentials": `{{define "body"}}{{with .Data}}<h1>Referentials</h1>
{{if not .Configured}}<p id="ref-note">The referential is not configured on this node.</p>{{else}}
<form method="get" action="/console/referentials" class="filters"><label>diff from <input name="from" id="ref-from" value="{{.From}}" size="4"></label>
<label>to <input name="to" id="ref-to" value="{{.To}}" size="4"></label> <button id="ref-diff">show the diff</button> <small>(version 0 = empty)</small></form>
{{with .Diff}}<h2>Diff {{.From}} → {{.To}}</h2>
<table id="ref-counts"><tr><th>table</th><th>change</th><th>entries</th></tr>{{range $.Data.Counts}}<tr><td>{{.Table}}</td><td>{{.Op}}</td><td>{{.N}}</td></tr>{{else}}<tr><td colspan="3">no change</td></tr>{{end}}</table>
<table id="ref-changes"><tr><th>table</th><th>key</th><th>change</th><th>before</th><th>after</th></tr>
{{range $.Data.Changes}}<tr><td>{{.Table}}</td><td><code>{{.Key}}</code></td><td>{{.Op}}</td><td>{{with .Before}}<code>{{printf "%s" .}}</code>{{end}}</td><td>{{with .After}}<code>{{printf "%s" .}}</code>{{end}}</td></tr>{{end}}</table>
{{if $.Data.Cut}}<p>Only the first {{len $.Data.Changes}} changes are listed.</p>{{end}}{{end}}
<h2>Versions</h2><table id="ref-versions"><tr><th>version</th><th>imported</th><th>source</th><th>tables</th><th>entries</th><th>sha256</th><th></th></tr>
{{range .Versions}}<tr><td>{{.ID}}</td><td>{{ts .ImportedAt}}</td><td>{{.Source}}</td><td>{{range .Tables}}{{.}} {{end}}</td><td>{{range $t, $n := .Counts}}{{$t}} {{$n}} {{end}}</td><td><code>{{short .SHA256}}</code></td>
<td>{{if gt .ID 0}}<a href="/console/referentials?from={{dec .ID}}&amp;to={{.ID}}">diff with {{dec .ID}}</a>{{end}}</td></tr>{{else}}<tr><td colspan="7">no version imported yet</td></tr>{{end}}</table>
{{end}}{{end}}{{end}}`,
}
