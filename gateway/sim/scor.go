package sim

import (
	"bytes"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/scor"
	"github.com/octgw/oct/gateway/deliver/iris"
)

// SCOR attachments at the caisses (docs/delivery.md "SCOR message", OUR
// design): a part described IRIS/SCOR (IRISTEST/SCOR) in a message whose
// subject is SCOR/<émetteur>/<SCOR file id>/<lot>/<YYMMDD>/<pages>. The PDF
// is checked with formats/scor (Config.SCORMinDPI) and answered after
// ARLDelay by its own ARL through the same Sink as B2 ARLs: émetteur, file
// id = the SCOR file id, lot number and date from the subject; positive, or
// negative with the scor finding codes as reasons (record = page).

// acceptSCOR checks one SCOR attachment and schedules its ARL. An
// unreadable subject refuses the message (554): nothing to acknowledge.
func (s *Sim) acceptSCOR(in inbound) error {
	subj, err := iris.ParseSCORSubject(in.subject)
	if err != nil {
		return smtpErr(554, gosmtp.EnhancedCode{5, 6, 0}, "SCOR message refused: "+oneLine(err.Error()))
	}
	r := s.receivedOf(in)
	r.Flow, r.Ref = "scor", subj.FileID
	now := r.At
	rep, err := scor.Check(bytes.NewReader(in.file), int64(len(in.file)), scor.Options{MinDPI: s.cfg.SCORMinDPI})
	o := LotOutcome{Number: subj.LotNumber, Date: fixed.DayOf(subj.LotDate).String(), Invoices: subj.Pages, Positive: true}
	switch {
	case err != nil:
		o.Positive, o.Reasons = false, []arl.Reason{{Code: "io", Label: "FICHIER ILLISIBLE"}}
	case !rep.Valid:
		o.Positive = false
		for i, e := range rep.Errors {
			if i == 5 {
				break
			}
			r.Errors = append(r.Errors, e.Error())
			o.Reasons = append(o.Reasons, arl.Reason{Code: clean(string(e.Code), 20), Label: clean(e.Message, 80), Record: e.Record})
		}
		if len(o.Reasons) == 0 {
			o.Reasons = []arl.Reason{{Code: "invalid", Label: "PIECE JUSTIFICATIVE REFUSEE"}}
		}
	}
	r.Valid = o.Positive
	key := []string{subj.Emitter, subj.FileID, "scor"}
	o.Lost = s.cfg.LostARLRate > 0 && s.chance(append(key, "lost")...) < s.cfg.LostARLRate
	o.ARLDelay = s.cfg.ARLDelay + s.jitter(s.cfg.ARLDelayJitter, append(key, "arl-jitter")...)
	r.Lots = []LotOutcome{o}
	if !s.record(r, func(st *Stats) { st.SCOR++ }) {
		return nil
	}
	s.log.Info("sim: SCOR attachment received", "endpoint", in.endpoint, "message_id", in.messageID, "scor_file_id", subj.FileID,
		"lot", subj.LotNumber, "valid", r.Valid, "pages", subj.Pages)
	if o.Lost {
		s.count(func(st *Stats) { st.LostLots++ })
		return nil
	}
	test := strings.HasPrefix(strings.ToUpper(in.description), "IRISTEST")
	s.schedule(o.ARLDelay, func() { s.sendSCORARL(in, subj, o, test, now) })
	return nil
}

func (s *Sim) sendSCORARL(in inbound, subj iris.SCORSubject, o LotOutcome, test bool, received time.Time) {
	now := s.cfg.Clock.Now()
	caisse := caisseNumber(envelope.Info{}, in.endpoint)
	emitter := padNum(subj.Emitter, 14)
	hdr := envelope.Info{SenderType: "CT", Sender: caisse, ReceiverType: "OT", Receiver: emitter,
		Application: "TR", FileID: s.nextFileID("A"), Created: fixed.DayOf(now), Test: test}
	a := arl.ARL{Header: hdr, Emitter: emitter, FileID: subj.FileID, LotNumber: subj.LotNumber, LotDate: fixed.DayOf(subj.LotDate),
		Positive: o.Positive, Reasons: o.Reasons, Received: fixed.DayOf(received)}
	var buf bytes.Buffer
	if err := arl.Write(&buf, a); err != nil {
		s.log.Error("sim: cannot write SCOR ARL", "err", err)
		return
	}
	s.deliver(Return{Kind: KindARL, From: in.endpoint, To: s.cfg.ReturnTo, Subject: s.subject(caisse, 1), Body: buf.Bytes(), Test: test,
		Emitter: subj.Emitter, FileID: subj.FileID, Lots: []int{subj.LotNumber}, InReplyTo: in.messageID})
}
