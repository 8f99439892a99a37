package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/config"
	"github.com/octgw/oct/gateway/node"
	"github.com/octgw/oct/internal/testenv"
)

type testNode struct {
	*node.Node
	base string
}

func startNode(t *testing.T, mod func(*config.Config)) *testNode {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.SFTP.Listen = "127.0.0.1:0"
	cfg.Workers.PollEvery = 20 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.Open(ctx, cfg, node.Options{Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := n.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		n.Close()
	})
	return &testNode{n, "http://" + ln.Addr().String()}
}

func (n *testNode) tenant(t *testing.T, name string) string {
	t.Helper()
	_, tok, err := gateway.AddTenant(context.Background(), n.Store, name, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (n *testNode) do(t *testing.T, method, path, token string, body io.Reader, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, n.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func errCode(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not a JSON error: %s", b)
	}
	return e.Error.Code
}

func genFile(t testing.TB, seed int64, fault string) []byte {
	t.Helper()
	var buf bytes.Buffer
	o := b2.GenOptions{Seed: seed, Lots: 2, Invoices: 5}
	if fault != "" {
		o.Fault = b2.GenFaults()[0]
		for _, f := range b2.GenFaults() {
			if string(f) == fault {
				o.Fault = f
			}
		}
	}
	if err := b2.Generate(&buf, o); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestIntakeAcceptsSplitsAndIsIdempotent(t *testing.T) {
	n := startNode(t, nil)
	tok := n.tenant(t, "acme")
	body := genFile(t, 1, "")

	code, b, hdr := n.do(t, "POST", "/v1/files?name=a.b2", tok, bytes.NewReader(body))
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, b)
	}
	var ack gateway.Ack
	if err := json.Unmarshal(b, &ack); err != nil {
		t.Fatal(err)
	}
	if ack.Status != "accepted" || ack.Duplicate || len(ack.Errors) != 0 || ack.Stats.Lots != 2 || ack.Stats.Invoices != 10 || hdr.Get("Location") != "/v1/files/"+ack.ID {
		t.Fatalf("ack %+v", ack)
	}

	// Same bytes: the first acknowledgement, 200, nothing new.
	code, b, _ = n.do(t, "POST", "/v1/files", tok, bytes.NewReader(body))
	var again gateway.Ack
	_ = json.Unmarshal(b, &again)
	if code != http.StatusOK || again.ID != ack.ID || !again.Duplicate {
		t.Fatalf("replay: %d %s", code, b)
	}
	// Same Idempotency-Key with other bytes: the first file too.
	code, b, _ = n.do(t, "POST", "/v1/files", tok, bytes.NewReader(genFile(t, 2, "")), "Idempotency-Key", "k-1")
	var k1 gateway.Ack
	_ = json.Unmarshal(b, &k1)
	code2, b2_, _ := n.do(t, "POST", "/v1/files", tok, bytes.NewReader(genFile(t, 3, "")), "Idempotency-Key", "k-1")
	var k2 gateway.Ack
	_ = json.Unmarshal(b2_, &k2)
	if code != http.StatusCreated || code2 != http.StatusOK || k1.ID != k2.ID || !k2.Duplicate {
		t.Fatalf("idempotency key: %d %d %s %s", code, code2, k1.ID, k2.ID)
	}

	// The pipeline splits the file into its lots.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var view struct {
		State   string `json:"state"`
		LotList []struct {
			State string `json:"state"`
		} `json:"lot_list"`
		History []struct{ From, To string } `json:"history"`
	}
	err := testenv.Poll(ctx, 10*time.Millisecond, func() (bool, error) {
		c, b, _ := n.do(t, "GET", "/v1/files/"+ack.ID, tok, nil)
		if c != http.StatusOK {
			return false, errors.New(string(b))
		}
		view.LotList = nil
		if err := json.Unmarshal(b, &view); err != nil {
			return false, err
		}
		return view.State == "split" && len(view.LotList) == 2 && view.LotList[0].State != "created" && view.LotList[1].State != "created", nil
	})
	if err != nil {
		t.Fatalf("not split: %v (%+v)", err, view)
	}
	want := []string{"received", "accepted", "split"}
	if len(view.History) != 3 {
		t.Fatalf("history %+v", view.History)
	}
	for i, h := range view.History {
		if h.To != want[i] {
			t.Fatalf("history %+v", view.History)
		}
	}
	// No router configured: lots are unroutable with an anomaly, never lost.
	code, b, _ = n.do(t, "GET", "/v1/lots?state=unroutable&limit=1", tok, nil)
	var page struct {
		Lots       []json.RawMessage `json:"lots"`
		NextCursor string            `json:"next_cursor"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &page) != nil || len(page.Lots) != 1 || page.NextCursor == "" {
		t.Fatalf("lots page: %d %s", code, b)
	}
	code, b, _ = n.do(t, "GET", "/v1/lots?state=unroutable&limit=1&cursor="+page.NextCursor, tok, nil)
	if code != http.StatusOK || json.Unmarshal(b, &page) != nil || len(page.Lots) != 1 {
		t.Fatalf("second page: %d %s", code, b)
	}
}

func TestIntakeRejectsInvalidContentButKeepsIt(t *testing.T) {
	n := startNode(t, nil)
	tok := n.tenant(t, "acme")
	code, b, _ := n.do(t, "POST", "/v1/files", tok, bytes.NewReader(genFile(t, 4, "nir-key")))
	var ack gateway.Ack
	if code != http.StatusCreated || json.Unmarshal(b, &ack) != nil {
		t.Fatalf("%d %s", code, b)
	}
	if ack.Status != "rejected" || len(ack.Errors) == 0 || ack.Errors[0].Code != "nir-key" || ack.Errors[0].Record == 0 {
		t.Fatalf("ack %+v", ack)
	}
	code, b, _ = n.do(t, "GET", "/v1/files/"+ack.ID, tok, nil)
	if code != http.StatusOK || !strings.Contains(string(b), `"state":"rejected"`) {
		t.Fatalf("stored rejected file: %d %s", code, b)
	}
	// Binary junk: stored, rejected, with a clear code.
	junk := bytes.Repeat([]byte{0xff, 0x00, 0x13}, 5000)
	code, b, _ = n.do(t, "POST", "/v1/files", tok, bytes.NewReader(junk))
	if code != http.StatusCreated || json.Unmarshal(b, &ack) != nil || ack.Status != "rejected" || len(ack.Errors) == 0 {
		t.Fatalf("junk: %d %s", code, b)
	}
}

func TestAPIBadInputLeavesNothingHalfWritten(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.Limits.MaxFileBytes = 1 << 20 })
	tok := n.tenant(t, "acme")
	other := n.tenant(t, "rival")

	// Empty body.
	code, b, _ := n.do(t, "POST", "/v1/files", tok, bytes.NewReader(nil))
	if code != http.StatusBadRequest || errCode(t, b) != "empty" {
		t.Fatalf("empty: %d %s", code, b)
	}
	// Wrong or missing token.
	code, b, hdr := n.do(t, "POST", "/v1/files", "oct_nope", bytes.NewReader([]byte("x")))
	if code != http.StatusUnauthorized || errCode(t, b) != "unauthorized" || hdr.Get("WWW-Authenticate") == "" {
		t.Fatalf("bad token: %d %s", code, b)
	}
	code, _, _ = n.do(t, "GET", "/v1/lots", "", nil)
	if code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	// A 2 GB body announced: refused at once, nothing read.
	req, _ := http.NewRequest("POST", n.base+"/v1/files", io.LimitReader(zeros{}, 2<<30))
	req.ContentLength = 2 << 30
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || errCode(t, b) != "too-large" {
			t.Fatalf("2GB: %d %s", resp.StatusCode, b)
		}
	}
	// A 2 GB body streamed without a length: cut at the limit.
	req, _ = http.NewRequest("POST", n.base+"/v1/files", io.NopCloser(io.LimitReader(zeros{}, 2<<30)))
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || errCode(t, b) != "too-large" {
			t.Fatalf("2GB chunked: %d %s", resp.StatusCode, b)
		}
	}
	// Nothing of the above was stored.
	code, b, _ = n.do(t, "GET", "/v1/files", tok, nil)
	if code != http.StatusOK || !strings.Contains(string(b), `"files":[]`) {
		t.Fatalf("something was stored: %s", b)
	}
	// Another tenant's file is 404, not 403.
	code, b, _ = n.do(t, "POST", "/v1/files", tok, bytes.NewReader(genFile(t, 5, "")))
	var ack gateway.Ack
	if code != http.StatusCreated || json.Unmarshal(b, &ack) != nil {
		t.Fatalf("%d %s", code, b)
	}
	code, b, _ = n.do(t, "GET", "/v1/files/"+ack.ID, other, nil)
	if code != http.StatusNotFound || errCode(t, b) != "not-found" {
		t.Fatalf("other tenant: %d %s", code, b)
	}
	// Bad parameters are named.
	code, b, _ = n.do(t, "GET", "/v1/lots?limit=0", tok, nil)
	if code != http.StatusBadRequest || errCode(t, b) != "bad-parameter" {
		t.Fatalf("limit: %d %s", code, b)
	}
	// The server still serves.
	if code, _, _ = n.do(t, "GET", "/readyz", "", nil); code != http.StatusOK {
		t.Fatalf("readyz %d", code)
	}
}

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.Limits.RequestsPerSecond, c.Limits.Burst = 1, 2 })
	tok := n.tenant(t, "acme")
	var last int
	var hdr http.Header
	var b []byte
	for i := 0; i < 5; i++ {
		last, b, hdr = n.do(t, "GET", "/v1/lots", tok, nil)
	}
	if last != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || errCode(t, b) != "rate-limited" {
		t.Fatalf("%d %v %s", last, hdr, b)
	}
	// Another tenant is not affected.
	if c, _, _ := n.do(t, "GET", "/v1/lots", n.tenant(t, "other"), nil); c != http.StatusOK {
		t.Fatalf("other tenant limited: %d", c)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func genOneLot(t testing.TB, seed int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b2.Generate(&buf, b2.GenOptions{Seed: seed, Lots: 1, Invoices: 3}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
