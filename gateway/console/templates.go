package console

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/gateway/store"
)

var funcs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04")
	},
	"age": func(d time.Duration) string {
		switch {
		case d < time.Hour:
			return fmt.Sprintf("%d min", int(d/time.Minute))
		case d < 48*time.Hour:
			return fmt.Sprintf("%d h %02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
		}
		return fmt.Sprintf("%d d %d h", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	},
	// short masks a hash (NIR hashes, sha256): its first 8 characters.
	"short": func(s string) string {
		if len(s) <= 8 {
			return s
		}
		return s[:8] + "…"
	},
	"cents": func(c int64) string {
		sign := ""
		if c < 0 {
			sign, c = "-", -c
		}
		return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
	},
	"mask": anomalies.MaskNIR,
	"dec":  func(n uint64) uint64 { return n - 1 },
	"flows": func() []string {
		return []string{"", store.FlowB2, store.FlowCertificate, store.FlowPEC, store.FlowSCOR}
	},
	"join": strings.Join,
	"lotof": func(subject string) string {
		if id, ok := strings.CutPrefix(subject, "lot:"); ok {
			return id
		}
		return ""
	},
	"fileof": func(subject string) string {
		if id, ok := strings.CutPrefix(subject, "file:"); ok {
			return id
		}
		return ""
	},
}

const layout = `{{define "layout"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>OCT console</title>
<style>
body{font:14px system-ui,sans-serif;margin:0;color:#222}
header{background:#1d3557;color:#fff;padding:.5em 1.5em;display:flex;gap:1.5em;align-items:center}
header a{color:#fff}header form{margin-left:auto}
main{padding:1em 1.5em}
table{border-collapse:collapse;margin:.8em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f1f3f5}tr.overdue td{background:#fff0f0}.overdue-tag{color:#b00020;font-weight:bold}
form.inline{display:inline}fieldset{margin:.6em 0;border:1px solid #ccc}legend{font-weight:bold}
.msg{padding:.5em;background:#e8f5e9;border:1px solid #a5d6a7}.err{padding:.5em;background:#ffebee;border:1px solid #ef9a9a}
code{background:#f1f3f5;padding:0 .2em}.filters label{margin-right:.8em}
ol.timeline{list-style:none;padding:0;border-left:3px solid #1d3557;margin-left:.5em}ol.timeline li{margin:0 0 .4em;padding-left:.8em;position:relative}
ol.timeline li::before{content:"";position:absolute;left:-.45em;top:.35em;width:.6em;height:.6em;border-radius:50%;background:#1d3557}
ol.timeline li.anomaly::before{background:#b00020}ol.timeline li.return::before{background:#2e7d32}ol.timeline li.expect::before{background:#999}
ol.timeline time{color:#555;font-variant-numeric:tabular-nums;margin-right:.6em}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ccc;padding:.6em 1em;min-width:12em}.card strong{font-size:1.4em;display:block}
svg .sent{fill:#1d3557}svg .neg{fill:#b00020}svg .rej{fill:#f4a261}svg text{font:10px system-ui,sans-serif;fill:#555}.legend span{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 1em}
</style></head><body>
<header><strong>OCT console</strong>{{if .Agent}}<a href="/console/dashboard">dashboard</a><a href="/console/search">search</a><a href="/console/">anomalies</a>{{if .CanAct}}<a href="/console/bulk" id="nav-bulk">bulk actions</a>{{end}}<a href="/console/referentials">referentials</a>
<form method="post" action="/console/logout"><input type="hidden" name="csrf" value="{{.CSRF}}"><span id="agent">{{.Agent}}</span> <small id="role" data-role="{{.Role}}">({{.Role}}, {{.Scope}})</small> <button>log out</button></form>{{end}}</header>
<main>{{template "body" .}}</main>
<footer style="padding:0 1.5em;color:#777">{{.Now}}</footer>
</body></html>{{end}}`

const filterFields = `{{define "filters"}}
<label>kind <select name="kind"><option value="">any</option>{{range .Kinds}}<option{{if eq . $.Filter.Kind}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<label>tenant <input name="tenant" value="{{.Filter.Tenant}}" size="10"></label>
<label>destination <input name="destination" value="{{.Filter.Destination}}" size="10"></label>
<label>state <select name="state">{{range .States}}<option{{if eq . $.Filter.State}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<label>assignee <input name="assignee" value="{{.Filter.Assignee}}" size="10"></label>
<label>older than <input name="age" value="{{.Filter.Age}}" size="4"> h</label>
{{end}}`

const itemRows = `{{define "items"}}
<table id="queue"><tr><th>anomaly</th><th>kind</th><th>subject</th><th>tenant</th><th>destination</th><th>state</th><th>assignee</th><th>age</th><th>SLA</th><th>reason</th></tr>
{{range $it := .}}<tr{{if .Overdue}} class="overdue"{{end}}><td><a href="/console/anomaly/{{.ID}}">{{.ID}}</a></td><td>{{.Kind}}</td>
<td>{{with .Lot}}<a href="/console/lot/{{.}}">{{$it.Subject}}</a>{{else}}{{with fileof .Subject}}<a href="/console/file/{{.}}">{{$it.Subject}}</a>{{else}}{{.Subject}}{{end}}{{end}}</td>
<td>{{.Tenant}}</td><td>{{.Destination}}</td><td>{{.State}}</td><td>{{.Assignee}}</td><td>{{age .Age}}</td>
<td>{{ts .Due}}{{if .Overdue}} <span class="overdue-tag">overdue</span>{{end}}</td><td>{{mask .Reason}}</td></tr>
{{else}}<tr><td colspan="10">nothing matches</td></tr>{{end}}</table>{{end}}`

var pageBodies = map[string]string{
	"error": `{{define "body"}}<h1>Error</h1><p class="err" id="error">{{.Data}}</p><p><a href="/console/">back to the queue</a></p>{{end}}`,

	"login": `{{define "body"}}<h1>Log in</h1>{{with .Data.Error}}<p class="err" id="error">{{.}}</p>{{end}}
<form method="post" action="/console/login"><input type="hidden" name="next" value="{{.Data.Next}}">
<p><label>agent <input name="name" id="name" autocomplete="username" required></label></p>
<p><label>password <input name="password" id="password" type="password" autocomplete="current-password" required></label></p>
<p><button id="login">log in</button></p></form>{{end}}`,

	"queue": `{{define "body"}}{{with .Data}}<h1>Work queue</h1>
<form method="get" action="/console/" class="filters" id="filters">{{template "filters" .}}<button id="filter">filter</button>
{{if $.CanAct}}<a href="/console/bulk?{{.Filter.Query}}">bulk action on this filter</a>{{end}}</form>
<p id="count">{{len .Items}} anomal{{if eq (len .Items) 1}}y{{else}}ies{{end}}{{if .Limited}} (first {{len .Items}} by SLA; narrow the filter){{end}}, most urgent first</p>
{{template "items" .Items}}{{end}}{{end}}`,

	"anomaly": `{{define "body"}}{{$csrf := .CSRF}}{{with .Data}}{{$id := .ID}}<h1>Anomaly <code id="anomaly-id">{{.ID}}</code></h1>
{{with .Done}}<p class="msg" id="done" data-done="{{.}}">{{.}}</p>{{end}}{{with .Err}}<p class="err" id="error">{{.}}</p>{{end}}
<table><tr><th>kind</th><td>{{.Kind}}</td></tr><tr><th>subject</th><td>{{with .Lot}}<a href="/console/lot/{{.ID}}">{{$.Data.Subject}}</a>{{else}}{{with fileof .Subject}}<a href="/console/file/{{.}}">{{$.Data.Subject}}</a>{{else}}{{.Subject}}{{end}}{{end}}</td></tr>
<tr><th>tenant</th><td>{{.Tenant}}</td></tr><tr><th>destination</th><td>{{.Destination}}</td></tr>
<tr><th>state</th><td id="state">{{.State}}</td></tr><tr><th>assignee</th><td id="assignee">{{.Assignee}}</td></tr>
<tr><th>reason</th><td>{{mask .Reason}}</td></tr><tr><th>created</th><td>{{ts .Created}} ({{age .Age}} ago)</td></tr>
<tr><th>SLA deadline</th><td>{{ts .Due}}{{if .Overdue}} <span class="overdue-tag">overdue</span>{{end}}</td></tr>
{{with .Lot}}<tr><th>lot</th><td>{{.ID}}: émetteur {{.Emitter}}, number {{printf "%03d" .Number}}, state <code>{{.State}}</code>, {{.Invoices}} invoice(s), {{cents .Amount}} €</td></tr>{{end}}
</table>

<h2>History</h2>
<table id="history"><tr><th>time</th><th>actor</th><th>event</th><th>detail</th></tr>
{{range .History}}<tr><td>{{ts .Time}}</td><td>{{.Actor}}</td><td>{{if eq .Type "transition"}}{{if .From}}{{.From}} → {{end}}{{.To}}{{else}}{{.Type}}{{end}}</td><td>{{mask .Reason}}</td></tr>{{end}}
</table>

{{if $.CanAct}}<h2>Actions</h2>{{$active := or (eq .State "open") (eq .State "assigned")}}
{{if $active}}<fieldset><legend>Assign</legend>
<form method="post" action="/console/anomaly/{{$id}}/assign" class="inline"><input type="hidden" name="csrf" value="{{$csrf}}">
<select name="agent" id="agent-select"><option value="auto">automatic (rules)</option>{{range .Agents}}<option>{{.}}</option>{{end}}</select>
<button id="assign">assign</button></form>
{{if eq .State "assigned"}}<form method="post" action="/console/anomaly/{{$id}}/unassign" class="inline"><input type="hidden" name="csrf" value="{{$csrf}}"><button>unassign</button></form>{{end}}
</fieldset>{{end}}
<fieldset><legend>Comment</legend>
<form method="post" action="/console/anomaly/{{$id}}/comment"><input type="hidden" name="csrf" value="{{$csrf}}">
<textarea name="text" id="comment-text" rows="3" cols="70" maxlength="4000" required></textarea><br><button id="comment">add comment</button>
<small>Never write a NIR or a patient's name: NIR-like numbers are masked.</small></form></fieldset>
{{if $active}}{{with .Lot}}<fieldset><legend>Lot</legend>
<form method="post" action="/console/anomaly/{{$id}}/resend" class="inline"><input type="hidden" name="csrf" value="{{$csrf}}">
<input type="hidden" name="action_id" value="{{$.Data.ActionID}}"><button id="resend">send the lot again</button></form>
{{if or (eq .State "arl_negative") (eq .State "to_rebuild")}}
<form method="post" action="/console/anomaly/{{$id}}/rebuild"><input type="hidden" name="csrf" value="{{$csrf}}">
<input type="hidden" name="action_id" value="{{$.Data.ActionID}}">
<p>Rebuild without the ticked invoices (a new lot number is given):</p>
<table><tr><th>leave out</th><th>invoice</th><th>state</th><th>codes</th><th>billed</th><th>NIR (hash)</th></tr>
{{range $.Data.Invoices}}<tr><td><input type="checkbox" name="drop" value="{{.Number}}"{{if .Suggested}} checked{{end}}></td><td>{{.Number}}</td><td>{{.State}}</td><td>{{join .Codes " "}}</td><td>{{cents .Billed}}</td><td><code>{{short .NIRHash}}</code></td></tr>{{end}}
</table><button id="rebuild">rebuild the lot</button></form>{{end}}
</fieldset>{{end}}
<fieldset><legend>Close</legend>
<form method="post" action="/console/anomaly/{{$id}}/resolve" id="close-form"><input type="hidden" name="csrf" value="{{$csrf}}">
<label>reason <select name="code" id="code">{{range .Codes}}<option>{{.}}</option>{{end}}</select></label>
<label>note <input name="note" id="note" size="40"></label>
<button id="resolve">resolve</button>
<button formaction="/console/anomaly/{{$id}}/handback" id="handback">hand back to the vendor</button>
<button formaction="/console/anomaly/{{$id}}/cancel" id="cancel">cancel</button>
{{with .Lot}}<label><input type="checkbox" name="lot_too" value="1"> cancel the lot too</label>{{end}}
</form></fieldset>{{end}}
{{if eq .State "handed_back"}}<form method="post" action="/console/anomaly/{{$id}}/notify"><input type="hidden" name="csrf" value="{{$csrf}}"><button>notify the vendor again</button></form>{{end}}
{{end}}{{end}}{{end}}`,

	"bulk": `{{define "body"}}{{$csrf := .CSRF}}{{with .Data}}<h1>Bulk action</h1>
{{if .Result}}{{with .Result}}<p class="msg" id="result">{{$.Data.Request.Action}}: {{.Done}} done, {{.Skipped}} skipped, {{.Failed}} failed (action <code>{{$.Data.Request.ID}}</code>)</p>
<table><tr><th>anomaly</th><th>lot</th><th>outcome</th><th>detail</th></tr>
{{range .Items}}<tr><td><a href="/console/anomaly/{{.Anomaly}}">{{.Anomaly}}</a></td><td>{{with .Lot}}<a href="/console/lot/{{.}}">{{.}}</a>{{end}}</td><td>{{.Outcome}}</td><td>{{mask .Detail}}</td></tr>{{end}}</table>
<p><a href="/console/bulk?{{$.Data.Filter.Query}}">back to this filter</a></p>{{end}}{{else}}
<form method="get" action="/console/bulk" class="filters"><fieldset><legend>1. Filter</legend>{{template "filters" .}}
<label>preview at most <input name="limit" value="{{.Limit}}" size="4"></label> <button id="preview">count and preview</button></fieldset></form>
<p id="count" data-filter="{{.Filter.Query}}"><strong>{{.Count}}</strong> anomal{{if eq .Count 1}}y matches{{else}}ies match{{end}}; the first {{len .Preview}} below are those the action takes, in this order.</p>
{{template "items" .Preview}}
{{if .Preview}}<form method="post" action="/console/bulk"><fieldset><legend>2. Confirm</legend>
<input type="hidden" name="csrf" value="{{$csrf}}"><input type="hidden" name="action_id" value="{{.ActionID}}">
<input type="hidden" name="kind" value="{{.Filter.Kind}}"><input type="hidden" name="tenant" value="{{.Filter.Tenant}}">
<input type="hidden" name="destination" value="{{.Filter.Destination}}"><input type="hidden" name="state" value="{{.Filter.State}}">
<input type="hidden" name="assignee" value="{{.Filter.Assignee}}"><input type="hidden" name="age" value="{{.Filter.Age}}">
<label>action <select name="action" id="bulk-action">{{range .Actions}}<option>{{.}}</option>{{end}}</select></label>
<label>agent (assign) <select name="agent">{{range .Agents}}<option>{{.}}</option>{{end}}</select></label>
<label>reason <select name="code">{{range .Codes}}<option>{{.}}</option>{{end}}</select></label>
<label>note <input name="note" size="30"></label>
<label>limit <input name="limit" value="{{len .Preview}}" size="4"></label>
<label><input type="checkbox" name="confirm" value="yes" id="confirm"> I checked the preview</label>
<button id="execute">execute</button>
<p><small>Running the same confirmation twice acts once per anomaly (action <code>{{.ActionID}}</code>); each item is recorded in the audit log.</small></p>
</fieldset></form>{{end}}{{end}}{{end}}{{end}}`,

	"lot": `{{define "body"}}{{with .Data}}<h1>Lot <code id="lot-id">{{.Lot.ID}}</code></h1>
<p>File <a href="/console/file/{{.Lot.File}}">{{.Lot.File}}</a>{{if .FileVisible}} ({{.File.Name}}, {{.File.Channel}}, received {{ts .File.ReceivedAt}}, <code>{{.File.State}}</code>, sha256 <code>{{short .File.SHA256}}</code>){{end}}
→ lots: {{range .Siblings}}<a href="/console/lot/{{.ID}}">{{.ID}}</a> <code>{{.State}}</code> · {{end}}</p>
{{if .Raw}}<p><a href="/console/lot/{{.Lot.ID}}/raw" id="raw-lot">download the lot file</a> <small>(holds personal data; the download is recorded)</small></p>{{end}}
<table id="lot"><tr><th>tenant</th><td>{{.Lot.Tenant}}</td><th>émetteur</th><td>{{.Lot.Emitter}}</td><th>number</th><td>{{printf "%03d" .Lot.Number}}</td><th>date</th><td>{{.Lot.Date}}</td></tr>
<tr><th>destination</th><td>{{.Lot.Destination}}</td><th>referential</th><td>{{.Lot.RefVersion}}</td><th>state</th><td id="lot-state">{{.Lot.State}}</td><th>amount</th><td>{{cents .Lot.Amount}} €</td></tr>
<tr><th>flow</th><td id="lot-flow">{{or .Lot.Flow "b2"}}</td><th>reference</th><td>{{.Lot.Ref}}</td><th>status</th><td id="lot-status">{{.Lot.Status}}</td><th>PEC</th><td>{{.Lot.PEC}}</td></tr>
<tr><th>replaces</th><td>{{with .Lot.Replaces}}<a href="/console/lot/{{.}}">{{.}}</a>{{end}}</td><th>rebuilt as</th><td colspan="5">{{range .ReplacedBy}}<a href="/console/lot/{{.ID}}">{{.ID}}</a> {{end}}</td></tr></table>
<h2>Timeline</h2><ol class="timeline" id="timeline">
{{range .Timeline}}<li class="{{.Class}}"><time>{{ts .Time}}</time><strong>{{.What}}</strong>{{with .Actor}} · {{.}}{{end}}{{with .Detail}} · {{.}}{{end}}</li>{{else}}<li>nothing yet</li>{{end}}</ol>
{{if or .Linked .LinkedInvs}}<h2>Linked</h2><table id="linked"><tr><th>lot</th><th>flow</th><th>reference</th><th>state</th><th>status</th><th>PEC</th></tr>
{{range .Linked}}<tr><td><a href="/console/lot/{{.ID}}">{{.ID}}</a></td><td>{{or .Flow "b2"}}</td><td>{{.Ref}}</td><td>{{.State}}</td><td>{{.Status}}</td><td>{{.PEC}}</td></tr>{{end}}
{{range .LinkedInvs}}<tr><td><a href="/console/lot/{{.Lot}}">{{.Lot}}</a></td><td>b2 invoice {{.Number}}</td><td>PEC {{.PEC}}</td><td>{{.State}}</td><td>{{join .Codes " "}}</td><td>{{cents .Billed}} €</td></tr>{{end}}</table>{{end}}
<h2>Invoices</h2><table id="invoices"><tr><th>id</th><th>number</th><th>state</th><th>codes</th><th>billed</th><th>AMO</th><th>AMC</th><th>NIR (hash)</th></tr>
{{range .Invoices}}<tr><td>{{.ID}}</td><td>{{.Number}}</td><td>{{.State}}</td><td>{{join .Codes " "}}</td><td>{{cents .Billed}}</td><td>{{cents .AMO}}</td><td>{{cents .AMCPart}}</td><td><code>{{short .NIRHash}}</code></td></tr>{{end}}</table>
<h2>Send attempts</h2><table id="attempts"><tr><th>id</th><th>destination</th><th>resend</th><th>started</th><th>ended</th><th>outcome</th><th>message</th><th>detail</th></tr>
{{range .Attempts}}<tr><td>{{.ID}}</td><td>{{.Destination}}</td><td>{{.Resend}}</td><td>{{ts .Started}}</td><td>{{ts .Ended}}</td><td>{{.Outcome}}</td><td>{{.MessageID}}</td><td>{{mask .Detail}}</td></tr>{{else}}<tr><td colspan="8">none</td></tr>{{end}}</table>
<h2>Expected returns</h2><table><tr><th>id</th><th>kind</th><th>due</th><th>satisfied by</th><th>fired</th></tr>
{{range .Expectations}}<tr><td>{{.ID}}</td><td>{{.Kind}}</td><td>{{ts .DueAt}}</td><td>{{.SatisfiedBy}}</td><td>{{.Fired}}</td></tr>{{else}}<tr><td colspan="5">none</td></tr>{{end}}</table>
<h2>Returns</h2><table id="returns"><tr><th>id</th><th>kind</th><th>received</th><th>blob</th></tr>
{{range .Returns}}<tr><td>{{.ID}}</td><td>{{.Kind}}</td><td>{{ts .Received}}</td><td><code>{{short .Blob}}</code></td></tr>{{else}}<tr><td colspan="4">none</td></tr>{{end}}</table>
{{if .ReturnsCut}}<p>Only the tenant's latest returns were searched.</p>{{end}}
<h2>Anomalies</h2><table><tr><th>anomaly</th><th>kind</th><th>state</th><th>reason</th></tr>
{{range .Anomalies}}<tr><td><a href="/console/anomaly/{{.ID}}">{{.ID}}</a></td><td>{{.Kind}}</td><td>{{.State}}</td><td>{{mask .Reason}}</td></tr>{{else}}<tr><td colspan="4">none</td></tr>{{end}}</table>
{{end}}{{end}}`,

	"file": `{{define "body"}}{{with .Data}}<h1>File <code>{{.File.ID}}</code></h1>
{{if .Raw}}<p><a href="/console/file/{{.File.ID}}/raw" id="raw-file">download the file as received</a> <small>(holds personal data; the download is recorded)</small></p>{{end}}
{{if .Own}}<table><tr><th>tenant</th><td>{{.File.Tenant}}</td></tr><tr><th>name</th><td>{{.File.Name}}</td></tr><tr><th>channel</th><td>{{.File.Channel}}</td></tr>
<tr><th>format</th><td>{{.File.Format}}</td></tr><tr><th>received</th><td>{{ts .File.ReceivedAt}}</td></tr><tr><th>state</th><td>{{.File.State}}</td></tr>
<tr><th>sha256</th><td><code>{{short .File.SHA256}}</code></td></tr><tr><th>size</th><td>{{.File.Size}} bytes</td></tr></table>{{else}}<p>Only the lots addressed to your destinations are shown.</p>{{end}}
<h2>Lots</h2><table id="lots"><tr><th>lot</th><th>émetteur</th><th>number</th><th>destination</th><th>state</th><th>invoices</th><th>amount</th></tr>
{{range .Lots}}<tr><td><a href="/console/lot/{{.ID}}">{{.ID}}</a></td><td>{{.Emitter}}</td><td>{{printf "%03d" .Number}}</td><td>{{.Destination}}</td><td>{{.State}}</td><td>{{.Invoices}}</td><td>{{cents .Amount}}</td></tr>{{end}}</table>
{{end}}{{end}}`,
}

var pages = func() map[string]*template.Template {
	m := map[string]*template.Template{}
	all := map[string]string{}
	for name, body := range pageBodies {
		all[name] = body
	}
	for name, body := range morePages {
		all[name] = body
	}
	for name, body := range all {
		t := template.Must(template.New(name).Funcs(funcs).Parse(layout))
		template.Must(t.Parse(filterFields))
		template.Must(t.Parse(itemRows))
		m[name] = template.Must(t.Parse(body))
	}
	return m
}()
