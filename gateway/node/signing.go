package node

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/signing"
	"github.com/octgw/oct/gateway/store"
)

// signAudit turns signing pool events into the journal: every signature is
// an event on its lot (member, key id, digest, latency), and a PIN that is
// wrong or blocked raises an anomaly. Events are queued (bounded) and
// committed in batches by one goroutine, off the signing path.
type signAudit struct {
	st   store.Store
	ch   chan signing.Event
	lost int64
	mu   sync.Mutex
}

func newSignAudit(st store.Store) *signAudit {
	return &signAudit{st: st, ch: make(chan signing.Event, 4096)}
}

// OnEvent implements signing.Observer; it never blocks the pool.
func (a *signAudit) OnEvent(e signing.Event) {
	select {
	case a.ch <- e:
	default:
		a.mu.Lock()
		a.lost++ // the metric of the pool still counts it
		a.mu.Unlock()
	}
}

// run commits queued events until ctx ends, then drains what is queued.
func (a *signAudit) run(ctx context.Context) {
	for {
		select {
		case e := <-a.ch:
			a.commit(append([]signing.Event{e}, a.drain(255)...))
		case <-ctx.Done():
			if rest := a.drain(len(a.ch)); len(rest) > 0 {
				a.commit(rest)
			}
			return
		}
	}
}

func (a *signAudit) drain(n int) []signing.Event {
	var out []signing.Event
	for i := 0; i < n; i++ {
		select {
		case e := <-a.ch:
			out = append(out, e)
		default:
			return out
		}
	}
	return out
}

func (a *signAudit) commit(evs []signing.Event) {
	c := &store.Change{Actor: "signing"}
	for _, e := range evs {
		switch e.Kind {
		case signing.EventSigned, signing.EventSignFailed:
			subject := e.Ref
			if subject == "" {
				subject = "signing:" + e.MemberID
			}
			data, _ := json.Marshal(map[string]any{
				"member": e.MemberID, "profile": e.Profile, "key_id": e.KeyID, "digest": hex.EncodeToString(e.Digest),
				"latency_ms": float64(e.Latency.Microseconds()) / 1000, "attempt": e.Attempt, "code": string(e.Code),
			})
			c.Events = append(c.Events, store.Event{Subject: subject, Type: "signature-" + string(e.Kind), Actor: "signing", Data: data})
		case signing.EventPINIncorrect, signing.EventPINBlocked:
			at := e.Time
			if at.IsZero() {
				at = time.Now()
			}
			c.Anomalies = append(c.Anomalies, store.Anomaly{
				ID: fmt.Sprintf("pin-%s-%d", e.MemberID, at.UnixNano()), Kind: "signature-failure", Subject: "signing:" + e.MemberID,
				State: lifecycle.AnomalyOpen, Reason: fmt.Sprintf("signing member %s: %s; taken out of the pool, never retried with the same PIN", e.MemberID, e.Kind),
				SLA: at.Add(2 * time.Hour), Created: at,
			})
		}
	}
	if len(c.Events)+len(c.Anomalies) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = a.st.Commit(ctx, c) // the store logs its own failures; the signature itself already succeeded or failed
}
