// Package gateway is OCT's core: the single intake entry every channel
// adapter (HTTP API, SFTP, SMTP) calls, and the pipeline that moves work
// through the store as jobs.
package gateway

import (
	"errors"

	"github.com/octgw/oct/formats/fixed"
)

// Source says where a file came from. Channel adapters fill it.
type Source struct {
	Channel string // "api", "sftp", "smtp"
	Name    string // file name given by the vendor (informative, never trusted as a path)
	IdemKey string // optional Idempotency-Key; same key, same tenant: same file
	Remote  string // remote address, for the journal
	// Flow, when set, says which flow the file belongs to (store.FlowB2,
	// FlowCertificate, FlowPEC, FlowSCOR); empty: detected from the name
	// and the first bytes (docs/flows.md).
	Flow string
	// SCOR names the B2 lot a SCOR attachment goes with when the channel
	// carries it beside the file (API query); empty: read from the name.
	SCOR SCORKey
}

// Ack is the syntax acknowledgement returned once a file is durable.
type Ack struct {
	ID        string        `json:"id"`
	Status    string        `json:"status"` // "accepted" or "rejected"
	Format    string        `json:"format"`
	Ref       string        `json:"ref,omitempty"` // business reference of a certificate, PEC or SCOR message
	Name      string        `json:"name,omitempty"`
	SHA256    string        `json:"sha256"`
	Size      int64         `json:"size"`
	Received  string        `json:"received_at"` // RFC 3339
	Duplicate bool          `json:"duplicate"`   // the same file was already received: this is its first acknowledgement
	Errors    []fixed.Error `json:"errors"`
	Dropped   int64         `json:"errors_dropped,omitempty"`
	Stats     AckStats      `json:"stats"`
}

// AckStats counts what the file holds.
type AckStats struct {
	Records  int64 `json:"records"`
	Lots     int64 `json:"lots"`
	Invoices int64 `json:"invoices"`
}

// Ack statuses.
const (
	StatusAccepted = "accepted"
	StatusRejected = "rejected"
)

// Intake errors (errors.Is). Invalid content is not an error: it is stored
// and acknowledged as rejected. These are the cases where nothing is stored.
var (
	ErrTooLarge      = errors.New("too-large")      // body above the tenant's size limit
	ErrEmpty         = errors.New("empty")          // no bytes at all
	ErrUnknownTenant = errors.New("unknown-tenant") // tenant id not found or disabled
	ErrUnavailable   = errors.New("unavailable")    // store or disk cannot take the file now: retry later
	ErrRateLimited   = errors.New("rate-limited")   // tenant above its request rate
	ErrShuttingDown  = errors.New("shutting-down")  // node is draining
)
