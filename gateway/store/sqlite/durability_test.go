package sqlite

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

func hexSum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func testFile(id string) store.File {
	return store.File{ID: id, Tenant: "acme", Channel: "sftp", Name: id, SHA256: hexSum(id), Size: int64(len(id)),
		Format: "b2", State: lifecycle.FileReceived}
}

// TestTamperDetected edits an event row behind the store's back and checks
// that VerifyChain names it.
func TestTamperDetected(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oct.db")
	s := openTest(t, Options{Path: path})
	for i := 0; i < 10; i++ {
		id := fmt.Sprint("F", i)
		if _, _, err := s.CreateFile(ctx, testFile(id), nil); err != nil {
			t.Fatal(err)
		}
	}
	if checked, broken, err := store.VerifyChain(ctx, s, nil); err != nil || broken != 0 || checked != 10 {
		t.Fatalf("before tampering: %d, %d, %v", checked, broken, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The log is append-only for anyone going through SQL...
	if _, err := db.Exec(`UPDATE events SET reason = 'edited' WHERE seq = 7`); err == nil {
		t.Fatal("UPDATE of an event allowed")
	}
	if _, err := db.Exec(`DELETE FROM events WHERE seq = 7`); err == nil {
		t.Fatal("DELETE of an event allowed")
	}
	// ...but someone with the file can drop the triggers: the chain tells.
	if _, err := db.Exec(`DROP TRIGGER events_no_update`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE events SET actor = 'mallory' WHERE seq = 7`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s = openTest(t, Options{Path: path})
	checked, broken, err := store.VerifyChain(ctx, s, nil)
	if !errors.Is(err, store.ErrBrokenChain) || broken != 7 || checked != 6 {
		t.Fatalf("after tampering: checked %d, broken %d, err %v; want 6, 7, broken chain", checked, broken, err)
	}
}

// TestReopen checks that data, the schema version and the chain survive a
// close and reopen, and that new events chain onto the old ones.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oct.db")
	s := openTest(t, Options{Path: path})
	if _, _, err := s.CreateFile(ctx, testFile("F1"), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, Options{Path: path})
	if _, err := s.File(ctx, "F1"); err != nil {
		t.Fatalf("F1 after reopen: %v", err)
	}
	if _, _, err := s.CreateFile(ctx, testFile("F2"), nil); err != nil {
		t.Fatal(err)
	}
	if checked, broken, err := store.VerifyChain(ctx, s, nil); err != nil || broken != 0 || checked != 2 {
		t.Fatalf("chain across reopen: %d, %d, %v", checked, broken, err)
	}
	var v int
	if err := s.rdb.QueryRow(`SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("schema version %d (%v), want %d", v, err, len(migrations))
	}
	var mode string
	if err := s.rdb.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q (%v)", mode, err)
	}
	var sync int
	if err := s.w.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("writer synchronous = %d (%v), want 2 (FULL)", sync, err)
	}
	s.Close()

	// A database from a newer build is refused.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_version(version) VALUES (?)`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(ctx, Options{Path: path}); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

// TestCloseWhileBusy closes the store while many goroutines are writing:
// every call returns (nil, ErrClosed or a context error), nothing hangs, and
// every acknowledged file is there after reopening.
func TestCloseWhileBusy(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oct.db")
	s, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	var acked sync.Map
	var n atomic.Int64
	reached := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("F%d-%d", g, i)
				_, _, err := s.CreateFile(ctx, testFile(id), nil)
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("CreateFile: %v", err)
					return
				}
				acked.Store(id, true)
				if n.Add(1) == 200 {
					once.Do(func() { close(reached) })
				}
			}
		}(g)
	}
	select {
	case <-reached:
	case <-time.After(30 * time.Second):
		t.Error("200 files not acknowledged in 30s")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s = openTest(t, Options{Path: path})
	count := 0
	acked.Range(func(k, _ any) bool {
		count++
		if _, err := s.File(ctx, k.(string)); err != nil {
			t.Errorf("acknowledged %s lost: %v", k, err)
		}
		return true
	})
	if count < 200 {
		t.Fatalf("only %d files acknowledged", count)
	}
}

const crashEnv = "OCT_SQLITE_CRASH_DB"

// TestCrashDurability runs a child process that creates files as fast as it
// can and prints the id of each one CreateFile acknowledged, SIGKILLs it
// after a random number of acknowledgements, reopens the database and checks
// that every acknowledged file is there and that the event chain verifies.
// Three rounds on the same database.
func TestCrashDurability(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path, os.Getenv(crashEnv+"_ROUND"))
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oct.db")
	total := 0
	for round := 0; round < 3; round++ {
		killAfter := 50 + rand.IntN(400)
		acked := runAndKill(t, path, round, killAfter)
		if len(acked) < killAfter {
			t.Fatalf("round %d: child acknowledged %d files, want at least %d", round, len(acked), killAfter)
		}
		s, err := Open(ctx, Options{Path: path})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		for _, id := range acked {
			if _, err := s.File(ctx, id); err != nil {
				t.Errorf("round %d: acknowledged file %s lost: %v", round, id, err)
			}
		}
		checked, broken, err := store.VerifyChain(ctx, s, nil)
		if err != nil || broken != 0 {
			t.Fatalf("round %d: chain after SIGKILL: checked %d, broken %d, %v", round, checked, broken, err)
		}
		total += len(acked)
		if checked < int64(total) {
			t.Fatalf("round %d: %d events for %d acknowledged files", round, checked, total)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: killed after %d acks, %d events verified", round, len(acked), checked)
	}
}

// runAndKill starts the child and SIGKILLs it once it has acknowledged
// killAfter files; it returns every id the child acknowledged.
func runAndKill(t *testing.T, path string, round, killAfter int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDurability$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path, fmt.Sprint(crashEnv, "_ROUND=", round))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() }) // bound, not a synchronisation
	defer timer.Stop()
	var acked []string
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		id, ok := strings.CutPrefix(sc.Text(), "ack ")
		if !ok {
			continue
		}
		acked = append(acked, id)
		if !killed && len(acked) >= killAfter {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("round %d: child ended before the kill: %v", round, err)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: child did not die of SIGKILL: %v", round, err)
	}
	return acked
}

// crashChild writes until killed (or for 50 s at most).
func crashChild(path, round string) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	s, err := Open(ctx, Options{Path: path})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("R%s-G%02d-%06d", round, g, i)
				_, _, err := s.CreateFile(ctx, testFile(id), &store.Change{
					Lots:    []store.Lot{{ID: "L" + id, File: id, Tenant: "acme", State: lifecycle.LotCreated}},
					Enqueue: []store.Job{{Kind: "validate", Subject: "file:" + id}},
				})
				if err != nil {
					continue
				}
				if i%3 == 0 {
					_ = s.Commit(ctx, &store.Change{Transitions: []store.Transition{
						{Kind: lifecycle.File, ID: id, From: lifecycle.FileReceived, To: lifecycle.FileAccepted},
					}})
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %s\n", id)
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	_ = s.Close()
	os.Exit(0)
}

// TestMigrateFromV1 opens a database left at schema version 1 and checks
// that Open brings it to the latest version and keeps its rows.
func TestMigrateFromV1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oct.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_version (version INTEGER NOT NULL)`,
		migrations[0],
		`INSERT INTO schema_version(version) VALUES (1)`,
		`INSERT INTO files(id, tenant, sha256, state) VALUES ('F1', 'acme', 'abc', 'received')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s := openTest(t, Options{Path: path})
	if f, err := s.File(ctx, "F1"); err != nil || f.Tenant != "acme" {
		t.Fatalf("F1 after migration: %+v, %v", f, err)
	}
	var v, idx int
	if err := s.rdb.QueryRow(`SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("version %d (%v), want %d", v, err, len(migrations))
	}
	if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'jobs_due_any'`).Scan(&idx); err != nil || idx != 1 {
		t.Fatalf("migration 2 index: %d, %v", idx, err)
	}
}
