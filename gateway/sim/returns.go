package sim

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/noemie"
	"github.com/octgw/oct/gateway/deliver/iris"
	"github.com/octgw/oct/referentials"
)

// Return kinds.
const (
	KindARL = "arl"
	KindRSP = "rsp"
)

// Return is one file the simulated insurer sends back.
type Return struct {
	Kind    string // KindARL or KindRSP
	From    string // the caisse mailbox or AMC endpoint that answers
	To      string // Config.ReturnTo
	Subject string // IRIS subject, as for outbound files
	Body    []byte // the raw ARL (OCT-ARL v1) or NOEMIE 580 file
	Test    bool   // answers a test flow
	// What it answers.
	Emitter   string // 000 sender of the acknowledged file
	FileID    string // its file identifier
	Lots      []int  // lot numbers answered
	InReplyTo string // Message-ID (SMTP) or file name of the delivery
}

// ReturnSink receives the simulator's returns. The lead wires it to an
// IMAP APPEND into the OCT's return mailbox (with Return.Message) or
// straight to the gateway's returns intake.
type ReturnSink interface {
	Deliver(ctx context.Context, r Return) error
}

// SinkFunc adapts a function to ReturnSink.
type SinkFunc func(ctx context.Context, r Return) error

// Deliver implements ReturnSink.
func (f SinkFunc) Deliver(ctx context.Context, r Return) error { return f(ctx, r) }

// Description is the Content-Description the simulator gives a return:
// IRIS/ARL/Z or NOEMIE/580/Z (IRISTEST/…, NOEMIETEST/… for test flows).
// These values are OURS: the real ones are not published (formats.md §2,
// §3.2); the returns side should detect the content (000 norm) rather
// than trust them.
func (r Return) Description() string {
	switch r.Kind {
	case KindARL:
		if r.Test {
			return "IRISTEST/ARL/Z"
		}
		return "IRIS/ARL/Z"
	default:
		if r.Test {
			return "NOEMIETEST/580/Z"
		}
		return "NOEMIE/580/Z"
	}
}

// Message builds the mail a caisse would send for r: the same shape as an
// outbound IRIS message (gateway/deliver/iris), not encrypted: base64
// application/EDI-consent, gzipped, with Description(). messageID is
// without angle brackets.
func (r Return) Message(now time.Time, messageID string) ([]byte, error) {
	var buf bytes.Buffer
	name := "ARL.gz"
	if r.Kind == KindRSP {
		name = "RSP.gz"
	}
	hdr := [][2]string{}
	if r.InReplyTo != "" && !strings.ContainsAny(r.InReplyTo, "\r\n") {
		irt := r.InReplyTo
		if !strings.HasPrefix(irt, "<") {
			irt = "<" + irt + ">"
		}
		hdr = append(hdr, [2]string{"In-Reply-To", irt})
	}
	err := iris.Build(&buf, iris.Mail{From: r.From, To: r.To, MessageID: messageID, Date: now, Subject: r.Subject,
		Description: r.Description(), FileName: name, Data: r.Body, Compress: true, Cipher: referentials.CipherNone, Header: hdr})
	return buf.Bytes(), err
}

// plan is the simulator's decision for one received file.
type plan struct {
	outcomes []LotOutcome
	lots     []b2.Lot
	arlDelay time.Duration // ARLDelay plus the file's jitter
}

// answered counts the outcomes that are not lost.
func (p plan) answered() int {
	n := 0
	for _, o := range p.outcomes {
		if !o.Lost {
			n++
		}
	}
	return n
}

// rejectCodes are the simulator's own RSP reject codes (no public table of
// 580 codes exists; formats/noemie uses the same style).
var rejectCodes = []struct{ code, label string }{
	{"S001", "DROITS NON OUVERTS A LA DATE DES SOINS"},
	{"S002", "BENEFICIAIRE INCONNU"},
	{"S003", "FACTURE DEJA PAYEE"},
	{"S004", "DELAI DE FACTURATION DEPASSE"},
}

func (s *Sim) decide(r Received, rep *b2.Report, lots []b2.Lot) plan {
	p := plan{lots: lots}
	emitter := r.Header.Sender
	fileID := r.Header.FileID
	fileKey := []string{emitter, fileID}
	for _, l := range lots {
		fileKey = append(fileKey, strconv.Itoa(l.Number), l.Date.String())
	}
	p.arlDelay = s.cfg.ARLDelay + s.jitter(s.cfg.ARLDelayJitter, append(fileKey, "arl-jitter")...)
	if len(lots) == 0 {
		// Nothing recognisable: one negative ARL for the file.
		o := LotOutcome{Positive: false, Reasons: lotReasons(rep, nil), ARLDelay: p.arlDelay}
		o.Lost = s.cfg.LostARLRate > 0 && s.chance(emitter, fileID, "0", "", "lost") < s.cfg.LostARLRate
		p.outcomes = []LotOutcome{o}
		return p
	}
	for _, l := range lots {
		o := LotOutcome{Number: l.Number, Date: l.Date.String(), Invoices: len(l.Invoices), Positive: true, ARLDelay: p.arlDelay}
		key := []string{emitter, fileID, strconv.Itoa(l.Number), l.Date.String()}
		o.Lost = s.cfg.LostARLRate > 0 && s.chance(append(key, "lost")...) < s.cfg.LostARLRate
		switch {
		case rep == nil || !rep.Valid || !l.Valid:
			o.Positive = false
			o.Reasons = lotReasons(rep, &l)
		case s.chance(append(key, "arl")...) < s.cfg.NegativeARLRate:
			o.Positive = false
			o.Reasons = []arl.Reason{{Code: "SIM-REFUS", Label: "LOT REFUSE PAR LA CAISSE (SIMULATION)"}}
		}
		if o.Positive {
			for _, inv := range l.Invoices {
				if s.chance(append(key, "rsp", inv.Number)...) < s.cfg.RejectRate {
					o.Rejected = append(o.Rejected, inv.Number)
				} else {
					o.Paid += amoRequested(inv)
				}
			}
			if !o.Lost {
				o.RSPDelay = s.cfg.RSPDelay + s.jitter(s.cfg.RSPDelayJitter, append(key, "rsp-jitter")...)
			}
		}
		p.outcomes = append(p.outcomes, o)
	}
	return p
}

// lotReasons lists (up to 5) validation findings of a lot as ARL reasons:
// those inside its records or about the whole file, else the first ones of
// the file.
func lotReasons(rep *b2.Report, l *b2.Lot) []arl.Reason {
	if rep == nil {
		return []arl.Reason{{Code: "io", Label: "FILE UNREADABLE"}}
	}
	var in, all []arl.Reason
	for _, e := range rep.Errors {
		r := arl.Reason{Code: clean(string(e.Code), 20), Label: clean(e.Message, 80), Record: e.Record}
		if len(all) < 5 {
			all = append(all, r)
		}
		if l != nil && len(in) < 5 && (e.Record == 0 || e.Record >= l.FirstRecord && e.Record < l.FirstRecord+l.Records) {
			in = append(in, r)
		}
	}
	if len(in) > 0 {
		return in
	}
	if len(all) > 0 {
		return all
	}
	return []arl.Reason{{Code: "invalid", Label: "LOT REFUSE"}}
}

// amoRequested is the AMO amount the simulator considers requested for an
// invoice: the type-5 AMO total, or the billed amount when the layout has
// no AMO total (PS variant).
func amoRequested(inv b2.Invoice) int64 {
	if inv.AMO > 0 {
		return inv.AMO
	}
	return inv.Billed
}

// caisseNumber is the 14-character number the caisse writes as sender: the
// destinataire of the file's 000, or derived from the mailbox digits.
func caisseNumber(h envelope.Info, endpoint string) string {
	if n := strings.TrimSpace(h.Receiver); n != "" && len(n) <= 14 {
		return strings.Repeat("0", 14-len(n)) + n
	}
	var d []byte
	for i := 0; i < len(endpoint) && endpoint[i] != '@'; i++ {
		if endpoint[i] >= '0' && endpoint[i] <= '9' {
			d = append(d, endpoint[i])
		}
	}
	if len(d) > 14 {
		d = d[len(d)-14:]
	}
	return strings.Repeat("0", 14-len(d)) + string(d)
}

func (s *Sim) nextFileID(prefix string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fileSeq++
	return fmt.Sprintf("%s%05d", prefix, s.fileSeq%100000)
}

func (s *Sim) compostage() string {
	s.mu.Lock()
	s.returns++
	n := s.returns
	s.mu.Unlock()
	return iris.Compostage(s.cfg.Clock.Now(), uint64(n))
}

func (s *Sim) sendARL(in inbound, r Received, p plan) {
	now := s.cfg.Clock.Now()
	caisse := caisseNumber(r.Header, in.endpoint)
	hdr := envelope.Info{SenderType: "CT", Sender: caisse, ReceiverType: "OT", Receiver: padNum(r.Header.Sender, 14),
		Application: "TR", FileID: s.nextFileID("A"), Created: fixed.DayOf(now), Test: r.Header.Test}
	arls := make([]arl.ARL, 0, len(p.outcomes))
	var lots []int
	for i, o := range p.outcomes {
		if o.Lost {
			continue
		}
		a := arl.ARL{Header: hdr, Emitter: padNum(r.Header.Sender, 14), FileID: r.Header.FileID, LotNumber: o.Number,
			Positive: o.Positive, Received: fixed.DayOf(r.At)}
		if i < len(p.lots) {
			a.LotDate = p.lots[i].Date
		}
		a.Reasons = o.Reasons
		if !a.Positive && len(a.Reasons) == 0 {
			a.Reasons = []arl.Reason{{Code: "SIM-REFUS", Label: "LOT REFUSE"}}
		}
		arls = append(arls, a)
		lots = append(lots, o.Number)
	}
	var buf bytes.Buffer
	if err := arl.Write(&buf, arls...); err != nil {
		s.log.Error("sim: cannot write ARL", "err", err)
		return
	}
	s.deliver(Return{Kind: KindARL, From: in.endpoint, To: s.cfg.ReturnTo, Subject: s.subject(caisse, len(arls)),
		Body: buf.Bytes(), Test: r.Header.Test, Emitter: r.Header.Sender, FileID: r.Header.FileID, Lots: lots, InReplyTo: in.messageID})
	for i, o := range p.outcomes {
		if o.Positive && !o.Lost && i < len(p.lots) {
			lot := p.lots[i]
			s.schedule(o.RSPDelay, func() { s.sendRSP(in, r, lot, o) })
		}
	}
}

func (s *Sim) sendRSP(in inbound, r Received, lot b2.Lot, o LotOutcome) {
	now := s.cfg.Clock.Now()
	caisse := caisseNumber(r.Header, in.endpoint)
	hdr := envelope.Info{SenderType: "CT", Sender: caisse, ReceiverType: "OT", Receiver: padNum(r.Header.Sender, 14),
		Application: "TR", FileID: s.nextFileID("N"), Created: fixed.DayOf(now), Norm: noemie.Norm, Version: "01", Test: r.Header.Test}
	mand := padNum(r.Header.Sender, 15)
	rejected := map[string]bool{}
	for _, n := range o.Rejected {
		rejected[n] = true
	}
	invs := make([]noemie.Invoice, 0, len(lot.Invoices))
	for _, inv := range lot.Invoices {
		ni := noemie.Invoice{ReturnType: "01", Number: padNum(inv.Number, 9), LotNumber: lot.Number, LotDate: lot.Date,
			Type: "B", InvoiceDate: lot.Date, Nature: "10", BirthDate: "000000", BirthRank: "1"}
		if len(inv.NIR) >= 15 {
			ni.NIR, ni.NIRKey = inv.NIR[:13], inv.NIR[13:15]
		}
		req := amoRequested(inv)
		ni.AMO = noemie.Part{Requested: req, Paid: req, State: 'P'}
		if rejected[inv.Number] {
			ni.AMO.Paid, ni.AMO.State = 0, 'R'
			rc := rejectCodes[int(s.chance(r.Header.Sender, r.Header.FileID, inv.Number, "code")*float64(len(rejectCodes)))]
			ni.Rejects = []noemie.Reject{{Entity: "294", Code: rc.code, Label: rc.label, Level: 'F', Part: 'O'}}
		}
		invs = append(invs, ni)
	}
	pay := noemie.Payment{Mandataire: mand, Destinataire: mand, AccountingDate: fixed.DayOf(now),
		Ref: "VIR SIM " + hdr.FileID, Label2: "TELETRANSMISSION", Payer: caisse[4:]}
	var buf bytes.Buffer
	if err := noemie.Write(&buf, hdr, []noemie.PaymentBatch{{Payment: pay, Invoices: invs}}, noemie.WriteOptions{LineBreaks: true}); err != nil {
		s.log.Error("sim: cannot write RSP", "err", err)
		return
	}
	s.deliver(Return{Kind: KindRSP, From: in.endpoint, To: s.cfg.ReturnTo, Subject: s.subject(caisse, len(invs)),
		Body: buf.Bytes(), Test: r.Header.Test, Emitter: r.Header.Sender, FileID: r.Header.FileID, Lots: []int{lot.Number}, InReplyTo: in.messageID})
}

func (s *Sim) subject(caisse string, n int) string {
	sub, err := iris.Subject{Version: iris.DefaultSubjectVersion, Emitter: caisse, Compostage: s.compostage(), Invoices: min(n, 99999)}.Format()
	if err != nil {
		return "IR" + iris.DefaultSubjectVersion
	}
	return sub
}

// deliver hands r to the Sink, twice for a duplicated return
// (DuplicateReturnRate, decided per Seed, kind, file and lots answered).
func (s *Sim) deliver(r Return) {
	s.deliverOnce(r, false)
	if s.cfg.DuplicateReturnRate <= 0 {
		return
	}
	key := []string{r.Emitter, r.FileID, r.Kind}
	for _, l := range r.Lots {
		key = append(key, strconv.Itoa(l))
	}
	if s.chance(append(key, "duplicate")...) < s.cfg.DuplicateReturnRate && s.ctx.Err() == nil {
		// A copy, so that a sink that kept or changed the first gets the
		// same bytes again.
		d := r
		d.Body, d.Lots = bytes.Clone(r.Body), slices.Clone(r.Lots)
		s.deliverOnce(d, true)
	}
}

func (s *Sim) deliverOnce(r Return, dup bool) {
	err := s.cfg.Sink.Deliver(s.ctx, r)
	if err != nil {
		s.log.Warn("sim: return not delivered", "kind", r.Kind, "from", r.From, "lots", r.Lots, "err", err)
	} else {
		s.log.Info("sim: return delivered", "kind", r.Kind, "from", r.From, "lots", r.Lots, "duplicate", dup)
	}
	s.mu.Lock()
	if err != nil {
		s.stats.ReturnErrors++
	} else {
		s.stats.Returns++
		if dup {
			s.stats.Duplicates++
		}
	}
	s.notifyLocked()
	s.mu.Unlock()
}

// padNum left-pads a number with zeros to n characters (keeps the last n).
func padNum(v string, n int) string {
	v = strings.TrimSpace(v)
	if len(v) >= n {
		return v[len(v)-n:]
	}
	return strings.Repeat("0", n-len(v)) + v
}

// clean keeps printable ASCII (other bytes and '@' become blanks), trims
// and cuts to n.
func clean(v string, n int) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(v) {
		if r >= 0x20 && r < 0x7f && r != '@' {
			b.WriteRune(r)
		} else {
			b.WriteByte(' ')
		}
	}
	out := strings.TrimSpace(b.String())
	if len(out) > n {
		out = strings.TrimSpace(out[:n])
	}
	return out
}
