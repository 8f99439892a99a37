// Package returns takes in what insurers send back to the OCT (ARL and
// NOEMIE 580 returns), applies it to the journal and relays it to the
// vendor that owns the lot.
//
// Processor.Process does the work for one raw message: keep the bytes
// (Blobs), decode (smtp.Extract, then formats/arl or formats/noemie),
// correlate with the lots and invoices of the store, commit one
// store.Change, relay the file to the tenant (Relay) and wake the API feed
// (OnReturn). Poller feeds it from an IMAP mailbox with exactly-once
// processing across restarts (Cursor + content idempotency).
// docs/returns.md describes the flow, the matching keys and the anomalies.
package returns

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// Journal is the part of store.Store the processor uses.
type Journal interface {
	Lots(ctx context.Context, q store.LotQuery) ([]store.Lot, error)
	Invoices(ctx context.Context, lot string) ([]store.Invoice, error)
	Expectations(ctx context.Context, lot string) ([]store.Expectation, error)
	Events(ctx context.Context, subject string) ([]store.Event, error)
	Commit(ctx context.Context, c *store.Change) error
}

// Blobs keeps raw bytes by sha256 (store.Blobs satisfies it). Open is used
// only to tell apart lots with the same keys by the file id of their
// outbound file.
type Blobs interface {
	Put(ctx context.Context, r io.Reader, maxBytes int64) (sum string, size int64, err error)
	Open(ctx context.Context, sum string) (io.ReadCloser, error)
}

// Relay hands a return file, unchanged, to the tenant that owns it
// (FoldersRelay drops it in the tenant's SFTP returns/ folder). Delivering
// the same name twice must be harmless: a message processed again after a
// crash is relayed again.
type Relay interface {
	Relay(ctx context.Context, tenant, name string, data []byte) error
}

// Anomaly kinds raised by the processor.
const (
	AnomalyARLNegative     = "arl-negative"        // subject lot:ID
	AnomalyOrphan          = "orphan-return"       // subject return:ID: no lot or invoice found, or several
	AnomalyInvoiceRejected = "invoice-rejected"    // subject invoice:ID
	AnomalyUnparsable      = "unparsable-return"   // subject return:ID
	AnomalyMismatch        = "return-mismatch"     // subject lot:ID or invoice:ID: state cannot take the return
	AnomalyMultiTenant     = "return-multi-tenant" // subject return:ID: an RSP for several tenants, not relayed
)

// Options configure a Processor. Journal and Blobs are required.
type Options struct {
	Journal  Journal
	Blobs    Blobs
	Relay    Relay  // nil: nothing is relayed (the feed still shows the returns)
	OnReturn func() // called after a commit that added returns (wakes the API long-poll)
	Decode   DecodeOptions
	// MaxMessageBytes bounds a raw message (default 64 MiB).
	MaxMessageBytes int64
	// Retries bounds the attempts when the store reports a conflict (another
	// writer moved a lot meanwhile); default 5.
	Retries int
	// AnomalySLA is the time support has to handle a raised anomaly
	// (default 24h).
	AnomalySLA time.Duration
	// RSPDeadline: after a positive ARL the gateway expects the lot's RSP
	// within this (default 720h); the chaser acts when it passes.
	RSPDeadline time.Duration
	Actor       string // actor of the events (default "returns")
	Now         func() time.Time
	Logger      *slog.Logger
}

// Processor decodes, correlates, applies and relays return messages. It is
// safe for concurrent use.
type Processor struct {
	o Options
}

// NewProcessor checks o and fills its defaults.
func NewProcessor(o Options) (*Processor, error) {
	if o.Journal == nil || o.Blobs == nil {
		return nil, errors.New("returns: Journal and Blobs are required")
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 64 << 20
	}
	if o.Retries <= 0 {
		o.Retries = 5
	}
	if o.AnomalySLA <= 0 {
		o.AnomalySLA = 24 * time.Hour
	}
	if o.RSPDeadline <= 0 {
		o.RSPDeadline = 720 * time.Hour
	}
	if o.Actor == "" {
		o.Actor = "returns"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Decode.Registry == nil {
		o.Decode.Registry = arl.DefaultRegistry()
	}
	if o.Decode.Extract.MaxFileSize <= 0 {
		o.Decode.Extract.MaxFileSize = o.MaxMessageBytes
	}
	return &Processor{o: o}, nil
}

// Outcome says what Process did with one message.
type Outcome struct {
	SHA256     string      // of the raw message; its blob
	Duplicate  bool        // already applied earlier: nothing changed (relay repeated)
	Unparsable bool        // not decodable: kept as an orphan return with an anomaly
	Reason     string      // why it is unparsable
	Returns    []ReturnRef // rows written (or, for a duplicate, none)
	Anomalies  []string    // kinds raised
	Relayed    int         // files handed to Relay
}

// ReturnRef names one Return row written.
type ReturnRef struct {
	ID     string
	Kind   string
	Tenant string
	Lot    string
	Orphan bool
}

// messageSubject is the event subject marking a message as applied: the
// idempotency key is the sha256 of the raw bytes.
func messageSubject(sum string) string { return "return-message:" + sum }

// EventApplied is the type of the marker event of an applied message.
const EventApplied = "return-applied"

// Process applies one raw return message. It returns an error only when
// the message must be tried again later (store or relay unavailable,
// conflicts that did not settle, context ended); an unparsable message is
// not an error: it is recorded and reported in the Outcome. It is
// ProcessBatch with one message.
func (p *Processor) Process(ctx context.Context, raw []byte) (Outcome, error) {
	outs, _, err := p.ProcessBatch(ctx, [][]byte{raw})
	return outs[0], err
}

// item is one message of a batch.
type item struct {
	raw      []byte
	sum      string
	parts    []Part
	derr     error    // decoding error: the message is unparsable
	partSums []string // sha256 of each part's Data
	kept     bool     // raw message and parts durably in Blobs
	err      error    // cannot be processed at all (ErrTooLarge)

	plan *plan  // nil: a duplicate (applied earlier, or earlier in the batch)
	dup  marker // the marker found, for a duplicate
}

// ProcessBatch applies raw return messages in their order with the effect
// of calling Process on each in turn, but with grouped durability: the
// messages are decoded and their blobs kept concurrently (the blob
// directory makes concurrent Puts share their syncs), they are
// correlated one after the other against a view of the journal that
// includes the changes of the messages before them (an ARL and the RSP of
// the same lot, or two copies of one message, in one batch give what they
// give one by one), and everything is written in ONE store.Change: one
// commit, atomic, with every message's marker event. Only then are the
// files relayed and OnReturn called (once).
//
// outs holds one Outcome per message (SHA256 always set). The first n
// messages are done: applied (or found applied) and relayed. When n <
// len(raws), raws[n] failed with err, exactly as Process would have failed
// on it (ErrTooLarge, ErrNotYet, store, blob or relay errors, context), and
// the messages after it are not done: some of them may be committed (when
// the relay of raws[n] failed), and handing them again later is harmless
// (content idempotency). Callers that keep the order of a mailbox process
// raws[n] and the rest again later; messages before n may be marked done.
//
// A batch whose commit fails for another reason than a conflict is applied
// again message by message, so that one bad message does not hold back the
// ones before it.
func (p *Processor) ProcessBatch(ctx context.Context, raws [][]byte) (outs []Outcome, n int, err error) {
	items := make([]item, len(raws))
	outs = make([]Outcome, len(raws))
	for i, raw := range raws {
		h := sha256.Sum256(raw)
		items[i].raw, items[i].sum = raw, hex.EncodeToString(h[:])
		outs[i].SHA256 = items[i].sum
	}
	// 1. Decode, concurrently (CPU): stop at the first message too large.
	limit := len(items)
	for i := range items {
		if int64(len(raws[i])) > p.o.MaxMessageBytes {
			items[i].err = fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raws[i]), p.o.MaxMessageBytes)
			limit = i
			break
		}
	}
	p.each(limit, runtime.GOMAXPROCS(0), func(i int) error {
		it := &items[i]
		it.parts, it.derr = Decode(it.raw, p.o.Decode)
		it.partSums = make([]string, len(it.parts))
		for k, pt := range it.parts {
			s := sha256.Sum256(pt.Data)
			it.partSums[k] = hex.EncodeToString(s[:])
		}
		return nil
	})
	stop, stopErr := limit, error(nil)
	if limit < len(items) {
		stopErr = items[limit].err
	}
	for attempt := 0; ; attempt++ {
		if attempt == p.o.Retries {
			if limit > 1 {
				return p.oneByOne(ctx, raws, outs)
			}
			return outs, 0, fmt.Errorf("%w (%d attempts)", ErrConflict, p.o.Retries)
		}
		if err := ctx.Err(); err != nil {
			return outs, 0, err
		}
		// 2. Plan in order, each message seeing the ones before it.
		v := p.newView()
		planned := 0
		var perr error
		for i := 0; i < stop; i++ {
			it := &items[i]
			it.plan, it.dup = nil, marker{}
			mark, found, err := v.applied(ctx, it.sum)
			if err != nil {
				perr = err
				break
			}
			if found {
				it.dup = mark
				planned++
				continue
			}
			pl := p.newPlan(v, it.sum, it.parts, it.partSums)
			if it.derr != nil {
				pl.unparsable(it.derr)
			} else if err := pl.correlate(ctx); err != nil {
				perr = err
				break
			}
			if err := v.done(ctx, pl); err != nil {
				perr = err
				break
			}
			it.plan = pl
			planned++
		}
		if planned < stop {
			stop, stopErr = planned, perr
		}
		// 3. Keep the blobs of the new messages (raw message and parts),
		// all at once: blobdir makes concurrent Puts durable with a shared
		// sync. Done once, whatever the attempts.
		if i, err := p.keepAll(ctx, items[:stop]); err != nil {
			stop, stopErr = i, err
		}
		// 4. One commit for every new message before stop.
		c := &store.Change{Actor: p.o.Actor}
		news := 0
		for i := 0; i < stop; i++ {
			if pl := items[i].plan; pl != nil {
				appendChange(c, pl.change())
				news++
			}
		}
		if news > 0 {
			err := p.o.Journal.Commit(ctx, c)
			if errors.Is(err, store.ErrConflict) {
				p.o.Logger.Info("returns: conflict, retrying", "messages", news, "first", items[0].sum[:16],
					"attempt", attempt+1)
				stop, stopErr = limit, nil
				if limit < len(items) {
					stopErr = items[limit].err
				}
				continue
			}
			if err != nil && stop > 1 {
				p.o.Logger.Warn("returns: batch commit failed, applying its messages one by one",
					"messages", stop, "error", err)
				return p.oneByOne(ctx, raws, outs)
			}
			if err != nil {
				return outs, 0, fmt.Errorf("returns: commit: %w", err)
			}
		}
		// 5. Report, wake the feed, relay in order.
		woke := false
		for i := 0; i < stop; i++ {
			it, out := &items[i], &outs[i]
			out.Unparsable = it.derr != nil
			if it.plan == nil {
				out.Duplicate = true
				continue
			}
			pl := it.plan
			if it.derr != nil {
				out.Reason = reasonOf(it.derr)
			}
			out.Returns, out.Anomalies = pl.refs, pl.anomalyKinds()
			woke = woke || len(pl.refs) > 0
			p.o.Logger.Info("returns: applied", "message", it.sum[:16], "returns", len(pl.refs),
				"anomalies", len(pl.anomalies), "unparsable", out.Unparsable)
		}
		if woke && p.o.OnReturn != nil {
			p.o.OnReturn()
		}
		for i := 0; i < stop; i++ {
			it := &items[i]
			rel := it.dup.Relay
			if it.plan != nil {
				rel = it.plan.mark.Relay
			}
			k, err := p.relay(ctx, rel, it.parts)
			outs[i].Relayed = k
			if err != nil {
				return outs, i, err
			}
		}
		return outs, stop, stopErr
	}
}

// maxPuts bounds the concurrent Puts of a batch.
const maxPuts = 128

// keepAll puts the raw message and the parts of every new item not kept
// yet in Blobs, concurrently; they are durable when it returns. On error it
// returns the index of the first item not kept.
func (p *Processor) keepAll(ctx context.Context, items []item) (int, error) {
	type put struct {
		item, part int // part -1: the raw message
	}
	var puts []put
	for i := range items {
		if items[i].plan == nil || items[i].kept {
			continue
		}
		puts = append(puts, put{i, -1})
		for k := range items[i].parts {
			puts = append(puts, put{i, k})
		}
	}
	errs := p.each(len(puts), maxPuts, func(j int) error {
		it, k := &items[puts[j].item], puts[j].part
		data, want, what := it.raw, it.sum, "message"
		if k >= 0 {
			data, want, what = it.parts[k].Data, it.partSums[k], fmt.Sprintf("part %d", k)
		}
		sum, _, err := p.o.Blobs.Put(ctx, bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return fmt.Errorf("returns: keep %s: %w", what, err)
		}
		if sum != want {
			return fmt.Errorf("returns: blob store gave sum %s for the %s of %s", sum, what, it.sum[:16])
		}
		return nil
	})
	first, ferr := len(items), error(nil)
	for j, err := range errs {
		if err != nil && puts[j].item < first {
			first, ferr = puts[j].item, err
		}
	}
	for i := 0; i < first; i++ {
		items[i].kept = items[i].kept || items[i].plan != nil
	}
	return first, ferr
}

// oneByOne applies the messages with Process, one after the other, until
// one fails.
func (p *Processor) oneByOne(ctx context.Context, raws [][]byte, outs []Outcome) ([]Outcome, int, error) {
	for i, raw := range raws {
		out, err := p.Process(ctx, raw)
		outs[i] = out
		if err != nil {
			return outs, i, err
		}
	}
	return outs, len(raws), nil
}

// each runs fn(0..n-1) on at most workers goroutines and returns their
// errors by index; every goroutine has ended when it returns. One worker
// (or one call) runs in the caller's goroutine.
func (p *Processor) each(n, workers int, fn func(i int) error) []error {
	errs := make([]error, n)
	workers = min(workers, n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			errs[i] = fn(i)
		}
		return errs
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				errs[i] = fn(i)
			}
		}()
	}
	wg.Wait()
	return errs
}

// appendChange adds the records of d to c, after those already in c: the
// store applies a Change in field order and its transitions in order, so
// the transitions of a later message chain after those of an earlier one.
func appendChange(c, d *store.Change) {
	c.Invoices = append(c.Invoices, d.Invoices...)
	c.Expectations = append(c.Expectations, d.Expectations...)
	c.Returns = append(c.Returns, d.Returns...)
	c.Anomalies = append(c.Anomalies, d.Anomalies...)
	c.Transitions = append(c.Transitions, d.Transitions...)
	c.Events = append(c.Events, d.Events...)
}

// marker is the Data of the applied-message event: enough to relay again.
type marker struct {
	Parts int         `json:"parts"`
	Relay []relayItem `json:"relay,omitempty"`
}

type relayItem struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	Part   int    `json:"part"`
}

func (p *Processor) applied(ctx context.Context, sum string) (marker, bool, error) {
	evs, err := p.o.Journal.Events(ctx, messageSubject(sum))
	if err != nil {
		return marker{}, false, fmt.Errorf("returns: read marker: %w", err)
	}
	for _, e := range evs {
		if e.Type == EventApplied {
			var m marker
			if err := json.Unmarshal(e.Data, &m); err != nil {
				return marker{}, true, fmt.Errorf("returns: marker of %s: %w", sum[:16], err)
			}
			return m, true, nil
		}
	}
	return marker{}, false, nil
}

func (p *Processor) relay(ctx context.Context, items []relayItem, parts []Part) (int, error) {
	if p.o.Relay == nil {
		return 0, nil
	}
	n := 0
	for _, it := range items {
		if it.Part < 0 || it.Part >= len(parts) {
			return n, fmt.Errorf("%w: part %d missing", ErrRelay, it.Part)
		}
		if err := p.o.Relay.Relay(ctx, it.Tenant, it.Name, parts[it.Part].Data); err != nil {
			return n, fmt.Errorf("%w: tenant %s: %w", ErrRelay, it.Tenant, err)
		}
		n++
	}
	return n, nil
}

// reasonOf is the anomaly reason of an unparsable message: error texts of
// Decode carry codes and positions, never file content.
func reasonOf(err error) string { return err.Error() }

// stateAwaitingARL reports whether a lot in state s waits for an ARL.
func stateAwaitingARL(s lifecycle.State) bool {
	return s == lifecycle.LotSent || s == lifecycle.LotResent || s == lifecycle.LotARLOverdue
}
