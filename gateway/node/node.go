// Package node assembles one running OCT node from its configuration: the
// store, the blob directory, the NIR hashing key, the gateway pipeline, the
// HTTP server and the metrics registry. `oct serve` and `oct demo` both run
// a Node; cmd/oct only parses flags.
package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/docs"
	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/config"
	"github.com/octgw/oct/gateway/console"
	"github.com/octgw/oct/gateway/deliver"
	deliverfhir "github.com/octgw/oct/gateway/deliver/fhir"
	deliverhttps "github.com/octgw/oct/gateway/deliver/https"
	"github.com/octgw/oct/gateway/intake/api"
	"github.com/octgw/oct/gateway/intake/mailbox"
	"github.com/octgw/oct/gateway/observe"
	"github.com/octgw/oct/gateway/returns"
	"github.com/octgw/oct/gateway/signing"
	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/gateway/store/blobdir"
	redisstore "github.com/octgw/oct/gateway/store/redis"
	"github.com/octgw/oct/gateway/store/sqlite"
	"github.com/octgw/oct/referentials"
	"github.com/octgw/oct/routing"
)

// Node is one OCT process.
type Node struct {
	Config   config.Config
	Logger   *slog.Logger
	Registry *prometheus.Registry
	Store    store.Store
	Blobs    store.Blobs
	Gateway  *gateway.Gateway
	API      *api.API
	Returns  *gateway.Signal
	// Referentials is the versioned referential repository (nil when the
	// caller brought its own Router).
	Referentials *referentials.Repo

	// Folders are the tenants' SFTP folders (inbox, outbox, returns...).
	Folders *mailbox.Folders
	// ReturnProcessor decodes, correlates, applies and relays returns.
	ReturnProcessor *returns.Processor
	poller          *returns.Poller

	// Queue is the support work queue; Console its web pages.
	Queue   *anomalies.Queue
	Console *console.Console
	chaser  *anomalies.Chaser

	// Signing is the signing pool (nil without members).
	Signing *signing.Pool
	// Router is the routing rule tree over the referentials (nil when the
	// caller brought its own gateway.Router).
	Router *routing.Router

	server   *http.Server
	lock     *os.File
	ch       channels
	audit    *signAudit
	ownsPool bool

	httpsClient *deliverhttps.Config // HTTPS delivery settings, shared by the SSA status poller
	ssaPoller   *deliverfhir.Poller
}

// Options are what the caller brings besides the configuration.
type Options struct {
	Logger *slog.Logger
	Router gateway.Router
	// Extra HTTP routes ("GET /", the console...).
	Extra map[string]http.Handler
	// Exclusive takes the data directory's lock (serve, demo). Commands that
	// only read or add a tenant do not.
	Exclusive bool
	// Signing, when set, replaces the pool built from the configuration
	// (the demo brings a pool of generated software keys).
	Signing *signing.Pool
	// Sender delivers signed lots; without one, lots rest at routed.
	Sender gateway.Sender
	// Levels, when set, is mounted at /admin/loglevel (per-component log
	// levels changed at runtime).
	Levels *observe.Levels
	// Deliver and Certs, when Sender is nil, build it over the node's own
	// routing: Deliver sends (a deliver.Dispatcher), Certs finds the
	// recipients' encryption certificates.
	Deliver deliver.Sender
	Certs   Certs
	// AfterSend is gateway.OutboundOptions.AfterSend (crash tests only).
	AfterSend func(store.Lot)
	// HTTPS, when Deliver is brought by the caller, is the client side of
	// HTTPS delivery: it reads the SSA status feeds.
	HTTPS *deliverhttps.Config
	// Seed replaces the demo referential imported into an empty repository
	// when referentials.seed_demo is set.
	Seed *referentials.Feed
}

// ErrLocked is returned when another process serves the same data
// directory.
var ErrLocked = errors.New("data-dir-locked")

// Open builds the node; nothing listens until Run.
func Open(ctx context.Context, cfg config.Config, o Options) (n *Node, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	n = &Node{Config: cfg, Logger: o.Logger, Returns: gateway.NewSignal()}
	built := n // a failing return sets n to nil: release what was opened
	defer func() {
		if err != nil {
			built.Close()
		}
	}()
	if o.Exclusive {
		if n.lock, err = lockDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	key, err := loadOrCreateKey(cfg.Path(cfg.Privacy.NIRKeyFile, "nir.key"))
	if err != nil {
		return nil, fmt.Errorf("NIR hashing key: %w", err)
	}
	var st store.Store
	switch cfg.Store.Kind {
	case "redis":
		st, err = redisstore.Open(ctx, redisstore.Options{Addr: cfg.Store.Redis.Addr, Prefix: cfg.Store.Redis.Prefix,
			RequireFsyncAlways: cfg.Store.Redis.RequireFsyncAlways, Logger: o.Logger})
	default:
		st, err = sqlite.Open(ctx, sqlite.Options{
			Path: cfg.Path(cfg.Store.SQLite.Path, "oct.db"), NoGroupCommit: !*cfg.Store.SQLite.GroupCommit, Logger: o.Logger,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	n.Store = st
	blobs, err := blobdir.OpenWith(cfg.Path(cfg.Store.BlobsDir, "blobs"), blobdir.Options{PackSmall: cfg.Store.BlobPacks})
	if err != nil {
		return nil, fmt.Errorf("blobs: %w", err)
	}
	n.Blobs = blobs
	if n.Folders, err = mailbox.New(filepath.Join(cfg.DataDir, "tenants")); err != nil {
		return nil, fmt.Errorf("tenant folders: %w", err)
	}
	router := o.Router
	if router == nil {
		repo, r, err := openRouting(ctx, cfg, time.Now, tenantPublisher{st: st, folders: n.Folders, log: o.Logger}, o.Seed)
		if err != nil {
			return nil, fmt.Errorf("routing: %w", err)
		}
		n.Referentials = repo
		n.Router = r
		router = routerAdapter{r: r, now: time.Now}
	}
	n.Registry = prometheus.NewRegistry()
	n.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := observe.Register(n.Registry, observe.Sources{Store: st, Logger: o.Logger, Certificates: n.certificates, Referential: func() (uint64, time.Time) {
		if n.Referentials == nil || n.Referentials.Current() == nil {
			return 0, time.Time{}
		}
		v := n.Referentials.Current().Version
		return v.ID, v.ImportedAt
	}}); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	out := gateway.OutboundOptions{Sender: o.Sender, ARLDeadline: cfg.Delivery.ARLDeadline, AfterSend: o.AfterSend}
	if o.Deliver == nil && o.Sender == nil && o.Exclusive {
		if o.Deliver, o.Certs, err = n.deliveryFromConfig(); err != nil {
			return nil, err
		}
	}
	if o.HTTPS != nil && n.httpsClient == nil {
		n.httpsClient = o.HTTPS
	}
	if out.Sender == nil && o.Deliver != nil && n.Router != nil {
		out.Sender = NewSender(n.Router, o.Deliver, o.Certs)
	}
	n.Signing = o.Signing
	if n.Signing == nil && len(cfg.Signing.Members) > 0 && o.Exclusive {
		n.audit = newSignAudit(st)
		if n.Signing, err = signing.New(ctx, cfg.Signing, signing.Options{Logger: o.Logger, Registerer: n.Registry, Observer: n.audit}); err != nil {
			return nil, fmt.Errorf("signing: %w", err)
		}
		n.ownsPool = true
	}
	if n.Signing != nil {
		out.Signer = detachedSigner{n.Signing}
	}
	g, err := gateway.New(gateway.Options{
		Store: st, Blobs: blobs, NIRKey: key, Logger: o.Logger, Registry: n.Registry, Router: router, NodeID: cfg.NodeID,
		Limits: gateway.Limits{
			MaxFileBytes: int64(cfg.Limits.MaxFileBytes), MaxRecords: cfg.Limits.MaxRecords,
			MaxErrors: cfg.Limits.MaxErrors, MaxConcurrent: cfg.Limits.MaxConcurrent,
		},
		Outbound: out,
		Flows:    n.flowOptions(),
		Workers: gateway.WorkerOptions{
			Concurrency: cfg.Workers.Concurrency, LeaseTTL: cfg.Workers.LeaseTTL,
			PollEvery: cfg.Workers.PollEvery, MaxAttempts: cfg.Workers.MaxAttempts,
		},
	})
	if err != nil {
		return nil, err
	}
	n.Gateway = g
	extra := map[string]http.Handler{} // GET / and /console/ come with the console (serving nodes)
	if o.Exclusive {
		routes, err := n.openSupport()
		if err != nil {
			return nil, fmt.Errorf("support console: %w", err)
		}
		for k, h := range routes {
			extra[k] = h
		}
	}
	if o.Levels != nil {
		extra["GET /admin/loglevel"] = loopbackOnly(o.Levels.HTTPHandler())
		extra["PUT /admin/loglevel"] = loopbackOnly(o.Levels.HTTPHandler())
	}
	for k, h := range o.Extra {
		extra[k] = h
	}
	n.API = api.New(api.Options{
		Gateway: g, Store: st, Gatherer: n.Registry, Logger: o.Logger, MaxFileBytes: int64(cfg.Limits.MaxFileBytes),
		RPS: cfg.Limits.RequestsPerSecond, Burst: cfg.Limits.Burst, LongPollMax: cfg.HTTP.LongPollMax,
		OpenAPI: docs.OpenAPI, Extra: extra, Referentials: changesOf(n.Referentials),
	}, n.Returns)
	if o.Exclusive { // only a serving node opens the channel listeners
		if err := n.openChannels(); err != nil {
			return nil, err
		}
		if err := n.openReturns(); err != nil {
			return nil, err
		}
		if err := n.openSSAPoller(); err != nil {
			return nil, fmt.Errorf("SSA status feeds: %w", err)
		}
	}
	return n, nil
}

// Listen opens the configured address (127.0.0.1:0 picks a free port).
func (n *Node) Listen() (net.Listener, error) {
	return net.Listen("tcp", n.Config.HTTP.Listen)
}

// Run serves HTTP on ln and runs the workers until ctx is done, then drains:
// readiness goes down, in-flight requests finish (within the grace period),
// workers stop, the store closes.
func (n *Node) Run(ctx context.Context, ln net.Listener) error {
	h := n.Config.HTTP
	n.server = &http.Server{
		Handler: n.API, ReadHeaderTimeout: h.ReadHeaderTimeout, ReadTimeout: h.ReadTimeout,
		WriteTimeout: h.WriteTimeout, IdleTimeout: h.IdleTimeout, MaxHeaderBytes: int(h.MaxHeaderBytes),
		ErrorLog: slog.NewLogLogger(n.Logger.Handler(), slog.LevelWarn),
	}
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = n.Gateway.Run(workCtx)
	}()
	chanCtx, stopChannels := context.WithCancel(context.WithoutCancel(ctx))
	waitChannels := n.serveChannels(chanCtx)
	waitPoller := n.runPoller(chanCtx)
	waitSSA := n.runSSAPoller(chanCtx)
	waitChaser := n.runChaser(workCtx)
	waitSync := n.runSync(workCtx)
	auditDone := make(chan struct{})
	go func() {
		defer close(auditDone)
		if n.audit != nil {
			n.audit.run(workCtx)
		}
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- n.server.Serve(ln) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	n.Gateway.Drain()
	stopChannels()
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.ShutdownGrace)
	if serr := n.server.Shutdown(shutCtx); serr != nil && err == nil {
		err = serr
	}
	cancel()
	waitChannels()
	waitPoller()
	waitSSA()
	stopWork()
	wg.Wait()
	waitChaser()
	waitSync()
	<-auditDone
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close releases the store and the lock. Run must have returned.
func (n *Node) Close() error {
	var err error
	for _, ln := range []net.Listener{n.ch.sftpLn, n.ch.smtpLn} {
		if ln != nil {
			ln.Close()
		}
	}
	if n.Signing != nil && n.ownsPool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = n.Signing.Close(ctx)
		cancel()
	}
	if n.Store != nil {
		err = n.Store.Close()
	}
	if n.lock != nil {
		_ = syscall.Flock(int(n.lock.Fd()), syscall.LOCK_UN)
		n.lock.Close()
	}
	return err
}

func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: another oct process serves %s", ErrLocked, dir)
	}
	return f, nil
}

// loadOrCreateKey reads the NIR hashing key, creating 32 random bytes
// (0600, fsync'd) on first start. Losing it would make stored hashes
// unmatchable, so it is never rewritten.
func loadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < 16 {
			return nil, fmt.Errorf("%s: key shorter than 16 bytes", path)
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	if err := os.Link(tmp, path); err != nil { // never replaces an existing key
		os.Remove(tmp)
		if errors.Is(err, os.ErrExist) {
			return os.ReadFile(path)
		}
		return nil, err
	}
	os.Remove(tmp)
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return key, nil
}

// certificates are the certificates whose expiry is watched: the signing
// pool's members (the caisses' encryption certificates are watched by the
// certificate directory).
func (n *Node) certificates(context.Context) ([]observe.Certificate, error) {
	if n.Signing == nil {
		return nil, nil
	}
	var out []observe.Certificate
	for _, m := range n.Signing.Members() {
		if !m.NotAfter.IsZero() {
			out = append(out, observe.Certificate{Use: "signing", Name: m.ID, NotAfter: m.NotAfter})
		}
	}
	return out, nil
}

// loopbackOnly serves h to clients on this machine only (operators change
// log levels with curl on the host; the API port may be reachable from
// elsewhere).
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, "admin endpoints answer on loopback only", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
