package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/formats/pec"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// Router chooses where a lot goes. routing.Router is adapted to it by the
// wiring in cmd/oct; tests use fakes.
type Router interface {
	Route(ctx context.Context, lot RouteInput) (Route, error)
}

// RouteInput is what routing may look at: business fields of the lot, never
// personal data.
type RouteInput struct {
	Tenant       string
	Emitter      string
	Variant      string // B2 norm variant of the lot (CP, ES, ...)
	Norm         string // 000 norm field
	ReceiverType string // 000 destinataire type (AMC types carry DRE lots)
	GrandRegime  string // of the lot's invoices (first invoice)
	Caisse       string // type 1 destination caisse
	AMC          string // AMC number of the first invoice, if any
	Test         bool
	AMCPart      bool   // invoices carry an AMC part: an "FSE enrichie"
	Flow         string // "" or "b2", "certificate", "pec", "scor" (store.Flow*)
	Insurer      string // certificates: the SSA organisation code
	Specialty    string // certificates and PEC: the practitioner's specialty
}

// Route is a routing decision.
type Route struct {
	Destination string // destination id
	Version     string // referential version the decision used
	Reason      string // which rule or entry matched
	// Split lists destinations that should receive the AMC flow of an FSE
	// enrichie (routing.Splitter); without split rules they are not sent
	// and the lot gets an anomaly saying so.
	Split []string
}

// ErrUnroutable is returned by a Router when no destination fits; the lot
// becomes unroutable and an anomaly is opened.
var ErrUnroutable = errors.New("unroutable")

func (g *Gateway) readBlob(ctx context.Context, sum string) ([]byte, error) {
	rc, err := g.blobs.Open(ctx, sum)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, g.limits.MaxFileBytes+1))
}

// split turns an accepted file into its lots and invoices: one outbound
// lot file per lot (000 + lot + 999), kept as a blob, and one route job per
// lot. Lot and invoice ids derive from the file id, so a retried split
// writes the same rows.
func (g *Gateway) split(ctx context.Context, l store.Lease) (*store.Change, error) {
	f, err := g.st.File(ctx, l.Subject)
	if err != nil {
		return nil, err
	}
	if f.State != lifecycle.FileAccepted {
		return nil, nil // already split (or never accepted): nothing to do
	}
	data, err := g.readBlob(ctx, f.SHA256)
	if err != nil {
		return nil, err
	}
	rep, err := b2.Validate(bytes.NewReader(data), b2.Options{
		Summaries: true,
		Limits:    b2.Limits{MaxBytes: g.limits.MaxFileBytes, MaxRecords: g.limits.MaxRecords, MaxErrors: g.limits.MaxErrors},
	})
	if err != nil {
		return nil, err
	}
	if !rep.Valid {
		return nil, fmt.Errorf("%w: file %s was accepted but no longer validates", ErrPermanent, f.ID)
	}
	now := g.now().UTC()
	c := &store.Change{Actor: "split"}
	for i, lot := range rep.Lots {
		out, err := b2.ExtractLot(data, i)
		if err != nil {
			return nil, fmt.Errorf("%w: extract lot %d: %v", ErrPermanent, i, err)
		}
		sum, _, err := g.blobs.Put(ctx, bytes.NewReader(out), int64(len(out))+1)
		if err != nil {
			return nil, err
		}
		lotID := f.ID + "-" + strconv.Itoa(i)
		var amount int64
		for j, inv := range lot.Invoices {
			amount += inv.Billed
			c.Invoices = append(c.Invoices, store.Invoice{
				ID: lotID + "-" + strconv.Itoa(j), Lot: lotID, Tenant: f.Tenant, Number: inv.Number,
				NIRHash: g.HashNIR(inv.NIR), AMC: inv.AMC, PEC: pecKey(inv.PEC),
				Billed: inv.Billed, AMO: inv.AMO, AMCPart: inv.AMCAmount, State: lifecycle.InvoicePending,
			})
		}
		c.Lots = append(c.Lots, store.Lot{
			ID: lotID, File: f.ID, Tenant: f.Tenant, Index: i, Emitter: lot.Emitter, Number: lot.Number,
			Date: lot.Date.String(), Test: rep.Header.Test, State: lifecycle.LotCreated,
			Invoices: len(lot.Invoices), Amount: amount, Blob: sum, UpdatedAt: now,
		})
		c.Enqueue = append(c.Enqueue, store.Job{Kind: JobRoute, Subject: lotID, Key: "route", RunAt: now})
	}
	c.Transitions = append(c.Transitions, store.Transition{
		Kind: lifecycle.File, ID: f.ID, From: lifecycle.FileAccepted, To: lifecycle.FileSplit,
		Actor: "split", Reason: fmt.Sprintf("%d lot(s), %d invoice(s)", len(rep.Lots), rep.Stats.Invoices),
	})
	return c, nil
}

// route asks the Router for the lot's destination.
func (g *Gateway) route(ctx context.Context, l store.Lease) (*store.Change, error) {
	lot, err := g.st.Lot(ctx, l.Subject)
	if err != nil {
		return nil, err
	}
	if lot.State != lifecycle.LotCreated && lot.State != lifecycle.LotUnroutable {
		return nil, nil
	}
	in, err := g.routeInput(ctx, lot)
	if err != nil {
		return nil, err
	}
	var r Route
	if g.router == nil {
		err = fmt.Errorf("%w: no router configured", ErrUnroutable)
	} else {
		r, err = g.router.Route(ctx, in)
	}
	now := g.now().UTC()
	if errors.Is(err, ErrUnroutable) {
		if lot.State == lifecycle.LotUnroutable {
			return nil, nil
		}
		return &store.Change{
			Transitions: []store.Transition{{Kind: lifecycle.Lot, ID: lot.ID, From: lot.State, To: lifecycle.LotUnroutable, Actor: "route", Reason: err.Error()}},
			Anomalies: []store.Anomaly{{
				ID: "unroutable-" + lot.ID, Kind: "unroutable", Subject: "lot:" + lot.ID, Tenant: lot.Tenant,
				State: lifecycle.AnomalyOpen, Reason: err.Error(), SLA: now.Add(4 * 3600e9), Created: now,
			}},
		}, nil
	}
	if err != nil {
		return nil, err
	}
	lot.Destination, lot.RefVersion, lot.UpdatedAt = r.Destination, r.Version, now
	c := &store.Change{
		Lots:        []store.Lot{lot},
		Enqueue:     g.afterRouting(lot.ID, now),
		Transitions: []store.Transition{{Kind: lifecycle.Lot, ID: lot.ID, From: lot.State, To: lifecycle.LotRouted, Actor: "route", Reason: r.Reason}},
	}
	if extra := strings.Split(r.Destination, ","); len(extra) > 1 {
		// A fan-out rule chose several destinations; delivery sends a lot to
		// one. The others are named to support rather than dropped silently.
		c.Anomalies = append(c.Anomalies, store.Anomaly{
			ID: "fanout-" + lot.ID, Kind: "fan-out-unsupported", Subject: "lot:" + lot.ID, Tenant: lot.Tenant, Destination: strings.Join(extra[1:], ","),
			State: lifecycle.AnomalyOpen, SLA: now.Add(24 * time.Hour), Created: now,
			Reason: "the routing rule chose " + r.Destination + "; the lot is sent to " + extra[0] + " only, the others need an operator",
		})
	}
	if len(r.Split) > 0 {
		c.Anomalies = append(c.Anomalies, store.Anomaly{
			ID: "split-" + lot.ID, Kind: "split-unavailable", Subject: "lot:" + lot.ID, Tenant: lot.Tenant, Destination: strings.Join(r.Split, ","),
			State: lifecycle.AnomalyOpen, SLA: now.Add(24 * time.Hour), Created: now,
			Reason: "FSE enrichie: the AMC flow for " + strings.Join(r.Split, ", ") + " needs the OCT split rules, which are not available (routing.Splitter); the AMO flow was sent alone",
		})
	}
	return c, nil
}

// routeInput rebuilds the routing fields of a lot from its outbound file.
func (g *Gateway) routeInput(ctx context.Context, lot store.Lot) (RouteInput, error) {
	if !IsB2(lot) {
		return g.flowRouteInput(ctx, lot)
	}
	data, err := g.readBlob(ctx, lot.Blob)
	if err != nil {
		return RouteInput{}, err
	}
	ins, err := RouteInputs(lot.Tenant, data)
	if err != nil {
		return RouteInput{}, err
	}
	if len(ins) != 1 {
		return RouteInput{}, fmt.Errorf("%w: lot file of %s holds %d lots", ErrPermanent, lot.ID, len(ins))
	}
	return ins[0], nil
}

// RouteInputs gives the routing fields of every lot of a B2 file: what the
// pipeline routes on, and what `oct route --explain` shows.
func RouteInputs(tenant string, data []byte) ([]RouteInput, error) {
	rep, err := b2.Validate(bytes.NewReader(data), b2.Options{Summaries: true})
	if err != nil {
		return nil, err
	}
	out := make([]RouteInput, 0, len(rep.Lots))
	for _, bl := range rep.Lots {
		in := RouteInput{Tenant: tenant, Emitter: bl.Emitter, Variant: bl.Variant, Norm: rep.Header.Norm,
			ReceiverType: rep.Header.ReceiverType, Caisse: bl.DestCaisse, Test: rep.Header.Test}
		if len(bl.Invoices) > 0 {
			in.GrandRegime, in.AMC = bl.Invoices[0].GrandRegime, bl.Invoices[0].AMC
		}
		for _, inv := range bl.Invoices {
			if inv.AMCAmount > 0 {
				in.AMCPart = true
			}
		}
		out = append(out, in)
	}
	return out, nil
}

// pecKey is the PEC number of a 2P complement as lots of the PEC flow
// store it, so that the invoice and its agreement link (FindInvoices).
func pecKey(field string) string {
	if k, ok := pec.LinkKey(field); ok {
		return k
	}
	return strings.TrimSpace(field)
}
