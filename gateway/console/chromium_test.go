package console_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/anomalies/anomaliestest"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/internal/testenv"
)

func css(s string) chromedp.CSS { return chromedp.CSS(s) }

// browserHelpers returns, for the Chromium tab ctx, steps (run actions,
// fail the test with what they were for) and text (the text of the first
// element matching a CSS selector).
func browserHelpers(t *testing.T, ctx context.Context) (steps func(what string, a ...chromedp.Action[chromedp.Void]), text func(sel string) string) {
	steps = func(what string, a ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, a...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text = func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	return steps, text
}

// TestBrowser drives the console in headless Chromium as an agent would:
// log in, filter the queue, open an anomaly, assign it, comment, resolve,
// and take a screenshot (see artifactDir).
func TestBrowser(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Chromium(t, 0)
	steps, text := browserHelpers(t, ctx)
	steps("log in",
		chromedp.EmulateViewport(1280, 1000),
		chromedp.Navigate(e.srv.URL+"/console/"),
		chromedp.WaitVisible(css("#login")),
		chromedp.SendKeys(css("#name"), "alice"),
		chromedp.SendKeys(css("#password"), "secret-alice"),
		chromedp.Click(css("#login")),
		chromedp.WaitVisible(css("#filters")),
	)
	steps("filter the queue",
		chromedp.SetValue(css(`select[name="kind"]`), "delivery-failed"),
		chromedp.Click(css("#filter")),
		chromedp.WaitNotPresent(css(`a[href="/console/anomaly/A1"]`)),
		chromedp.WaitVisible(css(`a[href="/console/anomaly/A2"]`)),
	)
	queue := text("#queue")
	steps("open the anomaly",
		chromedp.Click(css(`a[href="/console/anomaly/A2"]`)),
		chromedp.WaitVisible(css("#anomaly-id")),
	)
	steps("assign",
		chromedp.SetValue(css("#agent-select"), "bob"),
		chromedp.Click(css("#assign")),
		chromedp.WaitVisible(css(`#done[data-done="assigned to bob"]`)),
	)
	assignee := text("#assignee")
	steps("comment",
		chromedp.SendKeys(css("#comment-text"), "CPAM called back: endpoint fixed"),
		chromedp.Click(css("#comment")),
		chromedp.WaitVisible(css(`#done[data-done="comment added"]`)),
	)
	history := text("#history")
	steps("resolve",
		chromedp.SetValue(css("#code"), "fixed"),
		chromedp.SendKeys(css("#note"), "endpoint back"),
		chromedp.Click(css("#resolve")),
		chromedp.WaitVisible(css(`#done[data-done="resolved"]`)),
	)
	state := text("#state")
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(queue, "A2") || strings.Contains(queue, "A1") || strings.Contains(queue, "A3") {
		t.Fatalf("filtered queue: %q", queue)
	}
	if strings.TrimSpace(assignee) != "bob" {
		t.Fatalf("assignee %q", assignee)
	}
	if !strings.Contains(history, "CPAM called back") {
		t.Fatalf("history %q", history)
	}
	if strings.TrimSpace(state) != "resolved" {
		t.Fatalf("state %q", state)
	}
	a, err := e.f.Store.Anomaly(e.f.Ctx, "A2")
	if err != nil || a.State != lifecycle.AnomalyResolved || a.Assignee != "bob" {
		t.Fatalf("%+v %v", a, err)
	}
	saveShot(t, artifactDir(t), "console-anomaly.png", shot)
}

// artifactDir is where the browser tests keep their screenshots:
// $OCT_ARTIFACTS (or the older $OCT_SCREENSHOTS) when set, else the
// test's temporary directory. The path is logged.
func artifactDir(t *testing.T) string {
	t.Helper()
	for _, v := range []string{"OCT_ARTIFACTS", "OCT_SCREENSHOTS"} {
		if dir := os.Getenv(v); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			return dir
		}
	}
	return t.TempDir()
}

// saveShot checks that shot is a PNG and writes it as an artifact.
func saveShot(t *testing.T, dir, name string, shot []byte) {
	t.Helper()
	if len(shot) < 1000 || !bytes.HasPrefix(shot, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("%s: not a PNG (%d bytes)", name, len(shot))
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// TestBrowserRoles drives the console in headless Chromium through the
// issue's scenario: a support agent logs in, finds a lot with the search
// by business keys, runs a bulk resend through count → preview → confirm,
// and runs the same confirmation again (each lot is resent once); then a
// vendor sees its own lot but gets 404 for another tenant's, has no bulk
// page and no raw download; an insurer sees only its destination's lots.
// Screenshots of each step are saved (artifactDir).
func TestBrowserRoles(t *testing.T) {
	e := newEnv(t)
	// two more lots of beta whose delivery failed: with A2, three anomalies
	// of kind delivery-failed for the bulk resend
	for _, id := range []string{"L4", "L5"} {
		e.f.NewLot(anomaliestest.LotSpec{ID: id, Tenant: "beta", Destination: "CPAM-130", Number: 4}, lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotDeliveryFailed)
		e.f.Anomaly("A"+id[1:], anomalies.KindDeliveryFailed, "lot:"+id, "beta", "CPAM-130", 4*time.Hour)
	}
	ctx := testenv.Chromium(t, 0)
	steps, text := browserHelpers(t, ctx)
	dir := artifactDir(t)
	shot := func(name string) {
		t.Helper()
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		saveShot(t, dir, name, b)
	}
	status := func(path string) int64 {
		t.Helper()
		resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(e.srv.URL+path))
		if err != nil {
			t.Fatalf("navigate %s: %v", path, err)
		}
		return resp.Status
	}
	present := func(sel string) bool {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Nodes(css(sel), chromedp.AtLeast(0)))
		if err != nil {
			t.Fatalf("nodes %s: %v", sel, err)
		}
		return len(n) > 0
	}
	login := func(name string) {
		t.Helper()
		e.f.Clock.Advance(2 * time.Minute)
		steps("log in as "+name,
			chromedp.Navigate(e.srv.URL+"/"),
			chromedp.WaitVisible(css("#login")),
			chromedp.SendKeys(css("#name"), name),
			chromedp.SendKeys(css("#password"), "secret-"+name),
			chromedp.Click(css("#login")),
			chromedp.WaitVisible(css("#states")), // GET / → dashboard → login → back to the dashboard
		)
	}
	logout := func() {
		t.Helper()
		steps("log out", chromedp.Click(css(`form[action="/console/logout"] button`)), chromedp.WaitVisible(css("#login")))
	}
	em := emitter(e)
	steps("viewport", chromedp.EmulateViewport(1280, 1000))

	// --- support ---
	login("alice")
	if role := text("#role"); !strings.Contains(role, "support") {
		t.Fatalf("role shown: %q", role)
	}
	shot("support-dashboard.png")
	steps("find a lot by PS number, lot number and date",
		chromedp.Click(css(`header a[href="/console/search"]`)),
		chromedp.WaitVisible(css("#search")),
		chromedp.SendKeys(css("#q-emitter"), em),
		chromedp.SendKeys(css("#q-number"), "2"),
		chromedp.SendKeys(css("#q-date"), "2026-03-02"),
		chromedp.Click(css("#search-go")),
		chromedp.WaitVisible(css(`#results a[href="/console/lot/L3"]`)),
	)
	if hits := text("#hits"); !strings.HasPrefix(hits, "1 lot") {
		t.Fatalf("search hits: %q", hits)
	}
	shot("support-search.png")
	steps("open the lot", chromedp.Click(css(`#results a[href="/console/lot/L3"]`)), chromedp.WaitVisible(css("#timeline")))
	if tl := text("#timeline"); !strings.Contains(tl, "signed → sent") || !strings.Contains(tl, "send to CPAM-130: ok") {
		t.Fatalf("timeline: %q", tl)
	}
	shot("support-lot.png")
	steps("referential versions and a diff",
		chromedp.Click(css(`header a[href="/console/referentials"]`)),
		chromedp.WaitVisible(css("#ref-versions")),
		chromedp.Click(css(`a[href="/console/referentials?from=1&to=2"]`)),
		chromedp.WaitVisible(css("#ref-counts")),
	)
	if counts := text("#ref-counts"); !strings.Contains(counts, "amc\tremoved\t1") {
		t.Fatalf("referential diff: %q", counts)
	}
	shot("support-referentials.png")
	steps("bulk: count and preview",
		chromedp.Click(css("#nav-bulk")),
		chromedp.WaitVisible(css("#preview")),
		chromedp.SetValue(css(`select[name="kind"]`), "delivery-failed"),
		chromedp.Click(css("#preview")),
		chromedp.WaitVisible(css(`#count[data-filter*="kind=delivery-failed"]`)), // the new page, not the old one
		chromedp.WaitVisible(css("#execute")),
	)
	if c := text("#count"); !strings.HasPrefix(c, "3 anomalies match") {
		t.Fatalf("count: %q", c)
	}
	actionID, err := chromedp.Run(ctx, chromedp.Value(css(`input[name="action_id"]`)))
	if err != nil || actionID == "" {
		t.Fatalf("action id %q %v", actionID, err)
	}
	shot("support-bulk-preview.png")
	steps("bulk: confirm the resend",
		chromedp.SetValue(css("#bulk-action"), "resend"),
		chromedp.Click(css("#confirm")),
		chromedp.Click(css("#execute")),
		chromedp.WaitVisible(css("#result")),
	)
	if r := text("#result"); !strings.HasPrefix(r, "resend: 3 done, 0 skipped, 0 failed") {
		t.Fatalf("first run: %q", r)
	}
	shot("support-bulk-done.png")
	// the same confirmation submitted again (a double click, a retry):
	// the form of the preview with the same action id
	steps("bulk: the same confirmation again",
		chromedp.Navigate(e.srv.URL+"/console/bulk?kind=delivery-failed"),
		chromedp.WaitVisible(css("#execute")),
		chromedp.SetValue(css(`input[name="action_id"]`), actionID),
		chromedp.SetValue(css("#bulk-action"), "resend"),
		chromedp.Click(css("#confirm")),
		chromedp.Click(css("#execute")),
		chromedp.WaitVisible(css("#result")),
	)
	if r := text("#result"); !strings.HasPrefix(r, "resend: 0 done, 3 skipped, 0 failed") {
		t.Fatalf("second run: %q", r)
	}
	shot("support-bulk-replayed.png")
	if jobs := e.f.Jobs(anomalies.JobSign); len(jobs) != 3 {
		t.Fatalf("%d sign jobs, want one per lot", len(jobs))
	}
	for _, id := range []string{"L2", "L4", "L5"} {
		evs, _ := e.f.Store.Events(e.f.Ctx, "lot:"+id)
		n := 0
		for _, ev := range evs {
			if ev.Type == "transition" && ev.From == lifecycle.LotDeliveryFailed && ev.To == lifecycle.LotRouted {
				n++
				if ev.Actor != "alice/support" {
					t.Errorf("%s resent by %q", id, ev.Actor)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s sent again %d times", id, n)
		}
	}
	logout()

	// --- vendor acme ---
	login("carol")
	if present("#nav-bulk") {
		t.Error("the vendor has a bulk link")
	}
	if st := status("/console/lot/L1"); st != 200 {
		t.Fatalf("own lot: %d", st)
	}
	steps("own lot", chromedp.WaitVisible(css("#lot-id")))
	if present("#raw-lot") {
		t.Error("the vendor without the raw permission has a download link")
	}
	shot("vendor-own-lot.png")
	if st := status("/console/lot/L2"); st != 404 {
		t.Fatalf("another tenant's lot: %d", st)
	}
	if msg := text("#error"); msg != "not-found" {
		t.Fatalf("404 page: %q", msg)
	}
	shot("vendor-other-lot-404.png")
	if st := status("/console/bulk"); st != 403 {
		t.Fatalf("vendor bulk page: %d", st)
	}
	if st := status("/console/lot/L1/raw"); st != 403 {
		t.Fatalf("vendor raw download: %d", st)
	}
	if st := status("/console/search?emitter=" + em); st != 200 {
		t.Fatalf("vendor search: %d", st)
	}
	steps("vendor search", chromedp.WaitVisible(css("#results")))
	res := text("#results")
	if !strings.Contains(res, "L1") || !strings.Contains(res, "L3") || strings.Contains(res, "L2") || strings.Contains(res, "L4") {
		t.Fatalf("vendor search results: %q", res)
	}
	shot("vendor-search.png")
	logout()

	// --- insurer CPAM-130 ---
	login("ivan")
	if note := text("#daily-note"); !strings.Contains(note, "per tenant") {
		t.Fatalf("insurer dashboard: %q", note)
	}
	if st := status("/console/search?emitter=" + em); st != 200 {
		t.Fatalf("insurer search: %d", st)
	}
	steps("insurer search", chromedp.WaitVisible(css("#results")))
	res = text("#results")
	for _, id := range []string{"L2", "L3", "L4", "L5"} {
		if !strings.Contains(res, id) {
			t.Errorf("insurer search lacks %s: %q", id, res)
		}
	}
	if strings.Contains(res, "L1") || strings.Contains(res, "CPAM-751") {
		t.Fatalf("insurer sees another destination: %q", res)
	}
	shot("insurer-search.png")
	if st := status("/console/lot/L1"); st != 404 {
		t.Fatalf("insurer, another destination's lot: %d", st)
	}
}
