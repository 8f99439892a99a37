package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// SoftHSM is a SoftHSM2 token store private to one test: its own token
// directory and softhsm2.conf, pointed to by SOFTHSM2_CONF in the test
// process environment (SoftHSM reads it at C_Initialize, so it must be set
// before any PKCS#11 context is opened).
type SoftHSM struct {
	Dir    string // token directory
	Conf   string // softhsm2.conf path
	Module string // PKCS#11 module path (libsofthsm2.so)
	util   string
}

// softHSMModules are where Debian's softhsm2 package puts the module.
var softHSMModules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
}

// NewSoftHSM prepares an empty token store for t and sets SOFTHSM2_CONF
// (t.Setenv: the test must not be parallel). It skips unless
// OCT_INTEGRATION=1, and when softhsm2-util or the module is missing
// (install the Debian package softhsm2).
func NewSoftHSM(t testing.TB) *SoftHSM {
	t.Helper()
	Integration(t)
	util := Need(t, "softhsm2-util")[0]
	s := &SoftHSM{util: util}
	for _, m := range softHSMModules {
		if _, err := os.Stat(m); err == nil {
			s.Module = m
			break
		}
	}
	if s.Module == "" {
		msg := "libsofthsm2.so not found: install the Debian package softhsm2"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// Not t.TempDir: its name carries the test name, and SoftHSM's config
	// parser cuts a value at a '=' (as in "members=2").
	dir, err := os.MkdirTemp("", "oct-softhsm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	s.Dir = filepath.Join(dir, "tokens")
	if err := os.Mkdir(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s.Conf = filepath.Join(dir, "softhsm2.conf")
	conf := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", s.Dir)
	if err := os.WriteFile(s.Conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", s.Conf)
	return s
}

// InitToken creates a token in the next free slot. Select it by label: the
// slot id changes when the token is created.
func (s *SoftHSM) InitToken(t testing.TB, label, soPIN, pin string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.util, "--init-token", "--free", "--label", label, "--so-pin", soPIN, "--pin", pin)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+s.Conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("softhsm2-util --init-token %s: %v\n%s", label, err, out.String())
	}
}
