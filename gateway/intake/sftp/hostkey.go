package sftp

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"

	"github.com/octgw/oct/internal/durable"
)

// HostKeyFile is the name of the host key in the data directory.
const HostKeyFile = "ssh_host_ed25519_key"

// LoadOrCreateHostKey returns the server's host key stored as
// dir/ssh_host_ed25519_key (OpenSSH private key format). On first start the
// key is generated (ed25519) and written with mode 0600; afterwards it is
// reused, so vendors' known_hosts stay valid. A key file readable by group or
// others is refused.
func LoadOrCreateHostKey(dir string) (ssh.Signer, error) {
	p := filepath.Join(dir, HostKeyFile)
	data, err := os.ReadFile(p)
	switch {
	case err == nil:
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("sftp: host key: %w", err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("sftp: host key %s: mode %v, want 0600", p, info.Mode().Perm())
		}
		s, err := ssh.ParsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("sftp: host key %s: %w", p, err)
		}
		return s, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("sftp: host key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sftp: host key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sftp: host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "oct host key")
	if err != nil {
		return nil, fmt.Errorf("sftp: host key: %w", err)
	}
	// Written to a temporary file and linked into place, so that two nodes
	// starting at once on the same directory end up with one key.
	err = durable.CreateFile(dir, HostKeyFile, func(w io.Writer) error {
		_, err := w.Write(pem.EncodeToMemory(block))
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sftp: host key: %w", err)
	}
	return LoadOrCreateHostKey(dir)
}

// KnownHostsLine returns the known_hosts line vendors add for this server,
// e.g. "[sftp.example]:2222 ssh-ed25519 AAAA...".
func KnownHostsLine(hostport string, key ssh.PublicKey) string {
	return knownHostsAddr(hostport) + " " + string(trimNL(ssh.MarshalAuthorizedKey(key)))
}

func knownHostsAddr(hostport string) string {
	host, port, err := splitHostPort(hostport)
	if err != nil || port == "22" {
		if err != nil {
			return hostport
		}
		return host
	}
	return "[" + host + "]:" + port
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
