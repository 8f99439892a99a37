package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// vpcdDriver is the vpcd reader driver of the Debian package vsmartcard-vpcd.
const vpcdDriver = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"

// VPCDBasePort is the TCP port of the first vpcd slot; slot i listens on
// VPCDBasePort+i, inside the namespace only.
const VPCDBasePort = 35963

// PCSC is a pcscd with vpcd readers, running together with its card
// processes in a network and mount namespace of its own: the vpcd ports
// (which bind 0.0.0.0) are unreachable from the host, and pcscd's socket,
// hard-wired to /run/pcscd/pcscd.comm, is a bind mount of a private
// directory. Clients reach it through PCSCLITE_CSOCK_NAME=Socket. Slot i
// is the vpcd port VPCDBasePort+i; clients find the reader names with
// SCardListReaders ("Virtual PCD 00 00", "Virtual PCD 00 01", ...).
type PCSC struct {
	Dir    string // work directory: reader.conf.d, logs, pid files
	Socket string // pcscd.comm, for PCSCLITE_CSOCK_NAME
	Log    string // pcscd -d log file
	Proc   *Proc  // the namespace's shell; its exit means everything exited
}

// PCSCCard is a card process to start in the namespace: Args[0] is the
// binary; "{port}" in an argument becomes the vpcd port of its slot.
type PCSCCard struct {
	Args []string
}

var (
	pcscMu     sync.Mutex
	pcscActive bool
)

// pcscRunDir is the directory bind-mounted on /run/pcscd. libpcsclite reads
// PCSCLITE_CSOCK_NAME once per process, so every instance in one test
// process uses the same socket path (instances run one after the other).
func pcscRunDir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("oct-pcscd-%d", os.Getpid()))
}

// StartPCSC starts pcscd with one vpcd slot per card and the card
// processes, in a new network and mount namespace, waits until every card
// is present, sets PCSCLITE_CSOCK_NAME for the test process, and stops
// everything by PID when the test ends. Only one instance may run at a
// time per process. It skips unless OCT_INTEGRATION=1 and when not root or
// pcscd, unshare, ip or the vpcd driver are missing (Debian packages pcscd,
// vsmartcard-vpcd, util-linux, iproute2).
func StartPCSC(t testing.TB, cards ...PCSCCard) *PCSC {
	t.Helper()
	Integration(t)
	NeedRoot(t)
	bins := Need(t, "/usr/sbin/pcscd", "unshare", "ip", "bash")
	if _, err := os.Stat(vpcdDriver); err != nil {
		msg := vpcdDriver + " not found: install the Debian package vsmartcard-vpcd"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if len(cards) == 0 || len(cards) > 8 {
		t.Fatalf("StartPCSC: %d cards, want 1..8", len(cards))
	}
	pcscMu.Lock()
	if pcscActive {
		pcscMu.Unlock()
		t.Fatal("StartPCSC: another instance is running in this process")
	}
	pcscActive = true
	pcscMu.Unlock()
	t.Cleanup(func() {
		pcscMu.Lock()
		pcscActive = false
		pcscMu.Unlock()
	})

	w := t.TempDir()
	run := pcscRunDir()
	if err := os.RemoveAll(run); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(run) })
	conf := filepath.Join(w, "reader.conf.d")
	if err := os.Mkdir(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	// One reader.conf entry serves two slots (ports base and base+1).
	var rc strings.Builder
	for i := 0; i < (len(cards)+1)/2; i++ {
		port := VPCDBasePort + 2*i
		fmt.Fprintf(&rc, "FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME /dev/null:0x%04X\nLIBPATH %s\nCHANNELID 0x%04X\n\n", port, vpcdDriver, port)
	}
	if err := os.WriteFile(filepath.Join(conf, "vpcd"), []byte(rc.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	p := &PCSC{Dir: w, Socket: filepath.Join(run, "pcscd.comm"), Log: filepath.Join(w, "pcscd.log")}
	var script strings.Builder
	script.WriteString("set -e\nip link set lo up\nmkdir -p /run/pcscd\nmount --bind " + shQuote(run) + " /run/pcscd\n")
	fmt.Fprintf(&script, "%s -f -d -c %s > %s 2>&1 &\necho $! > %s\n", shQuote(bins[0]), shQuote(conf), shQuote(p.Log), shQuote(filepath.Join(w, "pcscd.pid")))
	for i, c := range cards {
		var args []string
		for _, a := range c.Args {
			args = append(args, shQuote(strings.ReplaceAll(a, "{port}", fmt.Sprint(VPCDBasePort+i))))
		}
		fmt.Fprintf(&script, "%s > %s 2>&1 &\necho $! > %s\n", strings.Join(args, " "),
			shQuote(filepath.Join(w, fmt.Sprintf("card%d.log", i))), shQuote(filepath.Join(w, fmt.Sprintf("card%d.pid", i))))
	}
	script.WriteString("set +e\nwait\n")
	if err := os.WriteFile(filepath.Join(w, "run.sh"), []byte(script.String()), 0o755); err != nil {
		t.Fatal(err)
	}

	t.Setenv("PCSCLITE_CSOCK_NAME", p.Socket)
	// Runs last: the logs of a failed test, including a failed start.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, f := range []string{"pcscd.log", "card0.log", "card1.log", "card2.log", "card3.log"} {
			if b, err := os.ReadFile(filepath.Join(w, f)); err == nil {
				t.Logf("--- %s (tail):\n%s", f, tail(string(b), 20000))
			}
		}
	})
	p.Proc = Start(t, Spec{
		Name: "pcscd+cards",
		Path: bins[1],
		Args: []string{"--net", "--mount", "--propagation", "private", bins[3], filepath.Join(w, "run.sh")},
		Dir:  w,
		// Ready: the socket exists and pcscd powered every card. pcscd -d
		// logs "Card ATR:" once per card it detects, whether the card was
		// there when the reader started ("Card inserted into" is logged
		// only for a card that arrives later).
		Ready: func(ctx context.Context) error {
			if _, err := os.Stat(p.Socket); err != nil {
				return ErrNotReady
			}
			b, err := os.ReadFile(p.Log)
			if err != nil || strings.Count(string(b), "Card ATR:") < len(cards) {
				return ErrNotReady
			}
			return nil
		},
		ReadyTimeout: 20 * time.Second,
	})
	// Stop the children by PID first, so that the shell reaps them and
	// exits; its exit (Proc) then means everything is gone.
	t.Cleanup(func() {
		pids := []string{filepath.Join(w, "pcscd.pid")}
		for i := range cards {
			pids = append(pids, filepath.Join(w, fmt.Sprintf("card%d.pid", i)))
		}
		for _, f := range pids {
			if pid, err := readPID(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGTERM)
			}
		}
		select {
		case <-p.Proc.Exited():
		case <-time.After(10 * time.Second):
			t.Errorf("pcscd or a card did not stop on SIGTERM; killing the group")
			p.Proc.Stop(syscall.SIGKILL, time.Second)
		}
	})
	return p
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 0 {
		return 0, errors.Join(errors.New("bad pid file "+path), err)
	}
	return pid, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// CardLog returns the output of card i.
func (p *PCSC) CardLog(i int) string {
	b, _ := os.ReadFile(filepath.Join(p.Dir, fmt.Sprintf("card%d.log", i)))
	return string(b)
}
