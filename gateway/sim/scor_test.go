package sim_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/octgw/oct/formats/scor"
	"github.com/octgw/oct/gateway/deliver"
	"github.com/octgw/oct/gateway/sim"
	"github.com/octgw/oct/referentials"
)

func scorMessage(e *env, pdf []byte, lotID string, pages int) deliver.Message {
	return deliver.Message{Flow: deliver.FlowSCOR, Ref: lotID, Lot: "scor-" + lotID, Emitter: "750000001", FileID: scor.FileID(lotID),
		Invoices: pages, LotNumber: 12, LotDate: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		Dest: deliver.Destination{ID: "cpam", Transport: referentials.SMTP, Address: box, Cipher: referentials.AES128},
		Cert: e.sim.Cert(box), Body: pdf}
}

// TestSCOR: a valid scanned PDF through the SMTP sender (S/MIME) gets a
// positive ARL for the SCOR file id, lot and date of its subject after
// ARLDelay; a JPEG renamed .pdf and a 100-dpi scan get negative ARLs whose
// reasons are the scor codes; a SCOR subject the caisse cannot read is
// refused (554, permanent).
func TestSCOR(t *testing.T) {
	e := newEnv(t, sim.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good, err := scor.Generate(scor.GenOptions{Seed: 1, Pages: 2})
	if err != nil {
		t.Fatal(err)
	}
	low, err := scor.GenerateLowRes(2)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		lot  string
		pdf  []byte
		want string // "" positive, else the reason code
	}{{"B2-1", good, ""}, {"B2-2", scor.GenerateJPEG(), "not-pdf"}, {"B2-3", low, "low-resolution"}}
	for _, c := range cases {
		pages := 0
		if c.want == "not-pdf" {
			pages = 1 // the sender cannot count the pages of a JPEG
		}
		if _, err := e.snd.Send(ctx, scorMessage(e, c.pdf, c.lot, pages)); err != nil {
			t.Fatal(c.lot, err)
		}
	}
	got := e.sim.Received()
	if len(got) != 3 || got[0].Flow != "scor" || got[0].Ref != scor.FileID("B2-1") || !got[0].Valid || got[1].Valid || got[2].Valid ||
		!strings.HasPrefix(got[0].Subject, "SCOR/00000750000001/"+scor.FileID("B2-1")+"/012/260302/00002") || got[0].Description != "IRIS/SCOR" {
		t.Fatalf("%+v", got)
	}
	if n := len(e.sink.all()); n != 0 {
		t.Fatalf("%d returns before ARLDelay", n)
	}
	e.clock.Advance(time.Hour)
	rets := e.sink.all()
	if len(rets) != 3 {
		t.Fatalf("%d returns", len(rets))
	}
	for i, c := range cases {
		r := rets[i]
		f := decodeARL(t, r.Body)
		a := f.ARLs[0]
		if r.Kind != sim.KindARL || r.FileID != scor.FileID(c.lot) || a.FileID != scor.FileID(c.lot) || a.LotNumber != 12 ||
			a.LotDate.String() != "2026-03-02" || a.Emitter != "00000750000001" || a.Positive != (c.want == "") {
			t.Fatalf("%s: %+v %+v", c.lot, r, a)
		}
		if c.want != "" && (len(a.Reasons) == 0 || a.Reasons[0].Code != c.want) {
			t.Fatalf("%s: reasons %+v", c.lot, a.Reasons)
		}
	}
	if e.sim.Stats().SCOR != 3 {
		t.Fatalf("%+v", e.sim.Stats())
	}
	// No lot number: the sender refuses to compose (permanent, ErrConfig).
	m := scorMessage(e, good, "B2-4", 1)
	m.LotNumber = 0
	if _, err := e.snd.Send(ctx, m); !errors.Is(err, deliver.ErrConfig) {
		t.Fatalf("no lot number: %v", err)
	}
}
