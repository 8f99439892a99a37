// Package store is OCT's durable journal: the records a gateway keeps about
// every file, lot, invoice, send attempt, expected return, return and
// anomaly, an append-only hash-chained event log, and the job queue through
// which work moves between stages.
//
// One interface, two implementations: sqlite (embedded default, one node)
// and redis (several nodes). storetest holds the conformance suite both must
// pass. Raw bytes live in Blobs (content-addressed, sha256), never in rows.
//
// Every write goes through Commit (or CreateFile for intake), which applies a
// Change atomically and durably: when it returns nil, the change survives a
// crash (fsync'd). State changes are Transitions, checked against the
// lifecycle tables and compare-and-set on the current state; each one becomes
// exactly one event in the chained log.
package store

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/octgw/oct/gateway/lifecycle"
)

// Stable errors (use errors.Is).
var (
	ErrNotFound  = errors.New("not-found")
	ErrConflict  = errors.New("conflict")   // a transition's From is not the current state
	ErrLeaseLost = errors.New("lease-lost") // a job lease expired or was taken by another worker
	ErrDuplicate = errors.New("duplicate")  // a unique business key is already taken
	ErrClosed    = errors.New("store-closed")
	ErrInvalid   = errors.New("invalid-change") // a change that can never apply (missing ids, ...)
)

// Tenant is a vendor, insurer or support organisation using the gateway.
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	TokenHash string    `json:"-"`        // sha256 hex of the API token, unique (ErrDuplicate); the token itself is never stored
	SSHKeys   []string  `json:"ssh_keys"` // authorized_keys lines (public keys)
	Disabled  bool      `json:"disabled"`
	Created   time.Time `json:"created"`
}

// File is one file received from a tenant.
type File struct {
	ID         string          `json:"id"` // ULID
	Tenant     string          `json:"tenant"`
	Channel    string          `json:"channel"` // api, sftp, smtp
	Name       string          `json:"name"`    // name given by the vendor, informative only
	SHA256     string          `json:"sha256"`  // blob of the raw bytes
	Size       int64           `json:"size"`
	IdemKey    string          `json:"idempotency_key,omitempty"`
	Format     string          `json:"format"` // b2, noemie, arl, ...
	State      lifecycle.State `json:"state"`
	ReceivedAt time.Time       `json:"received_at"`
	Ack        []byte          `json:"-"` // syntax acknowledgement, JSON, as returned to the vendor
	Lots       int             `json:"lots"`
	Invoices   int             `json:"invoices"`
}

// Lot is one lot of a file, the unit that is routed, sent and acknowledged.
type Lot struct {
	ID          string          `json:"id"`
	File        string          `json:"file"`
	Tenant      string          `json:"tenant"`
	Index       int             `json:"index"`   // position in its file, from 0
	Emitter     string          `json:"emitter"` // PS / émetteur number
	Number      int             `json:"number"`
	Date        string          `json:"date"` // lot creation date YYYY-MM-DD
	Destination string          `json:"destination,omitempty"`
	RefVersion  string          `json:"referential_version,omitempty"`
	Test        bool            `json:"test"`
	State       lifecycle.State `json:"state"`
	Invoices    int             `json:"invoices"`
	Amount      int64           `json:"amount"`             // cents
	Blob        string          `json:"blob,omitempty"`     // sha256 of the outbound lot file
	Replaces    string          `json:"replaces,omitempty"` // lot id this one rebuilds
	Signed      string          `json:"signed,omitempty"`   // sha256 of the CMS SignedData of the outbound file
	// Flow says what the lot carries: "" or FlowB2 for B2 lots, or one of
	// the other flows (FlowCertificate, FlowPEC, FlowSCOR), which use the
	// same lifecycle, one record per message sent.
	Flow string `json:"flow,omitempty"`
	// Ref is the business reference of a non-B2 lot: the certificate id,
	// the PEC request id (pec_id), or for SCOR the id of the B2 lot the
	// attachment goes with. Returns of those flows correlate on it.
	Ref string `json:"ref,omitempty"`
	// Status is the last business status the endpoint reported, beside the
	// technical lifecycle state (certificate: received, under_review,
	// accepted, refused, arbiter_returned; PEC: agreement, partial, refusal,
	// pending, cancelled).
	Status string `json:"status,omitempty"`
	// PEC is the PEC number an AMC granted (PEC flow); B2 invoices that
	// carry it in their 2P complement link to this lot (FindInvoices).
	PEC       string    `json:"pec,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Flows of a Lot.
const (
	FlowB2          = "b2"
	FlowCertificate = "certificate"
	FlowPEC         = "pec"
	FlowSCOR        = "scor"
)

// Invoice is one invoice of a lot. The NIR is stored only as a keyed hash.
type Invoice struct {
	ID      string          `json:"id"`
	Lot     string          `json:"lot"`
	Tenant  string          `json:"tenant"`
	Number  string          `json:"number"`
	NIRHash string          `json:"nir_hash"`
	AMC     string          `json:"amc,omitempty"`
	PEC     string          `json:"pec,omitempty"`
	Billed  int64           `json:"billed"`
	AMO     int64           `json:"amo"`
	AMCPart int64           `json:"amc_part"`
	State   lifecycle.State `json:"state"`
	Codes   []string        `json:"codes,omitempty"` // reject / warning codes from RSP
}

// Attempt is one send of a lot to a destination.
type Attempt struct {
	ID          string    `json:"id"`
	Lot         string    `json:"lot"`
	Destination string    `json:"destination"`
	MessageID   string    `json:"message_id,omitempty"`
	Resend      bool      `json:"resend"`
	Started     time.Time `json:"started"`
	Ended       time.Time `json:"ended,omitempty"`
	Outcome     string    `json:"outcome,omitempty"` // ok, temporary, permanent
	Detail      string    `json:"detail,omitempty"`
}

// Expectation is a return the gateway waits for, with a deadline.
type Expectation struct {
	ID          string    `json:"id"`
	Lot         string    `json:"lot"`
	Kind        string    `json:"kind"` // arl, rsp
	DueAt       time.Time `json:"due_at"`
	SatisfiedBy string    `json:"satisfied_by,omitempty"` // return id
	Fired       bool      `json:"fired"`                  // deadline passed and acted upon
}

// Return is a return received from an insurer (ARL, RSP...).
type Return struct {
	ID       string    `json:"id"`
	Seq      int64     `json:"seq"` // feed cursor per store, assigned on insert
	Tenant   string    `json:"tenant,omitempty"`
	Kind     string    `json:"kind"`
	Blob     string    `json:"blob"`
	Lot      string    `json:"lot,omitempty"`
	Orphan   bool      `json:"orphan"`
	Summary  []byte    `json:"summary,omitempty"` // JSON
	Received time.Time `json:"received"`
}

// Anomaly is an item of the support work queue.
type Anomaly struct {
	ID          string          `json:"id"`
	Kind        string          `json:"kind"`
	Subject     string          `json:"subject"` // "lot:ID", "file:ID", ...
	Tenant      string          `json:"tenant,omitempty"`
	Destination string          `json:"destination,omitempty"`
	State       lifecycle.State `json:"state"`
	Assignee    string          `json:"assignee,omitempty"`
	Reason      string          `json:"reason"`
	SLA         time.Time       `json:"sla"`
	Created     time.Time       `json:"created"`
}

// Event is one entry of the append-only, hash-chained log.
type Event struct {
	Seq      int64           `json:"seq"`
	Time     time.Time       `json:"time"`
	Subject  string          `json:"subject"` // "file:ID", "lot:ID", "tenant:ID", ...
	Type     string          `json:"type"`    // "transition" for state changes, else a verb
	From     lifecycle.State `json:"from,omitempty"`
	To       lifecycle.State `json:"to,omitempty"`
	Actor    string          `json:"actor"`
	Reason   string          `json:"reason,omitempty"`
	Data     []byte          `json:"data,omitempty"` // JSON, no personal data
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// Transition moves a subject from one state to another. The store checks it
// against lifecycle (ErrIllegal), compares From with the current state
// (ErrConflict; ErrNotFound if there is no such record) and writes one event.
type Transition struct {
	Kind   lifecycle.Kind
	ID     string
	From   lifecycle.State
	To     lifecycle.State
	Actor  string
	Reason string
}

// Job is a unit of work waiting in the store.
type Job struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`    // "validate", "route", "deliver", ...
	Subject  string    `json:"subject"` // what it works on
	Key      string    `json:"key"`     // idempotency: (Kind, Subject, Key) is enqueued at most once
	RunAt    time.Time `json:"run_at"`
	Attempts int       `json:"attempts"`
	LastErr  string    `json:"last_error,omitempty"`
}

// Lease is a job leased to one worker until Until.
type Lease struct {
	Job
	Owner string    `json:"owner"`
	Token string    `json:"token"`
	Until time.Time `json:"until"`
}

// Retry puts a leased job back for later.
type Retry struct {
	Lease Lease
	At    time.Time
	Err   string
}

// Change is applied atomically by Commit. Puts are upserts by ID; a Put of a
// new File, Lot, Invoice or Anomaly records its creation event (from "" to
// its State, which must be the machine's initial state). Later state changes
// go only through Transitions: a Put never changes the state of an existing
// record.
//
// A Change applies in field order: tenants, files, lots, invoices, attempts,
// expectations, returns, anomalies, then transitions (in order, so a record
// put in the same Change can move, and several transitions can chain), events,
// enqueued, done and retried jobs.
type Change struct {
	Tenants      []Tenant
	Files        []File
	Lots         []Lot
	Invoices     []Invoice
	Attempts     []Attempt
	Expectations []Expectation
	Returns      []Return
	Anomalies    []Anomaly
	Transitions  []Transition
	Events       []Event // extra events (Type != "transition"); Seq, Time and hashes are set by the store
	Enqueue      []Job
	Done         []Lease // completed jobs; ErrLeaseLost if no longer held
	Retry        []Retry
	Actor        string // default actor for creation events
}

// LotQuery selects lots; empty fields do not filter.
type LotQuery struct {
	Tenant      string
	File        string
	Emitter     string
	Number      int
	Date        string
	Destination string
	State       lifecycle.State
	Flow        string // "b2" also matches lots with an empty Flow
	Ref         string
	PEC         string
	After       string // cursor: lots with ID > After
	Limit       int
}

// InvoiceQuery finds invoices by business key across lots; empty fields do
// not filter, but Number or PEC is required (ErrInvalid).
type InvoiceQuery struct {
	Tenant string
	Number string
	PEC    string
	After  string // cursor: invoices with ID > After
	Limit  int
}

// DailyCount is how many records of a kind entered a state on one day
// (UTC), for one tenant: creations count as entering the initial state.
// Stores maintain these counters as they write, so reading them costs the
// same at any volume.
type DailyCount struct {
	Day    string          `json:"day"` // YYYY-MM-DD
	Tenant string          `json:"tenant"`
	Kind   lifecycle.Kind  `json:"kind"`
	State  lifecycle.State `json:"state"`
	N      int64           `json:"n"`
}

// AnomalyQuery selects anomalies; empty fields do not filter.
type AnomalyQuery struct {
	Tenant, Kind, Destination, Assignee string
	State                               lifecycle.State
	Subject                             string
	After                               string
	Limit                               int
	// BySLA orders by deadline (SLA, then ID), most urgent first, instead
	// of by ID; the cursor is then the pair (AfterSLA, After): rows strictly
	// after it. An anomaly written without an SLA sorts first (due at once):
	// every creator should set it.
	BySLA    bool
	AfterSLA time.Time
}

// Store is the journal.
type Store interface {
	// CreateFile records a new file with its creation event and the jobs in
	// then, atomically. ID, Tenant and SHA256 are required (ErrInvalid).
	// If the tenant already has a file with the same
	// SHA256 or the same non-empty IdemKey, nothing is written and the
	// existing file is returned with created == false.
	CreateFile(ctx context.Context, f File, then *Change) (existing File, created bool, err error)
	// Commit applies c atomically and durably.
	Commit(ctx context.Context, c *Change) error

	Tenant(ctx context.Context, id string) (Tenant, error)
	TenantByToken(ctx context.Context, tokenHash string) (Tenant, error)
	Tenants(ctx context.Context) ([]Tenant, error)

	File(ctx context.Context, id string) (File, error)
	Files(ctx context.Context, tenant, after string, limit int) ([]File, error)
	Lot(ctx context.Context, id string) (Lot, error)
	Lots(ctx context.Context, q LotQuery) ([]Lot, error)
	Invoices(ctx context.Context, lot string) ([]Invoice, error)
	// FindInvoices lists invoices by number and/or PEC number, by ID.
	FindInvoices(ctx context.Context, q InvoiceQuery) ([]Invoice, error)
	Attempts(ctx context.Context, lot string) ([]Attempt, error)
	Expectations(ctx context.Context, lot string) ([]Expectation, error)
	// DueExpectations lists unsatisfied, unfired expectations due at or before t.
	DueExpectations(ctx context.Context, t time.Time, limit int) ([]Expectation, error)
	Return(ctx context.Context, id string) (Return, error)
	// Returns is the feed of a tenant's returns with Seq > after, in Seq order.
	Returns(ctx context.Context, tenant string, after int64, limit int) ([]Return, error)
	Anomaly(ctx context.Context, id string) (Anomaly, error)
	Anomalies(ctx context.Context, q AnomalyQuery) ([]Anomaly, error)

	// Daily lists the day counters from since (its UTC day) on, for one
	// tenant or every tenant (""), ordered by day, tenant, kind, state.
	Daily(ctx context.Context, since time.Time, tenant string) ([]DailyCount, error)

	// Events lists the events of one subject in order.
	Events(ctx context.Context, subject string) ([]Event, error)
	// EventsAfter lists events with Seq > after in order (audit, replication).
	EventsAfter(ctx context.Context, after int64, limit int) ([]Event, error)

	// Lease takes up to n jobs of the given kinds (nil: every kind) whose
	// RunAt has come and that no live lease holds, for ttl. A lease is held
	// while the store's clock is before Until: after that, Done, Retry and
	// Extend get ErrLeaseLost even if no other worker took the job.
	Lease(ctx context.Context, owner string, kinds []string, n int, ttl time.Duration) ([]Lease, error)
	// Extend pushes a held lease's expiry; ErrLeaseLost if no longer held.
	Extend(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// PendingJobs counts jobs not yet done, per kind.
	PendingJobs(ctx context.Context) (map[string]int, error)

	// Ping reports whether the store can serve (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// Blobs keeps raw bytes by sha256. Put is durable (fsync'd) when it returns.
type Blobs interface {
	Put(ctx context.Context, r io.Reader, maxBytes int64) (sum string, size int64, err error)
	Open(ctx context.Context, sum string) (io.ReadCloser, error)
	Has(ctx context.Context, sum string) (bool, error)
}

// ErrTooLarge is returned by Blobs.Put when r holds more than maxBytes.
var ErrTooLarge = errors.New("too-large")
