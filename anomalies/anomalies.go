// Package anomalies is the support side of OCT: the expected-return ledger
// and its chasing (Chaser), the work queue of anomalies with assignment,
// comments and actions (Queue), and bulk actions over a filter (Bulk).
//
// It is pure logic over gateway/store: every decision reads the store,
// builds one store.Change and commits it; state changes are transitions
// checked by the store (compare-and-set on the current state), so two nodes
// acting on the same timer or two operators on the same lot cannot both
// succeed. Time comes from an injectable Clock; nothing sleeps.
package anomalies

import (
	"errors"
	"time"
)

// Clock gives the time (tests use a manual clock).
type Clock interface{ Now() time.Time }

// ClockFunc adapts a function (time.Now) to Clock.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }

func clockOr(c Clock) Clock {
	if c == nil {
		return ClockFunc(time.Now)
	}
	return c
}

// Job kinds and keys this package enqueues; the gateway pipeline runs them.
const (
	// JobDeliver is the pipeline's delivery job. A deliver job on a lot in
	// state arl_overdue is a resend (the lot goes to resent).
	JobDeliver = "deliver"
	// JobResend is the resend marker: a resend is a JobDeliver job on
	// Subject = lot id whose Key starts with JobResend + "-": "resend-1",
	// "resend-2"... from the Chaser (one per resend number), and
	// "resend-<action id>" from an operator or bulk action, so that the same
	// action run twice enqueues one job (the store keeps (Kind, Subject,
	// Key) unique).
	JobResend = "resend"
	// JobRoute is the pipeline's routing job; a rebuilt lot (state created)
	// is enqueued with Key "rebuild".
	JobRoute = "route"
)

// ResendKey is the job key of a resend: JobResend + "-" + suffix.
func ResendKey(suffix string) string { return JobResend + "-" + suffix }

// Expectation kinds.
const (
	ExpectARL = "arl" // technical acknowledgement (T1)
	ExpectRSP = "rsp" // payment return (T2, NOEMIE)
)

// Stable errors (use errors.Is).
var (
	ErrNotAllowed = errors.New("action-not-allowed") // the lot or anomaly state does not allow this action
	ErrNoAgent    = errors.New("no-agent-on-duty")   // automatic assignment found nobody
	ErrNoRule     = errors.New("no-assignment-rule") // no rule matches the anomaly
	ErrNotify     = errors.New("notify-failed")      // the change is committed but the vendor was not told
	ErrBadRequest = errors.New("bad-request")        // a missing or invalid argument
	ErrNoLot      = errors.New("no-lot")             // the anomaly is not about a lot
)
