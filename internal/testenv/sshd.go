package testenv

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Paths of the Debian openssh-server binaries. sshd re-executes itself, so
// it must be started by its absolute path.
const (
	SSHDPath       = "/usr/sbin/sshd"
	SFTPServerPath = "/usr/lib/openssh/sftp-server"
)

// SSHD is an OpenSSH sshd started by StartSSHD: loopback only, one
// authorised client key, the sftp subsystem served by the system
// sftp-server, no chroot (sshd refuses ChrootDirectory under a
// world-writable temporary directory).
type SSHD struct {
	*Proc
	Addr    string        // 127.0.0.1:port
	User    string        // account to log in ("root")
	HostKey ssh.PublicKey // for ssh.FixedHostKey / KnownHosts
	Client  ssh.Signer    // the authorised client key
	KeyPath string        // that key as an OpenSSH private key file (0600)
}

// StartSSHD starts sshd -D from a fresh temporary directory on a free
// loopback port and stops it (by PID, waited for) when t ends. sshd must
// run as root and only lets real accounts in, so the client logs in as
// root with a key; t is skipped when not root or when openssh-server is
// missing. Callers gate on Integration first.
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	NeedRoot(t)
	Need(t, SSHDPath, SFTPServerPath)
	// sshd refuses to start without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshd: %v", err)
	}
	dir := t.TempDir()

	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(hostPriv, "oct test sshd host key")
	if err != nil {
		t.Fatal(err)
	}
	hostKeyPath := filepath.Join(dir, "host_ed25519")
	if err := os.WriteFile(hostKeyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}

	keyPath, client := SSHClientKey(t, dir, "id_client")
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, ssh.MarshalAuthorizedKey(client.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}

	port := FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", Itoa(port))
	cfg := strings.Join([]string{
		"Port " + Itoa(port),
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKeyPath,
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"AuthorizedKeysFile " + authKeys,
		"StrictModes no", // the keys live in a temporary directory
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"PrintMotd no",
		"Subsystem sftp " + SFTPServerPath,
		"",
	}, "\n")
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	p := Start(t, Spec{
		Name: "sshd", Path: SSHDPath, Dir: dir,
		Args:  []string{"-D", "-e", "-f", cfgPath},
		Ready: sshBanner(addr),
	})
	return &SSHD{Proc: p, Addr: addr, User: "root", HostKey: hostSigner.PublicKey(), Client: client, KeyPath: keyPath}
}

// Dial logs in to the sshd with the authorised key, checking its host key.
func (d *SSHD) Dial() (*ssh.Client, error) {
	return ssh.Dial("tcp", d.Addr, &ssh.ClientConfig{
		User:            d.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(d.Client)},
		HostKeyCallback: ssh.FixedHostKey(d.HostKey),
		Timeout:         10 * time.Second,
	})
}

// sshBanner is a readiness probe: the address answers with an SSH version
// line.
func sshBanner(addr string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var dl net.Dialer
		c, err := dl.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetReadDeadline(dl)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != "SSH-" {
			return fmt.Errorf("%w: no SSH banner on %s", ErrNotReady, addr)
		}
		return nil
	}
}
