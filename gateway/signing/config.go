package signing

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// Kind is the kind of a member.
type Kind string

const (
	KindPKCS11   Kind = "pkcs11"
	KindPCSC     Kind = "pcsc"
	KindSoftware Kind = "software"
)

// Strategy is how the pool picks among the eligible members of a profile.
type Strategy string

const (
	// StrategyLeastBusy picks the member with the fewest signatures in flight
	// per unit of weight; ties go to the one that served least per weight.
	StrategyLeastBusy Strategy = "least_busy"
	// StrategyWeighted picks at random, in proportion to weight, among the
	// members with a free slot.
	StrategyWeighted Strategy = "weighted"
)

// Defaults applied by Config.withDefaults.
const (
	DefaultHealthInterval   = 30 * time.Second
	DefaultHealthTimeout    = 5 * time.Second
	DefaultBreakerThreshold = 3
	DefaultBreakerCooldown  = 30 * time.Second
	DefaultSignTimeout      = 30 * time.Second
	DefaultPKCS11MaxConc    = 4
	DefaultCardAID          = "F00000004757" // the OCT card applet
)

// Config is the signing section of the gateway configuration. The gateway
// fills it from YAML; every duration is a Go duration string ("30s").
type Config struct {
	// Production refuses software members (ErrSoftwareInProduction).
	Production bool `yaml:"production"`
	// Strategy: least_busy (default) or weighted.
	Strategy Strategy `yaml:"strategy"`
	// HealthInterval between health checks of every member (default 30s).
	HealthInterval time.Duration `yaml:"health_interval"`
	// HealthTimeout bounds one member's health check (default 5s).
	HealthTimeout time.Duration `yaml:"health_timeout"`
	// BreakerThreshold consecutive failures open a member's breaker (default 3).
	BreakerThreshold int `yaml:"breaker_threshold"`
	// BreakerCooldown is how long a breaker stays open before one probe
	// request is let through (default 30s).
	BreakerCooldown time.Duration `yaml:"breaker_cooldown"`
	// SignTimeout bounds Signer.Sign calls made without a context (default 30s).
	SignTimeout time.Duration `yaml:"sign_timeout"`
	// Members of the pool.
	Members []MemberConfig `yaml:"members"`
}

// MemberConfig describes one key. PINs are never in the configuration:
// pin_file names a file holding the PIN, pin_env an environment variable.
type MemberConfig struct {
	ID      string `yaml:"id"`      // unique, [A-Za-z0-9._-], used in metrics and events
	Kind    Kind   `yaml:"kind"`    // pkcs11 | pcsc | software
	Profile string `yaml:"profile"` // the signing identity callers ask for
	// Weight for the dispatch strategy (default 1).
	Weight int `yaml:"weight"`
	// MaxConcurrency is the number of signatures in flight on this member
	// (default: pkcs11 4, pcsc 1, software GOMAXPROCS).
	MaxConcurrency int `yaml:"max_concurrency"`

	// PIN source for pkcs11 and pcsc: exactly one of the two.
	PINFile string `yaml:"pin_file"`
	PINEnv  string `yaml:"pin_env"`

	// CertFile (PEM) overrides the certificate found on the token or card;
	// required for software members.
	CertFile string `yaml:"cert_file"`

	// pkcs11: module path, token label (never a slot number), key label.
	// The certificate is looked up on the token under the key label unless
	// cert_file is given.
	Module     string `yaml:"module"`
	TokenLabel string `yaml:"token_label"`
	KeyLabel   string `yaml:"key_label"`

	// pcsc: reader name (exact), key reference on the card (1..255), and the
	// applet AID in hex (default F00000004757).
	Reader string `yaml:"reader"`
	KeyRef int    `yaml:"key_ref"`
	AID    string `yaml:"aid"`

	// software: PEM private key (PKCS#8, PKCS#1 or SEC 1). Refused in production.
	KeyFile string `yaml:"key_file"`
}

func (c Config) withDefaults() Config {
	if c.Strategy == "" {
		c.Strategy = StrategyLeastBusy
	}
	if c.HealthInterval <= 0 {
		c.HealthInterval = DefaultHealthInterval
	}
	if c.HealthTimeout <= 0 {
		c.HealthTimeout = DefaultHealthTimeout
	}
	if c.BreakerThreshold <= 0 {
		c.BreakerThreshold = DefaultBreakerThreshold
	}
	if c.BreakerCooldown <= 0 {
		c.BreakerCooldown = DefaultBreakerCooldown
	}
	if c.SignTimeout <= 0 {
		c.SignTimeout = DefaultSignTimeout
	}
	return c
}

func (m MemberConfig) withDefaults() MemberConfig {
	if m.Weight == 0 {
		m.Weight = 1
	}
	if m.MaxConcurrency == 0 {
		switch m.Kind {
		case KindPKCS11:
			m.MaxConcurrency = DefaultPKCS11MaxConc
		case KindPCSC:
			m.MaxConcurrency = 1
		default:
			m.MaxConcurrency = runtime.GOMAXPROCS(0)
		}
	}
	if m.Kind == KindPCSC && m.AID == "" {
		m.AID = DefaultCardAID
	}
	return m
}

// Validate checks the configuration without opening anything.
func (c Config) Validate() error {
	switch c.Strategy {
	case "", StrategyLeastBusy, StrategyWeighted:
	default:
		return newErr(CodeConfig, "", "validate", fmt.Errorf("unknown strategy %q", c.Strategy))
	}
	return validateMembers(c.Members, c.Production)
}

func validateMembers(ms []MemberConfig, production bool) error {
	seen := make(map[string]bool, len(ms))
	for i, m := range ms {
		if err := m.validate(production); err != nil {
			return err
		}
		if seen[m.ID] {
			return newErr(CodeConfig, m.ID, "validate", fmt.Errorf("members[%d]: duplicate id", i))
		}
		seen[m.ID] = true
	}
	return nil
}

func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

func (m MemberConfig) validate(production bool) error {
	bad := func(format string, a ...any) error {
		return newErr(CodeConfig, m.ID, "validate", fmt.Errorf(format, a...))
	}
	if !validID(m.ID) {
		return bad("id %q: want 1-64 characters of [A-Za-z0-9._-]", m.ID)
	}
	if !validID(m.Profile) {
		return bad("profile %q: want 1-64 characters of [A-Za-z0-9._-]", m.Profile)
	}
	if m.Weight < 0 {
		return bad("weight %d < 0", m.Weight)
	}
	if m.MaxConcurrency < 0 {
		return bad("max_concurrency %d < 0", m.MaxConcurrency)
	}
	// Fields that belong to another kind are errors: they are likely typos.
	type field struct {
		name string
		set  bool
		kind Kind
	}
	fields := []field{
		{"module", m.Module != "", KindPKCS11},
		{"token_label", m.TokenLabel != "", KindPKCS11},
		{"key_label", m.KeyLabel != "", KindPKCS11},
		{"reader", m.Reader != "", KindPCSC},
		{"key_ref", m.KeyRef != 0, KindPCSC},
		{"aid", m.AID != "", KindPCSC},
		{"key_file", m.KeyFile != "", KindSoftware},
	}
	for _, f := range fields {
		if f.set && f.kind != m.Kind {
			return bad("%s is not a %s setting", f.name, m.Kind)
		}
	}
	needPIN := func() error {
		if (m.PINFile == "") == (m.PINEnv == "") {
			return bad("exactly one of pin_file and pin_env is required")
		}
		return nil
	}
	switch m.Kind {
	case KindPKCS11:
		if m.Module == "" || m.TokenLabel == "" || m.KeyLabel == "" {
			return bad("pkcs11 needs module, token_label and key_label")
		}
		return needPIN()
	case KindPCSC:
		if m.Reader == "" {
			return bad("pcsc needs reader")
		}
		if m.KeyRef < 1 || m.KeyRef > 255 {
			return bad("key_ref %d: want 1..255", m.KeyRef)
		}
		if m.AID != "" {
			if b, err := hex.DecodeString(m.AID); err != nil || len(b) < 5 || len(b) > 16 {
				return bad("aid %q: want 5 to 16 bytes in hex", m.AID)
			}
		}
		return needPIN()
	case KindSoftware:
		if production {
			return newErr(CodeSoftwareInProduction, m.ID, "validate", nil)
		}
		if m.PINFile != "" || m.PINEnv != "" {
			return bad("software members have no PIN")
		}
		if m.KeyFile == "" || m.CertFile == "" {
			return bad("software needs key_file and cert_file")
		}
		return nil
	default:
		return bad("kind %q: want pkcs11, pcsc or software", m.Kind)
	}
}

// pin is a PIN in memory. It formats as [redacted] so that it cannot reach
// a log line by accident.
type pin []byte

func (pin) String() string   { return "[redacted]" }
func (pin) GoString() string { return "[redacted]" }

// readPIN loads the member's PIN from pin_file or pin_env. Trailing CR/LF
// are stripped from a file. Errors name the source, never the content.
func readPIN(m MemberConfig, getenv func(string) string) (pin, error) {
	var raw []byte
	switch {
	case m.PINFile != "":
		b, err := os.ReadFile(m.PINFile)
		if err != nil {
			return nil, newErr(CodePIN, m.ID, "read pin_file", err)
		}
		raw = bytes.TrimRight(b, "\r\n")
	case m.PINEnv != "":
		v := getenv(m.PINEnv)
		if v == "" {
			return nil, newErr(CodePIN, m.ID, "read pin_env", fmt.Errorf("environment variable %s is empty or unset", m.PINEnv))
		}
		raw = []byte(strings.TrimRight(v, "\r\n"))
	default:
		return nil, newErr(CodePIN, m.ID, "read pin", fmt.Errorf("no pin_file or pin_env"))
	}
	if len(raw) == 0 {
		return nil, newErr(CodePIN, m.ID, "read pin", fmt.Errorf("empty PIN"))
	}
	return pin(raw), nil
}
