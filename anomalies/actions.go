package anomalies

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// JobSign is the pipeline's signing job (a lot back at routed after a
// delivery or signing failure is signed and sent again).
const JobSign = "sign"

// LotNumbers gives the number of a rebuilt lot.
type LotNumbers interface {
	Next(ctx context.Context, old store.Lot) (int, error)
}

// MaxPlusOne numbers a rebuilt lot as the highest number the store holds
// for the same tenant and émetteur, plus one; after 999 it starts again at
// 1 (B2 lot numbers have 3 digits).
type MaxPlusOne struct{ Store store.Store }

// Next returns the next lot number for old's émetteur.
func (m MaxPlusOne) Next(ctx context.Context, old store.Lot) (int, error) {
	max, after := 0, ""
	for {
		lots, err := m.Store.Lots(ctx, store.LotQuery{Tenant: old.Tenant, Emitter: old.Emitter, After: after, Limit: 1000})
		if err != nil {
			return 0, err
		}
		for _, l := range lots {
			if l.Number > max {
				max = l.Number
			}
		}
		if len(lots) < 1000 {
			break
		}
		after = lots[len(lots)-1].ID
	}
	if max >= 999 {
		return 1, nil
	}
	return max + 1, nil
}

// actionEvent is the audit record of an operator action on an anomaly.
func actionEvent(anomaly, action, actionID, lot, actor, detail string) store.Event {
	data, _ := json.Marshal(map[string]string{"action": action, "action_id": actionID, "lot": lot})
	return store.Event{Subject: "anomaly:" + anomaly, Type: EventAction, Actor: actor, Reason: action + ": " + detail, Data: data}
}

// validActionID keeps action ids usable in job keys and event subjects.
func validActionID(id string) error {
	if id == "" || len(id) > 64 || strings.ContainsAny(id, " :/\t\n") {
		return fmt.Errorf("%w: action id %q", ErrBadRequest, id)
	}
	return nil
}

func (q *Queue) lotOfAnomaly(ctx context.Context, a store.Anomaly) (store.Lot, error) {
	id := lotOf(a.Subject)
	if id == "" {
		return store.Lot{}, fmt.Errorf("%w: %s is about %s", ErrNoLot, a.ID, a.Subject)
	}
	return q.o.Store.Lot(ctx, id)
}

// Resend sends the anomaly's lot again, once per action id: a lot waiting
// for its ARL (sent, resent, arl_overdue) goes to arl_overdue with a
// resend job keyed "resend-<action id>"; a lot that failed delivery or
// signing goes back to routed with a sign job; an unroutable lot is routed
// again. A lot with an ARL (positive or negative) is never resent
// (ErrNotAllowed). The anomaly stays as it is: the ARL will tell.
func (q *Queue) Resend(ctx context.Context, anomalyID, actionID, actor string) error {
	c, err := q.planResend(ctx, anomalyID, actionID, actor)
	if err != nil {
		return err
	}
	return q.o.Store.Commit(ctx, c)
}

func (q *Queue) planResend(ctx context.Context, anomalyID, actionID, actor string) (*store.Change, error) {
	if err := validActionID(actionID); err != nil {
		return nil, err
	}
	a, err := q.load(ctx, anomalyID)
	if err != nil {
		return nil, err
	}
	lot, err := q.lotOfAnomaly(ctx, a)
	if err != nil {
		return nil, err
	}
	now := q.Now()
	c := &store.Change{Actor: actor}
	move := func(to lifecycle.State, why string) {
		c.Transitions = append(c.Transitions, store.Transition{Kind: lifecycle.Lot, ID: lot.ID, From: lot.State, To: to, Actor: actor,
			Reason: why + " (anomaly " + a.ID + ", action " + actionID + ")"})
	}
	switch lot.State {
	case lifecycle.LotSent, lifecycle.LotResent:
		move(lifecycle.LotARLOverdue, "resend requested by "+actor)
		fallthrough
	case lifecycle.LotARLOverdue:
		c.Enqueue = append(c.Enqueue, store.Job{Kind: JobDeliver, Subject: lot.ID, Key: ResendKey(actionID), RunAt: now})
	case lifecycle.LotDeliveryFailed, lifecycle.LotSignFailed:
		move(lifecycle.LotRouted, "send again requested by "+actor)
		c.Enqueue = append(c.Enqueue, store.Job{Kind: JobSign, Subject: lot.ID, Key: "retry-" + actionID, RunAt: now})
	case lifecycle.LotUnroutable:
		c.Enqueue = append(c.Enqueue, store.Job{Kind: JobRoute, Subject: lot.ID, Key: "retry-" + actionID, RunAt: now})
	default:
		return nil, fmt.Errorf("%w: lot %s is %s, it cannot be sent again", ErrNotAllowed, lot.ID, lot.State)
	}
	c.Events = append(c.Events, actionEvent(a.ID, "resend", actionID, lot.ID, actor, "lot "+lot.ID+" was "+string(lot.State)))
	return c, nil
}

// RebuildResult tells what a rebuild made.
type RebuildResult struct {
	Old, New string   // lot ids
	Number   int      // the new lot's number
	Dropped  []string // invoice numbers left out
}

// Rebuild rebuilds the anomaly's lot (arl_negative or to_rebuild) without
// the invoices whose numbers are in drop (nil: the invoices marked
// rejected or carrying reject codes). The new lot (state created,
// Replaces = old id, number from LotNumbers, bytes from b2.RebuildLot) is
// queued for routing; the old lot goes to rebuilt, its pending invoices
// left out to dropped, the anomaly to resolved ("rebuilt"), and the vendor
// is told which invoices were left out. The new lot's id is derived from
// the old one and the action id, and the old lot's state is compared and
// set, so running the same action twice rebuilds once.
func (q *Queue) Rebuild(ctx context.Context, anomalyID string, drop []string, actionID, actor string) (RebuildResult, error) {
	c, res, n, err := q.planRebuild(ctx, anomalyID, drop, actionID, actor)
	if err != nil {
		return res, err
	}
	if err := q.o.Store.Commit(ctx, c); err != nil {
		return res, err
	}
	return res, q.notify(ctx, n, actor)
}

// MaxLotBytes bounds the outbound lot file read by Rebuild.
const MaxLotBytes = 64 << 20

func (q *Queue) planRebuild(ctx context.Context, anomalyID string, drop []string, actionID, actor string) (*store.Change, RebuildResult, *Notice, error) {
	var res RebuildResult
	if err := validActionID(actionID); err != nil {
		return nil, res, nil, err
	}
	if q.o.Blobs == nil {
		return nil, res, nil, fmt.Errorf("%w: rebuild needs the blob store", ErrBadRequest)
	}
	a, err := q.load(ctx, anomalyID)
	if err != nil {
		return nil, res, nil, err
	}
	old, err := q.lotOfAnomaly(ctx, a)
	if err != nil {
		return nil, res, nil, err
	}
	if old.State != lifecycle.LotARLNegative && old.State != lifecycle.LotToRebuild {
		return nil, res, nil, fmt.Errorf("%w: lot %s is %s, only a refused lot (arl_negative, to_rebuild) is rebuilt", ErrNotAllowed, old.ID, old.State)
	}
	invs, err := q.o.Store.Invoices(ctx, old.ID)
	if err != nil {
		return nil, res, nil, err
	}
	dropSet := map[string]bool{}
	if drop == nil {
		for _, inv := range invs {
			if inv.State == lifecycle.InvoiceRejected || len(inv.Codes) > 0 {
				dropSet[inv.Number] = true
			}
		}
	} else {
		known := map[string]bool{}
		for _, inv := range invs {
			known[inv.Number] = true
		}
		for _, d := range drop {
			if !known[d] {
				return nil, res, nil, fmt.Errorf("%w: invoice %q is not in lot %s", ErrBadRequest, d, old.ID)
			}
			dropSet[d] = true
		}
	}
	rc, err := q.o.Blobs.Open(ctx, old.Blob)
	if err != nil {
		return nil, res, nil, fmt.Errorf("lot file of %s: %w", old.ID, err)
	}
	data, err := io.ReadAll(io.LimitReader(rc, MaxLotBytes+1))
	rc.Close()
	if err != nil {
		return nil, res, nil, err
	}
	number, err := q.o.LotNumbers.Next(ctx, old)
	if err != nil {
		return nil, res, nil, err
	}
	var dropped []string
	for _, inv := range invs {
		if dropSet[inv.Number] {
			dropped = append(dropped, inv.Number)
		}
	}
	out, err := b2.RebuildLot(data, 0, dropped, number)
	if err != nil {
		return nil, res, nil, fmt.Errorf("%w: rebuild of %s: %v", ErrNotAllowed, old.ID, err)
	}
	sum, _, err := q.o.Blobs.Put(ctx, bytes.NewReader(out), int64(len(out))+1)
	if err != nil {
		return nil, res, nil, err
	}
	now := q.Now()
	newID := old.ID + "-r" + actionID
	nl := store.Lot{ID: newID, File: old.File, Tenant: old.Tenant, Index: old.Index, Emitter: old.Emitter, Number: number,
		Date: old.Date, Test: old.Test, State: lifecycle.LotCreated, Blob: sum, Replaces: old.ID, UpdatedAt: now}
	c := &store.Change{Actor: actor}
	why := fmt.Sprintf("rebuilt as %s (lot number %03d) without %d invoice(s)", newID, number, len(dropped))
	if old.State == lifecycle.LotARLNegative {
		c.Transitions = append(c.Transitions, store.Transition{Kind: lifecycle.Lot, ID: old.ID, From: lifecycle.LotARLNegative,
			To: lifecycle.LotToRebuild, Actor: actor, Reason: "to rebuild (anomaly " + a.ID + ")"})
	}
	c.Transitions = append(c.Transitions, store.Transition{Kind: lifecycle.Lot, ID: old.ID, From: lifecycle.LotToRebuild,
		To: lifecycle.LotRebuilt, Actor: actor, Reason: why})
	for _, inv := range invs {
		if dropSet[inv.Number] {
			if inv.State == lifecycle.InvoicePending {
				c.Transitions = append(c.Transitions, store.Transition{Kind: lifecycle.Invoice, ID: inv.ID, From: inv.State,
					To: lifecycle.InvoiceDropped, Actor: actor, Reason: "left out of " + newID})
			}
			continue
		}
		ni := inv
		ni.ID, ni.Lot, ni.State, ni.Codes = newID+"-"+strconv.Itoa(nl.Invoices), newID, lifecycle.InvoicePending, nil
		nl.Invoices++
		nl.Amount += inv.Billed
		c.Invoices = append(c.Invoices, ni)
	}
	c.Lots = []store.Lot{nl}
	if a.State == lifecycle.AnomalyOpen || a.State == lifecycle.AnomalyAssigned {
		c.Transitions = append(c.Transitions, store.Transition{Kind: lifecycle.Anomaly, ID: a.ID, From: a.State,
			To: lifecycle.AnomalyResolved, Actor: actor, Reason: "rebuilt: " + why})
	}
	c.Enqueue = append(c.Enqueue, store.Job{Kind: JobRoute, Subject: newID, Key: "rebuild", RunAt: now})
	c.Events = append(c.Events, actionEvent(a.ID, "rebuild", actionID, old.ID, actor, why))
	res = RebuildResult{Old: old.ID, New: newID, Number: number, Dropped: dropped}
	n := &Notice{Tenant: old.Tenant, Anomaly: a.ID, Kind: a.Kind, Subject: a.Subject, Action: "rebuilt", Code: "rebuilt",
		Reason: why, Lot: old.ID, NewLot: newID, Invoices: dropped, Time: now}
	return c, res, n, nil
}

// CancelLot cancels the anomaly's lot (an operator exit: it will not be
// sent) and the anomaly with it.
func (q *Queue) CancelLot(ctx context.Context, anomalyID, actor, code, note string) error {
	a, err := q.load(ctx, anomalyID)
	if err != nil {
		return err
	}
	c, err := q.planCancelLot(ctx, a, actor, code, note)
	if err != nil {
		return err
	}
	return q.o.Store.Commit(ctx, c)
}

func (q *Queue) planCancelLot(ctx context.Context, a store.Anomaly, actor, code, note string) (*store.Change, error) {
	lot, err := q.lotOfAnomaly(ctx, a)
	if err != nil {
		return nil, err
	}
	c, err := q.planClose(a, lifecycle.AnomalyCancelled, actor, code, note)
	if err != nil {
		return nil, err
	}
	if err := lifecycle.Check(lifecycle.Lot, lot.State, lifecycle.LotCancelled); err != nil {
		return nil, fmt.Errorf("%w: lot %s is %s", ErrNotAllowed, lot.ID, lot.State)
	}
	c.Transitions = append(c.Transitions, store.Transition{Kind: lifecycle.Lot, ID: lot.ID, From: lot.State, To: lifecycle.LotCancelled,
		Actor: actor, Reason: "cancelled with anomaly " + a.ID + ": " + c.Transitions[0].Reason})
	return c, nil
}

// isGone reports errors meaning another writer got there first.
func isGone(err error) bool {
	return errors.Is(err, store.ErrConflict) || errors.Is(err, lifecycle.ErrIllegal)
}
