package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/config"
	"github.com/octgw/oct/referentials"
	"github.com/octgw/oct/routing"
)

// openRouting opens the referential repository (importing the demo set when
// asked and empty) and builds the rule tree.
func openRouting(ctx context.Context, cfg config.Config, now func() time.Time) (*referentials.Repo, *routing.Router, error) {
	ds, err := referentials.NewDirStore(cfg.Path(cfg.Refs.Dir, "referentials"))
	if err != nil {
		return nil, nil, err
	}
	repo, err := referentials.Open(ctx, referentials.Config{Store: ds, Now: now, Domain: cfg.Refs.AMODomain})
	if err != nil {
		return nil, nil, err
	}
	if cfg.Refs.SeedDemo && repo.Current().Version.ID == 0 {
		if _, err := repo.Import(ctx, referentials.DemoFeed(), referentials.ImportOptions{}); err != nil {
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

func (a routerAdapter) Route(ctx context.Context, in gateway.RouteInput) (gateway.Route, error) {
	kind := routing.KindB2
	if amcReceiverTypes[in.ReceiverType] {
		kind = routing.KindDRE
	}
	d, err := a.r.Route(routing.Input{
		Tenant: in.Tenant, Emitter: in.Emitter, Kind: kind, Norm: in.Norm, Variant: in.Variant,
		GrandRegime: in.GrandRegime, Caisse: in.Caisse, AMC: in.AMC, Test: in.Test,
	}, a.now())
	if errors.Is(err, routing.ErrUnroutable) {
		return gateway.Route{}, fmt.Errorf("%w: %v", gateway.ErrUnroutable, err)
	}
	if err != nil {
		return gateway.Route{}, err
	}
	ids := make([]string, len(d.Destinations))
	for i, dst := range d.Destinations {
		ids[i] = dst.ID
	}
	return gateway.Route{
		Destination: strings.Join(ids, ","),
		Version:     fmt.Sprintf("%d", d.Version),
		Reason:      d.Reason.String(),
	}, nil
}
