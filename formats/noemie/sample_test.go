package noemie

import (
	"time"

	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
)

func day(y, m, d int) fixed.Day { return fixed.Day{Year: y, Month: time.Month(m), Dom: d} }

var sampleHeader = envelope.Info{SenderType: "CT", Sender: "00000001422422", ReceiverType: "OT",
	Receiver: "00000123456789", Application: "TR", FileID: "R00042", Created: day(2026, 3, 2), Norm: Norm, Version: "01"}

// sampleBatches is a small return: one paid invoice, one rejected with a
// 294 and one paid with a 290 warning, across two payments.
func sampleBatches() []PaymentBatch {
	return []PaymentBatch{
		{Payment: Payment{Mandataire: "000000123456789", Destinataire: "000000123456789", AccountingDate: day(2026, 2, 27), Ref: "VIR 2602270001", Label2: "CPAM ST ETIENNE", Payer: "01422"},
			Invoices: []Invoice{
				{ReturnType: "01", Number: "000000101", LotNumber: 12, LotDate: day(2026, 2, 20), Type: "F", InvoiceDate: day(2026, 2, 19), Nature: "10",
					NIR: "1800175123456", NIRKey: "12", BirthDate: "800115", BirthRank: "1",
					AMO: Part{Requested: 2500, Paid: 1750, State: 'P'}, AMC: Part{Requested: 750, Paid: 750, State: 'P', AMCNumber: "0000042000"}},
				{ReturnType: "01", Number: "000000102", LotNumber: 12, LotDate: day(2026, 2, 20), Type: "F", InvoiceDate: day(2026, 2, 19), Nature: "10",
					NIR: "2850275123456", NIRKey: "55", BirthDate: "850210", BirthRank: "1",
					AMO:     Part{Requested: 3000, Paid: 0, State: 'R'},
					Rejects: []Reject{{Entity: "294", Code: "A123", Label: "DROITS NON OUVERTS", Line: 0, Level: 'F', Part: 'O'}}},
			}},
		{Payment: Payment{Mandataire: "000000123456789", Destinataire: "000000123456789", AccountingDate: day(2026, 2, 28), Ref: "VIR 2602280007", Payer: "01422"},
			Invoices: []Invoice{
				{ReturnType: "04", ExecPlace: "42000001", Number: "000000103", LotNumber: 13, LotDate: day(2026, 2, 21), Type: "F", Nature: "10",
					NIR: "1800175123456", NIRKey: "12", BirthDate: "800115", BirthRank: "1",
					AMO:     Part{Requested: 1000, Paid: -200, State: 'P'},
					Rejects: []Reject{{Entity: "290", Code: "S0042", Label: "REGULARISATION", Line: 1, Level: 'L', Part: ' '}}},
			}},
	}
}
