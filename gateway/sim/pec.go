package sim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/pec"
)

// PEC answers of the simulated AMCs (OCT-PEC v1, docs/formats/pec.md).
//
// POST /amc/<endpoint>/pec takes one OCT-PEC v1 message:
//   - request: decided per Seed and pec_id: agreement (the requested AMC
//     amount) at PECAgreementRate, partial (60 % of it, reason P01) at
//     PECPartialRate, else refusal with one of pecRefusals. With
//     PECPendingRate a request is first answered pending and decided
//     PECDecisionDelay later on the Clock; a status query then gets the
//     decision. A request posted again (same pec_id) gets the current
//     answer, not a new decision.
//   - status: the current answer; unknown pec_id → refusal R99.
//   - cancel: cancelled (with the PEC number); unknown pec_id → refusal R99.
//   - anything invalid → 400 with {"errors": [findings]}; an answer → 400.

// pecRefusals are the simulator's refusal reasons (our codes: the OptoAMC
// tables are not public).
var pecRefusals = []struct{ code, label string }{
	{"R01", "ADHERENT INCONNU"},
	{"R02", "DROITS FERMES A LA DATE DU DEVIS"},
	{"R03", "EQUIPEMENT NON COUVERT PAR LE CONTRAT"},
	{"R04", "RENOUVELLEMENT ANTICIPE"},
}

// PEC reason codes the simulator uses outside decisions.
const (
	PECReasonUnknown = "R99" // status or cancel for a pec_id never requested
	PECReasonPartial = "P01" // partial agreement
)

type pecCase struct {
	endpoint  string
	request   pec.Request
	decision  pec.Answer // the decision, once made
	decideAt  time.Time  // pending until then
	cancelled bool
}

// PECCase is what the simulator holds for one request (PECCases).
type PECCase struct {
	Endpoint  string
	PECID     string
	Requested int64      // amc_requested_cents
	Decision  pec.Answer // agreement, partial or refusal
	Pending   bool       // not yet decided (PECPendingRate)
	Cancelled bool
}

// PECCases returns the requests received so far, by pec_id.
func (s *Sim) PECCases() map[string]PECCase {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Clock.Now()
	out := make(map[string]PECCase, len(s.pecs))
	for id, c := range s.pecs {
		out[id] = PECCase{Endpoint: c.endpoint, PECID: id, Requested: c.request.Totals.AMCRequestedCents, Decision: c.decision,
			Pending: now.Before(c.decideAt), Cancelled: c.cancelled}
	}
	return out
}

func (s *Sim) handlePEC(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		http.Error(w, "closing", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	ep := r.PathValue("endpoint")
	if f := s.takeFault(ep, "pec"); f != nil {
		http.Error(w, f.Message, f.Code)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, pec.DefaultMaxBytes+1))
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	rec := Received{Channel: "https", Endpoint: ep, Flow: "pec", MessageID: r.Header.Get("Idempotency-Key"), File: body,
		TLS: r.TLS != nil, At: s.cfg.Clock.Now()}
	verifyHeaderSignature(&rec, r.Header.Get("X-OCT-Signature"))
	rep, err := pec.Validate(bytes.NewReader(body), pec.Options{})
	if err != nil || !rep.Valid || rep.Kind == pec.KindAnswer {
		var errs []fixed.Error
		if rep != nil {
			errs = rep.Errors
		}
		if rep != nil && rep.Valid {
			errs = []fixed.Error{{Code: pec.ErrKind, Field: "kind", Message: "an AMC takes request, status and cancel messages"}}
		}
		for i, e := range errs {
			if i == 5 {
				break
			}
			rec.Errors = append(rec.Errors, e.Error())
		}
		s.record(rec, nil)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"errors": errs})
		return
	}
	rec.Valid = true
	ans := s.pecAnswer(ep, rep.Message)
	rec.Ref, rec.Status = ans.PECID, ans.Status
	out, err := pec.Marshal(&pec.Message{Version: pec.Version, Kind: pec.KindAnswer, Answer: &ans})
	if err != nil {
		http.Error(w, "cannot encode the answer", http.StatusInternalServerError)
		return
	}
	rec.Answer = out
	s.record(rec, nil)
	s.log.Info("sim: PEC message answered", "endpoint", ep, "kind", rep.Kind, "status", ans.Status)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", fmt.Sprintf("sim-pec-%s-%d", ep, s.Stats().PEC))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// pecAnswer applies a valid request, status or cancel and returns the
// answer to send.
func (s *Sim) pecAnswer(ep string, m *pec.Message) pec.Answer {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	answered := now.UTC().Format(time.RFC3339)
	unknown := func(id, amc string) pec.Answer {
		return pec.Answer{PECID: id, AMC: amc, Answered: answered, Status: pec.StatusRefusal,
			ReasonCode: PECReasonUnknown, ReasonLabel: "DEMANDE DE PEC INCONNUE"}
	}
	current := func(c *pecCase) pec.Answer {
		a := c.decision
		a.Answered = answered
		if c.cancelled {
			return pec.Answer{PECID: a.PECID, AMC: a.AMC, Answered: answered, Status: pec.StatusCancelled, PECNumber: s.pecNumber(a.PECID)}
		}
		if now.Before(c.decideAt) {
			return pec.Answer{PECID: a.PECID, AMC: a.AMC, Answered: answered, Status: pec.StatusPending}
		}
		return a
	}
	switch m.Kind {
	case pec.KindRequest:
		q := m.Request
		c, ok := s.pecs[q.PECID]
		if !ok {
			c = &pecCase{endpoint: ep, request: *q, decision: s.pecDecide(q, now)}
			if s.cfg.PECPendingRate > 0 && s.chance(q.PECID, "pec-pending") < s.cfg.PECPendingRate {
				c.decideAt = now.Add(s.cfg.PECDecisionDelay)
			}
			s.pecs[q.PECID] = c
		}
		s.stats.PEC++
		s.notifyLocked()
		return current(c)
	case pec.KindStatus:
		s.stats.PEC++
		s.notifyLocked()
		c, ok := s.pecs[m.Status.PECID]
		if !ok {
			return unknown(m.Status.PECID, m.Status.AMC)
		}
		return current(c)
	default: // cancel
		s.stats.PEC++
		s.notifyLocked()
		c, ok := s.pecs[m.Cancel.PECID]
		if !ok {
			return unknown(m.Cancel.PECID, m.Cancel.AMC)
		}
		c.cancelled = true
		return current(c)
	}
}

// pecDecide makes the decision for a request (deterministic per Seed and
// pec_id).
func (s *Sim) pecDecide(q *pec.Request, now time.Time) pec.Answer {
	a := pec.Answer{PECID: q.PECID, AMC: q.AMC, Answered: now.UTC().Format(time.RFC3339)}
	req := q.Totals.AMCRequestedCents
	x := s.chance(q.PECID, "pec")
	agree, partial := max(0, s.cfg.PECAgreementRate), max(0, s.cfg.PECPartialRate)
	switch {
	case req > 0 && x < agree:
		a.Status, a.AmountCents = pec.StatusAgreement, req
	case req > 1 && x < agree+partial:
		a.Status, a.AmountCents = pec.StatusPartial, max(1, req*60/100)
		a.ReasonCode, a.ReasonLabel = PECReasonPartial, "PLAFOND ANNUEL ATTEINT"
	default:
		rc := pecRefusals[int(s.chance(q.PECID, "pec-reason")*float64(len(pecRefusals)))]
		a.Status, a.ReasonCode, a.ReasonLabel = pec.StatusRefusal, rc.code, rc.label
		return a
	}
	a.PECNumber = s.pecNumber(q.PECID)
	a.ValidUntil = now.AddDate(0, 3, 0).UTC().Format(time.DateOnly)
	return a
}

// pecNumber is the PEC number granted to pec_id: "SIM" + 13 digits.
func (s *Sim) pecNumber(id string) string {
	return fmt.Sprintf("SIM%013d", s.hash(id, "pec-number")%1e13)
}

// verifyHeaderSignature checks a base64 detached CMS of rec.File.
func verifyHeaderSignature(rec *Received, b64 string) {
	if b64 == "" {
		return
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		rec.Signed, rec.SignatureErr = true, err.Error()
		return
	}
	rec.verify(sig)
}

// record appends rec to Received and notifies.
func (s *Sim) record(rec Received, count func(*Stats)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.received = append(s.received, rec)
	if count != nil {
		count(&s.stats)
	}
	s.notifyLocked()
	return true
}
