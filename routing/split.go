package routing

import (
	"context"
	"errors"
)

// ErrSplitUnavailable: the éclatement (split) rules are not available.
var ErrSplitUnavailable = errors.New("split-unavailable")

// Splitter extracts the AMC flow (a DRE lot) from an "FSE enrichie"
// (AMO + AMC parts in one invoice) for a Split destination.
//
// The rules are those of the SESAM-Vitale "Cahier des charges OCT" (v1.12),
// which is not public (formats.md §1.1, §4.5, §7.8): OCT does not guess them.
// NoSplit is the implementation until that document is available; it
// refuses, and the gateway turns the refusal into an anomaly naming the
// lot, so the AMC flow is never silently dropped nor invented. The signed
// FSE itself is never modified.
type Splitter interface {
	SplitAMC(ctx context.Context, lotFile []byte, dest Destination) (dre []byte, err error)
}

// NoSplit refuses every split with ErrSplitUnavailable.
type NoSplit struct{}

// SplitAMC implements Splitter.
func (NoSplit) SplitAMC(context.Context, []byte, Destination) ([]byte, error) {
	return nil, ErrSplitUnavailable
}
