package node

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/octgw/oct/gateway"
	deliverfhir "github.com/octgw/oct/gateway/deliver/fhir"
	"github.com/octgw/oct/gateway/returns"
	"github.com/octgw/oct/referentials"
	"github.com/octgw/oct/routing"
)

// flowOptions are the gateway's settings for the certificate, PEC and SCOR
// flows, from the configuration.
func (n *Node) flowOptions() gateway.FlowOptions {
	fc := n.Config.Flows
	o := gateway.FlowOptions{OnReturn: func(string) { n.Returns.Notify() }}
	if fc.Selectivity.Enabled() {
		o.Selector = selector{fc.Selectivity}
	}
	if len(fc.SCORPDFADestinations) > 0 {
		dests := slices.Clone(fc.SCORPDFADestinations)
		o.SCORRequirePDFA = func(d string) bool { return slices.Contains(dests, d) }
	}
	if n.Folders != nil {
		relay := returns.FoldersRelay(n.Folders)
		o.Relay = relay.Relay
	}
	return o
}

// selector adapts the routing selectivity rules to the gateway.
type selector struct{ r routing.SelectivityRules }

func (s selector) SelectCertificate(ctx context.Context, f gateway.CertificateFacts, h gateway.PatientHistory) (bool, []string, error) {
	sel, err := s.r.Select(ctx, routing.CertificateFacts{ID: f.ID, PatientKey: f.PatientKey, Benefit: f.Benefit,
		IncapacityDays: f.IncapacityDays, Issued: f.Issued}, h)
	return sel.Flagged, sel.Reasons, err
}

// ssaFeeds are the status feeds of the SSA endpoints the referential in
// force knows (conventions taking the CERT norm over HTTPS).
func (n *Node) ssaFeeds() []deliverfhir.Feed {
	if n.Referentials == nil || n.Referentials.Current() == nil {
		return nil
	}
	var feeds []deliverfhir.Feed
	seen := map[string]bool{}
	now := time.Now()
	for _, c := range n.Referentials.Current().Data().Conventions {
		if !c.Accepts(referentials.NormCERT) || c.Transport != referentials.HTTPS || seen[c.Operator] || !c.Period.In(now) {
			continue
		}
		seen[c.Operator] = true
		feeds = append(feeds, deliverfhir.Feed{Name: "ssa:" + c.Operator, URL: c.Address})
	}
	return feeds
}

// openSSAPoller builds the poller of the SSA status feeds, when HTTPS
// delivery is configured and routing has a referential.
func (n *Node) openSSAPoller() error {
	if n.httpsClient == nil || n.Referentials == nil {
		return nil
	}
	// The feeds of each round are those of the referential in force: an
	// SSA added by a referential update is polled without a restart.
	p, err := deliverfhir.NewPoller(deliverfhir.PollerConfig{
		FeedsFunc: n.ssaFeeds, HTTPS: *n.httpsClient, Interval: n.Config.Flows.SSAPollEvery, Logger: n.Logger,
		Cursors: deliverfhir.FileCursors{Dir: filepath.Join(n.Config.DataDir, "ssa-cursors")},
		Handler: deliverfhir.HandlerFunc(n.Gateway.HandleFlowReturn),
	})
	if err != nil {
		return err
	}
	n.ssaPoller = p
	return nil
}

// runSSAPoller runs the SSA feeds until ctx ends.
func (n *Node) runSSAPoller(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	if n.ssaPoller != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.ssaPoller.Run(ctx); err != nil {
				n.Logger.Error("SSA status poller stopped", "error", err)
			}
		}()
	}
	return wg.Wait
}
