package gateway

import (
	"context"

	"github.com/octgw/oct/gateway/store"
)

// Links are the records a lot is tied to across flows, so that support and
// the vendor see quote → agreement → invoice → payment, or a B2 lot and its
// SCOR attachments, in one place.
type Links struct {
	// B2Lot is the B2 lot a SCOR lot goes with.
	B2Lot *store.Lot `json:"b2_lot,omitempty"`
	// SCOR lists the SCOR attachments sent with a B2 lot.
	SCOR []store.Lot `json:"scor,omitempty"`
	// PECRequests are the PEC lots whose granted number the lot's invoices
	// carry (B2 lot), or the other messages about the same request (PEC
	// lot: status queries, cancel).
	PECRequests []store.Lot `json:"pec,omitempty"`
	// Invoices carry the PEC number a PEC lot obtained (2P complement),
	// with their state: paid, rejected...
	Invoices []store.Invoice `json:"invoices,omitempty"`
}

func (l *Links) empty() bool {
	return l.B2Lot == nil && len(l.SCOR) == 0 && len(l.PECRequests) == 0 && len(l.Invoices) == 0
}

// maxLinks bounds every list of Links.
const maxLinks = 100

// LinksOf finds what lot is tied to, within its tenant; invs are the lot's
// own invoices (already read). Nil when nothing is linked.
func LinksOf(ctx context.Context, st store.Store, lot store.Lot, invs []store.Invoice) (*Links, error) {
	var out Links
	var err error
	switch lot.Flow {
	case store.FlowSCOR:
		b2, err := st.Lot(ctx, lot.Ref)
		if err == nil && b2.Tenant == lot.Tenant {
			out.B2Lot = &b2
		}
	case store.FlowPEC:
		others, err := st.Lots(ctx, store.LotQuery{Tenant: lot.Tenant, Flow: store.FlowPEC, Ref: lot.Ref, Limit: maxLinks})
		if err != nil {
			return nil, err
		}
		for _, o := range others {
			if o.ID != lot.ID {
				out.PECRequests = append(out.PECRequests, o)
			}
		}
		if lot.PEC != "" {
			if out.Invoices, err = st.FindInvoices(ctx, store.InvoiceQuery{Tenant: lot.Tenant, PEC: lot.PEC, Limit: maxLinks}); err != nil {
				return nil, err
			}
		}
	case store.FlowCertificate:
	default:
		if out.SCOR, err = st.Lots(ctx, store.LotQuery{Tenant: lot.Tenant, Flow: store.FlowSCOR, Ref: lot.ID, Limit: maxLinks}); err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, inv := range invs {
			if inv.PEC == "" || seen[inv.PEC] || len(out.PECRequests) >= maxLinks {
				continue
			}
			seen[inv.PEC] = true
			reqs, err := st.Lots(ctx, store.LotQuery{Tenant: lot.Tenant, Flow: store.FlowPEC, PEC: inv.PEC, Limit: 10})
			if err != nil {
				return nil, err
			}
			out.PECRequests = append(out.PECRequests, reqs...)
		}
	}
	if out.empty() {
		return nil, nil
	}
	return &out, nil
}
