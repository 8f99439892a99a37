package console_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/internal/testenv"
)

// TestBrowser drives the console in headless Chromium as an agent would:
// log in, filter the queue, open an anomaly, assign it, comment, resolve,
// and take a screenshot (kept in OCT_SCREENSHOTS when set).
func TestBrowser(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Chromium(t, 0)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	steps := func(what string, a ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, a...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
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
	if len(shot) < 1000 || !bytes.HasPrefix(shot, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(shot))
	}
	path := filepath.Join(t.TempDir(), "console-anomaly.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("screenshot %v", err)
	}
	if dir := os.Getenv("OCT_SCREENSHOTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err == nil {
			os.WriteFile(filepath.Join(dir, "console-anomaly.png"), shot, 0o644)
		}
	}
}
