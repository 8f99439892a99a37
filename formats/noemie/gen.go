package noemie

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
)

// GenOptions drives Generate. The same options always give the same bytes.
type GenOptions struct {
	Seed       uint64
	Lots       int     // B2 lots answered, one 071 payment each; 0 means 1
	Invoices   int     // invoices per lot; 0 means 10
	RejectRate float64 // share of invoices rejected (AMO state R and a 294)
	// Fault, when not empty, injects exactly one fault reported with that
	// code (see Faults); every other part of the file stays valid.
	Fault fixed.Code
	Form  WriteOptions
}

// Faults lists the codes Generate can inject. The limit codes depend on the
// reader's Options, not on the file, and are not injectable.
var Faults = []fixed.Code{ErrEntityUnknown, ErrEntityLength, ErrHierarchy, ErrControlCount,
	ErrControlAmount, ErrControlIdent, ErrRecordCount, ErrLotCount, ErrMissingTrailer, ErrHeader,
	ErrHeaderMismatch, ErrFieldFormat, ErrCharset, ErrLineLength, ErrTrailingData}

// Synthetic reject and warning codes used by the generator. They are OURS,
// not codes of any insurer (no public table of 580 codes was found): the
// reader keeps the labels each file carries.
var genRejects = []struct{ code, label string }{
	{"S001", "DROITS NON OUVERTS A LA DATE DES SOINS"},
	{"S002", "BENEFICIAIRE INCONNU"},
	{"S003", "FACTURE DEJA PAYEE"},
	{"S004", "DELAI DE FACTURATION DEPASSE"},
}
var genWarnings = []struct{ code, label string }{
	{"W0000001", "TAUX DE PRISE EN CHARGE MODIFIE"},
	{"W0000002", "BASE DE REMBOURSEMENT RECALCULEE"},
}

// GenBatches returns the header and batches Generate writes (without fault).
func GenBatches(opt GenOptions) (envelope.Info, []PaymentBatch) {
	if opt.Lots <= 0 {
		opt.Lots = 1
	}
	if opt.Invoices <= 0 {
		opt.Invoices = 10
	}
	rng := rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15))
	base := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(opt.Seed%300))
	hdr := envelope.Info{SenderType: "CT", Sender: "00000001" + fmt.Sprintf("%06d", 422000+rng.IntN(1000)),
		ReceiverType: "OT", Receiver: "00000123456789", Application: "TR",
		FileID: "N" + fmt.Sprintf("%05d", rng.IntN(100000)), Created: fixed.DayOf(base.AddDate(0, 0, opt.Lots+7)),
		Norm: Norm, Version: "01", Test: true}
	mand := fmt.Sprintf("%015d", 100000000+rng.IntN(900000000))
	batches := make([]PaymentBatch, opt.Lots)
	number := 1 + rng.IntN(500000)
	for l := range batches {
		lotDate := fixed.DayOf(base.AddDate(0, 0, l))
		pay := Payment{Mandataire: mand, Destinataire: mand, AccountingDate: fixed.DayOf(base.AddDate(0, 0, l+5)),
			Ref: fmt.Sprintf("VIR %s%04d", strconv.Itoa(lotDate.Year%100), rng.IntN(10000)), Label2: "TELETRANSMISSION", Payer: hdr.Sender[8:]}
		invs := make([]Invoice, opt.Invoices)
		for i := range invs {
			inv := &invs[i]
			inv.ReturnType = "01"
			inv.Number = fmt.Sprintf("%09d", number)
			number++
			inv.LotNumber = 1 + (l % 999)
			inv.LotDate = lotDate
			inv.Type = "F"
			inv.InvoiceDate = lotDate
			inv.Nature = "10"
			inv.NIR, inv.NIRKey, inv.BirthDate = fakeNIR(rng)
			inv.BirthRank = "1"
			requested := int64(1000 + rng.IntN(19000))
			inv.AMO = Part{Requested: requested, Paid: requested * 7 / 10, State: 'P'}
			if rng.IntN(2) == 0 {
				inv.AMC = Part{Requested: requested - requested*7/10, State: 'P', AMCNumber: fmt.Sprintf("%010d", 42000+rng.IntN(1000))}
				inv.AMC.Paid = inv.AMC.Requested
				inv.AMCProcessing = "A"
			}
			switch {
			case rng.Float64() < opt.RejectRate:
				inv.AMO.State, inv.AMO.Paid = 'R', 0
				if inv.AMC != (Part{}) {
					inv.AMC.State, inv.AMC.Paid = 'R', 0
				}
				r := genRejects[rng.IntN(len(genRejects))]
				inv.Rejects = []Reject{{Entity: "294", Code: r.code, Label: r.label, Level: 'F', Part: 'O'}}
			case rng.IntN(10) == 0:
				w := genWarnings[rng.IntN(len(genWarnings))]
				inv.Rejects = []Reject{{Entity: "290", Code: w.code, Label: w.label, Line: 1, Level: 'L', Part: ' '}}
			}
		}
		batches[l] = PaymentBatch{Payment: pay, Invoices: invs}
	}
	return hdr, batches
}

// fakeNIR builds a NIR that passes the key check but belongs to nobody:
// department 99 (born abroad), country code 999 (not assigned).
func fakeNIR(rng *rand.Rand) (nir, key, birth string) {
	yy, mm := 40+rng.IntN(60), 1+rng.IntN(12)
	nir = fmt.Sprintf("%d%02d%02d99999%03d", 1+rng.IntN(2), yy, mm, 1+rng.IntN(999))
	n, _ := strconv.ParseInt(nir, 10, 64)
	return nir, fmt.Sprintf("%02d", 97-n%97), fmt.Sprintf("%02d%02d%02d", yy, mm, 1+rng.IntN(28))
}

// Generate writes a deterministic NOEMIE 580 file, with one injected fault
// when opt.Fault is set.
func Generate(w io.Writer, opt GenOptions) error {
	hdr, batches := GenBatches(opt)
	form := opt.Form
	var h hook
	seen := map[string]int{}
	once := func(code string, f func(b []byte) []byte) hook {
		return func(c string, rec int64, b []byte) []byte {
			seen[c]++
			if c == code && seen[c] == 1 {
				return f(b)
			}
			return b
		}
	}
	bump := func(r fixed.Ref) func(b []byte) []byte { // add 1 to a numeric field
		return func(b []byte) []byte {
			v, _ := r.Int(b)
			r.SetInt(b, v+1)
			return b
		}
	}
	wr := &writer{bw: bufio.NewWriterSize(w, 32<<10), opt: form}
	switch opt.Fault {
	case "":
	case ErrEntityUnknown:
		h = once("103", func(b []byte) []byte { copy(b, "777"); return b })
	case ErrEntityLength:
		h = once("103", func(b []byte) []byte { return append(b[:30:30], b[31:]...) })
	case ErrHierarchy:
		h = once("081", func(b []byte) []byte { copy(b[3:], "02"); return b })
	case ErrControlCount:
		h = once("990", bump(r990Count))
	case ErrControlAmount:
		h = once("990", func(b []byte) []byte {
			v, _ := r990Sum.Int(b)
			if v == 0 {
				b[len(b)-2] = 'P' // zero sums are "not provided": make it a real, wrong sum
			}
			r990Sum.SetInt(b, v+1)
			return b
		})
	case ErrControlIdent:
		h = once("990", func(b []byte) []byte { r990Ident.Bytes(b)[0] = 'X'; return b })
	case ErrRecordCount:
		h = once("999", bump(envelope.TRecordCount))
	case ErrLotCount:
		h = once("999", bump(envelope.TLotCount))
	case ErrMissingTrailer:
		h = once("999", func([]byte) []byte { return nil })
	case ErrHeader:
		h = once("000", func(b []byte) []byte { copy(envelope.HNorm.Bytes(b), "576 "); return b })
	case ErrHeaderMismatch:
		h = once("999", func(b []byte) []byte { envelope.TIdent.Bytes(b)[len(envelope.TIdent.Bytes(b))-1] = 'X'; return b })
	case ErrFieldFormat:
		h = once("198", func(b []byte) []byte { rPartRequested.Bytes(b)[0] = 'X'; return b })
	case ErrCharset:
		h = once("071", func(b []byte) []byte { r071Label2.Bytes(b)[0] = 0xe9; return b })
	case ErrLineLength:
		wr.opt.LengthPrefix, wr.opt.LineBreaks = true, true
		wr.skewPrefix = 2
	case ErrTrailingData:
		h = once("999", func(b []byte) []byte { return append(b, 'X') })
	default:
		return fmt.Errorf("noemie: fault %q cannot be generated", opt.Fault)
	}
	wr.hook = h
	return wr.file(hdr, batches)
}
