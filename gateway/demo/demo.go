// Package demo shows a newcomer the product on the embedded default: a
// temporary data directory, simulated vendors pushing generated B2 files
// over the real HTTP API, the gateway processing them, a progress bar and a
// live summary, then one JSON line scripts can read.
//
// The demo grows with the product: today files are validated, stored,
// split into lots and routed; delivery, returns, anomalies and signing join
// as they land, and the summary counts them.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/config"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/node"
	"github.com/octgw/oct/gateway/signing"
	"github.com/octgw/oct/gateway/store"
)

// Options of a demo run.
type Options struct {
	Files     int           // files to push (default 200)
	Vendors   int           // simulated vendors, one tenant each (default 4)
	Invoices  int           // invoices per lot (default 50)
	FaultRate float64       // share of files with one injected fault (default 0.1)
	Seed      int64         // generator seed
	Timeout   time.Duration // give up waiting for terminal states (default 2m)
	DataDir   string        // "" = a temp dir removed at the end
	Listen    string        // "" = 127.0.0.1:0
	Keep      bool          // keep serving after the summary until ctx ends
	Progress  io.Writer     // progress bar and live summary (nil = none)
	Router    gateway.Router
	Extra     map[string]http.Handler
	// The simulated insurers: ARL and RSP delays, share of negative ARLs
	// and of rejected invoices (defaults 300ms, 600ms, 3%, 5%).
	ARLDelay, RSPDelay          time.Duration
	NegativeARLRate, RejectRate float64
	// LostARLRate is the share of the caisses' answers lost on the way: an
	// ARL is dropped (with the RSPs answering the same delivery) before it
	// reaches the gateway, decided per answer, so the answer to a resend
	// has its own chance (0: none lost).
	LostARLRate float64
	// ARLDeadline is the chase's ARL deadline after each send, in demo
	// time (default 3s; 48h in production): a lot without ARL by then is
	// resent, then escalated (anomaly arl-missing-after-resend).
	ARLDeadline time.Duration
	// FlowMessages is how many certificates, PEC requests and SCOR
	// attachments are sent besides the B2 files (0: a tenth of Files, at
	// least 3 and at most 50; negative: none).
	FlowMessages int
	// MaxResends is the chase policy's automatic resends before escalation
	// (0: the product default, 1; negative: none).
	MaxResends int
}

// Summary is the contract printed as the last stdout line with --json.
type Summary struct {
	Files       int     `json:"files"`
	Accepted    int     `json:"accepted"`
	Rejected    int     `json:"rejected"`
	Terminal    int     `json:"terminal"`
	Lost        int     `json:"lost"`
	DoubleSent  int     `json:"double_sent"`
	Lots        int     `json:"lots"`
	Invoices    int     `json:"invoices"`
	Settled     int     `json:"settled"`
	Unroutable  int     `json:"unroutable"`
	ARLPositive int     `json:"arl_positive"`
	ARLNegative int     `json:"arl_negative"`
	RSP         int     `json:"rsp"`
	Anomalies   int     `json:"anomalies"`
	ElapsedS    float64 `json:"elapsed_s"`
	TimedOut    bool    `json:"timed_out"`
	// Flows are the certificates, PEC requests and SCOR attachments.
	Flows      *FlowFigures `json:"flows,omitempty"`
	ConsoleURL string       `json:"console_url"`
	Returns
	// TargetsMet is false when a target of the demo is missed (Failures
	// says which): the command exits non-zero.
	TargetsMet bool     `json:"targets_met"`
	Failures   []string `json:"failures,omitempty"`
}

func (o *Options) fill() {
	if o.Files <= 0 {
		o.Files = 200
	}
	if o.Vendors <= 0 {
		o.Vendors = 4
	}
	if o.Invoices <= 0 {
		o.Invoices = 50
	}
	if o.FaultRate < 0 || o.FaultRate > 1 {
		o.FaultRate = 0.1
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.ARLDelay <= 0 {
		o.ARLDelay = 300 * time.Millisecond
	}
	if o.RSPDelay <= 0 {
		o.RSPDelay = 600 * time.Millisecond
	}
	if o.NegativeARLRate == 0 {
		o.NegativeARLRate = 0.03
	}
	if o.RejectRate == 0 {
		o.RejectRate = 0.05
	}
	if o.ARLDeadline <= 0 {
		o.ARLDeadline = 3 * time.Second
	}
	if o.FlowMessages == 0 {
		o.FlowMessages = min(max(o.Files/10, 3), 50)
	}
}

// check refuses options the demo cannot honour.
func (o *Options) check() error {
	for _, r := range []struct {
		name string
		v    float64
	}{{"lost ARL rate", o.LostARLRate}, {"negative ARL rate", o.NegativeARLRate}, {"reject rate", o.RejectRate}} {
		if r.v < 0 || r.v > 1 {
			return fmt.Errorf("demo: %s %v is not in [0, 1]", r.name, r.v)
		}
	}
	return nil
}

// Run runs the demo and returns its summary.
func Run(ctx context.Context, o Options) (Summary, error) {
	o.fill()
	if err := o.check(); err != nil {
		return Summary{}, err
	}
	start := time.Now()
	dir := o.DataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "oct-demo-")
		if err != nil {
			return Summary{}, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	cfg := config.Defaults()
	cfg.DataDir, cfg.HTTP.Listen, cfg.NodeID = dir, o.Listen, "demo"
	cfg.Limits.RequestsPerSecond, cfg.Limits.Burst = 5000, 5000
	cfg.Workers.PollEvery = 50 * time.Millisecond
	cfg.Refs.SeedDemo = true
	cfg.SFTP.Listen = "127.0.0.1:0"
	// The chase in demo time: the ARL deadline of every send (the chaser's
	// default policy takes it) and the chaser's tick.
	cfg.Delivery.ARLDeadline = o.ARLDeadline
	cfg.Anomalies.Every = min(250*time.Millisecond, o.ARLDeadline/4)
	cfg.Anomalies.Chase.Default.MaxResends = o.MaxResends
	keyFile, certFile, err := signing.WriteDevelopmentKey(dir, time.Now())
	if err != nil {
		return Summary{}, err
	}
	cfg.Signing = signingConfig(keyFile, certFile)
	// The other flows: the SSA's statuses read often; certificates of long
	// incapacities and a reproducible sample flagged for medical control.
	cfg.Flows.SSAPollEvery = 200 * time.Millisecond
	cfg.Flows.Selectivity.LongIncapacityDays = 60
	cfg.Flows.Selectivity.SampleRate, cfg.Flows.Selectivity.SampleSeed = 0.1, fmt.Sprintf("demo-%d", o.Seed)
	ins, err := startInsurers(o, keyFile, certFile)
	if err != nil {
		return Summary{}, fmt.Errorf("simulated insurers: %w", err)
	}
	defer ins.close()
	n, err := node.Open(ctx, cfg, node.Options{Exclusive: true, Router: o.Router, Extra: o.Extra, Deliver: ins.deliver, Certs: ins.certs,
		HTTPS: ins.https, Seed: &ins.feed})
	if err != nil {
		return Summary{}, err
	}
	defer n.Close()
	ins.proc.Store(n.ReturnProcessor)
	ln, err := n.Listen()
	if err != nil {
		return Summary{}, err
	}
	base := "http://" + ln.Addr().String()
	runCtx, stopNode := context.WithCancel(ctx)
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- n.Run(runCtx, ln) }()
	defer func() { stopNode(); <-nodeDone; ins.close() }() // no return may arrive once the node is stopped

	fmt.Fprintf(o.Progress, "OCT demo: data in %s, console at %s/, SFTP intake on %s\n", dir, base, n.SFTPAddr())
	fmt.Fprintf(o.Progress, "%d vendors push %d B2 files of %d invoices (%.0f%% with one injected fault)\n",
		o.Vendors, o.Files, o.Invoices, o.FaultRate*100)

	tokens := make([]string, o.Vendors)
	tenants := make([]string, o.Vendors)
	for i := range tokens {
		tenants[i] = fmt.Sprintf("vendor-%02d", i+1)
		_, tok, err := gateway.AddTenant(ctx, n.Store, tenants[i], "demo", time.Now())
		if err != nil {
			return Summary{}, err
		}
		tokens[i] = tok
	}

	acked, err := push(ctx, o, base, tokens)
	if err != nil {
		return Summary{}, err
	}
	fmt.Fprintln(o.Progress)

	s, err := waitTerminal(ctx, o, n.Store, tenants, acked)
	if err != nil {
		return s, err
	}
	if o.FlowMessages > 0 && !s.TimedOut {
		fmt.Fprintf(o.Progress, "\nthen %d certificates to the SSA (FHIR), %d PEC requests to an AMC (HTTPS), %d SCOR attachments with their B2 lots\n",
			o.FlowMessages, o.FlowMessages, o.FlowMessages)
		flows, err := pushFlows(ctx, o, base, tokens, tenants, n.Store)
		if err != nil {
			return s, err
		}
		fl, err := waitFlows(ctx, o, n.Store, flows, start.Add(o.Timeout))
		if err != nil {
			return s, err
		}
		if err := countFlowReturns(ctx, n.Store, tenants, &fl); err != nil {
			return s, err
		}
		s.Flows = &fl
	}
	if err := handBackHalf(ctx, n.Queue, n.Store, tenants); err != nil {
		return s, err
	}
	if s.Returns, err = returnFigures(ctx, n.Store, tenants, ins.received()); err != nil {
		return s, err
	}
	s.Returns.LostARLs, s.Returns.LostRSPs = ins.lostAnswers()
	s.Returns.MaxResends = cfg.Anomalies.Chase.PolicyFor("").MaxResends
	s.DoubleSent = s.Returns.doubleSent
	s.ElapsedS = time.Since(start).Seconds()
	s.ConsoleURL = base + "/"
	s.check(o)
	fmt.Fprintf(o.Progress, "\nfiles %d: accepted %d, rejected %d (syntax ack at once); lots %d: signed and sent over SMTP+S/MIME, ARL positive %d, negative %d, unroutable %d, settled by RSP %d\n",
		s.Files, s.Accepted, s.Rejected, s.Lots, s.ARLPositive, s.ARLNegative, s.Unroutable, s.Settled)
	fmt.Fprintf(o.Progress, "invoices %d; RSP returns %d; lost %d; double sent %d; anomalies for support %d; %.1fs\n",
		s.Invoices, s.RSP, s.Lost, s.DoubleSent, s.Anomalies, s.ElapsedS)
	r := s.Returns
	fmt.Fprintf(o.Progress, "chase (ARL deadline %s, up to %d resend(s)): %d answers lost on the way (%d ARL, %d RSP); lots sent %d, resent %d times (%d lots), escalated %d, without any return %d (%.2f%%), resent after a positive ARL %d\n",
		o.ARLDeadline, r.MaxResends, r.LostARLs+r.LostRSPs, r.LostARLs, r.LostRSPs, r.LotsSent, r.Resent, r.LotsResent, r.Escalated, r.LotsWithoutReturn, r.WithoutReturnPct, r.ResentAfterPositiveARL)
	fmt.Fprintf(o.Progress, "rejected invoices %d: in the queue %d, handed back %d, unhandled %d\n",
		r.RejectedInvoices, r.RejectedInQueue, r.RejectedHandedBack, r.RejectedUnhandled)
	if f := s.Flows; f != nil {
		fmt.Fprintf(o.Progress, "certificates %d: refused at intake %d, flagged for medical control %d, accepted %d, refused %d, returned by the arbiter %d (%d SSA statuses)\n",
			f.Certificates, f.CertRejected, f.CertFlagged, f.CertAccepted, f.CertRefused, f.CertArbiter, f.StatusReturns)
		fmt.Fprintf(o.Progress, "PEC %d: agreement %d, partial %d, refusal %d, unknown AMC %d; SCOR %d: refused at intake %d, acknowledged %d, refused by the caisse %d\n",
			f.PEC, f.PECAgreement, f.PECPartial, f.PECRefusal, f.PECUnroutable, f.SCOR, f.SCORRejected, f.SCORAcknowledged, f.SCORNegative)
	}
	if s.TargetsMet {
		fmt.Fprintln(o.Progress, "targets met")
	} else {
		fmt.Fprintf(o.Progress, "TARGETS MISSED:\n  %s\n", strings.Join(s.Failures, "\n  "))
	}
	if o.Keep {
		fmt.Fprintf(o.Progress, "console: %s/  (Ctrl-C to stop)\n", base)
		<-ctx.Done()
	}
	return s, nil
}

// pushed is one acknowledged file.
type pushed struct {
	id     string
	tenant int
}

// push generates the files and pushes them concurrently over the API.
func push(ctx context.Context, o Options, base string, tokens []string) ([]pushed, error) {
	faults := b2.GenFaults()
	client := &http.Client{Timeout: 30 * time.Second}
	var (
		mu    sync.Mutex
		acked []pushed
		next  atomic.Int64
		done  atomic.Int64
		errs  = make(chan error, 1)
		wg    sync.WaitGroup
	)
	bar := newBar(o.Progress, o.Files)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= o.Files || ctx.Err() != nil {
					return
				}
				rng := rand.New(rand.NewPCG(uint64(o.Seed), uint64(i)))
				// 97 PS send a file a day each: a PS numbers its lots again
				// every day, so (émetteur, lot number, lot date) stays unique
				// as the insurers' returns need it (an RSP names no file).
				day := b2.DefaultLotDate.Time().AddDate(0, 0, i/97)
				g := b2.GenOptions{Seed: o.Seed*1_000_003 + int64(i), Lots: 1 + rng.IntN(2), Invoices: o.Invoices,
					Emitter: fmt.Sprintf("%09d", 100000000+i%97), LotDate: fixed.Day{Year: day.Year(), Month: day.Month(), Dom: day.Day()}}
				if rng.Float64() < o.FaultRate && len(faults) > 0 {
					g.Fault = faults[rng.IntN(len(faults))]
				}
				var buf bytes.Buffer
				if err := b2.Generate(&buf, g); err != nil {
					trySend(errs, err)
					return
				}
				v := i % len(tokens)
				id, err := postFile(ctx, client, base+"/v1/files?name="+fmt.Sprintf("demo-%05d.b2", i), tokens[v], buf.Bytes())
				if err != nil {
					trySend(errs, err)
					return
				}
				mu.Lock()
				acked = append(acked, pushed{id, v})
				mu.Unlock()
				bar.set(int(done.Add(1)), "pushed")
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return acked, ctx.Err()
}

func trySend(ch chan error, err error) {
	select {
	case ch <- err:
	default:
	}
}

// postFile pushes one file, retrying 429/503 as a well-behaved vendor does.
func postFile(ctx context.Context, c *http.Client, url, token string, body []byte) (string, error) {
	for attempt := 0; attempt < 20; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		var ack gateway.Ack
		derr := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&ack)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusCreated, http.StatusOK:
			if derr != nil {
				return "", derr
			}
			return ack.ID, nil
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			t := time.NewTimer(time.Duration(50*(attempt+1)) * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return "", ctx.Err()
			case <-t.C:
			}
		default:
			return "", fmt.Errorf("push %s: HTTP %d", url, resp.StatusCode)
		}
	}
	return "", errors.New("push: gave up after 20 attempts")
}

// resting says whether a lot has gone as far as it goes without a human:
// terminal states, and the states that wait in the support work queue
// (escalated: its ARL is overdue and the resends are used up).
func resting(s lifecycle.State, escalated bool) bool {
	if lifecycle.IsTerminal(lifecycle.Lot, s) {
		return true
	}
	switch s {
	case lifecycle.LotUnroutable, lifecycle.LotSignFailed, lifecycle.LotDeliveryFailed, lifecycle.LotARLNegative, lifecycle.LotToRebuild:
		return true
	case lifecycle.LotARLOverdue:
		return escalated
	}
	return false
}

// waitTerminal polls the journal until every acknowledged file has reached
// a terminal (or resting) state, or the timeout.
func waitTerminal(ctx context.Context, o Options, st store.Store, tenants []string, acked []pushed) (Summary, error) {
	deadline := time.Now().Add(o.Timeout)
	bar := newBar(o.Progress, len(acked))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		s, err := summarize(ctx, st, tenants, acked)
		if err != nil {
			return s, err
		}
		bar.set(s.Terminal, "processed")
		if s.Terminal+s.Lost >= s.Files {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.TimedOut = true
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-tick.C:
		}
	}
}

func summarize(ctx context.Context, st store.Store, tenants []string, acked []pushed) (Summary, error) {
	s := Summary{Files: len(acked)}
	escalated := map[string]bool{} // subjects of arl-missing-after-resend anomalies
	for _, t := range tenants {
		as, err := allAnomalies(ctx, st, t)
		if err != nil {
			return s, err
		}
		s.Anomalies += len(as)
		for _, a := range as {
			if a.Kind == anomalies.KindARLMissing {
				escalated[a.Subject] = true
			}
		}
	}
	for _, a := range acked {
		f, err := st.File(ctx, a.id)
		if errors.Is(err, store.ErrNotFound) {
			s.Lost++
			continue
		} else if err != nil {
			return s, err
		}
		switch f.State {
		case lifecycle.FileRejected:
			s.Rejected++
			s.Terminal++
			continue
		case lifecycle.FileReceived:
			continue
		}
		s.Accepted++
		if f.State != lifecycle.FileSplit && f.State != lifecycle.FileSettled {
			continue
		}
		lots, err := st.Lots(ctx, store.LotQuery{Tenant: f.Tenant, File: f.ID, Limit: 1000})
		if err != nil {
			return s, err
		}
		all := true
		for _, l := range lots {
			s.Lots++
			s.Invoices += l.Invoices
			switch l.State {
			case lifecycle.LotUnroutable:
				s.Unroutable++
			case lifecycle.LotARLPositive, lifecycle.LotSettled:
				s.ARLPositive++
			case lifecycle.LotARLNegative, lifecycle.LotToRebuild:
				s.ARLNegative++
			}
			if l.State == lifecycle.LotSettled {
				s.Settled++
			}
			if !resting(l.State, escalated["lot:"+l.ID]) {
				all = false
			}
		}
		if all {
			s.Terminal++
		}
	}
	for _, t := range tenants {
		rets, err := st.Returns(ctx, t, 0, 100000)
		if err != nil {
			return s, err
		}
		for _, r := range rets {
			if r.Kind == "rsp" {
				s.RSP++
			}
		}
	}
	return s, nil
}

// bar draws a one-line progress bar when the output is a terminal-like
// writer; it is silent on io.Discard.
type bar struct {
	w     io.Writer
	total int
	mu    sync.Mutex
	last  time.Time
}

func newBar(w io.Writer, total int) *bar { return &bar{w: w, total: max(total, 1)} }

func (b *bar) set(n int, what string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n < b.total && time.Since(b.last) < 50*time.Millisecond {
		return
	}
	b.last = time.Now()
	const width = 40
	filled := n * width / b.total
	fmt.Fprintf(b.w, "\r[%s%s] %d/%d %s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), n, b.total, what)
}
