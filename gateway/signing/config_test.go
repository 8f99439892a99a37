package signing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const sampleYAML = `
production: true
strategy: weighted
health_interval: 10s
health_timeout: 2s
breaker_threshold: 5
breaker_cooldown: 1m
sign_timeout: 15s
members:
  - id: hsm-1
    kind: pkcs11
    profile: amo
    weight: 2
    max_concurrency: 8
    module: /usr/lib/softhsm/libsofthsm2.so
    token_label: oct-prod
    key_label: sign-2026
    pin_file: /run/secrets/hsm-pin
  - id: card-1
    kind: pcsc
    profile: amc
    reader: Virtual PCD 00 00
    key_ref: 2
    pin_env: OCT_CARD1_PIN
`

func TestConfigYAML(t *testing.T) {
	var cfg Config
	dec := yaml.NewDecoder(strings.NewReader(sampleYAML))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if !cfg.Production || cfg.Strategy != StrategyWeighted || cfg.HealthInterval != 10*time.Second ||
		cfg.BreakerCooldown != time.Minute || cfg.BreakerThreshold != 5 || len(cfg.Members) != 2 {
		t.Fatalf("%+v", cfg)
	}
	h, c := cfg.Members[0], cfg.Members[1]
	if h.Kind != KindPKCS11 || h.TokenLabel != "oct-prod" || h.KeyLabel != "sign-2026" || h.PINFile != "/run/secrets/hsm-pin" || h.Weight != 2 || h.MaxConcurrency != 8 {
		t.Fatalf("%+v", h)
	}
	if c.Kind != KindPCSC || c.Reader != "Virtual PCD 00 00" || c.KeyRef != 2 || c.PINEnv != "OCT_CARD1_PIN" {
		t.Fatalf("%+v", c)
	}
	if d := c.withDefaults(); d.MaxConcurrency != 1 || d.AID != DefaultCardAID || d.Weight != 1 {
		t.Fatalf("defaults %+v", d)
	}

	// A PIN in the configuration is an unknown key.
	var bad Config
	dec = yaml.NewDecoder(strings.NewReader("members:\n  - id: x\n    pin: \"1234\"\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&bad); err == nil {
		t.Fatal("inline pin accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	hsm := MemberConfig{ID: "h", Kind: KindPKCS11, Profile: "amo", Module: "m.so", TokenLabel: "t", KeyLabel: "k", PINEnv: "E"}
	card := MemberConfig{ID: "c", Kind: KindPCSC, Profile: "amo", Reader: "r", KeyRef: 1, PINFile: "f"}
	soft := MemberConfig{ID: "s", Kind: KindSoftware, Profile: "amo", KeyFile: "k", CertFile: "c"}
	mod := func(m MemberConfig, f func(*MemberConfig)) MemberConfig { f(&m); return m }
	for i, tc := range []struct {
		m    MemberConfig
		prod bool
		code Code
	}{
		{hsm, true, ""},
		{card, true, ""},
		{soft, false, ""},
		{soft, true, CodeSoftwareInProduction},
		{mod(hsm, func(m *MemberConfig) { m.PINFile = "f" }), false, CodeConfig},   // two PIN sources
		{mod(hsm, func(m *MemberConfig) { m.PINEnv = "" }), false, CodeConfig},     // no PIN source
		{mod(hsm, func(m *MemberConfig) { m.TokenLabel = "" }), false, CodeConfig}, // no token label
		{mod(hsm, func(m *MemberConfig) { m.Reader = "r" }), false, CodeConfig},    // pcsc field on pkcs11
		{mod(card, func(m *MemberConfig) { m.KeyRef = 0 }), false, CodeConfig},
		{mod(card, func(m *MemberConfig) { m.AID = "zz" }), false, CodeConfig},
		{mod(soft, func(m *MemberConfig) { m.PINEnv = "E" }), false, CodeConfig},
		{mod(soft, func(m *MemberConfig) { m.ID = "bad id" }), false, CodeConfig},
		{mod(soft, func(m *MemberConfig) { m.Profile = "" }), false, CodeConfig},
		{mod(soft, func(m *MemberConfig) { m.Kind = "tpm" }), false, CodeConfig},
		{mod(soft, func(m *MemberConfig) { m.Weight = -1 }), false, CodeConfig},
	} {
		err := Config{Production: tc.prod, Members: []MemberConfig{tc.m}}.Validate()
		if CodeOf(err) != tc.code {
			t.Errorf("case %d: %v, want code %q", i, err, tc.code)
		}
	}
	if err := (Config{Strategy: "random"}).Validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("strategy: %v", err)
	}
	if err := (Config{Members: []MemberConfig{soft, soft}}).Validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("duplicate: %v", err)
	}
}

func TestReadPIN(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pin")
	if err := os.WriteFile(f, []byte("246810\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PIN_OK": "1357", "PIN_EMPTY": ""}
	getenv := func(k string) string { return env[k] }
	p, err := readPIN(MemberConfig{ID: "a", PINFile: f}, getenv)
	if err != nil || string(p) != "246810" {
		t.Fatalf("file: %q %v", p, err)
	}
	p, err = readPIN(MemberConfig{ID: "a", PINEnv: "PIN_OK"}, getenv)
	if err != nil || string(p) != "1357" {
		t.Fatalf("env: %q %v", p, err)
	}
	for _, mc := range []MemberConfig{{ID: "a", PINEnv: "PIN_EMPTY"}, {ID: "a", PINEnv: "PIN_NONE"}, {ID: "a", PINFile: filepath.Join(dir, "none")}} {
		if _, err := readPIN(mc, getenv); !errors.Is(err, ErrPIN) {
			t.Fatalf("%+v: %v", mc, err)
		}
	}
	// A PIN never prints.
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%v %s %+v %#v", p, p, p, p)} {
		if strings.Contains(s, "1357") {
			t.Fatalf("PIN printed: %s", s)
		}
	}
}

// TestPINNotInLogs runs a pool with a wrong PIN and a debug logger: the PIN
// appears in no log line and no event.
func TestPINNotInLogs(t *testing.T) {
	const secret = "918273"
	t.Setenv("OCT_TEST_SECRET_PIN", secret)
	var buf bytes.Buffer
	rec := &recorder{}
	mc := MemberConfig{ID: "a", Kind: KindPCSC, Profile: "amo", Reader: "r", KeyRef: 1, PINEnv: "OCT_TEST_SECRET_PIN"}
	ec := newEmuCard(t, 128)
	p, err := New(context.Background(), Config{Members: []MemberConfig{mc}}, Options{
		Logger: newTextLogger(&buf), Observer: rec,
		Open: func(ctx context.Context, mc MemberConfig) (Member, error) {
			pin, err := readPIN(mc, os.Getenv)
			if err != nil {
				return nil, err
			}
			return newCardMember(ctx, mc, pin, &memTransport{card: ec.card})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Close(context.Background())
	if len(rec.of(EventPINIncorrect)) != 1 {
		t.Fatalf("events %+v", rec.evs)
	}
	all := buf.String() + fmt.Sprintf("%+v", rec.evs)
	if strings.Contains(all, secret) {
		t.Fatalf("PIN leaked:\n%s", all)
	}
}
