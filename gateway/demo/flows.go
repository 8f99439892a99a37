package demo

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/octgw/oct/formats/certificate"
	"github.com/octgw/oct/formats/pec"
	"github.com/octgw/oct/formats/scor"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/referentials"
)

// FlowFigures are what happened to the flows beside B2 (docs/flows.md):
// certificates to the simulated SSA, PEC requests to the simulated AMC,
// SCOR attachments with their B2 lots to the simulated caisses.
type FlowFigures struct {
	Certificates     int  `json:"certificates"`          // pushed
	CertRejected     int  `json:"certificates_rejected"` // refused at intake (one injected fault in ten)
	CertFlagged      int  `json:"certificates_flagged"`  // selected for medical control
	CertAccepted     int  `json:"certificates_accepted"`
	CertRefused      int  `json:"certificates_refused"`
	CertArbiter      int  `json:"certificates_arbiter_returned"`
	PEC              int  `json:"pec"`
	PECAgreement     int  `json:"pec_agreement"`
	PECPartial       int  `json:"pec_partial"`
	PECRefusal       int  `json:"pec_refusal"`
	PECUnroutable    int  `json:"pec_unroutable"` // the AMC is not in the referential (one in ten)
	SCOR             int  `json:"scor"`
	SCORRejected     int  `json:"scor_rejected"` // refused at intake (a JPEG named .pdf)
	SCORAcknowledged int  `json:"scor_acknowledged"`
	SCORNegative     int  `json:"scor_negative"` // the caisse's ARL refused the scan (too low a resolution)
	NotTerminal      int  `json:"not_terminal"`
	StatusReturns    int  `json:"ssa_status_returns"`
	PECAnswerReturns int  `json:"pec_answer_returns"`
	FlowsTimedOut    bool `json:"flows_timed_out,omitempty"`
}

// The demo SSA and AMC (PEC) endpoints, as the referential names them.
const (
	demoSSA = "SSA01"
	demoAMC = "00420000" // SANTEPHARM: its optics convention takes PEC over HTTPS
)

// flowSeed is the demo referential with its SSA and PEC endpoints at the
// simulator's addresses.
func flowSeed(ssaAddr, amcAddr string) referentials.Feed {
	return referentials.DemoFeedAt("https://"+ssaAddr+"/ssa/"+demoSSA, "https://"+amcAddr+"/amc/SANTEPHARM")
}

// pushFlows sends n certificates, n PEC requests and n SCOR attachments
// (the latter with B2 lots already taken in), spread over the vendors.
func pushFlows(ctx context.Context, o Options, base string, tokens, tenants []string, st store.Store) ([]pushed, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	var out []pushed
	post := func(v int, path, name string, body []byte) error {
		id, err := postFile(ctx, client, base+path+"?name="+url.QueryEscape(name), tokens[v], body)
		if err == nil {
			out = append(out, pushed{id, v})
		}
		return err
	}
	n := o.FlowMessages
	for i := 0; i < n; i++ {
		v, seed := i%len(tokens), uint64(o.Seed)*7919+uint64(i)
		// A certificate; one in ten carries an error.
		var cert []byte
		if i%10 == 9 {
			cert = certificate.Generate(certificate.GenOptions{Seed: seed, FHIR: i%2 == 0, Fault: certificate.ErrDateOrder})
		} else {
			c := certificate.GenCertificate(certificate.GenOptions{Seed: seed})
			c.Insurer = demoSSA
			var err error
			if i%2 == 0 {
				cert, err = certificate.MarshalFHIR(c)
			} else {
				cert, err = certificate.MarshalJSON(c)
			}
			if err != nil {
				return out, err
			}
		}
		if err := post(v, "/v1/certificates", fmt.Sprintf("cert-%04d.json", i), cert); err != nil {
			return out, err
		}
		// A PEC request; one in ten for an AMC the referential does not know.
		m := pec.GenMessage(pec.GenOptions{Seed: seed})
		m.Request.AMC = demoAMC
		if i%10 == 9 {
			m.Request.AMC = "99999999"
		}
		body, err := pec.Marshal(m)
		if err != nil {
			return out, err
		}
		if err := post(v, "/v1/pec", fmt.Sprintf("pec-%04d.json", i), body); err != nil {
			return out, err
		}
	}
	// SCOR attachments go with B2 lots already taken in.
	sent := 0
	for v, t := range tenants {
		lots, err := st.Lots(ctx, store.LotQuery{Tenant: t, Flow: store.FlowB2, Limit: n})
		if err != nil {
			return out, err
		}
		for _, l := range lots {
			if sent >= n || l.State == lifecycle.LotUnroutable {
				continue
			}
			name := fmt.Sprintf("SCOR_%s_%03d_%s_ordonnance.pdf", l.Emitter, l.Number, strings.ReplaceAll(l.Date, "-", ""))
			var pdf []byte
			switch sent % 10 {
			case 9: // not a PDF at all: refused at intake
				pdf = scor.GenerateJPEG()
			case 8: // a scan below 200 dpi: refused at intake too
				pdf, err = scor.GenerateLowRes(uint64(o.Seed) + uint64(sent))
			default:
				pdf, err = scor.Generate(scor.GenOptions{Seed: uint64(o.Seed) + uint64(sent), Pages: 1 + sent%3})
			}
			if err != nil {
				return out, err
			}
			if err := post(v, "/v1/scor", name, pdf); err != nil {
				return out, err
			}
			sent++
		}
	}
	return out, nil
}

// waitFlows waits until every flow message is in a resting state (or the
// timeout) and counts what happened.
func waitFlows(ctx context.Context, o Options, st store.Store, acked []pushed, deadline time.Time) (FlowFigures, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		f, err := flowFigures(ctx, st, acked)
		if err != nil || f.NotTerminal == 0 {
			return f, err
		}
		if time.Now().After(deadline) {
			f.FlowsTimedOut = true
			return f, nil
		}
		select {
		case <-ctx.Done():
			return f, ctx.Err()
		case <-tick.C:
		}
	}
}

func flowFigures(ctx context.Context, st store.Store, acked []pushed) (FlowFigures, error) {
	var f FlowFigures
	for _, a := range acked {
		file, err := st.File(ctx, a.id)
		if err != nil {
			return f, err
		}
		switch file.Format {
		case store.FlowCertificate:
			f.Certificates++
		case store.FlowPEC:
			f.PEC++
		case store.FlowSCOR:
			f.SCOR++
		}
		if file.State == lifecycle.FileRejected {
			switch file.Format {
			case store.FlowCertificate:
				f.CertRejected++
			case store.FlowSCOR:
				f.SCORRejected++
			}
			continue
		}
		lots, err := st.Lots(ctx, store.LotQuery{File: file.ID, Limit: 2})
		if err != nil {
			return f, err
		}
		if len(lots) == 0 {
			f.NotTerminal++
			continue
		}
		l := lots[0]
		if !resting(l.State, false) {
			f.NotTerminal++
			continue
		}
		switch l.Flow {
		case store.FlowCertificate:
			switch certificate.Status(l.Status) {
			case certificate.StatusAccepted:
				f.CertAccepted++
			case certificate.StatusRefused:
				f.CertRefused++
			case certificate.StatusArbiterReturned:
				f.CertArbiter++
			}
			evs, err := st.Events(ctx, "lot:"+l.ID)
			if err != nil {
				return f, err
			}
			for _, e := range evs {
				if e.Type == "selectivity" && strings.HasPrefix(e.Reason, "medical control") {
					f.CertFlagged++
				}
			}
		case store.FlowPEC:
			switch {
			case l.State == lifecycle.LotUnroutable:
				f.PECUnroutable++
			case l.Status == pec.StatusAgreement:
				f.PECAgreement++
			case l.Status == pec.StatusPartial:
				f.PECPartial++
			case l.Status == pec.StatusRefusal:
				f.PECRefusal++
			}
		case store.FlowSCOR:
			switch l.State {
			case lifecycle.LotSettled:
				f.SCORAcknowledged++
			case lifecycle.LotARLNegative, lifecycle.LotToRebuild:
				f.SCORNegative++
			}
		}
	}
	return f, nil
}

// countFlowReturns adds the flows' returns in the vendors' feeds.
func countFlowReturns(ctx context.Context, st store.Store, tenants []string, f *FlowFigures) error {
	for _, t := range tenants {
		rets, err := st.Returns(ctx, t, 0, 100000)
		if err != nil {
			return err
		}
		for _, r := range rets {
			switch r.Kind {
			case "ssa-status":
				f.StatusReturns++
			case "pec-answer":
				f.PECAnswerReturns++
			}
		}
	}
	return nil
}
