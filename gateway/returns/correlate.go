package returns

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/noemie"
	"github.com/octgw/oct/formats/scor"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// maxCandidates bounds the lots read for one set of matching keys.
const maxCandidates = 50

// Outcomes of one ARL or one RSP invoice, in return summaries.
const (
	OutcomeApplied     = "applied"     // the state moved
	OutcomeAlready     = "already"     // the lot or invoice was already in the state the return gives
	OutcomeUnprocessed = "unprocessed" // RSP invoice with no part paid, rejected or deferred
	OutcomeMismatch    = "mismatch"    // the current state cannot take the return: anomaly
	OutcomeOrphan      = "orphan"      // nothing matched, or several things did: anomaly
)

// plan builds the store.Change for one message. What it reads is cached in
// its view, which tracks the states its own transitions (and those of the
// messages planned before it in the same batch) lead to, so that a message
// or a batch touching the same lot or invoice twice stays consistent.
type plan struct {
	p        *Processor
	v        *view
	sum      string
	parts    []Part
	partSums []string
	now      time.Time

	invPut    map[string]int // invoice id → index in invoices
	invoices  []store.Invoice
	expPut    map[string]int
	exps      []store.Expectation
	trans     []store.Transition
	returns   []store.Return
	anomalies []store.Anomaly
	anomIDs   map[string]bool
	refs      []ReturnRef
	tenants   map[int][]string // part index → tenants the part concerns, in order
	mark      marker
}

// view is what the plans of one batch see of the journal: the lots,
// invoices and expectations read, as the earlier messages of the batch left
// them (their Changes are not committed yet), and the messages already
// planned. A batch of messages is thus planned exactly as if each had been
// committed before the next was read.
type view struct {
	p       *Processor
	lots    map[string]*store.Lot
	queries map[store.LotQuery][]string
	invs    map[string][]*store.Invoice    // by lot id
	exps    map[string][]store.Expectation // by lot id
	pending map[string]marker              // message sum → marker of a message planned in this batch
}

func (p *Processor) newView() *view {
	return &view{p: p, lots: map[string]*store.Lot{}, queries: map[store.LotQuery][]string{},
		invs: map[string][]*store.Invoice{}, exps: map[string][]store.Expectation{}, pending: map[string]marker{}}
}

// applied finds the marker of a message: planned earlier in this batch, or
// committed in the journal.
func (v *view) applied(ctx context.Context, sum string) (marker, bool, error) {
	if m, ok := v.pending[sum]; ok {
		return m, true, nil
	}
	return v.p.applied(ctx, sum)
}

// expectations of a lot: as read, with the puts of the plans done in this
// batch.
func (v *view) expectations(ctx context.Context, lot string) ([]store.Expectation, error) {
	if es, ok := v.exps[lot]; ok {
		return es, nil
	}
	es, err := v.p.o.Journal.Expectations(ctx, lot)
	if err != nil {
		return nil, fmt.Errorf("returns: expectations of %s: %w", lot, err)
	}
	v.exps[lot] = es
	return es, nil
}

// done records a finished plan in the view: later messages of the batch
// see its marker and its expectation puts. (Its lot and invoice moves are
// already in the shared lots and invoices.)
func (v *view) done(ctx context.Context, pl *plan) error {
	v.pending[pl.sum] = pl.mark
	for _, e := range pl.exps {
		es, err := v.expectations(ctx, e.Lot)
		if err != nil {
			return err
		}
		es = slices.Clone(es)
		if i := slices.IndexFunc(es, func(x store.Expectation) bool { return x.ID == e.ID }); i >= 0 {
			es[i] = e
		} else {
			es = append(es, e)
		}
		v.exps[e.Lot] = es
	}
	return nil
}

func (p *Processor) newPlan(v *view, sum string, parts []Part, partSums []string) *plan {
	return &plan{p: p, v: v, sum: sum, parts: parts, partSums: partSums, now: p.o.Now().UTC(),
		invPut: map[string]int{}, expPut: map[string]int{}, anomIDs: map[string]bool{}, tenants: map[int][]string{},
		mark: marker{Parts: len(parts)}}
}

// ReturnID is the id of a Return row: derived from the sha256 of the raw
// message and the row's place in it, so applying a message again writes
// the same rows.
func ReturnID(sum, suffix string) string { return "ret-" + sum[:24] + "-" + suffix }

func (pl *plan) change() *store.Change {
	c := &store.Change{Actor: pl.p.o.Actor, Invoices: pl.invoices, Expectations: pl.exps,
		Returns: pl.returns, Anomalies: pl.anomalies, Transitions: pl.trans}
	data, _ := json.Marshal(pl.mark)
	c.Events = []store.Event{{Subject: messageSubject(pl.sum), Type: EventApplied, Actor: pl.p.o.Actor,
		Reason: fmt.Sprintf("%d part(s), %d return(s), %d anomaly(ies)", len(pl.parts), len(pl.returns), len(pl.anomalies)),
		Data:   data}}
	return c
}

func (pl *plan) anomalyKinds() []string {
	out := make([]string, len(pl.anomalies))
	for i, a := range pl.anomalies {
		out[i] = a.Kind
	}
	return out
}

func (pl *plan) addReturn(r store.Return) {
	r.Received = pl.now
	pl.returns = append(pl.returns, r)
	pl.refs = append(pl.refs, ReturnRef{ID: r.ID, Kind: r.Kind, Tenant: r.Tenant, Lot: r.Lot, Orphan: r.Orphan})
}

func (pl *plan) anomaly(kind, subject, tenant, destination, reason string) {
	id := "anm-" + pl.sum[:24] + "-" + kind + "-" + subject
	if pl.anomIDs[id] {
		return
	}
	pl.anomIDs[id] = true
	pl.anomalies = append(pl.anomalies, store.Anomaly{ID: id, Kind: kind, Subject: subject, Tenant: tenant,
		Destination: destination, State: lifecycle.AnomalyOpen, Reason: reason,
		SLA: pl.now.Add(pl.p.o.AnomalySLA), Created: pl.now})
}

func (pl *plan) concern(part int, tenant string) {
	for _, t := range pl.tenants[part] {
		if t == tenant {
			return
		}
	}
	pl.tenants[part] = append(pl.tenants[part], tenant)
}

// unparsable records a message that could not be decoded: a Return row
// without tenant (orphan) pointing at the raw message, and an anomaly.
func (pl *plan) unparsable(err error) {
	id := ReturnID(pl.sum, "x")
	summary, _ := json.Marshal(map[string]string{"message_sha256": pl.sum, "reason": reasonOf(err)})
	pl.addReturn(store.Return{ID: id, Kind: KindUnknown, Blob: pl.sum, Orphan: true, Summary: summary})
	pl.anomaly(AnomalyUnparsable, "return:"+id, "", "", reasonOf(err))
	pl.mark.Parts = 0
}

// correlate matches every part and decides what is relayed to whom.
func (pl *plan) correlate(ctx context.Context) error {
	for _, part := range pl.parts {
		switch part.Kind {
		case KindARL:
			for i, a := range part.ARL.ARLs {
				if err := pl.arl(ctx, part, i, a); err != nil {
					return err
				}
			}
		case KindRSP:
			if err := pl.rsp(ctx, part); err != nil {
				return err
			}
		}
	}
	for _, part := range pl.parts {
		ts := pl.tenants[part.Index]
		if part.Kind == KindRSP && len(ts) > 1 {
			// An RSP carries personal data of every invoice in it: never hand
			// one tenant another tenant's invoices.
			pl.anomaly(AnomalyMultiTenant, "return:"+ReturnID(pl.sum, "p"+strconv.Itoa(part.Index)), "", "",
				fmt.Sprintf("NOEMIE part %d matches lots of %d tenants (%s): not relayed, split it by hand",
					part.Index, len(ts), strings.Join(ts, ",")))
			continue
		}
		for _, t := range ts {
			pl.mark.Relay = append(pl.mark.Relay, relayItem{Tenant: t, Part: part.Index,
				Name: fmt.Sprintf("%s-%s-%d.txt", part.Kind, pl.sum[:16], part.Index)})
		}
	}
	return nil
}

// --- lookups ---

// emitterKeys gives the forms under which an émetteur number may be stored:
// as written, and its last 9 digits when the rest is zeros (the 14-character
// "00000" + 9-digit form of a 000 header or an ARL, the 15-character form of
// a NOEMIE 020/040, against the 9 digits of a B2 lot header).
func emitterKeys(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	keys := []string{s}
	if n := len(s); n > 9 && strings.Trim(s[:n-9], "0") == "" {
		keys = append(keys, s[n-9:])
	}
	return keys
}

// findLots reads the lots matching q (cached), as plan-tracked pointers.
func (pl *plan) findLots(ctx context.Context, q store.LotQuery) ([]*store.Lot, error) {
	q.Limit = maxCandidates
	v := pl.v
	ids, ok := v.queries[q]
	if !ok {
		ls, err := pl.p.o.Journal.Lots(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("returns: find lots: %w", err)
		}
		for i := range ls {
			if _, seen := v.lots[ls[i].ID]; !seen {
				l := ls[i]
				v.lots[l.ID] = &l
			}
			ids = append(ids, ls[i].ID)
		}
		v.queries[q] = ids
	}
	out := make([]*store.Lot, len(ids))
	for i, id := range ids {
		out[i] = v.lots[id]
	}
	return out, nil
}

func (pl *plan) lotsByKeys(ctx context.Context, emitters []string, number int, date string) ([]*store.Lot, error) {
	var out []*store.Lot
	seen := map[string]bool{}
	for _, e := range emitters {
		ls, err := pl.findLots(ctx, store.LotQuery{Emitter: e, Number: number, Date: date})
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			if !seen[l.ID] {
				seen[l.ID] = true
				out = append(out, l)
			}
		}
	}
	return out, nil
}

func (pl *plan) invoicesOf(ctx context.Context, lot string) ([]*store.Invoice, error) {
	if v, ok := pl.v.invs[lot]; ok {
		return v, nil
	}
	is, err := pl.p.o.Journal.Invoices(ctx, lot)
	if err != nil {
		return nil, fmt.Errorf("returns: invoices of %s: %w", lot, err)
	}
	out := make([]*store.Invoice, len(is))
	for i := range is {
		out[i] = &is[i]
	}
	pl.v.invs[lot] = out
	return out, nil
}

// byFlow keeps, of the lots sharing an ARL's (émetteur, lot, date), the
// SCOR lot whose own file id the ARL carries (formats/scor FileID), or
// else the B2 lots: a SCOR lot has the keys of the B2 lot it goes with.
func byFlow(lots []*store.Lot, fileID string) []*store.Lot {
	fileID = strings.TrimSpace(fileID)
	var b2, sc []*store.Lot
	for _, l := range lots {
		switch l.Flow {
		case "", store.FlowB2:
			b2 = append(b2, l)
		case store.FlowSCOR:
			if scor.FileID(l.ID) == fileID {
				sc = append(sc, l)
			}
		}
	}
	if len(sc) > 0 {
		return sc
	}
	return b2
}

// byFileID keeps the lots whose outbound file (Lot.Blob) carries fileID in
// its 000 header. When none does, or the blobs cannot be read, the lots
// are returned as they were.
func (pl *plan) byFileID(ctx context.Context, lots []*store.Lot, fileID string) []*store.Lot {
	var out []*store.Lot
	for _, l := range lots {
		if l.Blob == "" {
			continue
		}
		rc, err := pl.p.o.Blobs.Open(ctx, l.Blob)
		if err != nil {
			continue
		}
		head := make([]byte, envelope.RecordLength)
		_, err = io.ReadFull(rc, head)
		rc.Close()
		if err == nil && strings.TrimSpace(envelope.Decode(head).FileID) == strings.TrimSpace(fileID) {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return lots
	}
	return out
}

// --- state changes ---

func (pl *plan) moveLot(l *store.Lot, to lifecycle.State, reason string) error {
	if err := lifecycle.Check(lifecycle.Lot, l.State, to); err != nil {
		return err
	}
	pl.trans = append(pl.trans, store.Transition{Kind: lifecycle.Lot, ID: l.ID, From: l.State, To: to,
		Actor: pl.p.o.Actor, Reason: reason})
	l.State = to
	return nil
}

// maybeSettle moves an arl_positive lot to settled when every invoice is
// terminal (paid, rejected or dropped).
func (pl *plan) maybeSettle(ctx context.Context, l *store.Lot) error {
	if l.State != lifecycle.LotARLPositive {
		return nil
	}
	invs, err := pl.invoicesOf(ctx, l.ID)
	if err != nil || len(invs) == 0 {
		return err
	}
	for _, i := range invs {
		if !lifecycle.IsTerminal(lifecycle.Invoice, i.State) {
			return nil
		}
	}
	return pl.moveLot(l, lifecycle.LotSettled, fmt.Sprintf("every invoice settled (%d)", len(invs)))
}

// satisfy marks the lot's unsatisfied expectations of a kind as satisfied
// by a return.
func (pl *plan) satisfy(ctx context.Context, lot, kind, ret string) error {
	es, err := pl.v.expectations(ctx, lot)
	if err != nil {
		return err
	}
	for _, e := range es {
		if e.Kind != kind || e.SatisfiedBy != "" {
			continue
		}
		if _, done := pl.expPut[e.ID]; done {
			continue
		}
		e.SatisfiedBy = ret
		pl.expPut[e.ID] = len(pl.exps)
		pl.exps = append(pl.exps, e)
	}
	return nil
}

// --- ARL ---

// ARLSummary is the Summary of an ARL Return row (no personal data).
type ARLSummary struct {
	MessageSHA256 string       `json:"message_sha256"`
	Part          int          `json:"part"`
	Layout        string       `json:"layout"`
	Insurer       string       `json:"insurer"`     // ARL file sender (type + number)
	ARLFileID     string       `json:"arl_file_id"` // the ARL file's own id
	Emitter       string       `json:"emitter"`
	FileID        string       `json:"file_id,omitempty"` // id of the acknowledged file
	LotNumber     int          `json:"lot_number"`
	LotDate       string       `json:"lot_date"`
	Positive      bool         `json:"positive"`
	Received      string       `json:"received,omitempty"`
	Reasons       []arl.Reason `json:"reasons,omitempty"`
	Outcome       string       `json:"outcome"`
	Detail        string       `json:"detail,omitempty"`
}

func reasonCodes(rs []arl.Reason) string {
	codes := make([]string, len(rs))
	for i, r := range rs {
		codes[i] = r.Code
	}
	return strings.Join(codes, ",")
}

func (pl *plan) arl(ctx context.Context, part Part, idx int, a arl.ARL) error {
	id := ReturnID(pl.sum, fmt.Sprintf("p%da%d", part.Index, idx))
	date := a.LotDate.String()
	sum := ARLSummary{MessageSHA256: pl.sum, Part: part.Index, Layout: part.ARL.Layout,
		Insurer: a.Header.SenderType + a.Header.Sender, ARLFileID: a.Header.FileID, Emitter: a.Emitter,
		FileID: a.FileID, LotNumber: a.LotNumber, LotDate: date, Positive: a.Positive,
		Received: a.Received.String(), Reasons: a.Reasons}
	cands, err := pl.lotsByKeys(ctx, emitterKeys(a.Emitter), a.LotNumber, date)
	if err != nil {
		return err
	}
	cands = byFlow(cands, a.FileID)
	var waiting []*store.Lot
	for _, l := range cands {
		if stateAwaitingARL(l.State) {
			waiting = append(waiting, l)
		}
	}
	if len(waiting) > 1 && strings.TrimSpace(a.FileID) != "" {
		waiting = pl.byFileID(ctx, waiting, a.FileID)
	}
	if len(waiting) == 0 {
		for _, l := range cands {
			if l.State == lifecycle.LotSigned { // sent, the send not committed yet: not an orphan
				return fmt.Errorf("%w: lot %s", ErrNotYet, l.ID)
			}
		}
	}
	ret := store.Return{ID: id, Kind: KindARL, Blob: pl.partSums[part.Index]}
	var target *store.Lot
	switch {
	case len(waiting) == 1:
		target = waiting[0]
		to, reason := lifecycle.LotARLPositive, "positive ARL"
		if !a.Positive {
			to, reason = lifecycle.LotARLNegative, "negative ARL: "+reasonCodes(a.Reasons)
		}
		if err := pl.moveLot(target, to, reason); err != nil {
			return err
		}
		sum.Outcome = OutcomeApplied
		if !a.Positive {
			pl.anomaly(AnomalyARLNegative, "lot:"+target.ID, target.Tenant, target.Destination, reason)
		}
		if err := pl.satisfy(ctx, target.ID, KindARL, id); err != nil {
			return err
		}
		if err := pl.maybeSettle(ctx, target); err != nil {
			return err
		}
		if a.Positive && target.State == lifecycle.LotARLPositive && target.Flow == store.FlowSCOR {
			// A SCOR lot's ARL is its only return (no payments follow).
			if err := pl.moveLot(target, lifecycle.LotSettled, "SCOR attachment acknowledged"); err != nil {
				return err
			}
		}
		if a.Positive && target.State == lifecycle.LotARLPositive {
			// The payments are now awaited: an RSP expectation the chaser
			// watches (rsp-missing when it passes).
			e := store.Expectation{ID: target.ID + "-rsp", Lot: target.ID, Kind: KindRSP, DueAt: pl.p.o.Now().Add(pl.p.o.RSPDeadline)}
			if _, done := pl.expPut[e.ID]; !done {
				pl.expPut[e.ID] = len(pl.exps)
				pl.exps = append(pl.exps, e)
			}
		}
	case len(waiting) == 0 && len(cands) == 1:
		target = cands[0]
		s := target.State
		already := (a.Positive && (s == lifecycle.LotARLPositive || s == lifecycle.LotSettled)) ||
			(!a.Positive && (s == lifecycle.LotARLNegative || s == lifecycle.LotToRebuild || s == lifecycle.LotRebuilt))
		if already {
			sum.Outcome = OutcomeAlready
		} else {
			sum.Outcome = OutcomeMismatch
			sum.Detail = fmt.Sprintf("lot in state %s", s)
			pl.anomaly(AnomalyMismatch, "lot:"+target.ID, target.Tenant, target.Destination,
				fmt.Sprintf("%s ARL for a lot in state %s", posNeg(a.Positive), s))
		}
	default:
		ret.Orphan = true
		sum.Outcome = OutcomeOrphan
		if len(cands) == 0 {
			sum.Detail = "no lot with these keys"
		} else {
			sum.Detail = fmt.Sprintf("%d lots with these keys (%d awaiting an ARL)", len(cands), len(waiting))
		}
		pl.anomaly(AnomalyOrphan, "return:"+id, "", "", fmt.Sprintf("%s ARL for emitter %s lot %d of %s: %s",
			posNeg(a.Positive), strings.TrimSpace(a.Emitter), a.LotNumber, date, sum.Detail))
	}
	if target != nil {
		ret.Lot, ret.Tenant = target.ID, target.Tenant
		pl.concern(part.Index, target.Tenant)
	}
	ret.Summary, _ = json.Marshal(sum)
	pl.addReturn(ret)
	return nil
}

func posNeg(positive bool) string {
	if positive {
		return "positive"
	}
	return "negative"
}

// --- NOEMIE ---

// RSPSummary is the Summary of an RSP Return row: the header and, per
// invoice, its number, state and codes. No NIR, name or birth date.
type RSPSummary struct {
	MessageSHA256 string       `json:"message_sha256"`
	Part          int          `json:"part"`
	Insurer       string       `json:"insurer"`
	FileID        string       `json:"file_id"`
	Created       string       `json:"created,omitempty"`
	Invoices      []RSPInvoice `json:"invoices"`
}

// RSPInvoice is one invoice of an RSP summary.
type RSPInvoice struct {
	Number         string   `json:"number"`
	LotNumber      int      `json:"lot_number"`
	LotDate        string   `json:"lot_date"`
	Invoice        string   `json:"invoice,omitempty"` // store id when matched
	State          string   `json:"state,omitempty"`   // paid, rejected, deferred; "" when not processed
	Paid           int64    `json:"paid"`              // cents, AMO + AMC
	PaymentRef     string   `json:"payment_ref,omitempty"`
	AccountingDate string   `json:"accounting_date,omitempty"`
	Codes          []string `json:"codes,omitempty"`
	Outcome        string   `json:"outcome"`
	Detail         string   `json:"detail,omitempty"`
}

// TargetState is the invoice state an RSP invoice gives: rejected when a
// part (AMO 198 or AMC 199) is rejected, else deferred when a part is
// deferred, else paid when a part is paid; "" when no part was processed.
func TargetState(inv *noemie.Invoice) lifecycle.State {
	var r, d, p bool
	for _, s := range []byte{inv.AMO.State, inv.AMC.State} {
		switch s {
		case 'R':
			r = true
		case 'D':
			d = true
		case 'P':
			p = true
		}
	}
	switch {
	case r:
		return lifecycle.InvoiceRejected
	case d:
		return lifecycle.InvoiceDeferred
	case p:
		return lifecycle.InvoicePaid
	}
	return ""
}

// RejectCodes lists the distinct 290/294 codes of an invoice, rejects
// before warnings.
func RejectCodes(inv *noemie.Invoice) []string {
	var out []string
	seen := map[string]bool{}
	for _, warn := range []bool{false, true} {
		for _, r := range inv.Rejects {
			c := strings.TrimSpace(r.Code)
			if r.Warning != warn || c == "" || seen[c] {
				continue
			}
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// invoiceKey normalises an invoice number for matching: blanks and
// leading zeros do not count.
func invoiceKey(s string) string {
	s = strings.TrimLeft(strings.TrimSpace(s), "0")
	if s == "" {
		return "0"
	}
	return s
}

type rspGroup struct {
	lot   *store.Lot
	items []RSPInvoice
}

func (pl *plan) rsp(ctx context.Context, part Part) error {
	f := part.RSP
	var groups []*rspGroup
	byLot := map[string]*rspGroup{}
	var orphans []RSPInvoice
	for k := range f.Invoices {
		inv := &f.Invoices[k]
		item := RSPInvoice{Number: strings.TrimSpace(inv.Number), LotNumber: inv.LotNumber, LotDate: inv.LotDate.String(),
			State: string(TargetState(inv)), Paid: inv.Paid(), PaymentRef: strings.TrimSpace(inv.PaymentRef),
			AccountingDate: inv.AccountingDate.String(), Codes: RejectCodes(inv)}
		lot, si, why, err := pl.findInvoice(ctx, inv)
		if err != nil {
			return err
		}
		if lot == nil {
			item.Outcome, item.Detail = OutcomeOrphan, why
			orphans = append(orphans, item)
			continue
		}
		item.Invoice = si.ID
		pl.applyInvoice(lot, si, inv, &item, f.Header.FileID)
		g := byLot[lot.ID]
		if g == nil {
			g = &rspGroup{lot: lot}
			byLot[lot.ID] = g
			groups = append(groups, g)
		}
		g.items = append(g.items, item)
	}
	base := RSPSummary{MessageSHA256: pl.sum, Part: part.Index, Insurer: f.Header.SenderType + f.Header.Sender,
		FileID: f.Header.FileID, Created: f.Header.Created.String()}
	for _, g := range groups {
		id := ReturnID(pl.sum, fmt.Sprintf("p%d-%s", part.Index, g.lot.ID))
		s := base
		s.Invoices = g.items
		summary, _ := json.Marshal(s)
		pl.addReturn(store.Return{ID: id, Tenant: g.lot.Tenant, Kind: KindRSP, Blob: pl.partSums[part.Index],
			Lot: g.lot.ID, Summary: summary})
		pl.concern(part.Index, g.lot.Tenant)
		if err := pl.satisfy(ctx, g.lot.ID, KindRSP, id); err != nil {
			return err
		}
		if err := pl.maybeSettle(ctx, g.lot); err != nil {
			return err
		}
	}
	if len(orphans) > 0 {
		id := ReturnID(pl.sum, fmt.Sprintf("p%d-orphan", part.Index))
		s := base
		s.Invoices = orphans
		summary, _ := json.Marshal(s)
		pl.addReturn(store.Return{ID: id, Kind: KindRSP, Blob: pl.partSums[part.Index], Orphan: true, Summary: summary})
		nums := make([]string, 0, len(orphans))
		for i, o := range orphans {
			if i == 10 {
				nums = append(nums, "…")
				break
			}
			nums = append(nums, fmt.Sprintf("%s (lot %d of %s)", o.Number, o.LotNumber, o.LotDate))
		}
		pl.anomaly(AnomalyOrphan, "return:"+id, "", "", fmt.Sprintf("%d RSP invoice(s) without a lot: %s",
			len(orphans), strings.Join(nums, ", ")))
	}
	return nil
}

// findInvoice finds the store invoice an RSP invoice answers: lots by
// (émetteur, lot number, lot date), the émetteur taken from the 020
// mandataire and 040 destinataire numbers; when no lot has these, by lot
// number and date alone. Then the invoice number (leading zeros ignored)
// among their invoices not dropped by a rebuild. Exactly one match, or an
// orphan with the reason.
func (pl *plan) findInvoice(ctx context.Context, inv *noemie.Invoice) (*store.Lot, *store.Invoice, string, error) {
	if inv.LotNumber == 0 || inv.LotDate.IsZero() {
		return nil, nil, "no lot number or lot date in the 102", nil
	}
	date := inv.LotDate.String()
	var emitters []string
	emitters = append(emitters, emitterKeys(inv.Mandataire)...)
	emitters = append(emitters, emitterKeys(inv.Destinataire)...)
	cands, err := pl.lotsByKeys(ctx, emitters, inv.LotNumber, date)
	if err != nil {
		return nil, nil, "", err
	}
	if len(cands) == 0 {
		if cands, err = pl.findLots(ctx, store.LotQuery{Number: inv.LotNumber, Date: date}); err != nil {
			return nil, nil, "", err
		}
	}
	if len(cands) == 0 {
		return nil, nil, "no lot with this number and date", nil
	}
	want := invoiceKey(inv.Number)
	var lot *store.Lot
	var found *store.Invoice
	n := 0
	for _, l := range cands {
		is, err := pl.invoicesOf(ctx, l.ID)
		if err != nil {
			return nil, nil, "", err
		}
		for _, i := range is {
			if i.State != lifecycle.InvoiceDropped && invoiceKey(i.Number) == want {
				lot, found = l, i
				n++
			}
		}
	}
	switch n {
	case 0:
		return nil, nil, fmt.Sprintf("invoice not found in %d lot(s) with this number and date", len(cands)), nil
	case 1:
		return lot, found, "", nil
	}
	return nil, nil, fmt.Sprintf("%d invoices match", n), nil
}

func (pl *plan) applyInvoice(lot *store.Lot, si *store.Invoice, inv *noemie.Invoice, item *RSPInvoice, fileID string) {
	to := TargetState(inv)
	switch {
	case to == "":
		item.Outcome = OutcomeUnprocessed
		return
	case si.State == to:
		item.Outcome = OutcomeAlready
		return
	}
	if err := lifecycle.Check(lifecycle.Invoice, si.State, to); err != nil {
		item.Outcome, item.Detail = OutcomeMismatch, fmt.Sprintf("invoice in state %s", si.State)
		pl.anomaly(AnomalyMismatch, "invoice:"+si.ID, lot.Tenant, lot.Destination,
			fmt.Sprintf("RSP %s gives %s for invoice %s in state %s", fileID, to, item.Number, si.State))
		return
	}
	upd := *si
	upd.Codes = mergeCodes(si.Codes, item.Codes)
	if i, ok := pl.invPut[upd.ID]; ok {
		pl.invoices[i] = upd
	} else {
		pl.invPut[upd.ID] = len(pl.invoices)
		pl.invoices = append(pl.invoices, upd)
	}
	reason := fmt.Sprintf("RSP %s: %s", fileID, to)
	switch to {
	case lifecycle.InvoicePaid:
		reason += " " + euros(inv.Paid())
	case lifecycle.InvoiceRejected:
		reason += " " + strings.Join(item.Codes, ",")
	}
	pl.trans = append(pl.trans, store.Transition{Kind: lifecycle.Invoice, ID: si.ID, From: si.State, To: to,
		Actor: pl.p.o.Actor, Reason: reason})
	si.State, si.Codes = to, upd.Codes
	item.Outcome = OutcomeApplied
	if to == lifecycle.InvoiceRejected {
		pl.anomaly(AnomalyInvoiceRejected, "invoice:"+si.ID, lot.Tenant, lot.Destination,
			fmt.Sprintf("invoice %s of lot %d rejected: %s", item.Number, lot.Number, rejectText(inv)))
	}
}

// rejectText gives the codes and labels of the rejects (labels are the
// insurer's fixed texts, never patient data).
func rejectText(inv *noemie.Invoice) string {
	var parts []string
	for _, r := range inv.Rejects {
		if r.Warning {
			continue
		}
		parts = append(parts, strings.TrimSpace(strings.TrimSpace(r.Code)+" "+strings.TrimSpace(r.Label)))
	}
	if len(parts) == 0 {
		return "no reject code given"
	}
	return strings.Join(parts, "; ")
}

func mergeCodes(have, add []string) []string {
	out := append([]string(nil), have...)
	for _, c := range add {
		dup := false
		for _, h := range out {
			if h == c {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, c)
		}
	}
	return out
}

// euros formats cents as "12.34 EUR".
func euros(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d EUR", sign, c/100, c%100)
}
