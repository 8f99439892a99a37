package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// GenesisHash is the PrevHash of the first event of a log.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// ErrBrokenChain is the code of a BrokenChainError (use errors.Is).
var ErrBrokenChain = errors.New("broken-chain")

// BrokenChainError says which event of the log does not link to the one
// before it.
type BrokenChainError struct {
	Seq    int64  // first event whose link is wrong
	Reason string // "prev_hash", "hash" or "seq"
}

func (e *BrokenChainError) Error() string {
	return fmt.Sprintf("broken-chain: event %d: %s mismatch", e.Seq, e.Reason)
}

// Is makes errors.Is(err, ErrBrokenChain) true.
func (e *BrokenChainError) Is(target error) bool { return target == ErrBrokenChain }

// CanonicalEvent is the byte string an event's hash covers, without its
// PrevHash: the fields Seq, Time, Subject, Type, From, To, Actor, Reason and
// Data, in this order, each written as a netstring "<len>:<bytes>,". Seq is
// in decimal, Time in UTC RFC 3339 with nanoseconds (time.RFC3339Nano), Data
// as is. Length prefixes make the encoding unambiguous whatever the fields
// hold.
func CanonicalEvent(e Event) []byte {
	fields := [...]string{
		strconv.FormatInt(e.Seq, 10),
		e.Time.UTC().Format(time.RFC3339Nano),
		e.Subject,
		e.Type,
		string(e.From),
		string(e.To),
		e.Actor,
		e.Reason,
		string(e.Data),
	}
	n := 0
	for _, f := range fields {
		n += len(f) + 22
	}
	b := make([]byte, 0, n)
	for _, f := range fields {
		b = strconv.AppendInt(b, int64(len(f)), 10)
		b = append(b, ':')
		b = append(b, f...)
		b = append(b, ',')
	}
	return b
}

// EventHash is hex(sha256(prev || CanonicalEvent(e))), prev being the hex
// hash of the previous event (GenesisHash for the first one).
func EventHash(prev string, e Event) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write(CanonicalEvent(e))
	return hex.EncodeToString(h.Sum(nil))
}

// verifyPage is how many events VerifyChain reads at a time.
const verifyPage = 1000

// VerifyChain walks the whole event log of s from the first event and checks
// that each event's PrevHash is the Hash of the event before it (GenesisHash
// for the first), that its Hash is EventHash(PrevHash, event), and that Seq
// strictly increases. progress, if not nil, is called after each page with
// the number of events checked so far.
//
// It returns the number of events found intact. When a link is broken it
// returns brokenAt, the Seq of the first bad event, and a *BrokenChainError
// (errors.Is(err, ErrBrokenChain)); other errors come from the store.
//
// The chain proves that no event was changed, inserted or removed before the
// last one; removing events at the end of the log is detectable only by
// comparing with a head (Seq, Hash) kept elsewhere.
func VerifyChain(ctx context.Context, s Store, progress func(n int64)) (checked int64, brokenAt int64, err error) {
	prev := GenesisHash
	var last int64
	for {
		if err := ctx.Err(); err != nil {
			return checked, 0, err
		}
		evs, err := s.EventsAfter(ctx, last, verifyPage)
		if err != nil {
			return checked, 0, err
		}
		if len(evs) == 0 {
			return checked, 0, nil
		}
		for _, e := range evs {
			switch {
			case e.Seq <= last:
				return checked, e.Seq, &BrokenChainError{Seq: e.Seq, Reason: "seq"}
			case e.PrevHash != prev:
				return checked, e.Seq, &BrokenChainError{Seq: e.Seq, Reason: "prev_hash"}
			case e.Hash != EventHash(prev, e):
				return checked, e.Seq, &BrokenChainError{Seq: e.Seq, Reason: "hash"}
			}
			prev, last = e.Hash, e.Seq
			checked++
		}
		if progress != nil {
			progress(checked)
		}
	}
}
