package signing

import (
	"crypto"
	"time"
)

// EventKind says what an Event reports. The values are stable strings.
type EventKind string

const (
	// EventSigned is the audit record of one signature (one per request).
	EventSigned EventKind = "signed"
	// EventSignFailed is one failed attempt on one member; the request may
	// still succeed on another member (same RequestID).
	EventSignFailed EventKind = "sign_failed"
	// EventPINIncorrect: a member's PIN was rejected; the member is disabled
	// and its PIN is never presented again (until Reopen or a new config).
	EventPINIncorrect EventKind = "pin_incorrect"
	// EventPINBlocked: a member reports a blocked PIN; it is taken out of the
	// pool. The gateway raises an anomaly for it.
	EventPINBlocked EventKind = "pin_blocked"
	// EventMemberUp / EventMemberDown: health transitions.
	EventMemberUp   EventKind = "member_up"
	EventMemberDown EventKind = "member_down"
	// EventBreakerOpen / EventBreakerClosed: circuit breaker transitions.
	EventBreakerOpen   EventKind = "breaker_open"
	EventBreakerClosed EventKind = "breaker_closed"
	// EventMemberAdded / EventMemberRemoved: configuration changes (New, Update).
	EventMemberAdded   EventKind = "member_added"
	EventMemberRemoved EventKind = "member_removed"
)

// Event is an audit or state-change record. Fields that do not apply to a
// kind are zero. Events never carry a PIN or key material.
type Event struct {
	Kind      EventKind
	Time      time.Time
	RequestID uint64 // shared by all attempts of one request; 0 outside requests
	Ref       string // file/lot reference given by the caller
	MemberID  string
	Profile   string
	KeyID     string      // KeyID of the member's public key
	Digest    []byte      // SHA-256 of the file (SignFile) or the signed digest (raw Sign)
	Hash      crypto.Hash // hash of Digest
	Latency   time.Duration
	Attempt   int // 1 for the first member tried, 2 after one failover, ...
	Code      Code
	Err       error
}

// Observer receives events. OnEvent is called synchronously from the
// signing path and the health checker, never with a pool lock held; it must
// not block for long and must not call back into the pool's Close or Update.
type Observer interface {
	OnEvent(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// OnEvent calls f(e).
func (f ObserverFunc) OnEvent(e Event) { f(e) }
