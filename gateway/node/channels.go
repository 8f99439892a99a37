package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/intake/sftp"
	"github.com/octgw/oct/gateway/intake/smtp"
	"github.com/octgw/oct/gateway/store"
)

// storeKeys finds the tenant of an SSH key from the tenants' authorized
// keys in the store, rebuilt at most every refresh so a key added with
// `oct tenant add-key` works within seconds, without a restart.
type storeKeys struct {
	st      store.Store
	refresh time.Duration
	mu      sync.Mutex
	ring    *sftp.KeyRing
	built   time.Time
}

func (k *storeKeys) TenantForKey(ctx context.Context, key ssh.PublicKey) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ring == nil || time.Since(k.built) > k.refresh {
		ts, err := k.st.Tenants(ctx)
		if err != nil {
			return "", err
		}
		keys := map[string][]string{}
		for _, t := range ts {
			if !t.Disabled && len(t.SSHKeys) > 0 {
				keys[t.ID] = t.SSHKeys
			}
		}
		ring, err := sftp.NewKeyRing(keys)
		if err != nil {
			return "", err
		}
		k.ring, k.built = ring, time.Now()
	}
	return k.ring.TenantForKey(ctx, key)
}

// tokenAuth checks SMTP AUTH PLAIN: the user is the tenant id, the password
// its API token.
type tokenAuth struct{ st store.Store }

func (a tokenAuth) CheckPassword(ctx context.Context, user, pass string) (string, error) {
	t, err := a.st.TenantByToken(ctx, gateway.TokenHash(pass))
	if errors.Is(err, store.ErrNotFound) || (err == nil && (t.ID != user || t.Disabled)) {
		return "", smtp.ErrBadCredentials
	}
	if err != nil {
		return "", err
	}
	return t.ID, nil
}

// channels are the intake servers besides HTTP.
type channels struct {
	sftp   *sftp.Server
	sftpLn net.Listener
	smtp   *smtp.Server
	smtpLn net.Listener
}

func (n *Node) openChannels() error {
	cfg := n.Config
	folders := n.Folders
	if cfg.SFTP.Listen != "" {
		hk, err := sftp.LoadOrCreateHostKey(cfg.DataDir)
		if err != nil {
			return fmt.Errorf("sftp host key: %w", err)
		}
		lim := sftp.DefaultLimits()
		lim.MaxFileSize = int64(cfg.Limits.MaxFileBytes)
		lim.FilesPerMinute = cfg.SFTP.FilesPerMinute
		lim.MaxSessions = cfg.SFTP.MaxSessions
		lim.MaxUploads = cfg.SFTP.MaxUploads
		lim.DiskQuota = int64(cfg.SFTP.DiskQuota)
		srv, err := sftp.New(sftp.Config{
			HostKey: hk, Folders: folders, Tenants: &storeKeys{st: n.Store, refresh: 5 * time.Second},
			Intaker: n.Gateway, Logger: n.Logger, Limits: func(string) sftp.Limits { return lim },
			MaxFollowed: cfg.SFTP.MaxFollowed, DirectWrites: cfg.SFTP.DirectWrites,
		})
		if err != nil {
			return fmt.Errorf("sftp: %w", err)
		}
		n.ch.sftp = srv
		if n.ch.sftpLn, err = net.Listen("tcp", cfg.SFTP.Listen); err != nil {
			return fmt.Errorf("sftp: %w", err)
		}
	}
	if cfg.SMTP.Listen != "" {
		cert, err := tls.LoadX509KeyPair(cfg.SMTP.CertFile, cfg.SMTP.KeyFile)
		if err != nil {
			return fmt.Errorf("smtp TLS: %w", err)
		}
		sc := smtp.Config{
			TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, Tenants: tokenAuth{n.Store},
			Intaker: n.Gateway, Logger: n.Logger, Domain: cfg.SMTP.Domain, MaxFileSize: int64(cfg.Limits.MaxFileBytes), Folders: n.Folders,
		}
		if cfg.SMTP.SMIMECertFile != "" {
			if sc.Decrypter, err = loadDecrypter(cfg.SMTP.SMIMECertFile, cfg.SMTP.SMIMEKeyFile); err != nil {
				return fmt.Errorf("smtp S/MIME: %w", err)
			}
		}
		srv, err := smtp.New(sc)
		if err != nil {
			return fmt.Errorf("smtp: %w", err)
		}
		n.ch.smtp = srv
		if n.ch.smtpLn, err = net.Listen("tcp", cfg.SMTP.Listen); err != nil {
			return fmt.Errorf("smtp: %w", err)
		}
	}
	return nil
}

// SFTPAddr is the SFTP listener's address, or nil when SFTP is off.
func (n *Node) SFTPAddr() net.Addr {
	if n.ch.sftpLn == nil {
		return nil
	}
	return n.ch.sftpLn.Addr()
}

// SMTPAddr is the SMTP listener's address, or nil when SMTP is off.
func (n *Node) SMTPAddr() net.Addr {
	if n.ch.smtpLn == nil {
		return nil
	}
	return n.ch.smtpLn.Addr()
}

// serveChannels runs the SFTP and SMTP servers until ctx ends; the returned
// wait blocks until both have stopped every goroutine they started.
func (n *Node) serveChannels(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	if n.ch.sftp != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.ch.sftp.Serve(ctx, n.ch.sftpLn); err != nil && ctx.Err() == nil {
				n.Logger.Error("sftp server stopped", "error", err)
			}
		}()
	}
	if n.ch.smtp != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.ch.smtp.Serve(ctx, n.ch.smtpLn); err != nil && ctx.Err() == nil {
				n.Logger.Error("smtp server stopped", "error", err)
			}
		}()
	}
	return wg.Wait
}

func loadDecrypter(certFile, keyFile string) (*smtp.Decrypter, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM certificate", certFile)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, err
	}
	return &smtp.Decrypter{Cert: cert, Key: pair.PrivateKey}, nil
}
