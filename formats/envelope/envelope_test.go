package envelope

import (
	"testing"
	"time"

	"github.com/octgw/oct/formats/fixed"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	in := Info{SenderType: "OT", Sender: "00000123456789", ReceiverType: "CT", Receiver: "00000001422422",
		Application: "TR", FileID: "A00001", Created: fixed.Day{Year: 2026, Month: time.March, Dom: 2}, Norm: "CP", Version: "B2", Test: true}
	rec, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) != RecordLength || string(rec[:3]) != "000" || string(rec[82:85]) != "128" {
		t.Fatalf("bad record %q", rec)
	}
	if got := Decode(rec); got != in {
		t.Fatalf("got %+v want %+v", got, in)
	}
	tr, err := EncodeTrailer(rec, 5, 1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if !SameIdent(rec, tr) || string(TRecordCount.Bytes(tr)) != "00000005" || string(TLotCount.Bytes(tr)) != "001" || !TAmount.IsBlank(tr) {
		t.Fatalf("trailer %q", tr)
	}
	var bad []string
	Header.Check(rec, func(r fixed.Ref, k fixed.Kind) { bad = append(bad, r.Name) })
	Trailer.Check(tr, func(r fixed.Ref, k fixed.Kind) { bad = append(bad, r.Name) })
	if len(bad) != 0 {
		t.Fatalf("self-check: %v", bad)
	}
}
