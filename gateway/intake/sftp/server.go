// Package sftp is OCT's SFTP intake: an SSH server (public-key login, one
// tenant per key) running the pkg/sftp request server over each tenant's
// folders (see package mailbox), confined with os.Root. A file uploaded to
// inbox/ is taken in through the gateway's Intake when the client closes it
// cleanly (or renames it from a temporary name), its acknowledgement is then
// written to outbox/, and it leaves the inbox. An upload cut by a lost
// connection is discarded.
package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/intake/mailbox"
	"github.com/octgw/oct/gateway/intake/penalty"
)

// Intaker is the gateway's single intake entry. It returns only once the
// raw bytes and the file row are durable.
type Intaker interface {
	Intake(ctx context.Context, tenant string, src gateway.Source, r io.Reader) (gateway.Ack, error)
}

// FollowIntaker is an Intaker that can take a file in while it is being
// uploaded (gateway.Gateway): the upload hands it the bytes in order as they
// are written, and at close the file is linked without being read again.
// Used when the Intaker implements it.
type FollowIntaker interface {
	Intaker
	Follow(src gateway.Source) *gateway.Follower
	IntakeFollowed(ctx context.Context, tenant string, src gateway.Source, f *os.File, fl *gateway.Follower) (gateway.Ack, error)
}

// Tenants maps a client's public key to its tenant. It returns an error
// wrapping ErrUnknownKey when no enabled tenant holds the key.
type Tenants interface {
	TenantForKey(ctx context.Context, key ssh.PublicKey) (tenantID string, err error)
}

// Errors (errors.Is).
var (
	ErrUnknownKey = errors.New("sftp: unknown key")
	ErrClosed     = errors.New("sftp: server closed")
)

// Config configures a Server. HostKey, Folders, Tenants and Intaker are
// required; zero durations and limits take the defaults in brackets.
type Config struct {
	HostKey ssh.Signer                 // see LoadOrCreateHostKey
	Folders *mailbox.Folders           // tenant trees
	Tenants Tenants                    // key -> tenant
	Intaker Intaker                    // gateway.Intake
	Logger  *slog.Logger               // [discard]
	Now     func() time.Time           // [time.Now]
	Limits  func(tenant string) Limits // per-tenant limits [DefaultLimits]

	HandshakeTimeout time.Duration // connect to logged in [10s]
	IdleTimeout      time.Duration // no bytes from the client [5m]
	MaxConnDuration  time.Duration // whole connection [2h]
	MaxConns         int           // connections, all tenants [256]
	MaxAuthTries     int           // keys tried per connection [6]
	LoginDelay       time.Duration // wait before the handshake after one failed login [500ms]; doubles per failure
	MaxLoginDelay    time.Duration // bound of that wait [15s]
	// MaxFollowed bounds the uploads followed by the gateway at once, all
	// tenants [32]: each holds a 1 MiB ring, up to maxPending bytes
	// written out of order and, with DirectWrites, two 1 MiB blocks.
	// Uploads beyond it are taken in at close, by reading the file
	// (slower, no more memory).
	MaxFollowed int
	// DirectWrites writes followed uploads to disk in 1 MiB O_DIRECT
	// blocks (direct.go) instead of through the page cache; where the
	// filesystem refuses O_DIRECT they go through the page cache anyway.
	DirectWrites bool
}

// Server is the SFTP intake server.
type Server struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context // cancelled by Close: stops every connection and intake
	cancel context.CancelFunc

	wg      sync.WaitGroup
	running atomic.Int64 // goroutines started by the server and not yet ended (tests)
	served  atomic.Bool

	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	listeners map[net.Listener]struct{}
	sessions  map[string]int                // tenant -> open connections
	rates     map[string]*window            // tenant -> files in the last minute
	reserved  map[string]int64              // tenant -> bytes of uploads in progress
	writing   map[string]map[string]*upload // tenant -> inbox names open for writing (the upload when direct)
	fails     *penalty.Table
	followed  int // uploads followed now (MaxFollowed)
	// parked: followers of uploads closed under a temporary name, waiting
	// for the rename that takes them in (tenant -> name).
	parked map[string]map[string]parkedFollow
	// usageCache: tenant tree sizes, see usage.
	usageCache map[string]usageEntry
	// stages: staging blocks of direct writes; noDirect: the inbox
	// filesystem refused O_DIRECT once, no upload tries again.
	stages   sync.Pool
	noDirect atomic.Bool
	// openDirect reopens an upload for direct writes (reopenDirect; tests
	// make it fail); directBlocks counts the blocks written so.
	openDirect   func(*os.File) (directFile, error)
	directBlocks atomic.Int64
}

// New checks cfg and returns a server. Nothing runs until Serve.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.HostKey == nil:
		return nil, errors.New("sftp: no host key")
	case cfg.Folders == nil:
		return nil, errors.New("sftp: no folders")
	case cfg.Tenants == nil:
		return nil, errors.New("sftp: no tenants")
	case cfg.Intaker == nil:
		return nil, errors.New("sftp: no intaker")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Limits == nil {
		cfg.Limits = func(string) Limits { return DefaultLimits() }
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.HandshakeTimeout, 10*time.Second)
	def(&cfg.IdleTimeout, 5*time.Minute)
	def(&cfg.MaxConnDuration, 2*time.Hour)
	def(&cfg.LoginDelay, 500*time.Millisecond)
	def(&cfg.MaxLoginDelay, 15*time.Second)
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 256
	}
	if cfg.MaxAuthTries <= 0 {
		cfg.MaxAuthTries = 6
	}
	if cfg.MaxFollowed <= 0 {
		cfg.MaxFollowed = 32
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "intake/sftp"),
		ctx:        ctx,
		cancel:     cancel,
		conns:      make(map[net.Conn]struct{}),
		listeners:  make(map[net.Listener]struct{}),
		sessions:   make(map[string]int),
		rates:      make(map[string]*window),
		reserved:   make(map[string]int64),
		writing:    make(map[string]map[string]*upload),
		parked:     make(map[string]map[string]parkedFollow),
		fails:      penalty.New(cfg.LoginDelay, cfg.MaxLoginDelay, time.Hour, 10000),
		usageCache: make(map[string]usageEntry),
		openDirect: reopenDirect,
	}, nil
}

// Serve accepts connections on l until ctx is done or Close is called, then
// closes l and every connection, and returns once every goroutine it
// started has ended. It returns nil after a shutdown, the accept error
// otherwise. Serve may be called once.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if !s.served.CompareAndSwap(false, true) {
		return errors.New("sftp: Serve called twice")
	}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		l.Close()
		return ErrClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()

	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()

	var err error
	for {
		c, aerr := l.Accept()
		if aerr != nil {
			if s.ctx.Err() == nil {
				err = aerr
			}
			break
		}
		// The SSH transport writes through batchConn; every close of the
		// connection goes through it too (its sender goroutine ends there).
		bc := newBatchConn(c)
		if !s.track(bc) {
			continue
		}
		s.spawn(func() { s.handleConn(bc) })
	}
	s.Close()
	s.wg.Wait()
	return err
}

// Close stops the server: the listener and every connection are closed and
// intakes in progress are cancelled. Serve returns once all is done.
func (s *Server) Close() error {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := range s.listeners {
		l.Close()
		delete(s.listeners, l)
	}
	// Each close may wait (bounded) for its queued bytes: close them side
	// by side, not one after the other under the lock.
	var wg sync.WaitGroup
	for c := range s.conns {
		wg.Add(1)
		go func() { defer wg.Done(); c.Close() }()
	}
	wg.Wait()
	return nil
}

// spawn runs f in a goroutine that Serve waits for.
func (s *Server) spawn(f func()) {
	s.wg.Add(1)
	s.running.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.running.Add(-1)
		f()
	}()
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		c.Close()
		return false
	}
	if len(s.conns) >= s.cfg.MaxConns {
		s.log.Warn("sftp connection refused: server full", "remote", c.RemoteAddr().String())
		c.Close()
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// wait blocks for d or until the server stops; false when stopped.
func (s *Server) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

func (s *Server) handleConn(c net.Conn) {
	defer s.untrack(c)
	remote := c.RemoteAddr().String()
	addr := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		addr = h
	}

	// Slow down addresses that failed to log in.
	s.mu.Lock()
	d := s.fails.Delay(addr, s.cfg.Now())
	s.mu.Unlock()
	if d > 0 && !s.wait(d) {
		return
	}

	ic := &activity{idle: s.cfg.IdleTimeout}
	_ = c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	conf := &ssh.ServerConfig{
		MaxAuthTries:  s.cfg.MaxAuthTries,
		ServerVersion: "SSH-2.0-OCT",
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.HandshakeTimeout)
			defer cancel()
			tenant, err := s.cfg.Tenants.TenantForKey(ctx, key)
			if err != nil {
				return nil, err
			}
			return &ssh.Permissions{Extensions: map[string]string{"tenant": tenant, "key": ssh.FingerprintSHA256(key)}}, nil
		},
	}
	conf.AddHostKey(s.cfg.HostKey)
	sc, chans, reqs, err := ssh.NewServerConn(c, conf)
	if err != nil {
		var ae *ssh.ServerAuthError
		if errors.As(err, &ae) {
			s.mu.Lock()
			n := s.fails.Fail(addr, s.cfg.Now())
			s.mu.Unlock()
			s.log.Warn("sftp login failed", "remote", remote, "failures", n)
		} else if s.ctx.Err() == nil {
			s.log.Info("sftp handshake failed", "remote", remote, "err", err)
		}
		return
	}
	defer sc.Close()
	// From now on only idleness and the total duration bound the connection.
	_ = c.SetDeadline(time.Time{})
	ic.arm()
	tenant := sc.Permissions.Extensions["tenant"]
	keyFP := sc.Permissions.Extensions["key"]
	s.mu.Lock()
	s.fails.OK(addr)
	lim := s.cfg.Limits(tenant).withDefaults()
	if s.sessions[tenant] >= lim.MaxSessions {
		s.mu.Unlock()
		s.log.Warn("sftp session refused: too many sessions", "tenant", tenant, "remote", remote, "max", lim.MaxSessions)
		return
	}
	s.sessions[tenant]++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.sessions[tenant]--; s.sessions[tenant] <= 0 {
			delete(s.sessions, tenant)
		}
		s.mu.Unlock()
	}()
	s.log.Info("sftp login", "tenant", tenant, "remote", remote, "key", keyFP)

	// Watchdog: closes the connection on shutdown, on the total duration
	// bound and when the client has been idle too long.
	done := make(chan struct{})
	defer close(done)
	s.spawn(func() {
		total := time.NewTimer(s.cfg.MaxConnDuration)
		defer total.Stop()
		idle := time.NewTimer(s.cfg.IdleTimeout)
		defer idle.Stop()
		for {
			select {
			case <-done:
				return
			case <-s.ctx.Done():
			case <-total.C:
				s.log.Info("sftp connection closed: duration limit", "tenant", tenant, "remote", remote)
			case <-idle.C:
				if left := ic.idleLeft(); left > 0 {
					idle.Reset(left)
					continue
				}
				s.log.Info("sftp connection closed: idle", "tenant", tenant, "remote", remote)
			}
			sc.Close()
			return
		}
	})

	s.spawn(func() { ssh.DiscardRequests(reqs) })
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		s.spawn(func() { s.handleSession(tenant, remote, ch, creqs, ic) })
	}
}

// handleSession serves one session channel: only the sftp subsystem.
func (s *Server) handleSession(tenant, remote string, ch ssh.Channel, reqs <-chan *ssh.Request, ic *activity) {
	defer ch.Close()
	started := false
	for req := range reqs {
		ok := false
		if req.Type == "subsystem" && !started {
			var p struct{ Name string }
			if ssh.Unmarshal(req.Payload, &p) == nil && p.Name == "sftp" {
				ok = true
			}
		}
		if req.WantReply {
			_ = req.Reply(ok, nil)
		}
		if !ok {
			continue
		}
		started = true
		s.spawn(func() {
			for r := range reqs {
				if r.WantReply {
					_ = r.Reply(false, nil)
				}
			}
		})
		s.serveSFTP(tenant, remote, &activeChannel{Channel: ch, ic: ic})
		return
	}
}

func (s *Server) serveSFTP(tenant, remote string, ch io.ReadWriteCloser) {
	root, err := s.cfg.Folders.Open(tenant)
	if err != nil {
		s.log.Error("sftp: cannot open tenant folders", "tenant", tenant, "err", err)
		return
	}
	defer root.Close()
	h := &handlers{s: s, tenant: tenant, remote: remote, root: root}
	rs := sftp.NewRequestServer(ch, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h}, sftp.WithStartDirectory("/"))
	if err := rs.Serve(); err != nil && !errors.Is(err, io.EOF) && s.ctx.Err() == nil {
		s.log.Info("sftp session ended", "tenant", tenant, "remote", remote, "err", err)
	}
	_ = rs.Close()
	s.dropParkedOf(h) // uploads of this session never renamed: read at rename if ever
}

// activity records when the client last sent something on a channel.
type activity struct {
	idle time.Duration
	last atomic.Int64 // unix nanoseconds
}

func (c *activity) arm() { c.last.Store(time.Now().UnixNano()) }

// idleLeft is the time until the connection counts as idle (<= 0: idle).
func (c *activity) idleLeft() time.Duration {
	return c.idle - time.Since(time.Unix(0, c.last.Load()))
}

// activeChannel marks activity on every read from the channel.
type activeChannel struct {
	ssh.Channel
	ic *activity
}

func (a *activeChannel) Read(p []byte) (int, error) {
	n, err := a.Channel.Read(p)
	if n > 0 {
		a.ic.arm()
	}
	return n, err
}

func splitHostPort(hp string) (string, string, error) { return net.SplitHostPort(hp) }

// refusal is an intake refusal shown to the client and written to errors/.
type refusal struct {
	code string
	msg  string
}

func (r *refusal) Error() string { return fmt.Sprintf("refused (%s): %s", r.code, r.msg) }
