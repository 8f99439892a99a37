package storetest

import (
	"errors"
	"fmt"
	"time"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// testFlowQueries: the fields of non-B2 flows are kept, updated by a Put,
// and searchable by flow, reference and PEC number.
func testFlowQueries(f *fx) {
	t := f.t
	mk := func(id, tenant, flow, ref, pec string) store.Lot {
		l := newLot(id, "F1", tenant)
		l.Flow, l.Ref, l.PEC = flow, ref, pec
		return l
	}
	lots := []store.Lot{
		mk("L1", "acme", "", "", ""),
		mk("L2", "acme", store.FlowB2, "", ""),
		mk("L3", "acme", store.FlowCertificate, "CERT-1", ""),
		mk("L4", "acme", store.FlowPEC, "Q1", "PEC0000000000001"),
		mk("L5", "globex", store.FlowPEC, "Q1", ""),
		mk("L6", "acme", store.FlowSCOR, "L1", ""),
	}
	f.commit(&store.Change{Lots: lots})
	cases := []query[store.LotQuery]{
		{store.LotQuery{Flow: store.FlowB2}, "[L1 L2]"},
		{store.LotQuery{Flow: store.FlowPEC}, "[L4 L5]"},
		{store.LotQuery{Ref: "Q1"}, "[L4 L5]"},
		{store.LotQuery{Ref: "Q1", Tenant: "globex"}, "[L5]"},
		{store.LotQuery{Ref: "L1", Flow: store.FlowSCOR}, "[L6]"},
		{store.LotQuery{PEC: "PEC0000000000001"}, "[L4]"},
		{store.LotQuery{Flow: store.FlowCertificate, Ref: "CERT-2"}, "[]"},
	}
	checkQueries(t, "Lots", cases, func(q store.LotQuery) ([]store.Lot, error) { return f.s.Lots(f.ctx, q) }, lotID)
	// A later Put sets the business status and the granted PEC number.
	l4 := lots[3]
	l4.Status, l4.PEC = "agreement", "PEC0000000000002"
	f.commit(&store.Change{Lots: []store.Lot{l4}})
	got, err := f.s.Lot(f.ctx, "L4")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "agreement" || got.PEC != "PEC0000000000002" || got.Flow != store.FlowPEC || got.Ref != "Q1" {
		t.Errorf("L4 after update = %+v", got)
	}
	if old, _ := f.s.Lots(f.ctx, store.LotQuery{PEC: "PEC0000000000001"}); len(old) != 0 {
		t.Errorf("old PEC number still finds %s", lotIDs(old))
	}
}

// testFindInvoices: invoices by number and by PEC number, across lots.
func testFindInvoices(f *fx) {
	t := f.t
	inv := func(id, lot, tenant, number, pec string) store.Invoice {
		return store.Invoice{ID: id, Lot: lot, Tenant: tenant, Number: number, PEC: pec, NIRHash: "h", Billed: 100,
			State: lifecycle.InvoicePending}
	}
	f.commit(&store.Change{
		Lots: []store.Lot{newLot("L1", "F1", "acme"), newLot("L2", "F2", "globex")},
		Invoices: []store.Invoice{
			inv("I1", "L1", "acme", "000000001", ""),
			inv("I2", "L1", "acme", "000000002", "PEC0000000000001"),
			inv("I3", "L2", "globex", "000000001", "PEC0000000000001"),
			inv("I4", "L2", "globex", "000000003", ""),
		},
	})
	cases := []query[store.InvoiceQuery]{
		{store.InvoiceQuery{Number: "000000001"}, "[I1 I3]"},
		{store.InvoiceQuery{Number: "000000001", Tenant: "globex"}, "[I3]"},
		{store.InvoiceQuery{PEC: "PEC0000000000001"}, "[I2 I3]"},
		{store.InvoiceQuery{PEC: "PEC0000000000001", Number: "000000002"}, "[I2]"},
		{store.InvoiceQuery{Number: "000000001", After: "I1"}, "[I3]"},
		{store.InvoiceQuery{Number: "000000001", Limit: 1}, "[I1]"},
		{store.InvoiceQuery{Number: "999"}, "[]"},
	}
	checkQueries(t, "FindInvoices", cases, func(q store.InvoiceQuery) ([]store.Invoice, error) { return f.s.FindInvoices(f.ctx, q) },
		func(v store.Invoice) string { return v.ID })
	if _, err := f.s.FindInvoices(f.ctx, store.InvoiceQuery{Tenant: "acme"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("FindInvoices without a key = %v, want ErrInvalid", err)
	}
}

// testDaily: creations and transitions are counted per day, tenant, kind
// and state entered, in the same commit as the change.
func testDaily(f *fx) {
	t := f.t
	day1 := f.clock.Now().UTC().Format(time.DateOnly)
	f.commit(&store.Change{
		Lots: []store.Lot{newLot("L1", "F1", "acme"), newLot("L2", "F1", "acme"), newLot("L3", "F2", "globex")},
		Anomalies: []store.Anomaly{{ID: "A1", Kind: "k", Subject: "lot:L1", Tenant: "acme", State: lifecycle.AnomalyOpen,
			Reason: "r", SLA: f.clock.Now(), Created: f.clock.Now()}},
	})
	f.clock.Advance(24 * time.Hour)
	day2 := f.clock.Now().UTC().Format(time.DateOnly)
	f.commit(&store.Change{Transitions: []store.Transition{
		{Kind: lifecycle.Lot, ID: "L1", From: lifecycle.LotCreated, To: lifecycle.LotRouted},
		{Kind: lifecycle.Lot, ID: "L3", From: lifecycle.LotCreated, To: lifecycle.LotRouted},
	}})
	// A refused transition counts nothing.
	err := f.s.Commit(f.ctx, &store.Change{Transitions: []store.Transition{
		{Kind: lifecycle.Lot, ID: "L2", From: lifecycle.LotRouted, To: lifecycle.LotSigned},
	}})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("conflicting transition: %v", err)
	}
	str := func(ds []store.DailyCount) string {
		out := ""
		for _, d := range ds {
			out += fmt.Sprintf("%s/%s/%s/%s=%d ", d.Day, d.Tenant, d.Kind, d.State, d.N)
		}
		return out
	}
	all, err := f.s.Daily(f.ctx, f.clock.Now().Add(-72*time.Hour), "")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%[1]s/acme/anomaly/open=1 %[1]s/acme/lot/created=2 %[1]s/globex/lot/created=1 %[2]s/acme/lot/routed=1 %[2]s/globex/lot/routed=1 ", day1, day2)
	if str(all) != want {
		t.Errorf("Daily all =\n %s\nwant\n %s", str(all), want)
	}
	acme, err := f.s.Daily(f.ctx, f.clock.Now(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%s/acme/lot/routed=1 ", day2); str(acme) != want {
		t.Errorf("Daily acme since day 2 = %s, want %s", str(acme), want)
	}
}

// testAnomaliesBySLA: the queue's order, most urgent first, with filters
// and the (SLA, ID) cursor; an anomaly without an SLA sorts first.
func testAnomaliesBySLA(f *fx) {
	t := f.t
	now := f.clock.Now()
	mk := func(id, tenant, kind string, sla time.Duration, zero bool) store.Anomaly {
		a := store.Anomaly{ID: id, Kind: kind, Subject: "lot:" + id, Tenant: tenant, Destination: "D1",
			State: lifecycle.AnomalyOpen, Reason: "r", SLA: now.Add(sla), Created: now}
		if zero {
			a.SLA = time.Time{}
		}
		return a
	}
	f.commit(&store.Change{Anomalies: []store.Anomaly{
		mk("A1", "acme", "k1", 5*time.Hour, false),
		mk("A2", "acme", "k2", 1*time.Hour, false),
		mk("A3", "beta", "k1", 3*time.Hour, false),
		mk("A4", "acme", "k1", 1*time.Hour, false), // same deadline as A2: by id
		mk("A5", "acme", "k1", 0, true),
		mk("A6", "acme", "k1", 2*time.Hour, false),
	}, Transitions: []store.Transition{{Kind: lifecycle.Anomaly, ID: "A6", From: lifecycle.AnomalyOpen, To: lifecycle.AnomalyResolved}}})
	cases := []query[store.AnomalyQuery]{
		{store.AnomalyQuery{BySLA: true}, "[A5 A2 A4 A6 A3 A1]"},
		{store.AnomalyQuery{BySLA: true, State: lifecycle.AnomalyOpen}, "[A5 A2 A4 A3 A1]"},
		{store.AnomalyQuery{BySLA: true, State: lifecycle.AnomalyOpen, Tenant: "acme"}, "[A5 A2 A4 A1]"},
		{store.AnomalyQuery{BySLA: true, Kind: "k1", Destination: "D1", State: lifecycle.AnomalyOpen}, "[A5 A4 A3 A1]"},
		{store.AnomalyQuery{BySLA: true, State: lifecycle.AnomalyOpen, Limit: 2}, "[A5 A2]"},
		{store.AnomalyQuery{BySLA: true, State: lifecycle.AnomalyOpen, After: "A2", AfterSLA: now.Add(time.Hour), Limit: 2}, "[A4 A3]"},
		{store.AnomalyQuery{BySLA: true, State: lifecycle.AnomalyOpen, After: "A4", AfterSLA: now.Add(time.Hour)}, "[A3 A1]"},
	}
	checkQueries(t, "Anomalies", cases, func(q store.AnomalyQuery) ([]store.Anomaly, error) { return f.s.Anomalies(f.ctx, q) }, anomalyID)
}
