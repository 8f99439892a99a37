package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Dovecot is a self-contained Dovecot IMAP server started for one test:
// plain IMAP on 127.0.0.1 only, one passwd-file user, maildir storage, all
// state under Dir. It runs as nobody when the test runs as root (the
// helpers need a user that can read Dir), else as the current user.
type Dovecot struct {
	Addr     string // 127.0.0.1:PORT
	User     string
	Password string
	Dir      string
	Proc     *Proc
}

// dovecotPath finds dovecot: on PATH or at Debian's /usr/sbin/dovecot.
func dovecotPath(t testing.TB) string {
	if p, err := exec.LookPath("dovecot"); err == nil {
		return p
	}
	return Need(t, "/usr/sbin/dovecot")[0]
}

// StartDovecot runs Dovecot in the foreground from a fresh directory with
// the configuration of docs/components.md §3 (per-IP auth penalty off,
// empty base_dir, no failure delay) on a free loopback port, waits for
// the "* OK" greeting and stops it by PID, waiting for the exit, when the
// test ends. It skips (fails under CI) when dovecot is missing: install
// the Debian package dovecot-imapd.
func StartDovecot(t testing.TB) *Dovecot {
	t.Helper()
	Integration(t)
	bin := dovecotPath(t)
	runUser, runGroup, uid, gid := currentIDs(t)
	var argv []string
	if os.Geteuid() == 0 {
		setpriv := Need(t, "setpriv")[0]
		runUser, runGroup, uid, gid = lookupIDs(t, "nobody")
		argv = []string{setpriv, "--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--clear-groups"}
	}
	// Not t.TempDir: its parents are 0700, out of reach of nobody.
	dir, err := os.MkdirTemp("", "oct-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // registered first: runs after the stop
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &Dovecot{User: "oct@example.test", Password: "oct-test-secret", Dir: dir}
	port := FreePort(t)
	d.Addr = "127.0.0.1:" + strconv.Itoa(port)
	for _, sub := range []string{"run", "state", "mail"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`protocols = imap
listen = 127.0.0.1
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
instance_name = oct-dovecot-%[2]d
default_internal_user = %[3]s
default_internal_group = %[4]s
default_login_user = %[3]s
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[1]s/users
}
userdb {
  driver = static
  args = uid=%[5]d gid=%[6]d home=%[1]s/mail/%%u
}
mail_location = maildir:~/Maildir
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]d
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
protocol imap {
  mail_max_userip_connections = 50
}
`, dir, port, runUser, runGroup, uid, gid)
	confPath := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	users := fmt.Sprintf("%s:{PLAIN}%s::::::nodelay\n", d.User, d.Password)
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte(users), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := chownTree(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	argv = append(argv, bin, "-F", "-c", confPath)
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "dovecot.log")); err == nil {
				t.Logf("--- dovecot.log:\n%s", b)
			}
		}
	})
	d.Proc = Start(t, Spec{
		Name: "dovecot", Path: argv[0], Args: argv[1:], Dir: dir,
		Ready: func(ctx context.Context) error { return imapGreeting(ctx, d.Addr) },
		// Dovecot's master takes ≈2 s to exit; wait for it (a restart before
		// that fails with "already running").
		StopTimeout: 15 * time.Second,
	})
	return d
}

// imapGreeting is the readiness probe: the server answers "* OK".
func imapGreeting(ctx context.Context, addr string) error {
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "* OK") {
		return fmt.Errorf("%w: greeting %q", ErrNotReady, strings.TrimSpace(line))
	}
	return nil
}

func currentIDs(t testing.TB) (string, string, int, int) {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return idsOf(t, u)
}

func lookupIDs(t testing.TB, name string) (string, string, int, int) {
	u, err := user.Lookup(name)
	if err != nil {
		t.Skipf("user %s not found: %v", name, err)
	}
	return idsOf(t, u)
}

func idsOf(t testing.TB, u *user.User) (string, string, int, int) {
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		t.Fatalf("ids of %s: %s/%s", u.Username, u.Uid, u.Gid)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatalf("group %s: %v", u.Gid, err)
	}
	return u.Username, g.Name, uid, gid
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
