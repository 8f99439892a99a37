package testenv

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHClientKey generates an ed25519 key pair for the OpenSSH client: the
// private key is written to dir/name (0600, OpenSSH format) and the signer
// returned for building authorized_keys lines.
func SSHClientKey(t testing.TB, dir, name string) (path string, signer ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "oct test key")
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if signer, err = ssh.NewSignerFromKey(priv); err != nil {
		t.Fatal(err)
	}
	return path, signer
}

// KnownHosts writes a known_hosts file trusting key for addr (host:port)
// and returns its path. The line is "[host]:port type base64", as OpenSSH
// writes it for a non-default port.
func KnownHosts(t testing.TB, dir, addr string, key ssh.PublicKey) string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	h := host
	if port != "22" {
		h = "[" + host + "]:" + port
	}
	line := h + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + "\n"
	path := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// SFTPOptions says how to run the OpenSSH sftp client.
type SFTPOptions struct {
	Addr       string // host:port
	User       string
	Identity   string // private key file
	KnownHosts string // known_hosts file (strict checking)
	Dir        string // working directory (local files of put/get)
}

// SFTPBatch runs `sftp -b` (batch mode) with lines as the batch file and
// returns its combined output; err is the exit status. A line starting with
// "-" may fail without stopping the batch. Call Need(t, "sftp") first.
func SFTPBatch(ctx context.Context, t testing.TB, o SFTPOptions, lines ...string) (string, error) {
	t.Helper()
	batch := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(batch, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd, err := SFTPCommand(ctx, o, batch)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// SFTPCommand is the `sftp -b batch` command SFTPBatch runs, for callers
// that run several at once (the batch file is theirs to write).
func SFTPCommand(ctx context.Context, o SFTPOptions, batch string) (*exec.Cmd, error) {
	host, port, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "sftp", "-q", "-b", batch, "-P", port, "-i", o.Identity,
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "UserKnownHostsFile="+o.KnownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10", "-F", "/dev/null",
		o.User+"@"+host)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	return cmd, nil
}
