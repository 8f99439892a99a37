package testenv

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package puts the browser;
// OCT_CHROMIUM overrides it.
const ChromiumPath = "/usr/bin/chromium"

// Chromium returns a chromedp context driving a fresh headless Chromium
// for t, closed (and its process waited for) when t ends. It skips t
// unless OCT_INTEGRATION=1, and skips with a clear message when the
// browser is missing (install Debian's chromium package). The browser
// runs with an empty --user-data-dir in t.TempDir() and the flags that keep
// it off the network (no background networking, component updates, sync or
// QUIC): tests only point it at loopback servers. The context is bounded
// by timeout (0: two minutes).
func Chromium(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	Integration(t)
	path := os.Getenv("OCT_CHROMIUM")
	if path == "" {
		path = ChromiumPath
	}
	if _, err := exec.LookPath(path); err != nil {
		t.Skipf("headless browser test: %s not found (apt-get install chromium, or set OCT_CHROMIUM)", path)
	}
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 1000),
	}
	base, cancelBase := context.WithTimeout(context.Background(), timeout)
	actx, cancelAlloc := chromedp.NewExecAllocator(base, opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()   // closes the browser
		cancelAlloc() // waits for the process to exit
		cancelBase()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser now, so a failure is reported here
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}
