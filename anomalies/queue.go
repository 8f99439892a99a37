package anomalies

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// Notice is what a vendor is told about an anomaly handed back to them or
// a lot rebuilt without some of their invoices. It never holds personal
// data: invoice numbers only.
type Notice struct {
	Tenant   string    `json:"tenant"`
	Anomaly  string    `json:"anomaly"`
	Kind     string    `json:"kind"`
	Subject  string    `json:"subject"`
	Action   string    `json:"action"` // "handed-back", "rebuilt"
	Code     string    `json:"code,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Lot      string    `json:"lot,omitempty"`
	NewLot   string    `json:"new_lot,omitempty"`
	Invoices []string  `json:"invoices,omitempty"` // invoice numbers dropped (rejected) by a rebuild
	Time     time.Time `json:"time"`
}

// Notifier tells a vendor (the gateway wires it to the tenant's SFTP
// outbox and API feed). Notifying the same Notice twice must be harmless.
type Notifier interface {
	Notify(ctx context.Context, n Notice) error
}

// Rule sends anomalies to a team; empty fields match anything. The first
// matching rule wins.
type Rule struct {
	Kind        string `yaml:"kind"`
	Destination string `yaml:"destination"`
	Tenant      string `yaml:"tenant"`
	Team        string `yaml:"team"`
}

func (r Rule) match(a store.Anomaly) bool {
	return (r.Kind == "" || r.Kind == a.Kind) && (r.Destination == "" || r.Destination == a.Destination) &&
		(r.Tenant == "" || r.Tenant == a.Tenant)
}

// Roster tells who is on duty in a team.
type Roster interface {
	OnDuty(ctx context.Context, team string, now time.Time) ([]string, error)
}

// StaticRoster is a roster from configuration: team -> agents, always on
// duty.
type StaticRoster map[string][]string

// OnDuty returns the team's agents.
func (r StaticRoster) OnDuty(_ context.Context, team string, _ time.Time) ([]string, error) {
	return append([]string(nil), r[team]...), nil
}

// Options configure a Queue. Store is required; Blobs is needed by Rebuild.
type Options struct {
	Store      store.Store
	Blobs      store.Blobs
	Clock      Clock
	Notifier   Notifier   // nil: hand-backs and rebuilds are not notified (logged)
	Rules      []Rule     // automatic assignment
	Roster     Roster     // who is on duty for automatic assignment
	LotNumbers LotNumbers // nil: MaxPlusOne over the store
	SLAs       SLAs
	Logger     *slog.Logger
	// MaxScan bounds the anomalies a filter reads (default 100000).
	MaxScan int
}

// Queue is the support work queue over the store.
type Queue struct {
	o     Options
	clock Clock
	log   *slog.Logger
}

// New returns a Queue.
func New(o Options) (*Queue, error) {
	if o.Store == nil {
		return nil, fmt.Errorf("%w: anomalies.New needs a store", ErrBadRequest)
	}
	if o.LotNumbers == nil {
		o.LotNumbers = MaxPlusOne{Store: o.Store}
	}
	if o.MaxScan <= 0 {
		o.MaxScan = 100000
	}
	q := &Queue{o: o, clock: clockOr(o.Clock), log: o.Logger}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	return q, nil
}

// Now is the queue's clock.
func (q *Queue) Now() time.Time { return q.clock.Now().UTC() }

// SLAs returns the configured SLAs.
func (q *Queue) SLAs() SLAs { return q.o.SLAs }

// StateActive is a pseudo state of Filter: open or assigned.
const StateActive lifecycle.State = "active"

// Filter selects anomalies; empty fields do not filter.
type Filter struct {
	Kind, Tenant, Destination, Assignee string
	State                               lifecycle.State // a state, StateActive, or "" for all
	OlderThan                           time.Duration   // created at least this long ago
	Limit                               int             // 0: no limit (List: 200)
}

// Item is an anomaly as the queue shows it.
type Item struct {
	store.Anomaly
	Age     time.Duration
	Due     time.Time // SLA deadline
	Overdue bool
	Lot     string // lot id, when the subject is a lot or one of its invoices
}

func (q *Queue) item(a store.Anomaly, now time.Time) Item {
	it := Item{Anomaly: a, Age: now.Sub(a.Created), Due: a.SLA}
	if it.Due.IsZero() {
		it.Due = a.Created.Add(q.o.SLAs.For(a.Kind))
	}
	it.Overdue = !lifecycle.IsTerminal(lifecycle.Anomaly, a.State) && now.After(it.Due)
	it.Lot = lotOf(a.Subject)
	return it
}

// lotOf returns the lot id of a subject "lot:ID" or "invoice:LOT-N".
func lotOf(subject string) string {
	kind, id, _ := strings.Cut(subject, ":")
	switch kind {
	case "lot":
		return id
	case "invoice":
		if i := strings.LastIndexByte(id, '-'); i > 0 {
			return id[:i]
		}
	}
	return ""
}

// scan calls fn for each anomaly matching f, by id (up to MaxScan read),
// until fn returns false.
func (q *Queue) scan(ctx context.Context, f Filter, now time.Time, fn func(store.Anomaly) bool) error {
	read := 0
	for _, s := range f.states() {
		n, stopped, err := q.walkState(ctx, f, s, now, false, 500, q.o.MaxScan-read, fn)
		read += n
		if err != nil || stopped {
			return err
		}
	}
	return nil
}

// states are the states a filter walks (StateActive: open, then assigned).
func (f Filter) states() []lifecycle.State {
	if f.State == StateActive {
		return []lifecycle.State{lifecycle.AnomalyOpen, lifecycle.AnomalyAssigned}
	}
	return []lifecycle.State{f.State}
}

// walkState calls fn for each anomaly of one state matching f (by id, or
// most urgent first with bySLA), reading pages of page rows while fewer
// than budget were read, until fn returns false (stopped). It returns how
// many were read.
func (q *Queue) walkState(ctx context.Context, f Filter, s lifecycle.State, now time.Time, bySLA bool, page, budget int,
	fn func(store.Anomaly) bool) (read int, stopped bool, err error) {
	var after string
	var afterSLA time.Time
	for read < budget {
		as, err := q.o.Store.Anomalies(ctx, store.AnomalyQuery{Tenant: f.Tenant, Kind: f.Kind, Destination: f.Destination,
			Assignee: f.Assignee, State: s, BySLA: bySLA, After: after, AfterSLA: afterSLA, Limit: page})
		if err != nil {
			return read, false, err
		}
		for _, a := range as {
			read++
			if f.OlderThan > 0 && now.Sub(a.Created) < f.OlderThan {
				continue
			}
			if !fn(a) {
				return read, true, nil
			}
		}
		if len(as) < page {
			return read, false, nil
		}
		after, afterSLA = as[len(as)-1].ID, as[len(as)-1].SLA
	}
	return read, false, nil
}

// List returns the anomalies matching f, most urgent (earliest SLA
// deadline) first.
func (q *Queue) List(ctx context.Context, f Filter) ([]Item, error) {
	if f.Limit <= 0 {
		f.Limit = 200
	}
	now := q.Now()
	// The store returns each state's anomalies most urgent first: the first
	// Limit of each (after the age filter) hold the Limit most urgent ones.
	var out []Item
	for _, s := range f.states() {
		got := 0
		_, _, err := q.walkState(ctx, f, s, now, true, min(f.Limit, 500), q.o.MaxScan, func(a store.Anomaly) bool {
			out = append(out, q.item(a, now))
			got++
			return got < f.Limit
		})
		if err != nil {
			return nil, err
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Due.Equal(out[j].Due) {
			return out[i].Due.Before(out[j].Due)
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// Count counts the anomalies matching f (Limit ignored).
func (q *Queue) Count(ctx context.Context, f Filter) (int, error) {
	n := 0
	err := q.scan(ctx, f, q.Now(), func(store.Anomaly) bool { n++; return true })
	return n, err
}

// Detail is one anomaly with its history.
type Detail struct {
	Item
	History  []store.Event // events of anomaly:ID (transitions, comments, actions)
	Comments []store.Event
}

// Get returns an anomaly with its history.
func (q *Queue) Get(ctx context.Context, id string) (Detail, error) {
	a, err := q.o.Store.Anomaly(ctx, id)
	if err != nil {
		return Detail{}, err
	}
	d := Detail{Item: q.item(a, q.Now())}
	if d.History, err = q.o.Store.Events(ctx, "anomaly:"+id); err != nil {
		return d, err
	}
	for _, e := range d.History {
		if e.Type == EventComment {
			d.Comments = append(d.Comments, e)
		}
	}
	return d, nil
}

// Event types written on anomaly:ID and bulk:ID besides transitions.
const (
	EventComment  = "comment"
	EventAction   = "action"    // an operator action (resend, rebuild...) with its action id in Data
	EventBulkItem = "bulk-item" // on bulk:ID, one per item handled
	EventNotified = "notified"
)

func (q *Queue) load(ctx context.Context, id string) (store.Anomaly, error) {
	return q.o.Store.Anomaly(ctx, id)
}

// planAssign assigns a to agent (reassigning if already assigned).
func (q *Queue) planAssign(a store.Anomaly, agent, actor, why string) (*store.Change, error) {
	if agent == "" {
		return nil, fmt.Errorf("%w: no agent", ErrBadRequest)
	}
	if a.State != lifecycle.AnomalyOpen && a.State != lifecycle.AnomalyAssigned {
		return nil, fmt.Errorf("%w: anomaly %s is %s", ErrNotAllowed, a.ID, a.State)
	}
	if a.State == lifecycle.AnomalyAssigned && a.Assignee == agent {
		return &store.Change{Actor: actor}, nil
	}
	reason := "assigned to " + agent
	if a.Assignee != "" {
		reason = "reassigned from " + a.Assignee + " to " + agent
	}
	if why != "" {
		reason += " (" + why + ")"
	}
	from := a.State
	a.Assignee = agent
	return &store.Change{Actor: actor, Anomalies: []store.Anomaly{a}, Transitions: []store.Transition{{Kind: lifecycle.Anomaly,
		ID: a.ID, From: from, To: lifecycle.AnomalyAssigned, Actor: actor, Reason: reason}}}, nil
}

// Assign assigns (or reassigns) an anomaly to an agent.
func (q *Queue) Assign(ctx context.Context, id, agent, actor string) error {
	a, err := q.load(ctx, id)
	if err != nil {
		return err
	}
	c, err := q.planAssign(a, agent, actor, "")
	if err != nil {
		return err
	}
	return q.o.Store.Commit(ctx, c)
}

// Unassign puts an assigned anomaly back in the open queue.
func (q *Queue) Unassign(ctx context.Context, id, actor string) error {
	a, err := q.load(ctx, id)
	if err != nil {
		return err
	}
	if a.State != lifecycle.AnomalyAssigned {
		return fmt.Errorf("%w: anomaly %s is %s", ErrNotAllowed, id, a.State)
	}
	prev := a.Assignee
	a.Assignee = ""
	return q.o.Store.Commit(ctx, &store.Change{Actor: actor, Anomalies: []store.Anomaly{a}, Transitions: []store.Transition{{
		Kind: lifecycle.Anomaly, ID: id, From: lifecycle.AnomalyAssigned, To: lifecycle.AnomalyOpen, Actor: actor, Reason: "unassigned from " + prev}}})
}

// Pick chooses the agent for an anomaly by the rules and the roster: the
// team of the first matching rule, then among its agents on duty the one
// with the fewest assigned anomalies (ties: by name).
func (q *Queue) Pick(ctx context.Context, a store.Anomaly) (agent, team string, err error) {
	for _, r := range q.o.Rules {
		if r.match(a) {
			team = r.Team
			break
		}
	}
	if team == "" {
		return "", "", fmt.Errorf("%w: %s %s", ErrNoRule, a.Kind, a.ID)
	}
	if q.o.Roster == nil {
		return "", team, fmt.Errorf("%w: no roster", ErrNoAgent)
	}
	agents, err := q.o.Roster.OnDuty(ctx, team, q.Now())
	if err != nil {
		return "", team, err
	}
	sort.Strings(agents)
	best, bestN := "", -1
	for _, ag := range agents {
		n, err := q.Count(ctx, Filter{Assignee: ag, State: lifecycle.AnomalyAssigned})
		if err != nil {
			return "", team, err
		}
		if bestN < 0 || n < bestN {
			best, bestN = ag, n
		}
	}
	if best == "" {
		return "", team, fmt.Errorf("%w: team %s", ErrNoAgent, team)
	}
	return best, team, nil
}

// AutoAssign assigns one open anomaly by the rules and returns the agent.
func (q *Queue) AutoAssign(ctx context.Context, id, actor string) (string, error) {
	a, err := q.load(ctx, id)
	if err != nil {
		return "", err
	}
	c, agent, err := q.planAuto(ctx, a, actor)
	if err != nil {
		return "", err
	}
	return agent, q.o.Store.Commit(ctx, c)
}

func (q *Queue) planAuto(ctx context.Context, a store.Anomaly, actor string) (*store.Change, string, error) {
	agent, team, err := q.Pick(ctx, a)
	if err != nil {
		return nil, "", err
	}
	c, err := q.planAssign(a, agent, actor, "rule: team "+team)
	return c, agent, err
}

// AutoAssignOpen assigns up to limit open anomalies by the rules, one at a
// time so that the balance counts each new assignment. Anomalies no rule
// or agent covers stay open. It returns how many it assigned.
func (q *Queue) AutoAssignOpen(ctx context.Context, limit int, actor string) (int, error) {
	var open []store.Anomaly
	err := q.scan(ctx, Filter{State: lifecycle.AnomalyOpen}, q.Now(), func(a store.Anomaly) bool {
		open = append(open, a)
		return limit <= 0 || len(open) < limit
	})
	if err != nil {
		return 0, err
	}
	sort.SliceStable(open, func(i, j int) bool { return open[i].Created.Before(open[j].Created) })
	n := 0
	for _, a := range open {
		c, _, err := q.planAuto(ctx, a, actor)
		if errors.Is(err, ErrNoRule) || errors.Is(err, ErrNoAgent) {
			continue
		}
		if err != nil {
			return n, err
		}
		if err := q.o.Store.Commit(ctx, c); err != nil {
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			return n, err
		}
		n++
	}
	return n, nil
}

// MaxComment bounds a comment's length in bytes.
const MaxComment = 4000

// Comment adds a comment to an anomaly (NIR-like numbers are masked).
func (q *Queue) Comment(ctx context.Context, id, actor, text string) error {
	text = strings.TrimSpace(text)
	if text == "" || len(text) > MaxComment {
		return fmt.Errorf("%w: a comment is 1 to %d bytes", ErrBadRequest, MaxComment)
	}
	if _, err := q.load(ctx, id); err != nil {
		return err
	}
	return q.o.Store.Commit(ctx, &store.Change{Actor: actor, Events: []store.Event{{Subject: "anomaly:" + id, Type: EventComment,
		Actor: actor, Reason: MaskNIR(text)}}})
}

// planClose moves a to resolved, handed_back or cancelled with a reason code.
func (q *Queue) planClose(a store.Anomaly, to lifecycle.State, actor, code, note string) (*store.Change, error) {
	if !knownReason(code) {
		return nil, fmt.Errorf("%w: unknown reason code %q", ErrBadRequest, code)
	}
	if err := lifecycle.Check(lifecycle.Anomaly, a.State, to); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAllowed, err)
	}
	reason := code
	if note = strings.TrimSpace(note); note != "" {
		reason += ": " + MaskNIR(note)
	}
	return &store.Change{Actor: actor, Transitions: []store.Transition{{Kind: lifecycle.Anomaly, ID: a.ID, From: a.State, To: to,
		Actor: actor, Reason: reason}}}, nil
}

// Resolve closes an anomaly as resolved.
func (q *Queue) Resolve(ctx context.Context, id, actor, code, note string) error {
	return q.close(ctx, id, lifecycle.AnomalyResolved, actor, code, note)
}

// Cancel closes an anomaly as cancelled (not an anomaly, duplicate...).
func (q *Queue) Cancel(ctx context.Context, id, actor, code, note string) error {
	return q.close(ctx, id, lifecycle.AnomalyCancelled, actor, code, note)
}

func (q *Queue) close(ctx context.Context, id string, to lifecycle.State, actor, code, note string) error {
	a, err := q.load(ctx, id)
	if err != nil {
		return err
	}
	c, err := q.planClose(a, to, actor, code, note)
	if err != nil {
		return err
	}
	return q.o.Store.Commit(ctx, c)
}

// HandBack closes an anomaly as handed back to the vendor and tells the
// vendor through the Notifier. The state change is committed first: an
// error wrapping ErrNotify means the vendor was not told (retry with
// NotifyAgain).
func (q *Queue) HandBack(ctx context.Context, id, actor, code, note string) error {
	a, err := q.load(ctx, id)
	if err != nil {
		return err
	}
	c, n, err := q.planHandBack(a, actor, code, note)
	if err != nil {
		return err
	}
	if err := q.o.Store.Commit(ctx, c); err != nil {
		return err
	}
	return q.notify(ctx, n, actor)
}

func (q *Queue) planHandBack(a store.Anomaly, actor, code, note string) (*store.Change, *Notice, error) {
	c, err := q.planClose(a, lifecycle.AnomalyHandedBack, actor, code, note)
	if err != nil {
		return nil, nil, err
	}
	n := &Notice{Tenant: a.Tenant, Anomaly: a.ID, Kind: a.Kind, Subject: a.Subject, Action: "handed-back", Code: code,
		Reason: MaskNIR(joinReason(a.Reason, note)), Lot: lotOf(a.Subject), Time: q.Now()}
	return c, n, nil
}

// NotifyAgain sends the hand-back notice of a handed-back anomaly again.
func (q *Queue) NotifyAgain(ctx context.Context, id, actor string) error {
	a, err := q.load(ctx, id)
	if err != nil {
		return err
	}
	if a.State != lifecycle.AnomalyHandedBack {
		return fmt.Errorf("%w: anomaly %s is %s", ErrNotAllowed, id, a.State)
	}
	evs, err := q.o.Store.Events(ctx, "anomaly:"+id)
	if err != nil {
		return err
	}
	n := &Notice{Tenant: a.Tenant, Anomaly: a.ID, Kind: a.Kind, Subject: a.Subject, Action: "handed-back",
		Reason: MaskNIR(a.Reason), Lot: lotOf(a.Subject), Time: q.Now()}
	for _, e := range evs {
		if e.To == lifecycle.AnomalyHandedBack {
			code, note, _ := strings.Cut(e.Reason, ": ")
			n.Code, n.Reason = code, MaskNIR(joinReason(a.Reason, note))
		}
	}
	return q.notify(ctx, n, actor)
}

// notify calls the Notifier and records a "notified" event on the anomaly.
func (q *Queue) notify(ctx context.Context, n *Notice, actor string) error {
	if n == nil {
		return nil
	}
	if q.o.Notifier == nil {
		q.log.Info("no notifier configured: vendor not told", "tenant", n.Tenant, "anomaly", n.Anomaly, "action", n.Action)
		return nil
	}
	if err := q.o.Notifier.Notify(ctx, *n); err != nil {
		q.log.Warn("vendor notification failed", "tenant", n.Tenant, "anomaly", n.Anomaly, "error", err)
		return fmt.Errorf("%w: %v", ErrNotify, err)
	}
	if n.Anomaly == "" {
		return nil
	}
	return q.o.Store.Commit(ctx, &store.Change{Actor: actor, Events: []store.Event{{Subject: "anomaly:" + n.Anomaly,
		Type: EventNotified, Actor: actor, Reason: "vendor " + n.Tenant + " told: " + n.Action}}})
}

func joinReason(a, b string) string {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if a == "" || b == "" {
		return a + b
	}
	return a + "; " + b
}
