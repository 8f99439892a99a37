package observe_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/octgw/oct/gateway/observe"
)

// syncBuffer is a bytes.Buffer safe for concurrent loggers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newLogger(lv *observe.Levels) (*slog.Logger, *syncBuffer) {
	var buf syncBuffer
	next := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug - 4})
	return slog.New(lv.Handler(next)), &buf
}

func TestLevelsPerComponent(t *testing.T) {
	lv := observe.NewLevels(slog.LevelInfo)
	log, buf := newLogger(lv)
	redis := log.With("component", "store.redis")
	sftp := log.With("component", "intake/sftp")

	redis.Debug("redis-debug-1")
	sftp.Info("sftp-info-1")
	if err := lv.Set("store.redis", slog.LevelDebug); err != nil {
		t.Fatal(err)
	}
	redis.Debug("redis-debug-2")
	sftp.Debug("sftp-debug-2")
	log.Debug("inline-debug", "component", "store.redis") // component in the record itself
	log.Debug("no-component-debug")
	log.WithGroup("g").With("component", "store.redis").Debug("grouped-debug") // not top-level: default level
	lv.Reset("store.redis")
	redis.Debug("redis-debug-3")
	lv.SetDefault(slog.LevelError)
	sftp.Warn("sftp-warn-4")
	redis.Error("redis-error-4")

	out := buf.String()
	for _, want := range []string{"sftp-info-1", "redis-debug-2", "inline-debug", "redis-error-4"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
	for _, not := range []string{"redis-debug-1", "sftp-debug-2", "no-component-debug", "grouped-debug", "redis-debug-3", "sftp-warn-4"} {
		if strings.Contains(out, not) {
			t.Errorf("%s should have been dropped:\n%s", not, out)
		}
	}
	if !strings.Contains(out, "component=store.redis") {
		t.Errorf("component attribute lost:\n%s", out)
	}
}

func TestLevelsNextHandlerStillFilters(t *testing.T) {
	lv := observe.NewLevels(slog.LevelDebug)
	var buf bytes.Buffer
	log := slog.New(lv.Handler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	log.Info("info")
	if buf.Len() != 0 {
		t.Errorf("next handler's level ignored: %s", buf.String())
	}
}

func TestLevelsConcurrent(t *testing.T) {
	lv := observe.NewLevels(slog.LevelInfo)
	log, _ := newLogger(lv)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := log.With("component", []string{"a", "b"}[i%2])
			for j := range 200 {
				if i%2 == 0 {
					_ = lv.Set("a", slog.Level(j%8-4))
				}
				l.Debug("x", "j", j)
			}
		}()
	}
	wg.Wait()
}

func TestLevelsHTTP(t *testing.T) {
	lv := observe.NewLevels(slog.LevelInfo)
	mux := http.NewServeMux()
	mux.Handle("GET /admin/loglevel", lv.HTTPHandler())
	mux.Handle("PUT /admin/loglevel", lv.HTTPHandler())
	h := lv.HTTPHandler()
	do := func(method, query string) (int, map[string]any) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/admin/loglevel"+query, nil))
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s %s: %v: %s", method, query, err, rec.Body.String())
		}
		return rec.Code, body
	}
	if code, b := do("PUT", "?component=store.redis&level=debug"); code != 200 || b["level"] != "DEBUG" {
		t.Errorf("PUT: %d %v", code, b)
	}
	if lv.Level("store.redis") != slog.LevelDebug || lv.Level("intake/sftp") != slog.LevelInfo {
		t.Error("PUT did not change only store.redis")
	}
	if code, b := do("GET", "?component=intake/sftp"); code != 200 || b["level"] != "INFO" {
		t.Errorf("GET component: %d %v", code, b)
	}
	if code, b := do("GET", ""); code != 200 || b["default"] != "INFO" || b["components"].(map[string]any)["store.redis"] != "DEBUG" {
		t.Errorf("GET all: %d %v", code, b)
	}
	if code, _ := do("PUT", "?level=WARN"); code != 200 || lv.Default() != slog.LevelWarn {
		t.Errorf("PUT default: %d %v", code, lv.Default())
	}
	if code, _ := do("PUT", "?component=store.redis&level=default"); code != 200 || lv.Level("store.redis") != slog.LevelWarn {
		t.Errorf("reset: %d %v", code, lv.Level("store.redis"))
	}
	for _, q := range []string{"?component=x&level=loud", "?component=x", "?component=bad%20name&level=debug", "?component=" + strings.Repeat("a", 65) + "&level=debug"} {
		if code, b := do("PUT", q); code != 400 || b["error"] == "" {
			t.Errorf("PUT %s: %d %v, want 400", q, code, b)
		}
	}
	if code, _ := do("POST", "?level=debug"); code != 405 {
		t.Errorf("POST: %d, want 405", code)
	}
	// Routed by a mux as the node mounts it.
	srv := httptest.NewServer(mux)
	defer srv.Close()
	req, _ := http.NewRequestWithContext(t.Context(), "PUT", srv.URL+"/admin/loglevel?component=intake/smtp&level=error", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || lv.Level("intake/smtp") != slog.LevelError {
		t.Errorf("through the mux: %d %v", resp.StatusCode, lv.Level("intake/smtp"))
	}
}

func TestLevelsBounded(t *testing.T) {
	lv := observe.NewLevels(slog.LevelInfo)
	var err error
	for i := 0; err == nil && i < 1000; i++ {
		err = lv.Set("c"+strings.Repeat("x", i%50)+string(rune('a'+i%26))+string(rune('a'+i/26%26)), slog.LevelDebug)
	}
	if err == nil {
		t.Error("1000 component overrides accepted")
	}
}

func TestRedactNIR(t *testing.T) {
	for in, want := range map[string]string{
		"185057800608436":                       "[NIR]",
		"1850578006084":                         "[NIR]",
		"nir=285052A00608436 lot=01HX":          "nir=[NIR] lot=01HX",
		"1 85 05 78 006 084 36":                 "[NIR]",
		"2 85 05 2B 006 084":                    "[NIR]",
		"a,185057800608436,285057800608436;end": "a,[NIR],[NIR];end",
		"(1850578006084)":                       "([NIR])",
		"x185057800608436":                      "x[NIR]",
		"1850578006084361":                      "1850578006084361", // 16 digits: not a NIR
		"18505780060843":                        "18505780060843",   // 14 digits
		"385057800608436":                       "385057800608436",  // starts with 3
		"01850578006084":                        "01850578006084",   // part of a longer run
		"amount 123456 invoice 000012":          "amount 123456 invoice 000012",
		"":                                      "",
		"lot 01HXYZ-3 sent to 422-01":           "lot 01HXYZ-3 sent to 422-01",
	} {
		if got := observe.RedactNIR(in); got != want {
			t.Errorf("RedactNIR(%q) = %q, want %q", in, got, want)
		}
	}
}

type stringer string

func (s stringer) String() string { return string(s) }

func TestRedactingHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(observe.Redacting(slog.NewJSONHandler(&buf, nil)))
	log.With("patient", "185057800608436").Info("invoice for 2850578006084 refused",
		"err", errors.New("bad NIR 185057800608436"),
		slog.Group("inv", "nir", "1 85 05 78 006 084 36", "amount", 1850578006084), // ints are not strings
		"s", stringer("285057800608436"), "b", []byte("185057800608436"), "ok", "lot 01HX")
	out := buf.String()
	for _, nir := range []string{"185057800608436", "2850578006084", "1 85 05 78 006 084 36", "285057800608436"} {
		if strings.Contains(out, `"`+nir) || strings.Contains(out, " "+nir) {
			t.Errorf("NIR %s leaked: %s", nir, out)
		}
	}
	if strings.Count(out, observe.NIRMask) != 6 || !strings.Contains(out, `"ok":"lot 01HX"`) {
		t.Errorf("redaction: %s", out)
	}

	buf.Reset()
	opts := &slog.HandlerOptions{ReplaceAttr: observe.RedactAttr}
	slog.New(slog.NewTextHandler(&buf, opts)).Info("m", "nir", "185057800608436")
	if strings.Contains(buf.String(), "185057800608436") {
		t.Errorf("RedactAttr: %s", buf.String())
	}
}
