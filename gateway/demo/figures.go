package demo

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// Returns are the figures of the returns side once every lot is at rest
// (after the chase window): computed from the store (lots, send attempts,
// returns, events, invoices, anomalies), not from counters kept on the way.
type Returns struct {
	LostARLs   int `json:"lost_arls"`   // ARLs lost on the way (Options.LostARLRate)
	LostRSPs   int `json:"lost_rsps"`   // RSPs lost with them (same delivery)
	MaxResends int `json:"max_resends"` // the chase policy's automatic resends
	// LotsSent are lots with at least one send (attempt ok or unknown);
	// LotsWithoutReturn those of them the store has no ARL nor RSP for.
	LotsSent          int     `json:"lots_sent"`
	LotsWithoutReturn int     `json:"lots_without_return"`
	WithoutReturnPct  float64 `json:"without_return_pct"`
	// ExpectedWithoutReturnPct is what the policy gives when answers are
	// lost independently: LostARLRate^(MaxResends+1).
	ExpectedWithoutReturnPct float64 `json:"expected_without_return_pct"`
	Resent                   int     `json:"resent"`      // resends sent (attempts)
	LotsResent               int     `json:"lots_resent"` // lots resent at least once
	// ResentAfterPositiveARL counts resend attempts started after the lot
	// had moved to arl_positive (its event in the journal): must be 0.
	ResentAfterPositiveARL int `json:"resent_after_positive_arl"`
	Escalated              int `json:"escalated"` // arl-missing-after-resend anomalies
	RejectedInvoices       int `json:"rejected_invoices"`
	RejectedInQueue        int `json:"rejected_in_queue"`    // with an open or assigned invoice-rejected anomaly
	RejectedHandedBack     int `json:"rejected_handed_back"` // its anomaly handed back to the vendor
	// RejectedUnhandled are rejected invoices with neither: must be 0.
	RejectedUnhandled int `json:"rejected_invoices_unhandled"`

	doubleSent int
}

// returnFigures reads the store of a finished demo. received is what the
// caisses received per lot key; a key received more often than the
// gateway's send attempts for it counts as a lot sent twice.
func returnFigures(ctx context.Context, st store.Store, tenants []string, received map[lotKey]int) (Returns, error) {
	var f Returns
	sent := map[lotKey]int{}
	for _, t := range tenants {
		anoms, err := allAnomalies(ctx, st, t)
		if err != nil {
			return f, err
		}
		bySubject := map[string][]store.Anomaly{}
		for _, a := range anoms {
			bySubject[a.Subject] = append(bySubject[a.Subject], a)
			if a.Kind == anomalies.KindARLMissing {
				f.Escalated++
			}
		}
		returned := map[string]bool{}
		for after := int64(0); ; {
			rets, err := st.Returns(ctx, t, after, 1000)
			if err != nil {
				return f, err
			}
			for _, r := range rets {
				if r.Lot != "" && !r.Orphan {
					returned[r.Lot] = true
				}
				after = r.Seq
			}
			if len(rets) < 1000 {
				break
			}
		}
		for after := ""; ; {
			lots, err := st.Lots(ctx, store.LotQuery{Tenant: t, Flow: store.FlowB2, After: after, Limit: 1000}) // the other flows: FlowFigures
			if err != nil {
				return f, err
			}
			for _, l := range lots {
				if err := f.lot(ctx, st, l, returned, bySubject, sent); err != nil {
					return f, err
				}
				after = l.ID
			}
			if len(lots) < 1000 {
				break
			}
		}
	}
	if f.LotsSent > 0 {
		f.WithoutReturnPct = 100 * float64(f.LotsWithoutReturn) / float64(f.LotsSent)
	}
	for k, n := range received {
		if n > sent[k] {
			f.doubleSent++
		}
	}
	return f, nil
}

// lot adds one lot's figures.
func (f *Returns) lot(ctx context.Context, st store.Store, l store.Lot, returned map[string]bool,
	bySubject map[string][]store.Anomaly, sent map[lotKey]int) error {
	atts, err := st.Attempts(ctx, l.ID)
	if err != nil {
		return err
	}
	sends, resends := 0, 0
	for _, a := range atts {
		if a.Outcome == "ok" || a.Outcome == "unknown" {
			sends++
			if a.Resend {
				resends++
			}
		}
	}
	sent[lotKey{emitter9(l.Emitter), l.Number, l.Date}] += sends
	if sends > 0 {
		f.LotsSent++
		if !returned[l.ID] {
			f.LotsWithoutReturn++
		}
	}
	if resends > 0 {
		f.LotsResent++
		f.Resent += resends
	}
	// Any resend attempt (whatever its outcome) started after the lot's
	// first positive ARL is a resend the gateway should never have made.
	if hasResend(atts) {
		evs, err := st.Events(ctx, "lot:"+l.ID)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e.Type != "transition" || e.To != lifecycle.LotARLPositive {
				continue
			}
			for _, a := range atts {
				if a.Resend && a.Started.After(e.Time) {
					f.ResentAfterPositiveARL++
				}
			}
			break
		}
	}
	invs, err := st.Invoices(ctx, l.ID)
	if err != nil {
		return err
	}
	for _, inv := range invs {
		if inv.State != lifecycle.InvoiceRejected {
			continue
		}
		f.RejectedInvoices++
		state := lifecycle.State("")
		for _, a := range bySubject["invoice:"+inv.ID] {
			if a.Kind != anomalies.KindInvoiceRejected {
				continue
			}
			switch a.State {
			case lifecycle.AnomalyOpen, lifecycle.AnomalyAssigned:
				state = lifecycle.AnomalyOpen
			case lifecycle.AnomalyHandedBack:
				if state == "" {
					state = lifecycle.AnomalyHandedBack
				}
			}
		}
		switch state {
		case lifecycle.AnomalyOpen:
			f.RejectedInQueue++
		case lifecycle.AnomalyHandedBack:
			f.RejectedHandedBack++
		default:
			f.RejectedUnhandled++
		}
	}
	return nil
}

func hasResend(atts []store.Attempt) bool {
	for _, a := range atts {
		if a.Resend {
			return true
		}
	}
	return false
}

// allAnomalies lists every anomaly of a tenant.
func allAnomalies(ctx context.Context, st store.Store, tenant string) ([]store.Anomaly, error) {
	var out []store.Anomaly
	for after := ""; ; {
		page, err := st.Anomalies(ctx, store.AnomalyQuery{Tenant: tenant, After: after, Limit: 1000})
		if err != nil {
			return out, err
		}
		out = append(out, page...)
		if len(page) < 1000 {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}

// handBackHalf plays support: every second invoice-rejected anomaly (in id
// order) is handed back to its vendor, who corrects and bills again; the
// others stay in the queue.
func handBackHalf(ctx context.Context, q *anomalies.Queue, st store.Store, tenants []string) error {
	for _, t := range tenants {
		as, err := allAnomalies(ctx, st, t)
		if err != nil {
			return err
		}
		var ids []string
		for _, a := range as {
			if a.Kind == anomalies.KindInvoiceRejected && a.State == lifecycle.AnomalyOpen {
				ids = append(ids, a.ID)
			}
		}
		sort.Strings(ids)
		for i := 1; i < len(ids); i += 2 {
			if err := q.HandBack(ctx, ids[i], "demo-support", "vendor-data", "the vendor corrects the invoice and bills it again"); err != nil {
				return fmt.Errorf("hand back %s: %w", ids[i], err)
			}
		}
	}
	return nil
}

// check compares the summary with the demo's targets (issue #8) and fills
// TargetsMet and Failures.
func (s *Summary) check(o Options) {
	r := &s.Returns
	if o.LostARLRate > 0 && r.MaxResends >= 0 {
		r.ExpectedWithoutReturnPct = 100 * math.Pow(o.LostARLRate, float64(r.MaxResends+1))
	}
	var fails []string
	if s.TimedOut {
		fails = append(fails, fmt.Sprintf("timed out: %d of %d files not at rest", s.Files-s.Terminal-s.Lost, s.Files))
	}
	if s.Lost > 0 {
		fails = append(fails, fmt.Sprintf("%d acknowledged files not in the journal", s.Lost))
	}
	if s.DoubleSent > 0 {
		fails = append(fails, fmt.Sprintf("%d lots received by a caisse more often than the gateway sent them", s.DoubleSent))
	}
	if r.WithoutReturnPct >= 1 {
		msg := fmt.Sprintf("%.2f%% of the sent lots (%d of %d) got no return after the chase window (target < 1%%)",
			r.WithoutReturnPct, r.LotsWithoutReturn, r.LotsSent)
		if r.ExpectedWithoutReturnPct > 0 {
			msg += fmt.Sprintf("; with %.0f%% of the answers lost and %d resend(s) the policy gives %.2f%% on average",
				100*o.LostARLRate, r.MaxResends, r.ExpectedWithoutReturnPct)
		}
		fails = append(fails, msg)
	}
	if r.ResentAfterPositiveARL > 0 {
		fails = append(fails, fmt.Sprintf("%d resends after a positive ARL (target 0)", r.ResentAfterPositiveARL))
	}
	if fl := s.Flows; fl != nil && (fl.FlowsTimedOut || fl.NotTerminal > 0) {
		fails = append(fails, fmt.Sprintf("%d certificate, PEC or SCOR messages not at rest", fl.NotTerminal))
	}
	if r.RejectedUnhandled > 0 {
		fails = append(fails, fmt.Sprintf("%d rejected invoices neither in the queue nor handed back (target 0)", r.RejectedUnhandled))
	}
	s.Failures = fails
	s.TargetsMet = len(fails) == 0
}
