package testenv

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SwaksOptions says how to run swaks against an SMTP server.
type SwaksOptions struct {
	Addr     string // host:port
	User     string // AUTH PLAIN user ("" = no AUTH)
	Password string
	From, To string
	NoTLS    bool   // do not issue STARTTLS
	Data     []byte // the whole message (headers and body)
}

// NeedSwaksTLS skips t (fails it under CI=true) when swaks is missing or
// cannot do STARTTLS (Debian's libnet-ssleay-perl is not installed).
func NeedSwaksTLS(t testing.TB) {
	t.Helper()
	Need(t, "swaks")
	out, _ := exec.Command("swaks", "--support").CombinedOutput()
	if !strings.Contains(string(out), "TLS supported") {
		msg := "swaks cannot do STARTTLS: install libnet-ssleay-perl"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// Swaks sends one message with swaks (STARTTLS required unless NoTLS, AUTH
// PLAIN when User is set) and returns the transcript; err is the exit
// status (non-zero when the server refused a step). Call NeedSwaksTLS
// first.
func Swaks(ctx context.Context, t testing.TB, o SwaksOptions, extra ...string) (string, error) {
	t.Helper()
	host, port, err := net.SplitHostPort(o.Addr)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "message.eml")
	if err := os.WriteFile(data, o.Data, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--server", host, "--port", port, "--from", o.From, "--to", o.To,
		"--data", "@" + data, "--timeout", "20", "--helo", "vendor.test"}
	if !o.NoTLS {
		args = append(args, "--tls")
	}
	if o.User != "" {
		args = append(args, "--auth", "PLAIN", "--auth-user", o.User, "--auth-password", o.Password)
	}
	args = append(args, extra...)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "swaks", args...).CombinedOutput()
	return string(out), err
}
