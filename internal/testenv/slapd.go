package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// Slapd is an OpenLDAP server started for one test, with an mdb database
// for Suffix, administered as RootDN/RootPW, listening on 127.0.0.1 only.
type Slapd struct {
	URL    string // ldap://127.0.0.1:PORT
	Addr   string // 127.0.0.1:PORT
	Suffix string
	RootDN string
	RootPW string
	Proc   *Proc
}

// slapdPath finds slapd: on PATH or at Debian's /usr/sbin/slapd.
func slapdPath(t testing.TB) string {
	if p, err := exec.LookPath("slapd"); err == nil {
		return p
	}
	return Need(t, "/usr/sbin/slapd")[0]
}

// StartSlapd runs slapd in the foreground from a temporary directory with
// its own slapd.conf (core, cosine and inetorgperson schemas, back_mdb),
// waits until a bind as RootDN works, creates the suffix entry and stops
// it by PID when the test ends. It skips (fails under CI) when slapd or the
// schemas are missing: install the Debian packages slapd and ldap-utils.
func StartSlapd(t testing.TB, suffix string) *Slapd {
	t.Helper()
	Integration(t)
	bin := slapdPath(t)
	for _, f := range []string{"/etc/ldap/schema/core.schema", "/usr/lib/ldap/back_mdb.so"} {
		if _, err := os.Stat(f); err != nil {
			msg := f + " not found: install the Debian package slapd"
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	if err := os.Mkdir(db, 0o700); err != nil {
		t.Fatal(err)
	}
	s := &Slapd{Suffix: suffix, RootDN: "cn=admin," + suffix, RootPW: "oct-test-secret"}
	port := FreePort(t)
	s.Addr = "127.0.0.1:" + strconv.Itoa(port)
	s.URL = "ldap://" + s.Addr + "/"
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 16777216
suffix %[2]q
rootdn %[3]q
rootpw %[4]s
directory %[5]s
`, dir, suffix, s.RootDN, s.RootPW, db)
	confPath := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Proc = Start(t, Spec{
		Name: "slapd", Path: bin, Dir: dir,
		// -d 0: stay in the foreground (no fork), so the PID is slapd's.
		Args: []string{"-d", "0", "-f", confPath, "-h", s.URL},
		Ready: func(ctx context.Context) error {
			c, err := s.dial()
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Bind(s.RootDN, s.RootPW)
		},
	})
	s.Add(t, suffix, map[string][]string{"objectClass": {"organization"}, "o": {firstValue(suffix)}})
	return s
}

func firstValue(dn string) string {
	parsed, err := ldap.ParseDN(dn)
	if err != nil || len(parsed.RDNs) == 0 || len(parsed.RDNs[0].Attributes) == 0 {
		return dn
	}
	return parsed.RDNs[0].Attributes[0].Value
}

func (s *Slapd) dial() (*ldap.Conn, error) {
	return ldap.DialURL(s.URL)
}

// Conn returns a connection bound as RootDN, closed at the end of the test.
func (s *Slapd) Conn(t testing.TB) *ldap.Conn {
	t.Helper()
	c, err := s.dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Bind(s.RootDN, s.RootPW); err != nil {
		t.Fatal(err)
	}
	return c
}

// Add creates an entry. Attribute values are raw bytes as strings, so
// "userCertificate;binary" takes DER.
func (s *Slapd) Add(t testing.TB, dn string, attrs map[string][]string) {
	t.Helper()
	req := ldap.NewAddRequest(dn, nil)
	for k, v := range attrs {
		req.Attribute(k, v)
	}
	if err := s.Conn(t).Add(req); err != nil {
		t.Fatalf("ldap add %s: %v", dn, err)
	}
}

// AddValues adds values to an attribute of an existing entry.
func (s *Slapd) AddValues(t testing.TB, dn, attr string, values ...string) {
	t.Helper()
	req := ldap.NewModifyRequest(dn, nil)
	req.Add(attr, values)
	if err := s.Conn(t).Modify(req); err != nil {
		t.Fatalf("ldap modify %s: %v", dn, err)
	}
}
