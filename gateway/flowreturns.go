package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/octgw/oct/formats/certificate"
	"github.com/octgw/oct/formats/pec"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// JobAnswer applies the synchronous answer an endpoint gave to a send (a
// PEC answer, the SSA's first Task): Key is the blob of the answer.
const JobAnswer = "answer"

// Return kinds of the flows beside B2.
const (
	ReturnSSAStatus = "ssa-status" // a FHIR Task: the status an SSA gives a certificate
	ReturnPECAnswer = "pec-answer" // an OCT-PEC answer from an AMC
)

// ErrReturnEarly: a return for a lot whose send is not committed yet (the
// status feed overtook the delivery); the caller retries later and nothing
// is lost.
var ErrReturnEarly = errors.New("return-before-send")

// HandleFlowReturn takes one certificate status (FHIR Task) or PEC answer
// from an endpoint's feed: the raw bytes are kept, the return is applied
// once (the same bytes again do nothing) and relayed to the vendor. A
// return that matches no lot is kept as an orphan with an anomaly.
func (g *Gateway) HandleFlowReturn(ctx context.Context, source string, raw []byte) error {
	sum, _, err := g.blobs.Put(ctx, bytes.NewReader(raw), int64(len(raw))+1)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	c, err := g.flowReturn(ctx, source, nil, sum, raw)
	if err != nil || c == nil {
		return err
	}
	if err := g.st.Commit(ctx, c); err != nil {
		return err
	}
	if g.flows.OnReturn != nil && len(c.Returns) > 0 {
		g.flows.OnReturn(c.Returns[0].Tenant)
	}
	return nil
}

// answer is the JobAnswer handler.
func (g *Gateway) answer(ctx context.Context, l store.Lease) (*store.Change, error) {
	lot, err := g.st.Lot(ctx, l.Subject)
	if err != nil {
		return nil, err
	}
	raw, err := g.readBlob(ctx, l.Key)
	if err != nil {
		return nil, err
	}
	return g.flowReturn(ctx, "answer:"+lot.Destination, &lot, l.Key, raw)
}

func flowReturnID(sum string) string { return "ret-" + sum[:24] + "-flow" }

// flowReturn builds the change one flow return makes; nil when it was
// already applied. hint is the lot whose send the answer came with.
func (g *Gateway) flowReturn(ctx context.Context, source string, hint *store.Lot, sum string, raw []byte) (*store.Change, error) {
	if sum == "" {
		s := sha256.Sum256(raw)
		sum = hex.EncodeToString(s[:])
	}
	id := flowReturnID(sum)
	isTask := certificate.IsTask(raw)
	var (
		task    certificate.StatusUpdate
		taskErr error
	)
	if isTask {
		// One return per (task, status): the Task that answers the POST and
		// the same status in the SSA's feed are one status for the vendor,
		// whatever their bytes (lastModified, meta...).
		if task, taskErr = certificate.ParseTask(raw); taskErr == nil {
			k := sha256.Sum256([]byte("ssa-task\x00" + task.TaskID + "\x00" + string(task.Status)))
			id = "ret-" + hex.EncodeToString(k[:12]) + "-ssa"
		}
	}
	if _, err := g.st.Return(ctx, id); err == nil {
		return nil, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	now := g.now().UTC()
	ret := store.Return{ID: id, Blob: sum, Received: now}
	var (
		c   *store.Change
		err error
	)
	if isTask {
		ret.Kind = ReturnSSAStatus
		c, err = g.ssaStatus(ctx, source, hint, &ret, task, taskErr, now)
	} else {
		ret.Kind = ReturnPECAnswer
		c, err = g.pecAnswer(ctx, source, hint, &ret, raw, now)
	}
	if err != nil {
		return nil, err
	}
	c.Returns = append(c.Returns, ret)
	if c.Actor == "" {
		c.Actor = "returns:" + source
	}
	if ret.Tenant != "" && g.flows.Relay != nil {
		// Relayed unchanged; the same name again replaces it with the same
		// bytes, so a retried job relays harmlessly.
		if err := g.flows.Relay(ctx, ret.Tenant, ret.Kind+"-"+sum[:24]+".json", raw); err != nil {
			return nil, fmt.Errorf("relay of %s: %w", id, err)
		}
	}
	return c, nil
}

// orphan keeps a return that matches nothing, whole, with an anomaly.
func orphanChange(ret *store.Return, why string, now time.Time) *store.Change {
	ret.Orphan = true
	return &store.Change{Anomalies: []store.Anomaly{{
		ID: "orphan-" + ret.ID, Kind: "orphan-return", Subject: "return:" + ret.ID, State: lifecycle.AnomalyOpen,
		Reason: why, SLA: now.Add(24 * time.Hour), Created: now,
	}}}
}

func unparsableChange(ret *store.Return, err error, now time.Time) *store.Change {
	ret.Orphan = true
	return &store.Change{Anomalies: []store.Anomaly{{
		ID: "unparsable-" + ret.ID, Kind: "unparsable-return", Subject: "return:" + ret.ID, State: lifecycle.AnomalyOpen,
		Reason: err.Error(), SLA: now.Add(24 * time.Hour), Created: now,
	}}}
}

// acknowledged moves a sent lot to arl_positive (the endpoint has it) and
// satisfies its ARL expectations; it reports false when the lot is not in
// a sent state (already acknowledged, or not sent yet).
func (g *Gateway) acknowledged(ctx context.Context, c *store.Change, lot *store.Lot, retID, reason string) (bool, error) {
	switch lot.State {
	case lifecycle.LotSent, lifecycle.LotResent, lifecycle.LotARLOverdue:
	default:
		return false, nil
	}
	c.Transitions = append(c.Transitions, store.Transition{Kind: lifecycle.Lot, ID: lot.ID, From: lot.State,
		To: lifecycle.LotARLPositive, Actor: "returns", Reason: reason})
	lot.State = lifecycle.LotARLPositive
	exps, err := g.st.Expectations(ctx, lot.ID)
	if err != nil {
		return false, err
	}
	for _, e := range exps {
		if e.Kind == "arl" && e.SatisfiedBy == "" {
			e.SatisfiedBy = retID
			c.Expectations = append(c.Expectations, e)
		}
	}
	return true, nil
}

// settle ends an acknowledged lot once its final answer is in.
func settle(c *store.Change, lot *store.Lot, reason string) {
	if lot.State == lifecycle.LotARLPositive {
		c.Transitions = append(c.Transitions, store.Transition{Kind: lifecycle.Lot, ID: lot.ID, From: lot.State,
			To: lifecycle.LotSettled, Actor: "returns", Reason: reason})
		lot.State = lifecycle.LotSettled
	}
}

// statusRank orders certificate statuses: a late Task never takes a
// certificate back.
func statusRank(s string) int {
	switch certificate.Status(s) {
	case certificate.StatusReceived:
		return 1
	case certificate.StatusUnderReview:
		return 2
	case certificate.StatusAccepted, certificate.StatusRefused, certificate.StatusArbiterReturned:
		return 3
	}
	return 0
}

// SSAStatusSummary is the decoded summary of a certificate status return.
type SSAStatusSummary struct {
	Certificate string    `json:"certificate"`
	Task        string    `json:"task"`
	Status      string    `json:"status"`
	ReasonCode  string    `json:"reason_code,omitempty"`
	ReasonText  string    `json:"reason_text,omitempty"`
	Updated     time.Time `json:"updated"`
}

// ssaStatus applies a certificate status; u is the parsed Task, or perr
// why it could not be parsed.
func (g *Gateway) ssaStatus(ctx context.Context, source string, hint *store.Lot, ret *store.Return, u certificate.StatusUpdate, perr error, now time.Time) (*store.Change, error) {
	if perr != nil {
		return unparsableChange(ret, fmt.Errorf("certificate status from %s: %w", source, perr), now), nil
	}
	ret.Summary, _ = json.Marshal(SSAStatusSummary{Certificate: u.CertificateID, Task: u.TaskID, Status: string(u.Status),
		ReasonCode: u.ReasonCode, ReasonText: u.ReasonText, Updated: u.Updated})
	lot := hint
	if lot == nil {
		lots, err := g.st.Lots(ctx, store.LotQuery{Flow: store.FlowCertificate, Ref: u.CertificateID, Limit: 100})
		if err != nil {
			return nil, err
		}
		op := sourceOperator(source)
		for i := range lots { // by id: the latest matching lot wins
			if op == "" || lots[i].Destination == "ssa:"+op {
				lot = &lots[i]
			}
		}
	}
	if lot == nil {
		return orphanChange(ret, fmt.Sprintf("status %s of certificate %s from %s matches no certificate sent", u.Status, u.CertificateID, source), now), nil
	}
	ret.Lot, ret.Tenant = lot.ID, lot.Tenant
	if lot.State == lifecycle.LotSigned || lot.State == lifecycle.LotRouted {
		return nil, fmt.Errorf("%w: certificate lot %s", ErrReturnEarly, lot.ID)
	}
	c := &store.Change{}
	why := string(u.Status)
	if u.ReasonCode != "" {
		why += " (" + u.ReasonCode + ")"
	}
	if _, err := g.acknowledged(ctx, c, lot, ret.ID, "SSA task "+u.TaskID+": "+why); err != nil {
		return nil, err
	}
	if statusRank(string(u.Status)) > statusRank(lot.Status) {
		lot.Status = string(u.Status)
		lot.UpdatedAt = now
		c.Lots = append(c.Lots, *lot)
		c.Events = append(c.Events, store.Event{Subject: "lot:" + lot.ID, Type: "status", Actor: "returns", Reason: why})
		if u.Status.Final() {
			settle(c, lot, "SSA decision: "+why)
		}
	}
	return c, nil
}

// sourceOperator is the operator of a feed source "ssa:OP" ("" otherwise).
func sourceOperator(source string) string {
	if len(source) > 4 && source[:4] == "ssa:" {
		return source[4:]
	}
	return ""
}

// PECAnswerSummary is the decoded summary of a PEC answer return.
type PECAnswerSummary struct {
	PECID       string `json:"pec_id"`
	AMC         string `json:"amc"`
	Status      string `json:"status"`
	PECNumber   string `json:"pec_number,omitempty"`
	AmountCents int64  `json:"amount_cents,omitempty"`
	ValidUntil  string `json:"valid_until,omitempty"`
	ReasonCode  string `json:"reason_code,omitempty"`
	ReasonLabel string `json:"reason_label,omitempty"`
}

func (g *Gateway) pecAnswer(ctx context.Context, source string, hint *store.Lot, ret *store.Return, raw []byte, now time.Time) (*store.Change, error) {
	rep, err := pec.Validate(bytes.NewReader(raw), pec.Options{MaxBytes: int64(len(raw)) + 1})
	if err != nil {
		return nil, err
	}
	if !rep.Valid || rep.Message == nil || rep.Message.Kind != pec.KindAnswer {
		why := "not an OCT-PEC answer nor a certificate status"
		if len(rep.Errors) > 0 {
			why = fmt.Sprintf("%s: %s at %s", rep.Errors[0].Code, rep.Errors[0].Message, rep.Errors[0].Field)
		}
		return unparsableChange(ret, fmt.Errorf("return from %s: %s", source, why), now), nil
	}
	a := rep.Message.Answer
	ret.Summary, _ = json.Marshal(PECAnswerSummary{PECID: a.PECID, AMC: a.AMC, Status: a.Status, PECNumber: a.PECNumber,
		AmountCents: a.AmountCents, ValidUntil: a.ValidUntil, ReasonCode: a.ReasonCode, ReasonLabel: a.ReasonLabel})
	lots, err := g.st.Lots(ctx, store.LotQuery{Flow: store.FlowPEC, Ref: a.PECID, Limit: 100})
	if err != nil {
		return nil, err
	}
	// The request the answer is about: the latest request lot with that
	// pec_id (of the answering lot's tenant when the answer came with a send).
	var req *store.Lot
	for i := range lots {
		if hint != nil && lots[i].Tenant != hint.Tenant {
			continue
		}
		m, err := g.pecMessage(ctx, lots[i])
		if err != nil {
			return nil, err
		}
		if m.Kind == pec.KindRequest && m.Request.AMC == a.AMC {
			req = &lots[i]
		}
	}
	if req == nil && hint == nil {
		return orphanChange(ret, fmt.Sprintf("PEC answer %s for %s from %s matches no request sent", a.Status, a.PECID, source), now), nil
	}
	c := &store.Change{}
	anchor := req
	if anchor == nil {
		anchor = hint
	}
	ret.Lot, ret.Tenant = anchor.ID, anchor.Tenant
	final := a.Status != pec.StatusPending
	if hint != nil {
		if hint.State == lifecycle.LotSigned || hint.State == lifecycle.LotRouted {
			return nil, fmt.Errorf("%w: PEC lot %s", ErrReturnEarly, hint.ID)
		}
		if req != nil && hint.ID == req.ID {
			hint = req // one record for both roles
		}
		if _, err := g.acknowledged(ctx, c, hint, ret.ID, "AMC answer: "+a.Status); err != nil {
			return nil, err
		}
		if hint != req {
			// A status query or a cancel is done once answered.
			hint.Status, hint.UpdatedAt = a.Status, now
			c.Lots = append(c.Lots, *hint)
			settle(c, hint, "AMC answer: "+a.Status)
		}
	}
	if req != nil {
		if req != hint {
			if _, err := g.acknowledged(ctx, c, req, ret.ID, "AMC answer: "+a.Status); err != nil {
				return nil, err
			}
		}
		if final || req.Status == "" {
			req.Status, req.UpdatedAt = a.Status, now
			if k, ok := pec.LinkKey(a.PECNumber); ok {
				req.PEC = k
			}
			c.Lots = append(c.Lots, *req)
			reason := a.Status
			if a.ReasonCode != "" {
				reason += " (" + a.ReasonCode + ")"
			}
			if req.PEC != "" {
				reason += ", PEC number " + req.PEC
			}
			c.Events = append(c.Events, store.Event{Subject: "lot:" + req.ID, Type: "status", Actor: "returns", Reason: reason})
			if final {
				settle(c, req, "AMC answer: "+reason)
			}
		}
	}
	return c, nil
}
