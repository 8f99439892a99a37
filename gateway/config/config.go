// Package config loads OCT's one YAML configuration file. Loading is strict:
// an unknown or misspelled key is an error naming the key and its line (with
// a suggestion), so a typo never silently falls back to a default. Every key
// is documented in docs/configuration.md with its default; a test checks the
// document, deploy/oct.example.yaml and this struct agree.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/gateway/signing"
	"github.com/octgw/oct/routing"
)

// Config is the whole configuration. Zero values mean "default"; Defaults
// fills them.
type Config struct {
	DataDir string  `yaml:"data_dir"`
	NodeID  string  `yaml:"node_id"`
	HTTP    HTTP    `yaml:"http"`
	Limits  Limits  `yaml:"limits"`
	Store   Store   `yaml:"store"`
	Workers Workers `yaml:"workers"`
	Privacy Privacy `yaml:"privacy"`
	Log     Log     `yaml:"log"`
	Routing Routing `yaml:"routing"`
	Refs    Refs    `yaml:"referentials"`
	SFTP    SFTP    `yaml:"sftp"`
	SMTP    SMTP    `yaml:"smtp"`
	Returns Returns `yaml:"returns"`
	// Delivery to insurer endpoints (docs/delivery.md).
	Delivery Delivery `yaml:"delivery"`
	// Certificates: the directory of caisse and AMC encryption certificates.
	Certificates Certificates `yaml:"certificates"`
	// Anomalies: the chase of missing returns and automatic assignment.
	Anomalies Anomalies `yaml:"anomalies"`
	// Console: who may log in to the support console.
	Console Console `yaml:"console"`
	// Signing is the signing pool (docs/signing.md); without members, lots
	// rest at routed.
	Signing signing.Config `yaml:"signing"`
	// Flows: medical certificates, PEC requests and SCOR attachments beside
	// the B2 lots (docs/flows.md).
	Flows Flows `yaml:"flows"`
}

// Flows configures the certificate, PEC and SCOR flows.
type Flows struct {
	// Selectivity flags certificates for medical control (zero: off).
	Selectivity routing.SelectivityRules `yaml:"selectivity"`
	// SCORPDFADestinations require PDF/A attachments (destination ids,
	// e.g. amo:01751).
	SCORPDFADestinations []string `yaml:"scor_pdfa_destinations"`
	// SSAPollEvery is how often the SSA status feeds are read.
	SSAPollEvery time.Duration `yaml:"ssa_poll_every"`
}

// Delivery configures the outbound transports; a transport without its
// settings is not used (lots routed to it stay signed and retry).
type Delivery struct {
	ARLDeadline   time.Duration `yaml:"arl_deadline"`
	MaxConcurrent int           `yaml:"max_concurrent"` // sends in flight per destination
	SMTP          DeliverSMTP   `yaml:"smtp"`
	SFTP          DeliverSFTP   `yaml:"sftp"`
	HTTPS         DeliverHTTPS  `yaml:"https"`
}

// DeliverSMTP is the relay IRIS/B2 messages are submitted to.
type DeliverSMTP struct {
	Relay          string `yaml:"relay"` // host:port; "" disables
	From           string `yaml:"from"`
	Username       string `yaml:"username"`
	PasswordFile   string `yaml:"password_file"`
	RootCAFile     string `yaml:"root_ca_file"` // "" = system roots
	SubjectVersion string `yaml:"subject_version"`
}

// DeliverSFTP is the OCT's SSH identity towards AMC operators.
type DeliverSFTP struct {
	KeyFile        string `yaml:"key_file"` // "" disables
	KnownHostsFile string `yaml:"known_hosts_file"`
}

// DeliverHTTPS is the OCT's client certificate towards API endpoints.
type DeliverHTTPS struct {
	CertFile   string `yaml:"cert_file"` // "" disables
	KeyFile    string `yaml:"key_file"`
	RootCAFile string `yaml:"root_ca_file"`
}

// Certificates locates the LDAP directory of encryption certificates.
type Certificates struct {
	LDAPURL string        `yaml:"ldap_url"` // "" disables (no encrypted SMTP delivery)
	Dir     string        `yaml:"dir"`      // or: <mailbox>.pem files (oct sim writes them)
	BaseDN  string        `yaml:"base_dn"`
	TTL     time.Duration `yaml:"ttl"`
}

// Anomalies tunes the chaser (docs/anomalies.md).
type Anomalies struct {
	Every time.Duration         `yaml:"every"` // how often due expectations are chased
	Chase anomalies.ChaseConfig `yaml:"chase"`
	Rules []anomalies.Rule      `yaml:"rules"` // automatic assignment (kind, destination, tenant -> team)
}

// Console configures the support console's logins.
type Console struct {
	AgentsFile string        `yaml:"agents_file"` // name:bcrypt-hash lines; default <data_dir>/agents if present
	SessionTTL time.Duration `yaml:"session_ttl"`
}

// Returns is the OCT's return mailbox (ARL, RSP), polled over IMAP.
type Returns struct {
	IMAP IMAP `yaml:"imap"`
	// Webhooks relay each tenant's returns to its endpoint, HMAC-signed,
	// besides its SFTP returns/ folder and API feed.
	Webhooks map[string]Webhook `yaml:"webhooks"`
}

// Webhook is one tenant's return endpoint.
type Webhook struct {
	URL         string `yaml:"url"`
	SecretFile  string `yaml:"secret_file"` // HMAC key, at least 16 bytes (never inline)
	MaxAttempts int    `yaml:"max_attempts"`
}

// IMAP locates the mailbox.
type IMAP struct {
	Addr         string        `yaml:"addr"` // "" disables polling
	TLS          string        `yaml:"tls"`  // implicit, starttls, none
	Username     string        `yaml:"username"`
	PasswordFile string        `yaml:"password_file"`
	Mailbox      string        `yaml:"mailbox"`
	Processed    string        `yaml:"processed"`
	Unparsable   string        `yaml:"unparsable"`
	Interval     time.Duration `yaml:"interval"`
}

// SFTP is the vendors' SFTP intake.
type SFTP struct {
	Listen         string `yaml:"listen"` // "" disables
	FilesPerMinute int    `yaml:"files_per_minute"`
	MaxSessions    int    `yaml:"max_sessions"`
	MaxUploads     int    `yaml:"max_uploads"`
	DiskQuota      Size   `yaml:"disk_quota"`
	MaxFollowed    int    `yaml:"max_followed"`
	DirectWrites   bool   `yaml:"direct_writes"`
}

// SMTP is the IRIS/B2 mail intake (STARTTLS required before AUTH).
type SMTP struct {
	Listen        string `yaml:"listen"` // "" disables
	Domain        string `yaml:"domain"`
	CertFile      string `yaml:"cert_file"`
	KeyFile       string `yaml:"key_file"`
	SMIMECertFile string `yaml:"smime_cert_file"`
	SMIMEKeyFile  string `yaml:"smime_key_file"`
}

// Routing points to the rule tree.
type Routing struct {
	RulesFile string `yaml:"rules_file"` // YAML rules (docs/routing.md); "" = default routes only
}

// Refs locates the versioned referentials.
type Refs struct {
	Dir       string `yaml:"dir"`        // default <data_dir>/referentials
	SeedDemo  bool   `yaml:"seed_demo"`  // import the demo referential when none exists yet
	AMODomain string `yaml:"amo_domain"` // AMO mailbox domain
	Sync      Sync   `yaml:"sync"`
}

// Sync keeps the referential current from an upstream source.
type Sync struct {
	URL             string        `yaml:"url"`      // HTTP(S) feed (ETag / If-Modified-Since)
	DropDir         string        `yaml:"drop_dir"` // or: files dropped here (e.g. by SFTP)
	Interval        time.Duration `yaml:"interval"`
	MaxRemovalShare float64       `yaml:"max_removal_share"` // a feed removing more is refused until confirmed
}

// HTTP is the API and console listener.
type HTTP struct {
	Listen            string        `yaml:"listen"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	MaxHeaderBytes    Size          `yaml:"max_header_bytes"`
	LongPollMax       time.Duration `yaml:"long_poll_max"`
	ShutdownGrace     time.Duration `yaml:"shutdown_grace"`
}

// Limits apply to every intake channel, per tenant.
type Limits struct {
	MaxFileBytes      Size    `yaml:"max_file_bytes"`
	MaxRecords        int64   `yaml:"max_records"`
	MaxErrors         int     `yaml:"max_errors"`
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	Burst             int     `yaml:"burst"`
	MaxConcurrent     int     `yaml:"max_concurrent_intakes"`
}

// Store selects and tunes the journal.
type Store struct {
	Kind     string `yaml:"kind"` // sqlite, redis
	SQLite   SQLite `yaml:"sqlite"`
	Redis    Redis  `yaml:"redis"`
	BlobsDir string `yaml:"blobs_dir"` // raw files; several nodes share one directory
	// BlobPacks, when > 0, keeps blobs of at most this many bytes in
	// append-only pack files instead of one file each (gateway/store/blobdir
	// packs.go): far fewer file creations, an in-memory index.
	BlobPacks int64 `yaml:"blob_packs"`
}

// Redis is the shared store of several nodes (docs/store-redis.md).
type Redis struct {
	Addr               string `yaml:"addr"`
	Prefix             string `yaml:"prefix"`
	RequireFsyncAlways bool   `yaml:"require_fsync_always"`
}

// SQLite is the embedded store.
type SQLite struct {
	Path        string `yaml:"path"`
	GroupCommit *bool  `yaml:"group_commit"`
}

// Workers run the jobs of the pipeline.
type Workers struct {
	Concurrency int           `yaml:"concurrency"`
	LeaseTTL    time.Duration `yaml:"lease_ttl"`
	PollEvery   time.Duration `yaml:"poll_every"`
	MaxAttempts int           `yaml:"max_attempts"`
}

// Privacy holds the key used to hash NIRs before they are stored.
type Privacy struct {
	NIRKeyFile string `yaml:"nir_key_file"`
}

// Log tunes logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// Size is a byte count written as an integer or with a unit (KiB, MiB, GiB,
// KB, MB, GB).
type Size int64

// UnmarshalYAML reads 1048576, "1MiB" or "64 MiB".
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = v
	return nil
}

// ParseSize parses a byte count with an optional unit.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			mult, t = u.mult, strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			break
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want a byte count such as 1048576 or 64MiB", s)
	}
	return Size(v * mult), nil
}

// Defaults returns the configuration `oct serve` runs with when no file is
// given.
func Defaults() Config {
	var c Config
	// Listeners whose empty value means "off" get their default here only,
	// so that a file saying listen: "" really switches them off.
	c.SFTP.Listen = "127.0.0.1:2222"
	c.fill()
	return c
}

func (c *Config) fill() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	defd := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	defi := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.DataDir, "./oct-data")
	if c.NodeID == "" {
		h, _ := os.Hostname()
		c.NodeID = h
		def(&c.NodeID, "oct")
	}
	def(&c.HTTP.Listen, "127.0.0.1:8080")
	defd(&c.HTTP.ReadHeaderTimeout, 10*time.Second)
	defd(&c.HTTP.ReadTimeout, 2*time.Minute)
	defd(&c.HTTP.WriteTimeout, 2*time.Minute)
	defd(&c.HTTP.IdleTimeout, 2*time.Minute)
	if c.HTTP.MaxHeaderBytes == 0 {
		c.HTTP.MaxHeaderBytes = 64 << 10
	}
	defd(&c.HTTP.LongPollMax, 30*time.Second)
	defd(&c.HTTP.ShutdownGrace, 15*time.Second)
	if c.Limits.MaxFileBytes == 0 {
		c.Limits.MaxFileBytes = 64 << 20
	}
	if c.Limits.MaxRecords == 0 {
		c.Limits.MaxRecords = 1_000_000
	}
	defi(&c.Limits.MaxErrors, 1000)
	if c.Limits.RequestsPerSecond == 0 {
		c.Limits.RequestsPerSecond = 200
	}
	defi(&c.Limits.Burst, 400)
	defi(&c.Limits.MaxConcurrent, 256)
	def(&c.Store.Kind, "sqlite")
	def(&c.Store.Redis.Prefix, "oct")
	if c.Store.SQLite.GroupCommit == nil {
		t := true
		c.Store.SQLite.GroupCommit = &t
	}
	defi(&c.Workers.Concurrency, 4)
	defd(&c.Workers.LeaseTTL, 30*time.Second)
	defd(&c.Workers.PollEvery, 200*time.Millisecond)
	defi(&c.Workers.MaxAttempts, 10)
	def(&c.Refs.AMODomain, "rss.fr")
	defd(&c.Refs.Sync.Interval, time.Hour)
	if c.Refs.Sync.MaxRemovalShare == 0 {
		c.Refs.Sync.MaxRemovalShare = 0.2
	}
	defi(&c.SFTP.FilesPerMinute, 120)
	defi(&c.SFTP.MaxSessions, 4)
	defi(&c.SFTP.MaxUploads, 16)
	defi(&c.SFTP.MaxFollowed, 32)
	if c.SFTP.DiskQuota == 0 {
		c.SFTP.DiskQuota = 1 << 30
	}
	def(&c.SMTP.Domain, "localhost")
	defd(&c.Delivery.ARLDeadline, 48*time.Hour)
	defd(&c.Anomalies.Every, time.Minute)
	defd(&c.Flows.SSAPollEvery, 30*time.Second)
	defd(&c.Console.SessionTTL, 12*time.Hour)
	defi(&c.Delivery.MaxConcurrent, 4)
	defd(&c.Certificates.TTL, time.Hour)
	def(&c.Returns.IMAP.TLS, "implicit")
	def(&c.Returns.IMAP.Mailbox, "INBOX")
	def(&c.Returns.IMAP.Processed, "OCT/processed")
	def(&c.Returns.IMAP.Unparsable, "OCT/unparsable")
	defd(&c.Returns.IMAP.Interval, 30*time.Second)
	def(&c.Log.Level, "info")
	def(&c.Log.Format, "text")
}

// Path resolves a path relative to the data directory ("" gives def under
// the data directory).
func (c *Config) Path(p, def string) string {
	if p == "" {
		p = def
	}
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.DataDir, p)
}

// Validate checks values that parse but make no sense.
func (c *Config) Validate() error {
	var errs []error
	switch c.Store.Kind {
	case "sqlite":
	case "redis":
		if c.Store.Redis.Addr == "" {
			errs = append(errs, fmt.Errorf("store.kind is redis: store.redis.addr is required"))
		}
	default:
		errs = append(errs, fmt.Errorf("store.kind: %q is not one of: sqlite, redis", c.Store.Kind))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not one of: debug, info, warn, error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not one of: text, json", c.Log.Format))
	}
	if c.Limits.MaxFileBytes < 1024 {
		errs = append(errs, fmt.Errorf("limits.max_file_bytes: %d is below 1KiB", c.Limits.MaxFileBytes))
	}
	if c.Workers.Concurrency < 1 || c.Workers.Concurrency > 1024 {
		errs = append(errs, fmt.Errorf("workers.concurrency: %d is not within 1..1024", c.Workers.Concurrency))
	}
	if c.SMTP.Listen != "" && (c.SMTP.CertFile == "" || c.SMTP.KeyFile == "") {
		errs = append(errs, fmt.Errorf("smtp.listen is set: smtp.cert_file and smtp.key_file are required (STARTTLS is mandatory)"))
	}
	if c.Delivery.SMTP.Relay != "" && c.Delivery.SMTP.From == "" {
		errs = append(errs, fmt.Errorf("delivery.smtp.relay is set: delivery.smtp.from is required"))
	}
	if c.Delivery.SFTP.KeyFile != "" && c.Delivery.SFTP.KnownHostsFile == "" {
		errs = append(errs, fmt.Errorf("delivery.sftp.key_file is set: delivery.sftp.known_hosts_file is required (host keys are always checked)"))
	}
	if (c.Delivery.HTTPS.CertFile == "") != (c.Delivery.HTTPS.KeyFile == "") {
		errs = append(errs, fmt.Errorf("delivery.https.cert_file and delivery.https.key_file go together"))
	}
	if c.Refs.Sync.URL != "" && c.Refs.Sync.DropDir != "" {
		errs = append(errs, fmt.Errorf("referentials.sync: url and drop_dir are exclusive"))
	}
	switch c.Returns.IMAP.TLS {
	case "implicit", "starttls", "none":
	default:
		errs = append(errs, fmt.Errorf("returns.imap.tls: %q is not one of: implicit, starttls, none", c.Returns.IMAP.TLS))
	}
	if c.Returns.IMAP.Addr != "" && (c.Returns.IMAP.Username == "" || c.Returns.IMAP.PasswordFile == "") {
		errs = append(errs, fmt.Errorf("returns.imap.addr is set: returns.imap.username and returns.imap.password_file are required"))
	}
	for tenant, w := range c.Returns.Webhooks {
		if w.URL == "" || w.SecretFile == "" {
			errs = append(errs, fmt.Errorf("returns.webhooks.%s: url and secret_file are required", tenant))
		}
	}
	if (c.SMTP.SMIMECertFile == "") != (c.SMTP.SMIMEKeyFile == "") {
		errs = append(errs, fmt.Errorf("smtp.smime_cert_file and smtp.smime_key_file go together"))
	}
	return errors.Join(errs...)
}

// ErrUnknownKey is the code of an UnknownKeyError.
var ErrUnknownKey = errors.New("unknown-key")

// UnknownKeyError names a key the configuration does not have.
type UnknownKeyError struct {
	File, Key, Section, Suggest string
	Line                        int
}

func (e *UnknownKeyError) Error() string {
	where := "at top level"
	if e.Section != "" {
		where = "in " + e.Section
	}
	msg := fmt.Sprintf("%s:%d: unknown key %q %s", e.File, e.Line, e.Key, where)
	if e.Suggest != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", e.Suggest)
	}
	return msg
}

// Is makes errors.Is(err, ErrUnknownKey) work.
func (e *UnknownKeyError) Is(t error) bool { return t == ErrUnknownKey }

// Load reads a file ("" means defaults only).
func Load(path string) (Config, error) {
	if path == "" {
		return Defaults(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return Parse(path, data)
}

// Parse decodes YAML strictly, fills defaults and validates.
func Parse(name string, data []byte) (Config, error) {
	c := Defaults() // the file overrides the defaults key by key
	if len(bytes.TrimSpace(data)) == 0 {
		return c, c.Validate()
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Config{}, fmt.Errorf("%s: %w", name, err)
	}
	if err := checkKeys(name, &root, reflect.TypeOf(c), ""); err != nil {
		return Config{}, err
	}
	if err := root.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", name, err)
	}
	c.fill()
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// checkKeys walks the YAML tree beside the Go type and reports the first
// key the type does not have.
func checkKeys(file string, n *yaml.Node, t reflect.Type, section string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := checkKeys(file, c, t, section); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		if t.Kind() == reflect.Slice {
			for _, c := range n.Content {
				if err := checkKeys(file, c, t.Elem(), section); err != nil {
					return err
				}
			}
		}
	case yaml.MappingNode:
		switch t.Kind() {
		case reflect.Map:
			for i := 1; i < len(n.Content); i += 2 {
				if err := checkKeys(file, n.Content[i], t.Elem(), section+"."+n.Content[i-1].Value); err != nil {
					return err
				}
			}
		case reflect.Struct:
			fields := map[string]reflect.Type{}
			var names []string
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
				if tag == "" || tag == "-" {
					continue
				}
				fields[tag] = f.Type
				names = append(names, tag)
			}
			sort.Strings(names)
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				ft, ok := fields[k.Value]
				if !ok {
					return &UnknownKeyError{File: file, Line: k.Line, Key: k.Value, Section: strings.TrimPrefix(section, "."), Suggest: closest(k.Value, names)}
				}
				if err := checkKeys(file, n.Content[i+1], ft, section+"."+k.Value); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// closest returns the candidate within edit distance 2 of s, if any.
func closest(s string, cands []string) string {
	best, bestD := "", 3
	for _, c := range cands {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
