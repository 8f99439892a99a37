// Package sftp delivers lot files to AMC operators over SFTP: key
// authentication, host key checked against known_hosts, each file written
// under a temporary name then renamed into place (signature first). See
// docs/delivery.md.
package sftp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/octgw/oct/gateway/deliver"
	dhttps "github.com/octgw/oct/gateway/deliver/https"
	"github.com/octgw/oct/referentials"
)

// Config configures a Sender. Signer and one of KnownHosts or
// HostKeyCallback are required.
type Config struct {
	Signer ssh.Signer // the OCT's SSH key
	// KnownHosts is the path of a known_hosts file (OpenSSH format);
	// HostKeyCallback, when set, is used instead (tests, custom stores).
	KnownHosts      string
	HostKeyCallback ssh.HostKeyCallback
	DialTimeout     time.Duration    // [30s]
	Timeout         time.Duration    // whole send, when ctx has no earlier deadline [15m]
	Now             func() time.Time // [time.Now]
}

// Sender is the SFTP deliver.Sender. Safe for concurrent use; one SSH
// connection per Send.
type Sender struct {
	cfg Config
	hk  ssh.HostKeyCallback
}

// New checks cfg and returns a Sender. The known_hosts file is read here.
func New(cfg Config) (*Sender, error) {
	if cfg.Signer == nil {
		return nil, fmt.Errorf("%w: an SSH key is required", deliver.ErrConfig)
	}
	hk := cfg.HostKeyCallback
	if hk == nil {
		if cfg.KnownHosts == "" {
			return nil, fmt.Errorf("%w: known_hosts is required", deliver.ErrConfig)
		}
		var err error
		if hk, err = knownhosts.New(cfg.KnownHosts); err != nil {
			return nil, fmt.Errorf("%w: known_hosts: %w", deliver.ErrConfig, err)
		}
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 30 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sender{cfg: cfg, hk: hk}, nil
}

// target is a parsed sftp:// address.
type target struct{ user, addr, dir string }

func parseAddress(a string) (target, error) {
	u, err := url.Parse(a)
	if err != nil || u.Scheme != "sftp" || u.Hostname() == "" || u.User == nil || u.User.Username() == "" {
		return target{}, fmt.Errorf("%w: %q is not sftp://user@host[:port]/dir", deliver.ErrConfig, a)
	}
	if _, hasPass := u.User.Password(); hasPass {
		return target{}, fmt.Errorf("%w: no password in SFTP addresses (key authentication only)", deliver.ErrConfig)
	}
	port := u.Port()
	if port == "" {
		port = "22"
	}
	dir := path.Clean("/" + u.Path)
	return target{user: u.User.Username(), addr: net.JoinHostPort(u.Hostname(), port), dir: dir}, nil
}

// Send implements deliver.Sender.
func (s *Sender) Send(ctx context.Context, m deliver.Message) (deliver.Receipt, error) {
	if !m.IsB2() {
		return deliver.Receipt{}, deliver.Permanent("compose", fmt.Errorf("%w: flow %q given to the SFTP sender", deliver.ErrConfig, m.Flow))
	}
	if m.Dest.Transport != "" && m.Dest.Transport != referentials.SFTP {
		return deliver.Receipt{}, deliver.Permanent("compose", fmt.Errorf("%w: transport %q given to the SFTP sender", deliver.ErrConfig, m.Dest.Transport))
	}
	t, err := parseAddress(m.Dest.Address)
	if err != nil {
		return deliver.Receipt{}, deliver.Permanent("compose", err)
	}
	data, name, err := dhttps.Payload(m)
	if err != nil {
		return deliver.Receipt{}, err
	}
	if err := ctx.Err(); err != nil {
		return deliver.Receipt{}, deliver.Temporary("dial", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()

	d := net.Dialer{Timeout: s.cfg.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return deliver.Receipt{}, deliver.Classify("dial", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var (
		hkMu       sync.Mutex
		hostKeyErr error
	)
	cfg := &ssh.ClientConfig{
		User: t.user,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(s.cfg.Signer)},
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			err := s.hk(host, remote, key)
			hkMu.Lock()
			hostKeyErr = err
			hkMu.Unlock()
			return err
		},
		Timeout: s.cfg.DialTimeout,
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, t.addr, cfg)
	if err != nil {
		hkMu.Lock()
		hkErr := hostKeyErr
		hkMu.Unlock()
		switch {
		case hkErr != nil:
			return deliver.Receipt{}, deliver.Permanent("hostkey", fmt.Errorf("%w: %w", deliver.ErrHostKey, hkErr))
		case ctx.Err() != nil:
			return deliver.Receipt{}, deliver.Temporary("ssh", fmt.Errorf("%w (%v)", ctx.Err(), err))
		case strings.Contains(err.Error(), "unable to authenticate"):
			return deliver.Receipt{}, deliver.Permanent("auth", fmt.Errorf("%w: %w", deliver.ErrConfig, err))
		}
		return deliver.Receipt{}, deliver.Classify("ssh", err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()
	sf, err := sftp.NewClient(client)
	if err != nil {
		return deliver.Receipt{}, s.fail(ctx, "sftp", err)
	}
	defer sf.Close()

	final := path.Join(t.dir, name)
	if len(m.Signature) > 0 {
		if err := s.put(ctx, sf, t.dir, dhttps.FileName(m)+".p7s", m.Signature); err != nil {
			return deliver.Receipt{}, err
		}
	}
	if err := s.put(ctx, sf, t.dir, name, data); err != nil {
		return deliver.Receipt{}, err
	}
	return deliver.Receipt{MessageID: final, Detail: fmt.Sprintf("uploaded %d bytes to %s", len(data), final), At: s.cfg.Now()}, nil
}

// put writes data to dir/.name.part, then renames it to dir/name.
func (s *Sender) put(ctx context.Context, sf *sftp.Client, dir, name string, data []byte) error {
	tmp := path.Join(dir, "."+name+".part")
	final := path.Join(dir, name)
	f, err := sf.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return s.fail(ctx, "create", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return s.fail(ctx, "upload", err)
	}
	if err := f.Close(); err != nil {
		return s.fail(ctx, "upload", err)
	}
	if _, ok := sf.HasExtension("posix-rename@openssh.com"); ok {
		err = sf.PosixRename(tmp, final)
	} else {
		err = sf.Rename(tmp, final)
	}
	if err != nil {
		_ = sf.Remove(tmp)
		return s.fail(ctx, "rename", err)
	}
	return nil
}

// fail classifies an SFTP error: permission denied and missing paths are
// permanent; a generic failure (disk full, server trouble) and network
// errors are temporary.
func (s *Sender) fail(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return deliver.Temporary(op, fmt.Errorf("%w (%v)", ctx.Err(), err))
	}
	var se *sftp.StatusError
	if errors.As(err, &se) {
		e := &deliver.Error{Op: op, Reply: se.Error(), Code: int(se.Code), Err: err}
		switch se.FxCode() {
		case sftp.ErrSSHFxPermissionDenied, sftp.ErrSSHFxNoSuchFile, sftp.ErrSSHFxOpUnsupported:
		default:
			e.Temporary = true
		}
		return e
	}
	if errors.Is(err, os.ErrPermission) || errors.Is(err, os.ErrNotExist) {
		return deliver.Permanent(op, err)
	}
	return deliver.Classify(op, err)
}
