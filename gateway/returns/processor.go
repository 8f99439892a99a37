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
// not an error: it is recorded and reported in the Outcome.
func (p *Processor) Process(ctx context.Context, raw []byte) (Outcome, error) {
	h := sha256.Sum256(raw)
	sum := hex.EncodeToString(h[:])
	out := Outcome{SHA256: sum}
	if int64(len(raw)) > p.o.MaxMessageBytes {
		return out, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), p.o.MaxMessageBytes)
	}
	bsum, _, err := p.o.Blobs.Put(ctx, bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return out, fmt.Errorf("returns: keep message: %w", err)
	}
	if bsum != sum {
		return out, fmt.Errorf("returns: blob store gave sum %s for %s", bsum, sum)
	}
	parts, derr := Decode(raw, p.o.Decode)
	partSums := make([]string, len(parts))
	for i, pt := range parts {
		s, _, err := p.o.Blobs.Put(ctx, bytes.NewReader(pt.Data), int64(len(pt.Data)))
		if err != nil {
			return out, fmt.Errorf("returns: keep part %d: %w", i, err)
		}
		partSums[i] = s
	}
	for attempt := 0; attempt < p.o.Retries; attempt++ {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		mark, found, err := p.applied(ctx, sum)
		if err != nil {
			return out, err
		}
		if found {
			out.Duplicate = true
			out.Unparsable = derr != nil
			n, err := p.relay(ctx, mark.Relay, parts)
			out.Relayed = n
			return out, err
		}
		pl := p.newPlan(sum, parts, partSums)
		if derr != nil {
			pl.unparsable(derr)
			out.Unparsable, out.Reason = true, reasonOf(derr)
		} else if err := pl.correlate(ctx); err != nil {
			return out, err
		}
		c := pl.change()
		err = p.o.Journal.Commit(ctx, c)
		if errors.Is(err, store.ErrConflict) {
			p.o.Logger.Info("returns: conflict, retrying", "message", sum[:16], "attempt", attempt+1)
			continue
		}
		if err != nil {
			return out, fmt.Errorf("returns: commit: %w", err)
		}
		out.Returns, out.Anomalies = pl.refs, pl.anomalyKinds()
		p.o.Logger.Info("returns: applied", "message", sum[:16], "returns", len(pl.refs),
			"anomalies", len(pl.anomalies), "unparsable", out.Unparsable)
		if p.o.OnReturn != nil && len(pl.refs) > 0 {
			p.o.OnReturn()
		}
		n, err := p.relay(ctx, pl.mark.Relay, parts)
		out.Relayed = n
		return out, err
	}
	return out, fmt.Errorf("%w (%d attempts)", ErrConflict, p.o.Retries)
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
