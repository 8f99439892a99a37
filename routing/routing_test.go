package routing

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/octgw/oct/referentials"
)

var t0 = time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)

func demoRepo(t testing.TB) *referentials.Repo {
	t.Helper()
	st, err := referentials.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := referentials.Open(context.Background(), referentials.Config{Store: st, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Import(context.Background(), referentials.DemoFeed(), referentials.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	return r
}

func loadRules(t testing.TB) *Config {
	t.Helper()
	f, err := os.Open("testdata/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := ParseConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func unroutable(t *testing.T, err error, why string) *UnroutableError {
	t.Helper()
	var ue *UnroutableError
	if !errors.Is(err, ErrUnroutable) || !errors.As(err, &ue) || ue.Why != why {
		t.Fatalf("err = %v, want unroutable %s", err, why)
	}
	return ue
}

func TestDefaultRoutes(t *testing.T) {
	repo := demoRepo(t)
	r, err := New(nil, repo)
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.Route(Input{Kind: KindB2, GrandRegime: "01", Caisse: "422"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Destinations) != 1 || d.Destinations[0].Address != "01422@422.01.rss.fr" || d.Destinations[0].Kind != AMO ||
		d.Destinations[0].Cipher != referentials.AES128 || d.Version != 1 || d.VersionSHA == "" {
		t.Fatalf("decision = %+v", d)
	}
	if !d.Reason.Default || d.Reason.String() != "default route via amo:01422" {
		t.Fatalf("reason = %q", d.Reason)
	}
	// Caisse 421 is served by organisme 422.
	d, _ = r.Route(Input{Kind: KindB2, GrandRegime: "01", Caisse: "421"}, t0)
	if d.Destinations[0].ID != "amo:01422" {
		t.Fatalf("421 → %+v", d.Destinations)
	}
	// DRE for a pharmacy: AMC referential, SMTP convention.
	d, err = r.Route(Input{Kind: KindDRE, AMC: "0000420000", Profession: "pharmacy"}, t0)
	if err != nil || d.Destinations[0].ID != "amc:SANTEPHARM" || d.Destinations[0].Transport != referentials.SMTP ||
		strings.Join(d.Reason.Entries, ",") != "amc:00420000,convention:SANTEPHARM/*" {
		t.Fatalf("DRE → %+v %v", d, err)
	}
	// PEC for an optician: the optics convention over HTTPS.
	d, err = r.Route(Input{Kind: KindPEC, AMC: "00420000", Profession: "optics"}, t0)
	if err != nil || d.Destinations[0].Transport != referentials.HTTPS {
		t.Fatalf("PEC → %+v %v", d, err)
	}
	// PEC from a pharmacy: that convention does not take PEC.
	_, err = r.Route(Input{Kind: KindPEC, AMC: "00420000", Profession: "pharmacy"}, t0)
	unroutable(t, err, WhyNormRefused)
	// Scheduled change of DEMOPLAT's endpoint.
	sw := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	d1, _ := r.Route(Input{Kind: KindDRE, AMC: "22222222", Profession: "nurse"}, sw.Add(-time.Second))
	d2, _ := r.Route(Input{Kind: KindDRE, AMC: "22222222", Profession: "nurse"}, sw)
	if d1.Destinations[0].Transport != referentials.SFTP || d2.Destinations[0].Transport != referentials.HTTPS {
		t.Fatalf("schedule: %+v / %+v", d1.Destinations, d2.Destinations)
	}
	// Certificates go to the SSA named by the certificate, an operator whose
	// convention takes the CERT norm.
	d, err = r.Route(Input{Kind: KindCertificate, Insurer: "SSA01"}, t0)
	if err != nil || d.Destinations[0].ID != "ssa:SSA01" || d.Destinations[0].Kind != SSA || d.Destinations[0].Transport != referentials.HTTPS {
		t.Fatalf("certificate → %+v %v", d, err)
	}
	_, err = r.Route(Input{Kind: KindCertificate}, t0)
	unroutable(t, err, WhyMissingField)
	_, err = r.Route(Input{Kind: KindCertificate, Insurer: "SSA99"}, t0)
	unroutable(t, err, WhyNoConvention)
	// An AMC operator is not an SSA: its convention does not take CERT.
	_, err = r.Route(Input{Kind: KindCertificate, Insurer: "DEMOPLAT"}, t0)
	unroutable(t, err, WhyNormRefused)
}

func TestUnroutableAndTestIsolation(t *testing.T) {
	repo := demoRepo(t)
	r, _ := New(nil, repo)
	_, err := r.Route(Input{Kind: KindB2, GrandRegime: "01", Caisse: "999"}, t0)
	if ue := unroutable(t, err, WhyNoAMOEntry); ue.Version != 1 || !strings.Contains(ue.Error(), "caisse 999") {
		t.Fatalf("error = %v", ue)
	}
	_, err = r.Route(Input{Kind: KindDRE, AMC: "12345678"}, t0)
	unroutable(t, err, WhyNoAMCEntry)
	_, err = r.Route(Input{Kind: KindDRE}, t0)
	unroutable(t, err, WhyMissingField)
	// Test flows only to test endpoints, production never to test ones.
	if d, err := r.Route(Input{Kind: KindB2, GrandRegime: "01", Caisse: "996", Test: true}, t0); err != nil || !d.Destinations[0].Test {
		t.Fatalf("test lot to 996: %+v %v", d, err)
	}
	_, err = r.Route(Input{Kind: KindB2, GrandRegime: "01", Caisse: "422", Test: true}, t0)
	unroutable(t, err, WhyTestMismatch)
	_, err = r.Route(Input{Kind: KindB2, GrandRegime: "01", Caisse: "997"}, t0)
	unroutable(t, err, WhyTestMismatch)
	if _, err := r.Route(Input{Kind: KindDRE, AMC: "99999999", Test: true}, t0); err != nil {
		t.Fatalf("test DRE to test AMC: %v", err)
	}
}

func TestRules(t *testing.T) {
	repo := demoRepo(t)
	r, err := New(loadRules(t), repo)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Route(Input{Tenant: "t-suspended", Kind: KindB2, GrandRegime: "01", Caisse: "422"}, t0)
	if ue := unroutable(t, err, WhyRejected); ue.Rule != "suspended" || !strings.Contains(ue.Detail, "suspended") {
		t.Fatalf("reject: %+v", ue)
	}
	d, err := r.Route(Input{Kind: KindSCOR, GrandRegime: "01", Caisse: "422"}, t0)
	if err != nil || d.Destinations[0].ID != "ssa-scor" || d.Destinations[0].Kind != SSA || d.Reason.Rule != "scor" {
		t.Fatalf("scor: %+v %v", d, err)
	}
	// Nested rule: an enriched FSE from a clinic whose AMC is in regroupement SP
	// fans out to the AMO and the AMC. The demo SP convention takes DRE only.
	_, err = r.Route(Input{Kind: KindB2, Variant: "CP", GrandRegime: "01", Caisse: "422", AMC: "00420000"}, t0)
	if ue := unroutable(t, err, WhyNormRefused); ue.Rule != "hospitals/enriched" {
		t.Fatalf("enriched: %+v", ue)
	}
	// Regroupement DP (DEMOPLAT takes B2): the nested rule does not match
	// (wrong regroupement), the parent has no target, so the default applies.
	d, err = r.Route(Input{Kind: KindB2, Variant: "CP", GrandRegime: "01", Caisse: "422", AMC: "22222222"}, t0)
	if err != nil || !d.Reason.Default || len(d.Destinations) != 1 {
		t.Fatalf("fallthrough: %+v %v", d, err)
	}
	// Without the regroupement restriction the fan-out works.
	cfg := loadRules(t)
	cfg.Rules[2].Rules[0].Match.Regroupement = []string{"DP"}
	r2, err := New(cfg, repo)
	if err != nil {
		t.Fatal(err)
	}
	d, err = r2.Route(Input{Kind: KindB2, Variant: "ES", GrandRegime: "01", Caisse: "422", AMC: "22222222"}, t0)
	if err != nil || len(d.Destinations) != 2 || d.Destinations[0].Kind != AMO || d.Destinations[1].ID != "amc:DEMOPLAT" ||
		d.Reason.String() != "rule hospitals/enriched via amo:01422, amc:22222222, convention:DEMOPLAT/*" {
		t.Fatalf("fan-out: %+v %v", d, err)
	}
	d, err = r.Route(Input{Kind: KindB2, GrandRegime: "02", Caisse: "723"}, t0)
	if err != nil || d.Reason.Rule != "msa" || d.Destinations[0].Address != "02723@723.02.rss.fr" {
		t.Fatalf("msa: %+v %v", d, err)
	}
}

func TestVersionFollowsReferential(t *testing.T) {
	repo := demoRepo(t)
	r, _ := New(nil, repo)
	in := Input{Kind: KindB2, GrandRegime: "01", Caisse: "751"}
	d1, err := r.Route(in, t0)
	if err != nil {
		t.Fatal(err)
	}
	feed := referentials.Feed{Source: "upd", Files: []referentials.FeedFile{{Name: "amo.csv", Table: referentials.TableAMO, Format: referentials.FormatCSV,
		Data: []byte("grand_regime;caisse;organisme;mailbox\n01;751;751;cpam75@relay.rss.invalid\n01;996;996;\n")}}}
	if _, err := repo.Import(context.Background(), feed, referentials.ImportOptions{Confirm: true}); err != nil {
		t.Fatal(err)
	}
	d2, err := r.Route(in, t0)
	if err != nil {
		t.Fatal(err)
	}
	if d1.Version != 1 || d2.Version != 2 || d2.Destinations[0].Address != "cpam75@relay.rss.invalid" || d1.Destinations[0].Address == d2.Destinations[0].Address {
		t.Fatalf("v1 %+v\nv2 %+v", d1, d2)
	}
}

func TestConfigStrict(t *testing.T) {
	cases := []struct {
		name, yaml string
		line       int
		want       string
	}{
		{"unknown key", "rules:\n  - name: a\n    to: [amo]\n    colour: red\n", 4, "colour"},
		{"unknown match key", "rules:\n  - name: a\n    match:\n      regime: ['01']\n    to: [amo]\n", 4, "regime"},
		{"unknown destination", "rules:\n  - name: a\n    to: [amo]\n  - name: b\n    to: [nowhere]\n", 4, "nowhere"},
		{"bad grand regime", "rules:\n  - name: a\n    match: {grand_regime: ['1']}\n    to: [amo]\n", 2, "2 digits"},
		{"duplicate name", "rules:\n  - name: a\n    to: [amo]\n  - name: b\n    rules:\n      - name: a\n        to: [amc]\n", 6, "already defined at line 2"},
		{"empty rule", "rules:\n  - name: a\n    match: {kind: [b2]}\n", 2, "needs to, reject or rules"},
		{"bad kind", "rules:\n  - name: a\n    match: {kind: [fax]}\n    to: [amo]\n", 2, "fax"},
		{"destination", "destinations:\n  x:\n    kind: SSA\n    transport: ftp\n    address: a\n", 2, "transport"},
		{"type error", "rules:\n  - name: a\n    match: {test: maybe}\n    to: [amo]\n", 3, "maybe"},
		{"duplicate key", "default: none\ndefault: referential\n", 2, "already defined"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig(strings.NewReader(c.yaml))
			var ce *ConfigError
			if !errors.Is(err, ErrConfig) || !errors.As(err, &ce) {
				t.Fatalf("err = %v", err)
			}
			for _, i := range ce.Issues {
				if i.Line == c.line && strings.Contains(i.Path+" "+i.Message, c.want) {
					return
				}
			}
			t.Fatalf("no issue at line %d containing %q: %+v", c.line, c.want, ce.Issues)
		})
	}
	if _, err := ParseConfig(strings.NewReader("")); err != nil {
		t.Fatalf("empty config: %v", err)
	}
}

func TestDefaultNone(t *testing.T) {
	cfg, err := ParseConfig(strings.NewReader("default: none\nrules:\n  - name: only-msa\n    match: {grand_regime: ['02']}\n    to: [amo]\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := New(cfg, demoRepo(t))
	_, err = r.Route(Input{Kind: KindB2, GrandRegime: "01", Caisse: "422"}, t0)
	unroutable(t, err, WhyNoDefault)
	if _, err := r.Route(Input{Kind: KindB2, GrandRegime: "02", Caisse: "723"}, t0); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkRouteDefaultAMO(b *testing.B) {
	r, _ := New(nil, demoRepo(b))
	in := Input{Kind: KindB2, GrandRegime: "01", Caisse: "422"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Route(in, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRouteRulesAMC(b *testing.B) {
	r, _ := New(loadRules(b), demoRepo(b))
	in := Input{Tenant: "t1", Kind: KindDRE, Variant: "CP", GrandRegime: "01", Caisse: "422", AMC: "0000420000", Profession: "pharmacy"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Route(in, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRouteParallel(b *testing.B) {
	r, _ := New(loadRules(b), demoRepo(b))
	in := Input{Tenant: "t1", Kind: KindB2, GrandRegime: "02", Caisse: "723"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Route(in, t0); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestFSEEnrichieAddsTheAMCFlow: an FSE lot with AMC parts for an AMC in
// separate management goes to its caisse and, as a split destination, to
// the AMC's operator; without AMC parts, or for an unknown AMC, only to the
// caisse.
func TestFSEEnrichieAddsTheAMCFlow(t *testing.T) {
	r, err := New(nil, demoRepo(t))
	if err != nil {
		t.Fatal(err)
	}
	in := Input{Kind: KindB2, GrandRegime: "01", Caisse: "422", AMC: "00420000", AMCPart: true}
	d, err := r.Route(in, t0)
	if err != nil || len(d.Destinations) != 2 || d.Destinations[0].Kind != AMO || !d.Destinations[1].Split || d.Destinations[1].Kind != AMC {
		t.Fatalf("%v %+v", err, d)
	}
	in.AMCPart = false
	if d, _ := r.Route(in, t0); len(d.Destinations) != 1 {
		t.Fatalf("without AMC parts: %+v", d.Destinations)
	}
	in.AMCPart, in.AMC = true, "77777777"
	if d, _ := r.Route(in, t0); len(d.Destinations) != 1 {
		t.Fatalf("unknown AMC: %+v", d.Destinations)
	}
	if _, err := (NoSplit{}).SplitAMC(context.Background(), nil, Destination{}); !errors.Is(err, ErrSplitUnavailable) {
		t.Fatal(err)
	}
}
