package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/config"
	"github.com/octgw/oct/gateway/intake/api"
	"github.com/octgw/oct/gateway/intake/mailbox"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/referentials"
	"github.com/octgw/oct/routing"
)

// openRouting opens the referential repository (importing the demo set when
// asked and empty) and builds the rule tree.
func openRouting(ctx context.Context, cfg config.Config, now func() time.Time, pub referentials.Publisher, seed *referentials.Feed) (*referentials.Repo, *routing.Router, error) {
	ds, err := referentials.NewDirStore(cfg.Path(cfg.Refs.Dir, "referentials"))
	if err != nil {
		return nil, nil, err
	}
	repo, err := referentials.Open(ctx, referentials.Config{Store: ds, Now: now, Domain: cfg.Refs.AMODomain, Publisher: pub})
	if err != nil {
		return nil, nil, err
	}
	if cfg.Refs.SeedDemo && repo.Current().Version.ID == 0 {
		feed := referentials.DemoFeed()
		if seed != nil {
			feed = *seed
		}
		if _, err := repo.Import(ctx, feed, referentials.ImportOptions{}); err != nil {
			return nil, nil, fmt.Errorf("demo referential: %w", err)
		}
	}
	var rules *routing.Config
	if cfg.Routing.RulesFile != "" {
		f, err := os.Open(cfg.Routing.RulesFile)
		if err != nil {
			return nil, nil, err
		}
		rules, err = routing.ParseConfig(f)
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", cfg.Routing.RulesFile, err)
		}
	}
	r, err := routing.New(rules, repo)
	if err != nil {
		return nil, nil, err
	}
	return repo, r, nil
}

// routerAdapter lets the gateway ask routing.Router.
type routerAdapter struct {
	r   *routing.Router
	now func() time.Time
}

// amcReceiverTypes are 000 destinataire types of AMC organisms: a file
// addressed to one carries DRE lots (formats.md §1.4).
var amcReceiverTypes = map[string]bool{"OC": true, "CS": true, "SM": true}

// routingInput is what routing sees of a lot: one translation for routing,
// sending and explaining, so the three always decide alike.
func routingInput(in gateway.RouteInput) routing.Input {
	kind := routing.KindB2
	profession := ""
	switch {
	case in.Flow == store.FlowCertificate:
		kind = routing.KindCertificate
	case in.Flow == store.FlowPEC:
		// OCT-PEC requests are optical in v1 (OptoAMC): they take the
		// operator's optics convention (docs/routing.md).
		kind, profession = routing.KindPEC, "optics"
	case in.Flow == store.FlowSCOR:
		kind = routing.KindSCOR
	case amcReceiverTypes[in.ReceiverType]:
		kind = routing.KindDRE
	}
	return routing.Input{Tenant: in.Tenant, Emitter: in.Emitter, Kind: kind, Norm: in.Norm, Variant: in.Variant,
		GrandRegime: in.GrandRegime, Caisse: in.Caisse, AMC: in.AMC, Test: in.Test, AMCPart: in.AMCPart && in.Flow != store.FlowSCOR,
		Insurer: in.Insurer, Specialty: in.Specialty, Profession: profession}
}

func (a routerAdapter) Route(ctx context.Context, in gateway.RouteInput) (gateway.Route, error) {
	d, err := a.r.Route(routingInput(in), a.now())
	if errors.Is(err, routing.ErrUnroutable) {
		return gateway.Route{}, fmt.Errorf("%w: %v", gateway.ErrUnroutable, err)
	}
	if err != nil {
		return gateway.Route{}, err
	}
	var ids, split []string
	for _, dst := range d.Destinations {
		if dst.Split {
			split = append(split, dst.ID)
		} else {
			ids = append(ids, dst.ID)
		}
	}
	return gateway.Route{
		Destination: strings.Join(ids, ","),
		Version:     fmt.Sprintf("%d", d.Version),
		Reason:      d.Reason.String(),
		Split:       split,
	}, nil
}

// tenantPublisher drops the AMC part of every new referential version, as
// a JSON-lines diff, into each tenant's SFTP referentials/ folder, so
// practice software stays current.
type tenantPublisher struct {
	st      store.Store
	folders *mailbox.Folders
	log     *slog.Logger
}

func (p tenantPublisher) Publish(ctx context.Context, d referentials.Diff) error {
	d = d.Only(referentials.TableAMC, referentials.TableConventions)
	if len(d.Changes) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := referentials.WriteDiffJSONL(&buf, d); err != nil {
		return err
	}
	ts, err := p.st.Tenants(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range ts {
		if t.Disabled {
			continue
		}
		if err := p.folders.Deliver(ctx, t.ID, mailbox.Referentials, referentials.DiffFileName(d), buf.Bytes()); err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", t.ID, err))
		}
	}
	if len(errs) > 0 {
		p.log.Warn("referential diff not delivered to every tenant", "failed", len(errs))
	}
	return errors.Join(errs...)
}

// changesOf avoids a typed nil in the API's interface.
func changesOf(r *referentials.Repo) api.Changes {
	if r == nil {
		return nil
	}
	return r
}

// Explanation is one lot's routing decision, as `oct route --explain`
// prints it.
type Explanation struct {
	Lot      int                      `json:"lot"` // index in the file, from 0
	Input    gateway.RouteInput       `json:"input"`
	Decision *routing.Decision        `json:"decision,omitempty"`
	Error    string                   `json:"error,omitempty"`
	Why      *routing.UnroutableError `json:"unroutable,omitempty"`
}

// Explain routes every lot of a B2 file at instant at with this node's
// rules and referential version, without storing anything.
func (n *Node) Explain(tenant string, data []byte, at time.Time) ([]Explanation, error) {
	if n.Router == nil {
		return nil, errors.New("this node has no routing (a custom router was given)")
	}
	ins, err := gateway.RouteInputs(tenant, data)
	if err != nil {
		return nil, err
	}
	out := make([]Explanation, len(ins))
	for i, in := range ins {
		out[i] = Explanation{Lot: i, Input: in}
		d, err := n.Router.Route(routingInput(in), at)
		var ue *routing.UnroutableError
		switch {
		case errors.As(err, &ue):
			out[i].Why, out[i].Error = ue, err.Error()
		case err != nil:
			out[i].Error = err.Error()
		default:
			out[i].Decision = &d
		}
	}
	return out, nil
}

// syncer builds the referential sync from the configuration (nil when no
// source is configured).
func (n *Node) syncer() *referentials.Syncer {
	sc := n.Config.Refs.Sync
	if n.Referentials == nil || (sc.URL == "" && sc.DropDir == "") {
		return nil
	}
	var f referentials.Fetcher
	if sc.URL != "" {
		f = &referentials.HTTPFetcher{Client: &http.Client{Timeout: time.Minute}, URL: sc.URL}
	} else {
		f = &referentials.DirFetcher{Dir: sc.DropDir, Now: time.Now}
	}
	return &referentials.Syncer{Repo: n.Referentials, Fetcher: f, Logger: n.Logger}
}

// runSync checks the referential source every interval until ctx ends; a
// refused or failing feed opens an anomaly (one per day and cause).
func (n *Node) runSync(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	s := n.syncer()
	if s == nil {
		return wg.Wait
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		report := func(res referentials.Result, err error) {
			if err == nil {
				if !res.Unchanged {
					n.Logger.Info("referential synchronised", "version", res.Version.ID, "changes", len(res.Diff.Changes))
				}
				return
			}
			n.Logger.Warn("referential sync", "error", err)
			now := time.Now().UTC()
			kind := "referential-gap"
			_ = n.Store.Commit(ctx, &store.Change{Actor: "referential-sync", Anomalies: []store.Anomaly{{
				ID: fmt.Sprintf("refsync-%s-%x", now.Format("20060102"), fnv32(err.Error())), Kind: kind, Subject: "referential:amc",
				State: lifecycle.AnomalyOpen, Reason: err.Error(), SLA: now.Add(24 * time.Hour), Created: now,
			}}})
		}
		report(s.SyncOnce(ctx)) // once at start, then every interval
		t := time.NewTicker(n.Config.Refs.Sync.Interval)
		defer t.Stop()
		_ = s.Run(ctx, t.C, report)
	}()
	return wg.Wait
}

func fnv32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}
