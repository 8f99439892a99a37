// Package deploy_test checks the deployment files: the Prometheus rules with
// promtool, every metric the rules and the dashboard use against a real
// node's registry, and the Compose, Kubernetes and systemd files for
// internal consistency (Docker and a cluster are not available where the
// tests run, so nothing here starts them).
package deploy_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/octgw/oct/gateway/config"
	"github.com/octgw/oct/gateway/node"
	"github.com/octgw/oct/gateway/signing"
)

// --- Prometheus rules -------------------------------------------------------

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	var rf ruleFile
	readYAML(t, "prometheus/alerts.yml", &rf)
	if len(rf.Groups) == 0 {
		t.Fatal("prometheus/alerts.yml: no groups")
	}
	return rf
}

// TestAlertRulesPromtool runs `promtool check rules` (Debian package
// prometheus). Without promtool the test skips, unless OCT_INTEGRATION=1
// or CI=true, where it fails.
func TestAlertRulesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		msg := "promtool not found (apt-get install prometheus, or put promtool on PATH)"
		if os.Getenv("CI") == "true" || os.Getenv("OCT_INTEGRATION") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg + "; set OCT_INTEGRATION=1 to make this a failure")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, promtool, "check", "rules", "prometheus/alerts.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
}

// TestAlertsHaveRunbooks checks every alert has a severity, a summary and a
// runbook anchor that docs/operations.md defines.
func TestAlertsHaveRunbooks(t *testing.T) {
	ops, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+\s+(.+)$`).FindAllStringSubmatch(string(ops), -1) {
		anchors[githubAnchor(m[1])] = true
	}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q", r.Alert, s)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", r.Alert)
			}
			rb := r.Annotations["runbook"]
			file, anchor, _ := strings.Cut(rb, "#")
			if file != "docs/operations.md" || !anchors[anchor] {
				t.Errorf("%s: runbook %q is not a heading of docs/operations.md", r.Alert, rb)
			}
		}
	}
}

// githubAnchor is the anchor GitHub gives a heading.
func githubAnchor(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// --- metrics used vs metrics that exist --------------------------------------

var (
	// A metric name in PromQL: our families and the Go/process collectors'.
	metricRef = regexp.MustCompile(`(?:^|[^A-Za-z0-9_:"])((?:oct|go|process)_[A-Za-z0-9_]+)`)
	// A recording rule name (level:metric:operations).
	recordRef = regexp.MustCompile(`(?:^|[^A-Za-z0-9_:"])(oct:[A-Za-z0-9_:]+)`)
)

type dashboard struct {
	Panels []struct {
		ID      int    `json:"id"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("grafana/oct.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/oct.json: %v", err)
	}
	return d
}

// usedMetrics returns the metric names (-> where) and recording rules used
// by the alerts and the dashboard, and the recording rules defined.
func usedMetrics(t *testing.T) (metrics, records map[string]string, defined map[string]bool) {
	metrics, records, defined = map[string]string{}, map[string]string{}, map[string]bool{}
	add := func(expr, where string) {
		if strings.TrimSpace(expr) == "" {
			t.Errorf("%s: empty expression", where)
		}
		for _, m := range metricRef.FindAllStringSubmatch(expr, -1) {
			metrics[m[1]] = where
		}
		for _, m := range recordRef.FindAllStringSubmatch(expr, -1) {
			records[m[1]] = where
		}
	}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				defined[r.Record] = true
			}
			add(r.Expr, "alerts.yml "+r.Alert+r.Record)
		}
	}
	d := loadDashboard(t)
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("dashboard: panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q: no target", p.Title)
		}
		for _, tg := range p.Targets {
			add(tg.Expr, "oct.json "+p.Title)
		}
	}
	return metrics, records, defined
}

// TestMetricNameParser checks the parser on the forms the files use.
func TestMetricNameParser(t *testing.T) {
	expr := `histogram_quantile(0.99, sum by (le) (rate(oct_intake_seconds_bucket{channel="api"}[5m])))
	/ max without (instance) (oct_lots{state="sent"}) and oct:arl_negative_ratio:1h > 0 or go_goroutines{job="oct_x"}`
	var got []string
	for _, m := range metricRef.FindAllStringSubmatch(expr, -1) {
		got = append(got, m[1])
	}
	if want := []string{"oct_intake_seconds_bucket", "oct_lots", "go_goroutines"}; !slices.Equal(got, want) {
		t.Errorf("metrics %v, want %v", got, want)
	}
	if r := recordRef.FindAllStringSubmatch(expr, -1); len(r) != 1 || r[0][1] != "oct:arl_negative_ratio:1h" {
		t.Errorf("records %v", r)
	}
}

// TestMetricsExist opens a real node (temp dir, loopback, a software
// signing member and an SMTP delivery so that the signing pool and the
// dispatcher register their metrics), registers the observe collectors on
// its registry as the node will, and checks every metric the alerts and the
// dashboard use is either gathered or registered (a vector with no series
// yet is registered but not gathered).
func TestMetricsExist(t *testing.T) {
	used, records, defined := usedMetrics(t)
	for r, where := range records {
		if !defined[r] {
			t.Errorf("%s: recording rule %s is not defined in alerts.yml", where, r)
		}
	}
	dir := t.TempDir()
	cfg := config.Defaults()
	cfg.DataDir = dir
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.SFTP.Listen = ""
	cfg.SMTP.Listen = ""
	key, crt := signingKey(t, dir)
	cfg.Signing = signing.Config{Members: []signing.MemberConfig{{
		ID: "deploy-test", Kind: signing.KindSoftware, Profile: "default", KeyFile: key, CertFile: crt,
	}}}
	cfg.Delivery.SMTP.Relay = closedPort(t) // registers the dispatcher; nothing is sent
	cfg.Delivery.SMTP.From = "oct@oct.test"

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	n, err := node.Open(ctx, cfg, node.Options{Exclusive: true})
	if err != nil {
		t.Fatalf("node.Open: %v", err)
	}
	defer n.Close()
	// The node registers the observe collectors itself (gateway/node).
	mfs, err := n.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	exist := map[string]bool{}
	for _, mf := range mfs {
		addFamily(exist, mf.GetName(), mf.GetType())
	}
	gathered := len(exist)
	descs := make(chan *prometheus.Desc)
	go func() {
		n.Registry.Describe(descs)
		close(descs)
	}()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range descs {
		if m := fqName.FindStringSubmatch(d.String()); m != nil && !exist[m[1]] {
			// Registered, no series yet: a histogram's parts are allowed too.
			addFamily(exist, m[1], dto.MetricType_HISTOGRAM)
		}
	}
	t.Logf("%d names gathered, %d with the registered families", gathered, len(exist))
	var missing []string
	for m, where := range used {
		if !exist[m] {
			missing = append(missing, m+" ("+where+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("metrics used but not exported by a node:\n  %s", strings.Join(missing, "\n  "))
	}
	// The families the issue asks for, gathered with series.
	for _, m := range []string{"oct_lots", "oct_anomalies_open", "oct_transitions_total", "oct_referential_version",
		"oct_certificate_expiry_timestamp_seconds", "oct_signing_member_up"} {
		if !hasFamily(mfs, m) {
			t.Errorf("%s: no series gathered", m)
		}
	}
}

func addFamily(exist map[string]bool, name string, typ dto.MetricType) {
	exist[name] = true
	if typ == dto.MetricType_HISTOGRAM || typ == dto.MetricType_SUMMARY {
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			exist[name+s] = true
		}
	}
}

func hasFamily(mfs []*dto.MetricFamily, name string) bool {
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return true
		}
	}
	return false
}

// signingKey writes a P-256 key and a self-signed certificate.
func signingKey(t *testing.T, dir string) (keyFile, certFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "deploy test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, certFile = filepath.Join(dir, "sign.key"), filepath.Join(dir, "sign.crt")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return keyFile, certFile
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// --- Docker Compose ---------------------------------------------------------

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       map[string]string `yaml:"build"`
		Command     []string          `yaml:"command"`
		NetworkMode string            `yaml:"network_mode"`
		Ports       []string          `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// flag returns the value following name in args.
func flag(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

func TestCompose(t *testing.T) {
	var c composeFile
	readYAML(t, "compose/docker-compose.yml", &c)
	for _, s := range []string{"redis", "sim", "oct-1", "oct-2"} {
		if _, ok := c.Services[s]; !ok {
			t.Fatalf("service %s missing", s)
		}
	}
	// The image is built from cmd/oct by the Dockerfile.
	sim := c.Services["sim"]
	df, err := os.ReadFile(filepath.Join("compose", filepath.Base(sim.Build["dockerfile"])))
	if err != nil || sim.Build["context"] != "../.." || sim.Build["dockerfile"] != "deploy/compose/Dockerfile" {
		t.Fatalf("sim build %v: %v", sim.Build, err)
	}
	if !strings.Contains(string(df), "./cmd/oct") || !strings.Contains(string(df), "CGO_ENABLED=1") {
		t.Error("Dockerfile does not build ./cmd/oct with cgo")
	}
	if sim.Command[0] != "sim" {
		t.Errorf("sim runs %v", sim.Command)
	}
	simSMTP, _ := flag(sim.Command, "--smtp")
	simOut, _ := flag(sim.Command, "--out")
	redis := c.Services["redis"]
	redisPort, _ := flag(redis.Command, "--port")
	if fs, _ := flag(redis.Command, "--appendfsync"); fs != "always" {
		t.Errorf("redis: --appendfsync %q, want always", fs)
	}
	if ao, _ := flag(redis.Command, "--appendonly"); ao != "yes" {
		t.Errorf("redis: --appendonly %q, want yes", ao)
	}
	published := map[string]bool{}
	for _, p := range sim.Ports {
		parts := strings.Split(p, ":")
		if len(parts) != 3 || parts[0] != "127.0.0.1" {
			t.Errorf("sim publishes %q: only on the host's loopback (127.0.0.1:HOST:CONTAINER)", p)
			continue
		}
		published[parts[2]] = true
	}
	for name, s := range c.Services {
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
			}
		}
		for _, v := range s.Volumes {
			src := strings.Split(v, ":")[0]
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join("compose", src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s mounts undeclared volume %s", name, src)
			}
		}
	}
	nodeIDs, listens := map[string]bool{}, map[string]bool{}
	for _, name := range []string{"oct-1", "oct-2"} {
		s := c.Services[name]
		if s.NetworkMode != "service:sim" || s.Image != sim.Image {
			t.Errorf("%s: network_mode %q image %q", name, s.NetworkMode, s.Image)
		}
		if _, ok := s.DependsOn["redis"]; !ok {
			t.Errorf("%s does not wait for redis", name)
		}
		mounts := map[string]string{} // container path -> source
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			mounts[parts[1]] = parts[0]
		}
		cfgPath, _ := flag(s.Command, "--config")
		src, ok := mounts[cfgPath]
		if s.Command[0] != "serve" || !ok {
			t.Fatalf("%s: command %v, config %s not mounted", name, s.Command, cfgPath)
		}
		cfg, err := config.Load(filepath.Join("compose", src))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		under := func(key, path string) {
			for m := range mounts {
				if path == m || strings.HasPrefix(path, m+"/") {
					return
				}
			}
			t.Errorf("%s: %s %s is on no volume", name, key, path)
		}
		_, port, _ := net.SplitHostPort(cfg.HTTP.Listen)
		nodeIDs[cfg.NodeID], listens[port] = true, true
		if !published[port] {
			t.Errorf("%s: http.listen %s is not published by sim", name, cfg.HTTP.Listen)
		}
		if hc := strings.Join(s.Healthcheck.Test, " "); !strings.Contains(hc, ":"+port+"/readyz") {
			t.Errorf("%s: healthcheck %q does not probe :%s/readyz", name, hc, port)
		}
		if cfg.Store.Kind != "redis" || cfg.Store.Redis.Addr != "redis:"+redisPort || !cfg.Store.Redis.RequireFsyncAlways {
			t.Errorf("%s: store %+v, want redis at redis:%s with require_fsync_always", name, cfg.Store, redisPort)
		}
		if mounts["/shared"] != "shared" || !strings.HasPrefix(cfg.Store.BlobsDir, "/shared/") ||
			!strings.HasPrefix(cfg.Privacy.NIRKeyFile, "/shared/") {
			t.Errorf("%s: blobs %s and NIR key %s must be on the shared volume", name, cfg.Store.BlobsDir, cfg.Privacy.NIRKeyFile)
		}
		under("data_dir", cfg.DataDir)
		_, relayPort, _ := net.SplitHostPort(cfg.Delivery.SMTP.Relay)
		_, simPort, _ := net.SplitHostPort(simSMTP)
		if relayPort != simPort {
			t.Errorf("%s: delivery.smtp.relay %s, sim --smtp %s", name, cfg.Delivery.SMTP.Relay, simSMTP)
		}
		if mounts[simOut] != "sim-out" || !strings.HasPrefix(cfg.Delivery.SMTP.RootCAFile, simOut+"/") ||
			!strings.HasPrefix(cfg.Certificates.Dir, simOut+"/") {
			t.Errorf("%s: the simulator's root and certificates must come from its --out %s", name, simOut)
		}
	}
	if len(nodeIDs) != 2 || len(listens) != 2 {
		t.Errorf("the two nodes need distinct node_id and http ports (one network namespace): %v %v", nodeIDs, listens)
	}
}

// --- Kubernetes -------------------------------------------------------------

type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Replicas    int              `yaml:"replicas"`
		ServiceName string           `yaml:"serviceName"`
		ClusterIP   string           `yaml:"clusterIP"`
		Selector    yaml.Node        `yaml:"selector"`
		Ports       []k8sServicePort `yaml:"ports"`
		AccessModes []string         `yaml:"accessModes"`
		Template    k8sPodTemplate   `yaml:"template"`
	} `yaml:"spec"`
}

type k8sServicePort struct {
	Name       string    `yaml:"name"`
	Port       int       `yaml:"port"`
	TargetPort yaml.Node `yaml:"targetPort"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"`
	} `yaml:"httpGet"`
	TCPSocket *struct {
		Port yaml.Node `yaml:"port"`
	} `yaml:"tcpSocket"`
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
}

type k8sPodTemplate struct {
	Metadata struct {
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
		Containers                    []struct {
			Name  string   `yaml:"name"`
			Args  []string `yaml:"args"`
			Ports []struct {
				Name          string `yaml:"name"`
				ContainerPort int    `yaml:"containerPort"`
			} `yaml:"ports"`
			ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
			LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
			VolumeMounts   []struct {
				Name      string `yaml:"name"`
				MountPath string `yaml:"mountPath"`
				SubPath   string `yaml:"subPath"`
			} `yaml:"volumeMounts"`
		} `yaml:"containers"`
		Volumes []struct {
			Name      string `yaml:"name"`
			ConfigMap *struct {
				Name string `yaml:"name"`
			} `yaml:"configMap"`
			Secret *struct {
				SecretName string `yaml:"secretName"`
			} `yaml:"secret"`
			PVC *struct {
				ClaimName string `yaml:"claimName"`
			} `yaml:"persistentVolumeClaim"`
			EmptyDir any `yaml:"emptyDir"`
		} `yaml:"volumes"`
	} `yaml:"spec"`
}

func loadK8s(t *testing.T) map[string]*k8sObject {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("k8s manifests: %v", err)
	}
	objs := map[string]*k8sObject{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o k8sObject
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			key := o.Kind + "/" + o.Metadata.Name
			if objs[key] != nil {
				t.Errorf("%s defined twice", key)
			}
			objs[key] = &o
		}
	}
	return objs
}

// portOf resolves a probe or Service port (a number or a container port name).
func portOf(t *testing.T, n yaml.Node, named map[string]int) int {
	t.Helper()
	if p, ok := named[n.Value]; ok {
		return p
	}
	var p int
	if err := n.Decode(&p); err != nil {
		t.Errorf("port %q is neither a number nor a container port name", n.Value)
	}
	return p
}

func matchLabels(t *testing.T, sel yaml.Node) map[string]string {
	t.Helper()
	var s struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	var flat map[string]string
	if err := sel.Decode(&s); err == nil && len(s.MatchLabels) > 0 {
		return s.MatchLabels
	}
	if err := sel.Decode(&flat); err != nil {
		t.Errorf("selector: %v", err)
	}
	return flat
}

func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestKubernetes(t *testing.T) {
	objs := loadK8s(t)
	dep, cm, svc := objs["Deployment/oct"], objs["ConfigMap/oct-config"], objs["Service/oct"]
	rsts, rsvc := objs["StatefulSet/oct-redis"], objs["Service/oct-redis"]
	if dep == nil || cm == nil || svc == nil || rsts == nil || rsvc == nil {
		t.Fatalf("missing objects, have %v", slices.Sorted(func(yield func(string) bool) {
			for k := range objs {
				if !yield(k) {
					return
				}
			}
		}))
	}
	pod := dep.Spec.Template
	if !selects(matchLabels(t, dep.Spec.Selector), pod.Metadata.Labels) || !selects(matchLabels(t, svc.Spec.Selector), pod.Metadata.Labels) {
		t.Error("the Deployment's or the Service's selector does not select the pod template")
	}
	if dep.Spec.Replicas < 2 {
		t.Errorf("replicas %d: the point is several nodes", dep.Spec.Replicas)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Spec.Containers))
	}
	ctr := pod.Spec.Containers[0]
	named := map[string]int{}
	for _, p := range ctr.Ports {
		named[p.Name] = p.ContainerPort
	}
	// The configuration the pod mounts loads strictly and listens where the probes look.
	cfgPath, _ := flag(ctr.Args, "--config")
	mountedCfg := ""
	for _, m := range ctr.VolumeMounts {
		if m.MountPath == cfgPath {
			for _, v := range pod.Spec.Volumes {
				if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == cm.Metadata.Name {
					mountedCfg = cm.Data[m.SubPath]
				}
			}
		}
	}
	if ctr.Args[0] != "serve" || mountedCfg == "" {
		t.Fatalf("args %v: config %s not mounted from ConfigMap oct-config", ctr.Args, cfgPath)
	}
	cfg, err := config.Parse("ConfigMap oct-config", []byte(mountedCfg))
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(cfg.HTTP.Listen)
	if host != "0.0.0.0" && host != "" {
		t.Errorf("http.listen %s: probes and the Service reach the pod IP", cfg.HTTP.Listen)
	}
	httpPort := named["http"]
	if port != itoa(httpPort) {
		t.Errorf("http.listen port %s, containerPort http %d", port, httpPort)
	}
	for name, pr := range map[string]*k8sProbe{"/readyz": ctr.ReadinessProbe, "/healthz": ctr.LivenessProbe} {
		if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != name || portOf(t, pr.HTTPGet.Port, named) != httpPort {
			t.Errorf("probe %s: want httpGet %s on the http port", name, name)
		}
	}
	if p := svc.Spec.Ports; len(p) != 1 || portOf(t, p[0].TargetPort, named) != httpPort {
		t.Errorf("Service oct does not target the http port")
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; time.Duration(g)*time.Second <= cfg.HTTP.ShutdownGrace {
		t.Errorf("terminationGracePeriodSeconds %d must exceed http.shutdown_grace %s", g, cfg.HTTP.ShutdownGrace)
	}
	// Volumes: every mount has a volume; paths the config names are mounted.
	vols := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		vols[v.Name] = true
		if v.PVC != nil {
			pvc := objs["PersistentVolumeClaim/"+v.PVC.ClaimName]
			if pvc == nil {
				t.Errorf("volume %s: no PersistentVolumeClaim %s", v.Name, v.PVC.ClaimName)
			} else if !slices.Contains(pvc.Spec.AccessModes, "ReadWriteMany") {
				t.Errorf("PVC %s: shared by every pod, needs ReadWriteMany", v.PVC.ClaimName)
			}
		}
	}
	mounted := func(path string) bool {
		for _, m := range ctr.VolumeMounts {
			if !vols[m.Name] {
				t.Errorf("mount %s: no volume %s", m.MountPath, m.Name)
			}
			if path == m.MountPath || strings.HasPrefix(path, m.MountPath+"/") {
				return true
			}
		}
		return false
	}
	for key, p := range map[string]string{"data_dir": cfg.DataDir, "store.blobs_dir": cfg.Store.BlobsDir, "privacy.nir_key_file": cfg.Privacy.NIRKeyFile} {
		if !mounted(p) {
			t.Errorf("%s %s is on no volume", key, p)
		}
	}
	// Redis: the address resolves to the StatefulSet's pod through its headless Service.
	rhost, rport, _ := net.SplitHostPort(cfg.Store.Redis.Addr)
	if cfg.Store.Kind != "redis" || !cfg.Store.Redis.RequireFsyncAlways {
		t.Errorf("store %+v: want redis with require_fsync_always", cfg.Store)
	}
	if rhost != rsts.Metadata.Name+"-0."+rsts.Spec.ServiceName || rsvc.Metadata.Name != rsts.Spec.ServiceName || rsvc.Spec.ClusterIP != "None" {
		t.Errorf("store.redis.addr %s does not name pod 0 of StatefulSet %s through headless Service %s", cfg.Store.Redis.Addr, rsts.Metadata.Name, rsvc.Metadata.Name)
	}
	rctr := rsts.Spec.Template.Spec.Containers[0]
	rnamed := map[string]int{}
	for _, p := range rctr.Ports {
		rnamed[p.Name] = p.ContainerPort
	}
	if rp, _ := flag(rctr.Args, "--port"); rp != rport || itoa(rnamed["redis"]) != rport ||
		portOf(t, rsvc.Spec.Ports[0].TargetPort, rnamed) != rnamed["redis"] {
		t.Errorf("redis port: addr %s, --port %s, containerPort %d", cfg.Store.Redis.Addr, rp, rnamed["redis"])
	}
	if fs, _ := flag(rctr.Args, "--appendfsync"); fs != "always" {
		t.Errorf("redis --appendfsync %q, want always", fs)
	}
	if !selects(matchLabels(t, rsts.Spec.Selector), rsts.Spec.Template.Metadata.Labels) ||
		!selects(matchLabels(t, rsvc.Spec.Selector), rsts.Spec.Template.Metadata.Labels) ||
		selects(matchLabels(t, svc.Spec.Selector), rsts.Spec.Template.Metadata.Labels) {
		t.Error("redis selectors: the StatefulSet and its Service must select the redis pods, the oct Service must not")
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// --- systemd ----------------------------------------------------------------

func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("systemd/oct.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string][]string{} // "Section.Key" -> values
	section := ""
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("line %d: %q", i+1, line)
			}
			unit[section+"."+k] = append(unit[section+"."+k], v)
		}
	}
	exec := strings.Fields(strings.Join(unit["Service.ExecStart"], ""))
	if len(exec) < 2 || !filepath.IsAbs(exec[0]) || exec[1] != "serve" {
		t.Errorf("ExecStart %v: want an absolute path to oct, then serve", exec)
	}
	if d, _ := flag(exec, "--data"); d != "/var/lib/"+strings.Join(unit["Service.StateDirectory"], "") {
		t.Errorf("--data %q is not the StateDirectory", d)
	}
	for k, want := range map[string]string{
		"Service.DynamicUser": "yes", "Service.ProtectSystem": "strict", "Service.ProtectHome": "yes",
		"Service.NoNewPrivileges": "yes", "Service.PrivateTmp": "yes", "Service.CapabilityBoundingSet": "",
		"Service.RestrictSUIDSGID": "yes", "Service.KillSignal": "SIGTERM", "Install.WantedBy": "multi-user.target",
	} {
		if got := unit[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	stop, err := time.ParseDuration(strings.Join(unit["Service.TimeoutStopSec"], ""))
	if err != nil || stop <= config.Defaults().HTTP.ShutdownGrace {
		t.Errorf("TimeoutStopSec %v must exceed http.shutdown_grace (%v)", unit["Service.TimeoutStopSec"], err)
	}
}

// --- helpers ----------------------------------------------------------------

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
