package anomalies

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// Bulk actions.
const (
	BulkAssign     = "assign"      // to BulkRequest.Assignee
	BulkAutoAssign = "auto-assign" // by the rules
	BulkResend     = "resend"
	BulkRebuild    = "rebuild" // default drop set (rejected invoices)
	BulkResolve    = "resolve"
	BulkCancel     = "cancel"
	BulkHandBack   = "hand-back"
)

// BulkActions lists the bulk actions.
var BulkActions = []string{BulkAssign, BulkAutoAssign, BulkResend, BulkRebuild, BulkResolve, BulkCancel, BulkHandBack}

// MaxBulk bounds the items of one bulk execution.
const MaxBulk = 1000

// BulkRequest is a confirmed bulk action.
type BulkRequest struct {
	ID       string // action id, required: the same id executes each item at most once
	Filter   Filter
	Action   string
	Limit    int // required, 1..MaxBulk: at most this many items are acted on
	Actor    string
	Assignee string // BulkAssign
	Code     string // reason code (resolve, cancel, hand-back)
	Note     string
}

// BulkItem is the outcome of one item.
type BulkItem struct {
	Anomaly string `json:"anomaly"`
	Lot     string `json:"lot,omitempty"`
	Outcome string `json:"outcome"` // done, skipped (already done by this action id, or moved meanwhile), failed
	Detail  string `json:"detail,omitempty"`
}

// BulkResult sums up an execution.
type BulkResult struct {
	Done, Skipped, Failed int
	Items                 []BulkItem
}

// Preview returns the first limit items a bulk action with filter f would
// act on, in the order it would act.
func (q *Queue) Preview(ctx context.Context, f Filter, limit int) ([]Item, error) {
	f.Limit = limit
	return q.List(ctx, f)
}

// Bulk executes a confirmed bulk action: the filter is evaluated again, at
// most Limit items are taken in List order, and each item is one commit
// holding the action and its audit event (type bulk-item on subject
// bulk:ID). Items the same action id already handled are skipped, job keys
// derive from the action id and the lot id, and lot moves are
// compare-and-set: executing the same request twice (a double click, a
// retry after a timeout, two nodes) sends no lot twice.
func (q *Queue) Bulk(ctx context.Context, r BulkRequest) (BulkResult, error) {
	var res BulkResult
	if err := validActionID(r.ID); err != nil {
		return res, err
	}
	if r.Limit <= 0 || r.Limit > MaxBulk {
		return res, fmt.Errorf("%w: limit must be 1..%d", ErrBadRequest, MaxBulk)
	}
	known := false
	for _, a := range BulkActions {
		known = known || a == r.Action
	}
	if !known {
		return res, fmt.Errorf("%w: unknown bulk action %q", ErrBadRequest, r.Action)
	}
	if r.Action == BulkAssign && r.Assignee == "" {
		return res, fmt.Errorf("%w: assign needs an assignee", ErrBadRequest)
	}
	if (r.Action == BulkResolve || r.Action == BulkCancel || r.Action == BulkHandBack) && !knownReason(r.Code) {
		return res, fmt.Errorf("%w: unknown reason code %q", ErrBadRequest, r.Code)
	}
	subject := "bulk:" + r.ID
	past, err := q.o.Store.Events(ctx, subject)
	if err != nil {
		return res, err
	}
	handled := map[string]bool{}
	for _, e := range past {
		var it BulkItem
		if e.Type == EventBulkItem && json.Unmarshal(e.Data, &it) == nil && it.Outcome == "done" {
			handled[it.Anomaly] = true
		}
	}
	items, err := q.List(ctx, Filter{Kind: r.Filter.Kind, Tenant: r.Filter.Tenant, Destination: r.Filter.Destination,
		Assignee: r.Filter.Assignee, State: r.Filter.State, OlderThan: r.Filter.OlderThan, Limit: r.Limit})
	if err != nil {
		return res, err
	}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		bi := BulkItem{Anomaly: it.ID, Lot: it.Lot}
		if handled[it.ID] {
			bi.Outcome, bi.Detail = "skipped", "already done by this action"
		}
		c, n, err := q.planBulk(ctx, r, it.Anomaly)
		if handled[it.ID] {
			c, n, err = nil, nil, errSkip
		}
		if err == nil {
			bi.Outcome = "done"
			c.Events = append(c.Events, bulkEvent(subject, r, bi))
			if err = q.o.Store.Commit(ctx, c); err == nil {
				if nerr := q.notify(ctx, n, r.Actor); nerr != nil {
					bi.Detail = nerr.Error()
				}
			}
		}
		switch {
		case err == nil:
			res.Done++
		case errors.Is(err, errSkip):
			res.Skipped++
		case isGone(err) || errors.Is(err, ErrNotAllowed):
			bi.Outcome, bi.Detail = "skipped", err.Error()
			res.Skipped++
		default:
			bi.Outcome, bi.Detail = "failed", err.Error()
			res.Failed++
		}
		if bi.Outcome != "done" {
			// the audit trail holds every item, acted on or not
			if cerr := q.o.Store.Commit(ctx, &store.Change{Actor: r.Actor, Events: []store.Event{bulkEvent(subject, r, bi)}}); cerr != nil {
				return res, cerr
			}
		}
		res.Items = append(res.Items, bi)
	}
	return res, nil
}

var errSkip = errors.New("skip")

func bulkEvent(subject string, r BulkRequest, bi BulkItem) store.Event {
	data, _ := json.Marshal(bi)
	return store.Event{Subject: subject, Type: EventBulkItem, Actor: r.Actor, Reason: r.Action + " " + bi.Anomaly + ": " + bi.Outcome, Data: data}
}

func (q *Queue) planBulk(ctx context.Context, r BulkRequest, a store.Anomaly) (*store.Change, *Notice, error) {
	switch r.Action {
	case BulkAssign:
		c, err := q.planAssign(a, r.Assignee, r.Actor, "bulk "+r.ID)
		return c, nil, err
	case BulkAutoAssign:
		c, _, err := q.planAuto(ctx, a, r.Actor)
		return c, nil, err
	case BulkResend:
		c, err := q.planResend(ctx, a.ID, r.ID, r.Actor)
		return c, nil, err
	case BulkRebuild:
		c, _, n, err := q.planRebuild(ctx, a.ID, nil, r.ID, r.Actor)
		return c, n, err
	case BulkResolve:
		c, err := q.planClose(a, lifecycle.AnomalyResolved, r.Actor, r.Code, r.Note)
		return c, nil, err
	case BulkCancel:
		c, err := q.planClose(a, lifecycle.AnomalyCancelled, r.Actor, r.Code, r.Note)
		return c, nil, err
	case BulkHandBack:
		return q.planHandBack(a, r.Actor, r.Code, r.Note)
	}
	return nil, nil, fmt.Errorf("%w: %s", ErrBadRequest, r.Action)
}
