package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/gateway/store"
)

// searchLimit bounds the lots a search shows.
const searchLimit = 200

type searchForm struct {
	Emitter, Number, Date, Destination, Tenant, File, Lot, Invoice string
	Flow, Ref, PEC                                                 string
}

func (f searchForm) empty() bool { return f == searchForm{} }

type searchHit struct {
	store.Lot
	Invoice string // the invoice number that matched, if any
	Match   string // "invoice" when found through an invoice
}

type searchView struct {
	Form     searchForm
	Searched bool
	Hits     []searchHit
	Files    []store.File
	Limited  bool
	Note     string
	Global   bool
}

func (c *Console) searchPage(w http.ResponseWriter, r *http.Request, s reqSession) {
	q := r.URL.Query()
	get := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	u := s.u()
	v := searchView{Global: u.Global(), Form: searchForm{Emitter: get("emitter"), Number: get("number"),
		Date: get("date"), Destination: get("destination"), Tenant: get("tenant"), File: get("file"), Lot: get("lot"), Invoice: get("invoice"),
		Flow: get("flow"), Ref: get("ref"), PEC: get("pec")}}
	if !u.Global() {
		v.Form.Tenant = ""
	}
	if !v.Form.empty() {
		v.Searched = true
		if err := c.search(r.Context(), u, &v); err != nil {
			c.fail(w, s, err)
			return
		}
	}
	c.render(w, http.StatusOK, "search", &s, v)
}

func (c *Console) search(ctx context.Context, u user, v *searchView) error {
	f, st := v.Form, c.o.Store
	found := func(err error) (bool, error) {
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	if f.Lot != "" {
		l, err := st.Lot(ctx, f.Lot)
		if ok, err := found(err); err != nil {
			return err
		} else if ok && u.seesLot(l) {
			v.Hits = append(v.Hits, searchHit{Lot: l})
		}
	}
	if f.File != "" {
		fl, err := st.File(ctx, f.File)
		ok, err := found(err)
		if err != nil {
			return err
		}
		if ok && u.seesFileOwn(fl) {
			v.Files = append(v.Files, fl)
		}
		if ok && !u.seesFileOwn(fl) && u.Role == RoleInsurer { // its lots of that file only
			ls, err := st.Lots(ctx, store.LotQuery{File: fl.ID, Limit: 1000})
			if err != nil {
				return err
			}
			for _, l := range u.filterLots(ls) {
				v.Hits = append(v.Hits, searchHit{Lot: l})
			}
		}
	}
	if f.Invoice != "" || f.PEC != "" {
		{
			iq := store.InvoiceQuery{Number: f.Invoice, PEC: f.PEC, Limit: 50}
			switch {
			case u.Role == RoleVendor:
				iq.Tenant = u.Tenant
			case u.Global():
				iq.Tenant = f.Tenant
			}
			invs, err := st.FindInvoices(ctx, iq)
			if err != nil {
				return err
			}
			seen := map[string]bool{}
			for _, inv := range invs { // at most 50 lot reads
				if seen[inv.Lot] {
					continue
				}
				seen[inv.Lot] = true
				l, err := st.Lot(ctx, inv.Lot)
				if ok, err := found(err); err != nil {
					return err
				} else if ok && u.seesLot(l) {
					v.Hits = append(v.Hits, searchHit{Lot: l, Invoice: inv.Number, Match: "invoice"})
				}
			}
		}
	}
	if f.Emitter != "" || f.Number != "" || f.Date != "" || f.Destination != "" || f.Flow != "" || f.Ref != "" || f.PEC != "" ||
		(f.Tenant != "" && f.Lot == "" && f.File == "" && f.Invoice == "") {
		lq := store.LotQuery{Emitter: f.Emitter, Date: f.Date, Destination: f.Destination, Tenant: f.Tenant, Flow: f.Flow, Ref: f.Ref,
			PEC: f.PEC, Limit: searchLimit + 1}
		if f.Number != "" {
			n, err := strconv.Atoi(f.Number)
			if err != nil || n < 0 {
				return fmt.Errorf("%w: the lot number is a number", anomalies.ErrBadRequest)
			}
			lq.Number = n
		}
		if f.Date != "" && (len(f.Date) != 10 || f.Date[4] != '-' || f.Date[7] != '-') {
			return fmt.Errorf("%w: the date is YYYY-MM-DD", anomalies.ErrBadRequest)
		}
		var qs []store.LotQuery
		switch u.Role {
		case RoleVendor:
			lq.Tenant = u.Tenant
			qs = append(qs, lq)
		case RoleInsurer:
			if lq.Destination != "" {
				if u.hasDest(lq.Destination) {
					qs = append(qs, lq)
				}
				break
			}
			for _, d := range u.Destinations {
				q := lq
				q.Destination = d
				qs = append(qs, q)
			}
		default:
			qs = append(qs, lq)
		}
		for _, q := range qs {
			ls, err := st.Lots(ctx, q)
			if err != nil {
				return err
			}
			for _, l := range u.filterLots(ls) {
				v.Hits = append(v.Hits, searchHit{Lot: l})
			}
		}
	}
	sort.SliceStable(v.Hits, func(i, j int) bool { return v.Hits[i].ID < v.Hits[j].ID })
	if len(v.Hits) > searchLimit {
		v.Hits, v.Limited = v.Hits[:searchLimit], true
	}
	return nil
}
