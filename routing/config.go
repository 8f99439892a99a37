package routing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/octgw/oct/referentials"
)

// Config is the routing configuration (YAML, see docs/routing.md).
type Config struct {
	// Default is what happens when no rule decides: "referential" (the
	// default: AMO lots to the AMO directory, AMC lots to the AMC
	// referential) or "none" (unroutable).
	Default      string                 `yaml:"default"`
	Destinations map[string]Destination `yaml:"destinations"`
	Rules        []Rule                 `yaml:"rules"`
}

// Rule is one node of the rule tree.
type Rule struct {
	Name  string `yaml:"name"`
	Match Match  `yaml:"match"`
	// To lists targets: "amo" (AMO directory entry of the lot's grand régime
	// and caisse), "amc" (AMC referential entry of the lot's AMC number) or
	// the name of a static destination.
	To []string `yaml:"to"`
	// Reject makes matching lots unroutable with this reason.
	Reject string `yaml:"reject"`
	// Rules are evaluated when this rule matches; the first that decides
	// wins, else this rule's To/Reject apply, else evaluation goes on with
	// this rule's next sibling.
	Rules []Rule `yaml:"rules"`

	line int
}

// Match lists accepted values per field; an empty list accepts anything.
// A value ending in '*' matches by prefix ("9*"). Test, when set, must equal
// the lot's test flag.
type Match struct {
	Tenant       []string `yaml:"tenant"`
	Emitter      []string `yaml:"emitter"`
	Kind         []string `yaml:"kind"`
	Norm         []string `yaml:"norm"`
	Variant      []string `yaml:"variant"`
	GrandRegime  []string `yaml:"grand_regime"`
	Caisse       []string `yaml:"caisse"`
	AMC          []string `yaml:"amc"`
	Regroupement []string `yaml:"regroupement"` // from the AMC referential
	Operator     []string `yaml:"operator"`     // from the AMC referential
	Profession   []string `yaml:"profession"`
	Specialty    []string `yaml:"specialty"`
	Test         *bool    `yaml:"test"`
}

// ConfigIssue is one problem of a configuration, with its YAML line.
type ConfigIssue struct {
	Line    int    `json:"line"`
	Path    string `json:"path"`
	Message string `json:"message"`
}

// ConfigError lists every problem found when loading a configuration.
type ConfigError struct {
	Issues []ConfigIssue
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(string(ErrConfig) + ": routing configuration invalid")
	for _, i := range e.Issues {
		fmt.Fprintf(&b, "; line %d: %s: %s", i.Line, i.Path, i.Message)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrConfig }

var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

// ParseConfig reads a routing configuration strictly: unknown keys,
// duplicate keys and type errors are reported with their line; the
// content is then validated (see Validate).
func ParseConfig(r io.Reader) (*Config, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		ce := &ConfigError{}
		if errors.As(err, &te) {
			for _, m := range te.Errors {
				ce.Issues = append(ce.Issues, yamlIssue(m))
			}
		} else {
			ce.Issues = append(ce.Issues, yamlIssue(err.Error()))
		}
		return nil, ce
	}
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err == nil && len(root.Content) == 1 {
		attachLines(&cfg, root.Content[0])
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func yamlIssue(msg string) ConfigIssue {
	msg = strings.TrimPrefix(msg, "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return ConfigIssue{Line: n, Message: m[2]}
	}
	return ConfigIssue{Message: msg}
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func attachLines(cfg *Config, root *yaml.Node) {
	attachRuleLines(cfg.Rules, mapValue(root, "rules"))
	if d := mapValue(root, "destinations"); d != nil && d.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(d.Content); i += 2 {
			name := d.Content[i].Value
			if dst, ok := cfg.Destinations[name]; ok {
				dst.line = d.Content[i].Line
				cfg.Destinations[name] = dst
			}
		}
	}
}

func attachRuleLines(rules []Rule, seq *yaml.Node) {
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return
	}
	for i := range rules {
		if i < len(seq.Content) {
			rules[i].line = seq.Content[i].Line
			attachRuleLines(rules[i].Rules, mapValue(seq.Content[i], "rules"))
		}
	}
}

var validKinds = []string{string(KindB2), string(KindDRE), string(KindSCOR), string(KindPEC), string(KindCertificate)}

// Validate checks the configuration and reports every issue with its line.
func (c *Config) Validate() error {
	ce := &ConfigError{}
	add := func(line int, path, format string, args ...any) {
		ce.Issues = append(ce.Issues, ConfigIssue{Line: line, Path: path, Message: fmt.Sprintf(format, args...)})
	}
	switch c.Default {
	case "", "referential", "none":
	default:
		add(0, "default", "must be referential or none, got %q", c.Default)
	}
	for name, d := range c.Destinations {
		p := "destinations." + name
		if name == "amo" || name == "amc" || name == "ssa" {
			add(d.line, p, "amo, amc and ssa are reserved target names")
		}
		switch d.Kind {
		case AMO, AMC, SSA:
		default:
			add(d.line, p+".kind", "must be AMO, AMC or SSA, got %q", d.Kind)
		}
		switch d.Transport {
		case referentials.SMTP, referentials.SFTP, referentials.HTTPS:
		default:
			add(d.line, p+".transport", "must be smtp, sftp or https, got %q", d.Transport)
		}
		if d.Address == "" {
			add(d.line, p+".address", "required")
		}
		switch d.Cipher {
		case referentials.AES128, referentials.TripleDES, referentials.CipherNone:
		case "":
			if d.Transport == referentials.SMTP {
				add(d.line, p+".cipher", "required for smtp (aes128 or 3des)")
			}
		default:
			add(d.line, p+".cipher", "must be aes128, 3des or none, got %q", d.Cipher)
		}
	}
	names := map[string]int{}
	var walk func(rules []Rule, path string)
	walk = func(rules []Rule, path string) {
		for i, r := range rules {
			p := fmt.Sprintf("%s[%d]", path, i)
			if r.Name == "" {
				add(r.line, p+".name", "required")
			} else if l, dup := names[r.Name]; dup {
				add(r.line, p+".name", "rule %q already defined at line %d", r.Name, l)
			} else {
				names[r.Name] = r.line
			}
			if len(r.To) == 0 && r.Reject == "" && len(r.Rules) == 0 {
				add(r.line, p, "a rule needs to, reject or rules")
			}
			if len(r.To) > 0 && r.Reject != "" {
				add(r.line, p, "to and reject are exclusive")
			}
			for _, t := range r.To {
				if _, ok := c.Destinations[t]; !ok && t != "amo" && t != "amc" && t != "ssa" {
					add(r.line, p+".to", "unknown destination %q (amo, amc or a name under destinations)", t)
				}
			}
			m := r.Match
			checkValues(add, r.line, p+".match.kind", m.Kind, func(v string) bool { return slices.Contains(validKinds, v) }, "one of "+strings.Join(validKinds, ", "))
			checkValues(add, r.line, p+".match.grand_regime", m.GrandRegime, digitsOrPrefix(2), "2 digits")
			checkValues(add, r.line, p+".match.caisse", m.Caisse, digitsOrPrefix(3), "3 digits")
			checkValues(add, r.line, p+".match.amc", m.AMC, digitsOrPrefix(8), "8 digits")
			walk(r.Rules, p+".rules")
		}
	}
	walk(c.Rules, "rules")
	if len(ce.Issues) > 0 {
		slices.SortStableFunc(ce.Issues, func(a, b ConfigIssue) int { return a.Line - b.Line })
		return ce
	}
	return nil
}

func checkValues(add func(int, string, string, ...any), line int, path string, vals []string, ok func(string) bool, want string) {
	for _, v := range vals {
		if !ok(v) {
			add(line, path, "%q: %s expected", v, want)
		}
	}
}

func digitsOrPrefix(n int) func(string) bool {
	return func(v string) bool {
		if p, ok := strings.CutSuffix(v, "*"); ok {
			return len(p) < n && (p == "" || isDigits(p))
		}
		return len(v) == n && isDigits(v)
	}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
