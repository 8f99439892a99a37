package pec

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/octgw/oct/formats/fixed"
)

// GenOptions drive Generate. The same options always give the same bytes.
type GenOptions struct {
	Seed   uint64
	Kind   Kind   // "" means KindRequest
	Status string // answers only; "" means StatusAgreement
	// Fault, when not empty, injects one fault that Validate reports with
	// that code (see Faults).
	Fault fixed.Code
}

// Faults lists the codes Generate can inject.
var Faults = []fixed.Code{ErrJSONSyntax, ErrJSONType, ErrUnknownField, ErrVersion, ErrKind, ErrRequired,
	ErrID, ErrAMCNumber, ErrPractitioner, ErrSpecialty, ErrDate, ErrRank, ErrNIRNotHashed, ErrLines,
	ErrQuantity, ErrAmount, ErrLineTotal, ErrTotals, ErrStatus, ErrPECNumber, ErrReason, ErrFieldTooLong,
	ErrForbidden, ErrTooLarge}

// lens and frames an optician would quote (LPP-like codes, our examples).
var genProducts = []struct {
	code, label string
	cents       int64
}{
	{"2203240", "MONTURE ADULTE", 9900},
	{"2256403", "VERRE SIMPLE FOYER SPHERIQUE", 4500},
	{"2227038", "VERRE PROGRESSIF", 21000},
	{"2235776", "LENTILLES JOURNALIERES 30", 3200},
	{"2210546", "SUPPLEMENT PRISME", 1200},
}

// GenMessage returns the message Generate writes, without fault.
func GenMessage(opt GenOptions) *Message {
	rng := rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x7ec0c0feedbeef01))
	base := time.Date(2026, 2, 2, 9, 0, 0, 0, time.UTC).Add(time.Duration(opt.Seed%500) * time.Hour)
	pecID := fmt.Sprintf("Q%06d-%03d", rng.IntN(1000000), rng.IntN(1000))
	amc := fmt.Sprintf("%08d", 10000000+rng.IntN(90000000))
	number := fmt.Sprintf("PEC%013d", rng.Int64N(1e13))
	m := &Message{Version: Version, Kind: opt.Kind}
	if m.Kind == "" {
		m.Kind = KindRequest
	}
	switch m.Kind {
	case KindRequest:
		q := &Request{PECID: pecID, Created: base.Format(time.RFC3339), AMC: amc,
			MemberID:    fmt.Sprintf("M%09d", rng.IntN(1e9)),
			Beneficiary: Beneficiary{BirthDate: base.AddDate(-20-rng.IntN(60), 0, -rng.IntN(365)).Format(time.DateOnly), Rank: 1},
			QuoteDate:   base.Format(time.DateOnly)}
		id := fmt.Sprintf("%08d", 10000000+rng.IntN(90000000))
		q.Practitioner = Practitioner{ID: id + string(luhnKey(id)), IDType: "am", Specialty: "64"}
		if rng.IntN(2) == 0 {
			h := make([]byte, 32)
			for i := range h {
				h[i] = byte(rng.UintN(256))
			}
			q.Beneficiary.NIRHash = fmt.Sprintf("%x", h)
		}
		n := 1 + rng.IntN(4)
		for i := 0; i < n; i++ {
			p := genProducts[rng.IntN(len(genProducts))]
			qty := 1 + rng.IntN(2)
			q.Lines = append(q.Lines, Line{Code: p.code, Label: p.label, Quantity: qty, UnitPriceCents: p.cents,
				TotalCents: int64(qty) * p.cents})
			q.Totals.TotalCents += int64(qty) * p.cents
		}
		q.Totals.AMOCents = q.Totals.TotalCents * int64(rng.IntN(10)) / 100
		q.Totals.AMCRequestedCents = (q.Totals.TotalCents - q.Totals.AMOCents) * int64(50+rng.IntN(51)) / 100
		q.Totals.PatientCents = q.Totals.TotalCents - q.Totals.AMOCents - q.Totals.AMCRequestedCents
		m.Request = q
	case KindAnswer:
		a := &Answer{PECID: pecID, AMC: amc, Answered: base.Add(3 * time.Minute).Format(time.RFC3339), Status: opt.Status}
		if a.Status == "" {
			a.Status = StatusAgreement
		}
		switch a.Status {
		case StatusAgreement, StatusPartial:
			a.PECNumber = number
			a.AmountCents = int64(5000 + rng.IntN(40000))
			a.ValidUntil = base.AddDate(0, 3, 0).Format(time.DateOnly)
			if a.Status == StatusPartial {
				a.ReasonCode, a.ReasonLabel = "P01", "PLAFOND ANNUEL ATTEINT"
			}
		case StatusRefusal:
			a.ReasonCode, a.ReasonLabel = "R02", "DROITS FERMES A LA DATE DU DEVIS"
		case StatusCancelled:
			a.PECNumber = number
		}
		m.Answer = a
	case KindStatus:
		m.Status = &Status{PECID: pecID, AMC: amc, PECNumber: number}
	case KindCancel:
		m.Cancel = &Cancel{PECID: pecID, AMC: amc, PECNumber: number, Reason: "PATIENT A RENONCE"}
	}
	return m
}

// Generate writes a deterministic OCT-PEC v1 message, valid unless
// opt.Fault asks for one fault. Some faults need a particular kind: they
// switch the message to a request (most) or an answer (status, reason,
// forbidden, pec-number).
func Generate(opt GenOptions) []byte {
	switch opt.Fault {
	case ErrStatus, ErrReason, ErrForbidden, ErrPECNumber:
		opt.Kind = KindAnswer
		if opt.Fault == ErrReason || opt.Fault == ErrForbidden {
			opt.Status = StatusRefusal
		} else if opt.Status == "" || opt.Status == StatusRefusal {
			opt.Status = StatusAgreement
		}
	case "":
	default:
		opt.Kind = KindRequest
	}
	m := GenMessage(opt)
	q, a := m.Request, m.Answer
	switch opt.Fault {
	case ErrVersion:
		m.Version = "oct-pec/0"
	case ErrKind:
		m.Kind = KindCancel
	case ErrRequired:
		q.MemberID = ""
	case ErrID:
		q.PECID = "bad id!"
	case ErrAMCNumber:
		q.AMC = "12AB"
	case ErrPractitioner:
		b := []byte(q.Practitioner.ID)
		b[8] = '0' + (b[8]-'0'+1)%10
		q.Practitioner.ID = string(b)
	case ErrSpecialty:
		q.Practitioner.Specialty = "6"
	case ErrDate:
		q.QuoteDate = "2026-02-30"
	case ErrRank:
		q.Beneficiary.Rank = 0
	case ErrNIRNotHashed:
		q.Beneficiary.NIRHash = "184127512345678"
	case ErrLines:
		q.Lines = nil
		q.Totals = Totals{}
	case ErrQuantity:
		q.Lines[0].Quantity = 0
	case ErrAmount:
		q.Lines[0].UnitPriceCents = -1
	case ErrLineTotal:
		q.Lines[0].TotalCents++
		q.Totals.TotalCents++
		q.Totals.PatientCents++
	case ErrTotals:
		q.Totals.PatientCents++
		q.Totals.TotalCents++
	case ErrStatus:
		a.Status = "accepted"
		a.PECNumber, a.AmountCents, a.ValidUntil = "", 0, ""
	case ErrReason:
		a.ReasonCode = ""
	case ErrForbidden:
		a.ValidUntil = "2026-12-31"
	case ErrPECNumber:
		a.PECNumber = a.PECNumber[:15]
	case ErrFieldTooLong:
		q.Lines[0].Label = string(bytes.Repeat([]byte("X"), MaxLabel+1))
	}
	b, _ := Marshal(m)
	switch opt.Fault {
	case ErrJSONSyntax:
		b = b[:len(b)/2]
	case ErrJSONType:
		b = bytes.Replace(b, []byte(`"rank": 1`), []byte(`"rank": "1"`), 1)
	case ErrUnknownField:
		b = bytes.Replace(b, []byte(`"member_id"`), []byte(`"colour": "blue",`+"\n    "+`"member_id"`), 1)
	case ErrTooLarge:
		pad := bytes.Repeat([]byte(" "), DefaultMaxBytes)
		b = append(b, pad...)
	}
	return b
}
