package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// Job kinds of the outbound half of the pipeline.
const (
	JobSign    = "sign"    // routed lot -> CMS SignedData through the signing pool
	JobDeliver = "deliver" // signed lot -> insurer endpoint
)

// Signer signs an outbound lot file (CMS SignedData with the signer
// certificate, content attached). The signing pool implements it.
type Signer interface {
	SignFile(ctx context.Context, profile, ref string, data []byte) ([]byte, error)
}

// Sender delivers one lot to its destination. Errors wrapping
// ErrTemporary are retried with backoff; any other error is permanent (an
// anomaly with the server's answer).
type Sender interface {
	Send(ctx context.Context, d Delivery) (Receipt, error)
}

// Delivery is what a Sender needs.
type Delivery struct {
	Lot       store.Lot
	Route     RouteInput // to resolve the destination's transport and certificate
	Body      []byte     // the outbound B2 lot file
	Signature []byte     // CMS SignedData over Body
	Resend    bool
}

// Receipt is what a Sender reports of a successful send.
type Receipt struct {
	MessageID string
	Detail    string
	// Answer is what the endpoint answered synchronously and must be
	// applied as a return (a PEC answer, an SSA Task).
	Answer []byte
}

// ErrTemporary marks a delivery failure worth retrying (4xx, timeout,
// circuit open).
var ErrTemporary = errors.New("temporary")

// OutboundOptions tune signing and delivery.
type OutboundOptions struct {
	Signer      Signer
	Profile     string // signing profile (default "default")
	Sender      Sender
	ARLDeadline time.Duration // an ARL is expected within this (default 48h)
	// AfterSend, when set, is called once a send succeeded and before its
	// outcome is journalled: the crash tests kill the process there
	// (`oct serve` with OCT_FAILPOINT=kill-after-send).
	AfterSend func(lot store.Lot)
}

func (o *OutboundOptions) fill() {
	if o.Profile == "" {
		o.Profile = "default"
	}
	if o.ARLDeadline <= 0 {
		o.ARLDeadline = 48 * time.Hour
	}
}

// afterRouting is what a routed lot needs next, given the capabilities this
// node has: signing when a signer is configured.
func (g *Gateway) afterRouting(lotID string, now time.Time) []store.Job {
	if g.out.Signer == nil || g.out.Sender == nil {
		return nil // the lot rests at routed until this node can sign and send
	}
	return []store.Job{{Kind: JobSign, Subject: lotID, Key: "sign", RunAt: now}}
}

// sign asks the pool for a CMS SignedData over the lot file.
func (g *Gateway) sign(ctx context.Context, l store.Lease) (*store.Change, error) {
	lot, err := g.st.Lot(ctx, l.Subject)
	if err != nil {
		return nil, err
	}
	if lot.State != lifecycle.LotRouted {
		return nil, nil
	}
	data, err := g.readBlob(ctx, lot.Blob)
	if err != nil {
		return nil, err
	}
	cms, err := g.out.Signer.SignFile(ctx, g.out.Profile, "lot:"+lot.ID, data)
	now := g.now().UTC()
	if err != nil {
		if l.Attempts+1 < g.workers.MaxAttempts {
			return nil, err
		}
		return &store.Change{
			Transitions: []store.Transition{{Kind: lifecycle.Lot, ID: lot.ID, From: lot.State, To: lifecycle.LotSignFailed, Actor: "sign", Reason: err.Error()}},
			Anomalies: []store.Anomaly{{ID: "sign-" + lot.ID, Kind: "signature-failure", Subject: "lot:" + lot.ID, Tenant: lot.Tenant,
				Destination: lot.Destination, State: lifecycle.AnomalyOpen, Reason: err.Error(), SLA: now.Add(4 * time.Hour), Created: now}},
		}, nil
	}
	sum, _, err := g.blobs.Put(ctx, bytes.NewReader(cms), int64(len(cms))+1)
	if err != nil {
		return nil, err
	}
	lot.Signed, lot.UpdatedAt = sum, now
	return &store.Change{
		Lots:        []store.Lot{lot},
		Transitions: []store.Transition{{Kind: lifecycle.Lot, ID: lot.ID, From: lot.State, To: lifecycle.LotSigned, Actor: "sign", Reason: "signed with profile " + g.out.Profile}},
		Enqueue:     []store.Job{{Kind: JobDeliver, Subject: lot.ID, Key: "send-1", RunAt: now}},
	}, nil
}

// deliver sends a signed lot at most once per job. The attempt is recorded
// durably before the send; if the node dies between the send and the commit
// of its outcome, the re-run finds the open attempt and does not send again:
// the lot is taken as sent and the ARL expectation (and its chase) decide.
func (g *Gateway) deliver(ctx context.Context, l store.Lease) (*store.Change, error) {
	lot, err := g.st.Lot(ctx, l.Subject)
	if err != nil {
		return nil, err
	}
	resend := lot.State == lifecycle.LotARLOverdue
	if lot.State != lifecycle.LotSigned && !resend {
		return nil, nil // already sent, or moved on by an operator
	}
	to := lifecycle.LotSent
	if resend {
		to = lifecycle.LotResent
	}
	attempts, err := g.st.Attempts(ctx, lot.ID)
	if err != nil {
		return nil, err
	}
	now := g.now().UTC()
	for _, a := range attempts {
		if a.Outcome == "" && a.Resend == resend {
			a.Outcome, a.Ended, a.Detail = "unknown", now, "node stopped during the send; not sent again, the ARL chase decides"
			return g.sentChange(lot, to, a, now), nil
		}
	}
	a := store.Attempt{ID: lot.ID + "-a" + strconv.Itoa(len(attempts)+1), Lot: lot.ID, Destination: lot.Destination, Resend: resend, Started: now}
	if err := g.st.Commit(ctx, &store.Change{Attempts: []store.Attempt{a}, Actor: "deliver"}); err != nil {
		return nil, err
	}
	body, err := g.readBlob(ctx, lot.Blob)
	if err != nil {
		return nil, err
	}
	sig, err := g.readBlob(ctx, lot.Signed)
	if err != nil {
		return nil, err
	}
	in, err := g.routeInput(ctx, lot)
	if err != nil {
		return nil, err
	}
	rcpt, err := g.out.Sender.Send(ctx, Delivery{Lot: lot, Route: in, Body: body, Signature: sig, Resend: resend})
	if err == nil && g.out.AfterSend != nil {
		g.out.AfterSend(lot)
	}
	a.Ended = g.now().UTC()
	switch {
	case err == nil:
		a.Outcome, a.MessageID, a.Detail = "ok", rcpt.MessageID, rcpt.Detail
		c := g.sentChange(lot, to, a, a.Ended)
		if len(rcpt.Answer) > 0 {
			// Kept durably with the send; applied by its own job, so a crash
			// after this commit loses nothing.
			sum, _, perr := g.blobs.Put(ctx, bytes.NewReader(rcpt.Answer), int64(len(rcpt.Answer))+1)
			if perr != nil {
				a.Detail += "; the synchronous answer could not be kept: " + perr.Error()
				c = g.sentChange(lot, to, a, a.Ended)
			} else {
				c.Enqueue = append(c.Enqueue, store.Job{Kind: JobAnswer, Subject: lot.ID, Key: sum, RunAt: a.Ended})
			}
		}
		return c, nil
	case errors.Is(err, ErrTemporary) && l.Attempts+1 < g.workers.MaxAttempts:
		a.Outcome, a.Detail = "temporary", err.Error()
		return &store.Change{Attempts: []store.Attempt{a}}, retryable{err}
	default:
		a.Outcome, a.Detail = "permanent", err.Error()
		return &store.Change{
			Attempts:    []store.Attempt{a},
			Transitions: []store.Transition{{Kind: lifecycle.Lot, ID: lot.ID, From: lot.State, To: lifecycle.LotDeliveryFailed, Actor: "deliver", Reason: err.Error()}},
			Anomalies: []store.Anomaly{{ID: "deliver-" + a.ID, Kind: "delivery-failed", Subject: "lot:" + lot.ID, Tenant: lot.Tenant,
				Destination: lot.Destination, State: lifecycle.AnomalyOpen, Reason: err.Error(), SLA: a.Ended.Add(4 * time.Hour), Created: a.Ended}},
		}, nil
	}
}

// sentChange records a send and the ARL it makes the gateway wait for.
func (g *Gateway) sentChange(lot store.Lot, to lifecycle.State, a store.Attempt, now time.Time) *store.Change {
	reason := "sent"
	if a.MessageID != "" {
		reason = "sent as " + a.MessageID
	}
	if a.Outcome == "unknown" {
		reason = a.Detail
	}
	return &store.Change{
		Attempts:     []store.Attempt{a},
		Transitions:  []store.Transition{{Kind: lifecycle.Lot, ID: lot.ID, From: lot.State, To: to, Actor: "deliver", Reason: reason}},
		Expectations: []store.Expectation{{ID: a.ID + "-arl", Lot: lot.ID, Kind: "arl", DueAt: now.Add(g.out.ARLDeadline)}},
	}
}

// retryable carries a temporary failure whose Change (the failed attempt)
// is committed together with the job's retry.
type retryable struct{ err error }

func (r retryable) Error() string { return fmt.Sprintf("retry: %v", r.err) }
func (r retryable) Unwrap() error { return r.err }
