// Package lifecycle holds the state machines of the things OCT tracks
// (files, lots, invoices, anomalies) as transition tables. The store refuses
// any transition that is not in a table: an illegal transition is an error,
// never silently applied. docs/lifecycle.md draws the same tables; a test
// checks the document and the code agree.
package lifecycle

import (
	"fmt"
	"sort"
)

// Kind is the kind of subject a state belongs to.
type Kind string

const (
	File    Kind = "file"
	Lot     Kind = "lot"
	Invoice Kind = "invoice"
	Anomaly Kind = "anomaly"
)

// State is a state name, stable (it is stored and shown to vendors).
type State string

// File states.
const (
	FileReceived State = "received" // raw bytes durable, not yet validated
	FileAccepted State = "accepted" // syntax valid
	FileRejected State = "rejected" // syntax invalid; kept for support, never sent
	FileSplit    State = "split"    // its lots exist and move on their own
	FileSettled  State = "settled"  // every lot reached a terminal state
)

// Lot states.
const (
	LotCreated        State = "created"         // extracted from an accepted file
	LotRouted         State = "routed"          // destination chosen (with referential version)
	LotUnroutable     State = "unroutable"      // no destination: anomaly
	LotSigned         State = "signed"          // outbound file signed by the pool
	LotSignFailed     State = "sign_failed"     // signing pool could not sign: anomaly
	LotSent           State = "sent"            // delivered to the insurer endpoint
	LotDeliveryFailed State = "delivery_failed" // permanent delivery failure: anomaly
	LotARLPositive    State = "arl_positive"    // insurer accepted the lot technically
	LotARLNegative    State = "arl_negative"    // insurer refused the lot: to rebuild
	LotARLOverdue     State = "arl_overdue"     // no ARL before the deadline
	LotResent         State = "resent"          // sent again after a chase or by an operator
	LotToRebuild      State = "to_rebuild"      // support must rebuild it without bad invoices
	LotRebuilt        State = "rebuilt"         // replaced by a new lot
	LotSettled        State = "settled"         // every invoice paid or rejected by RSP
	LotCancelled      State = "cancelled"
	LotHandedBack     State = "handed_back" // returned to the vendor to handle
)

// Invoice states.
const (
	InvoicePending  State = "pending"
	InvoicePaid     State = "paid"
	InvoiceRejected State = "rejected"
	InvoiceDeferred State = "deferred"
	InvoiceDropped  State = "dropped" // removed from its lot by a rebuild
)

// Anomaly states.
const (
	AnomalyOpen       State = "open"
	AnomalyAssigned   State = "assigned"
	AnomalyResolved   State = "resolved"
	AnomalyHandedBack State = "handed_back"
	AnomalyCancelled  State = "cancelled"
)

// Machine is one state machine: its initial state, its transitions and its
// terminal states.
type Machine struct {
	Kind     Kind
	Initial  State
	Next     map[State][]State
	Terminal map[State]bool
}

// operator exits: an operator may cancel or hand back any lot that is not
// yet terminal.
var lotOperatorExits = []State{LotCancelled, LotHandedBack}

func with(base []State, more ...State) []State { return append(append([]State(nil), base...), more...) }

var machines = map[Kind]*Machine{
	File: {
		Kind:    File,
		Initial: FileReceived,
		Next: map[State][]State{
			FileReceived: {FileAccepted, FileRejected},
			FileAccepted: {FileSplit},
			FileSplit:    {FileSettled},
		},
		Terminal: map[State]bool{FileRejected: true, FileSettled: true},
	},
	Lot: {
		Kind:    Lot,
		Initial: LotCreated,
		Next: map[State][]State{
			LotCreated:        with(lotOperatorExits, LotRouted, LotUnroutable),
			LotUnroutable:     with(lotOperatorExits, LotRouted),
			LotRouted:         with(lotOperatorExits, LotSigned, LotSignFailed),
			LotSignFailed:     with(lotOperatorExits, LotRouted),
			LotSigned:         with(lotOperatorExits, LotSent, LotDeliveryFailed),
			LotDeliveryFailed: with(lotOperatorExits, LotRouted),
			LotSent:           with(lotOperatorExits, LotARLPositive, LotARLNegative, LotARLOverdue),
			LotARLOverdue:     with(lotOperatorExits, LotResent, LotARLPositive, LotARLNegative),
			LotResent:         with(lotOperatorExits, LotARLPositive, LotARLNegative, LotARLOverdue),
			LotARLNegative:    with(lotOperatorExits, LotToRebuild),
			LotToRebuild:      with(lotOperatorExits, LotRebuilt),
			LotARLPositive:    {LotSettled, LotHandedBack},
		},
		Terminal: map[State]bool{LotRebuilt: true, LotSettled: true, LotCancelled: true, LotHandedBack: true},
	},
	Invoice: {
		Kind:    Invoice,
		Initial: InvoicePending,
		Next: map[State][]State{
			InvoicePending:  {InvoicePaid, InvoiceRejected, InvoiceDeferred, InvoiceDropped},
			InvoiceDeferred: {InvoicePaid, InvoiceRejected},
		},
		Terminal: map[State]bool{InvoicePaid: true, InvoiceRejected: true, InvoiceDropped: true},
	},
	Anomaly: {
		Kind:    Anomaly,
		Initial: AnomalyOpen,
		Next: map[State][]State{
			AnomalyOpen:     {AnomalyAssigned, AnomalyResolved, AnomalyHandedBack, AnomalyCancelled},
			AnomalyAssigned: {AnomalyAssigned, AnomalyOpen, AnomalyResolved, AnomalyHandedBack, AnomalyCancelled},
		},
		Terminal: map[State]bool{AnomalyResolved: true, AnomalyHandedBack: true, AnomalyCancelled: true},
	},
}

// For returns the machine of a kind, or nil.
func For(k Kind) *Machine { return machines[k] }

// Kinds lists the kinds with a machine, sorted.
func Kinds() []Kind {
	ks := make([]Kind, 0, len(machines))
	for k := range machines {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}

// ErrIllegal is the code of an IllegalError (use errors.Is).
var ErrIllegal = fmt.Errorf("illegal-transition")

// IllegalError says which transition was refused.
type IllegalError struct {
	Kind     Kind
	From, To State
}

func (e *IllegalError) Error() string {
	return fmt.Sprintf("illegal-transition: %s %q -> %q", e.Kind, e.From, e.To)
}

// Is makes errors.Is(err, ErrIllegal) true.
func (e *IllegalError) Is(target error) bool { return target == ErrIllegal }

// Check returns nil when kind may go from -> to. from == "" means creation,
// which is legal only into the initial state.
func Check(kind Kind, from, to State) error {
	m := machines[kind]
	if m == nil {
		return &IllegalError{kind, from, to}
	}
	if from == "" {
		if to == m.Initial {
			return nil
		}
		return &IllegalError{kind, from, to}
	}
	for _, s := range m.Next[from] {
		if s == to {
			return nil
		}
	}
	return &IllegalError{kind, from, to}
}

// IsTerminal reports whether a state ends its machine.
func IsTerminal(kind Kind, s State) bool {
	m := machines[kind]
	return m != nil && m.Terminal[s]
}

// States lists every state of a machine (initial first, then sorted).
func (m *Machine) States() []State {
	seen := map[State]bool{m.Initial: true}
	for from, tos := range m.Next {
		seen[from] = true
		for _, t := range tos {
			seen[t] = true
		}
	}
	out := make([]State, 0, len(seen))
	for s := range seen {
		if s != m.Initial {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return append([]State{m.Initial}, out...)
}
