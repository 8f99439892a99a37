package console_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// TestLotPageLinksPECAndInvoices: a PEC request lot whose granted number is
// carried by an invoice of L1 shows that invoice on its page, and L1's page
// shows the PEC request: quote → agreement → invoice in one place, within
// the user's scope.
func TestLotPageLinksPECAndInvoices(t *testing.T) {
	e := newEnv(t)
	st, ctx := e.f.Store, e.f.Ctx
	invs, err := st.Invoices(ctx, "L1")
	if err != nil || len(invs) == 0 {
		t.Fatal(err)
	}
	inv := invs[0]
	inv.PEC = "PEC0000000000077"
	p := store.Lot{ID: "P1", File: "F-P1", Tenant: "acme", Flow: store.FlowPEC, Ref: "Q-77", Status: "agreement",
		PEC: inv.PEC, Destination: "amc:OPTIC", State: lifecycle.LotCreated}
	if err := st.Commit(ctx, &store.Change{Invoices: []store.Invoice{inv}, Lots: []store.Lot{p}}); err != nil {
		t.Fatal(err)
	}
	e.login("bob")
	code, page, _ := e.do("GET", "/console/lot/P1", nil)
	if code != http.StatusOK || !strings.Contains(page, `id="linked"`) || !strings.Contains(page, "/console/lot/L1") ||
		!strings.Contains(page, "invoice "+inv.Number) {
		t.Fatalf("PEC lot page: %d\n%s", code, page)
	}
	_, page, _ = e.do("GET", "/console/lot/L1", nil)
	if !strings.Contains(page, `id="linked"`) || !strings.Contains(page, "/console/lot/P1") || !strings.Contains(page, "Q-77") {
		t.Fatalf("B2 lot page without its PEC request:\n%s", page)
	}
	// An insurer of CPAM-751 sees L1 but not the AMC's PEC lot.
	e.logout()
	e.login("olga")
	_, page, _ = e.do("GET", "/console/lot/L1", nil)
	if strings.Contains(page, "/console/lot/P1") {
		t.Fatal("an insurer sees a linked lot addressed to another destination")
	}
}
