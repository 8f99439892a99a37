package sftp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	b2fmt "github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/intake/mailbox"
	"github.com/octgw/oct/gateway/store/blobdir"
	"github.com/octgw/oct/gateway/store/sqlite"
	"github.com/octgw/oct/internal/testenv"
)

// BenchmarkSFTPThroughput uploads the same files with the same client to
// OCT's SFTP intake and to OpenSSH sshd + sftp-server, side by side in one
// run, over loopback. Two clients, each against every server:
//
//   - pkg/sftp (large/sessions=N, small/sessions=N): concurrent writes, 64
//     requests in flight per file, N SFTP sessions on one SSH connection,
//     in this process (which also runs the OCT servers);
//   - the OpenSSH sftp client (large/sftp-client/sessions=N): `sftp -b`
//     with its defaults (64 requests of 32 KiB in flight, the cipher it
//     prefers: chacha20-poly1305), N client processes each putting its
//     share of the files, read from a local directory written (and synced)
//     before the timing, as a vendor's script uploads.
//
// The servers:
//
//   - OCT ("oct"): this package's Server with a real gateway.Gateway
//     (SQLite store with group commit, blobdir) as the Intaker, following
//     each upload (hash and validation as the bytes arrive), as
//     configured by default. A file's upload counts as done when the
//     client's close returns, which is after the durable take-in (raw bytes
//     and file row fsync'd, acknowledgement written to outbox/). The
//     pipeline workers do not run: intake is what is measured.
//   - "oct_direct": the same with Config.DirectWrites (the upload written
//     to disk in O_DIRECT blocks): what direct writes change.
//   - "oct_atclose": the same, the Intaker hiding gateway.FollowIntaker, so
//     that each file is read, hashed and validated when the client closes
//     it (as before following existed): what following changes.
//   - OpenSSH: /usr/sbin/sshd started from a temporary directory on a free
//     loopback port, root logging in with a key, files written by
//     sftp-server into a temporary directory (no fsync); "openssh_synced"
//     is the same followed by a timed syncfs.
//
// The files are valid B2 (formats/b2fmt.Generate), each with a unique file
// number so that none is an idempotent replay. Each round uploads the whole
// set to every server, the order rotating between rounds; the metrics
// are totals over the rounds. Root only, OCT_INTEGRATION=1:
//
//	OCT_INTEGRATION=1 go test -run '^$' -bench SFTPThroughput -benchtime 3x ./gateway/intake/sftp/
//
// (scripts/bench-sftp runs exactly that).
func BenchmarkSFTPThroughput(b *testing.B) {
	testenv.Integration(b)
	sshd := testenv.StartSSHD(b) // skips unless root with openssh-server
	octs := []*benchOCT{
		startBenchOCT(b, "oct", benchFollow),
		startBenchOCT(b, "oct_direct", benchFollowDirect),
		startBenchOCT(b, "oct_atclose", benchAtClose),
	}

	// pkg/sftp's request server handles open and close (where OCT takes a
	// file in) one at a time per session, so parallel uploads use several
	// sessions on the one SSH connection, as parallel SFTP clients do.
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("large/sessions=%d", n), func(b *testing.B) {
			// 8 × 25 MiB = 200 MiB.
			benchUpload(b, octs, sshd, benchSet{files: 8, size: 25 << 20, sessions: n})
		})
	}
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprintf("small/sessions=%d", n), func(b *testing.B) {
			// 2,000 × 25 KB.
			benchUpload(b, octs, sshd, benchSet{files: 2000, size: 25_000, sessions: n})
		})
	}
	// The same large files with the OpenSSH sftp client (`sftp -b`, its
	// defaults: 64 requests of 32 KiB in flight), as vendors' scripts
	// upload: one client process per session, each with its share of the
	// files, reading them from a local directory written before the timing.
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("large/sftp-client/sessions=%d", n), func(b *testing.B) {
			testenv.Need(b, "sftp")
			benchUpload(b, octs, sshd, benchSet{files: 8, size: 25 << 20, sessions: n, opensshClient: true})
		})
	}
}

type benchSet struct {
	files    int
	size     int
	sessions int // SFTP sessions on the one SSH connection, one file in flight on each
	// opensshClient: upload with the OpenSSH sftp client instead, one
	// process (and connection) per session.
	opensshClient bool
}

// benchOCT is an OCT SFTP intake over a real gateway.
type benchOCT struct {
	name    string // metric prefix
	addr    string
	hostKey ssh.PublicKey
	key     ssh.Signer
	keyPath string // key as an OpenSSH private key file
	tenant  string
	dir     string // mailbox root
}

// closeOnly hides the gateway's FollowIntaker methods: the server then
// takes each file in at close, reading it (the way before following).
type closeOnly struct{ Intaker }

// benchMode is how a benchmarked OCT takes files in.
type benchMode int

const (
	benchFollow       benchMode = iota // following the uploads (the default)
	benchFollowDirect                  // following, with Config.DirectWrites
	benchAtClose                       // at close, reading the file (the Intaker hides FollowIntaker)
)

// startBenchOCT starts an OCT SFTP intake over its own gateway, taking
// files in as mode says.
func startBenchOCT(b *testing.B, name string, mode benchMode) *benchOCT {
	ctx := context.Background()
	dir := b.TempDir()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(dir, "oct.db"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	blobs, err := blobdir.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		b.Fatal(err)
	}
	g, err := gateway.New(gateway.Options{Store: st, Blobs: blobs, NIRKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		b.Fatal(err)
	}
	tn, _, err := gateway.AddTenant(ctx, st, "bench", "bench", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	o := &benchOCT{name: name, tenant: tn.ID, dir: filepath.Join(dir, "tenants")}
	var intaker Intaker = g
	if mode == benchAtClose {
		intaker = closeOnly{g}
	}
	o.keyPath, o.key = testenv.SSHClientKey(b, dir, "id_vendor")
	ring, err := NewKeyRing(map[string][]string{o.tenant: {authorizedLine(o.key)}})
	if err != nil {
		b.Fatal(err)
	}
	hk, err := LoadOrCreateHostKey(dir)
	if err != nil {
		b.Fatal(err)
	}
	o.hostKey = hk.PublicKey()
	folders, err := mailbox.New(o.dir)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Config{
		HostKey: hk, Folders: folders, Tenants: ring, Intaker: intaker, DirectWrites: mode == benchFollowDirect,
		// A vendor allowed to send this much: the default 60 files per
		// minute would throttle the small-file run.
		Limits: func(string) Limits {
			return Limits{MaxFileSize: 64 << 20, FilesPerMinute: 1 << 20, MaxSessions: 4, DiskQuota: 1 << 40}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	// Labelled for -cpuprofile: every goroutine of this server carries
	// side=<name> (go tool pprof -tagfocus side=oct).
	serve := func(ctx context.Context, l net.Listener) (err error) {
		pprof.Do(ctx, pprof.Labels("side", name), func(ctx context.Context) { err = srv.Serve(ctx, l) })
		return err
	}
	o.addr, _ = testenv.ServeLoopback(b, serve, srv.running.Load)
	return o
}

// benchClients opens one SSH connection and n SFTP sessions on it, with
// the one client configuration used against both servers.
func benchClients(b *testing.B, addr, user string, key ssh.Signer, host ssh.PublicKey, n int) []*sftp.Client {
	sc, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(host), Timeout: 10 * time.Second,
	})
	if err != nil {
		b.Fatalf("dial %s: %v", addr, err)
	}
	b.Cleanup(func() { sc.Close() })
	cs := make([]*sftp.Client, n)
	for i := range cs {
		c, err := sftp.NewClient(sc, sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(64))
		if err != nil {
			b.Fatalf("sftp %s: %v", addr, err)
		}
		b.Cleanup(func() { c.Close() })
		cs[i] = c
	}
	return cs
}

// benchFiles holds the set of one sub-benchmark; renumber gives every file
// a fresh B2 file number before each round.
type benchFiles struct {
	data  [][]byte
	local string // OpenSSH client: where write puts them ("": nowhere)
}

// localName is the name of file i in benchFiles.local.
func localName(i int) string { return fmt.Sprintf("F%05d.b2", i) }

// write puts the files into f.local for the OpenSSH client (synced, so
// that no write-back of them runs during a timed upload).
func (f *benchFiles) write() error {
	if f.local == "" {
		return nil
	}
	for i, d := range f.data {
		if err := os.WriteFile(filepath.Join(f.local, localName(i)), d, 0o600); err != nil {
			return err
		}
	}
	return syncFS(f.local)
}

var benchFileNumber atomic.Int64

func newBenchFiles(b *testing.B, s benchSet) *benchFiles {
	tpl := b2OfSize(b, s.size)
	f := &benchFiles{data: make([][]byte, s.files)}
	for i := range f.data {
		f.data[i] = append([]byte(nil), tpl...)
	}
	return f
}

// renumber gives every file a unique file number.
func (f *benchFiles) renumber() {
	for _, d := range f.data {
		setFileNumber(d, int(benchFileNumber.Add(1)))
	}
}

// setFileNumber writes n (mod 10⁶, 6 digits) as the file number of the B2
// file d, in its 000 header and its 999 trailer (fixed 128-byte records,
// no framing): the same file under another number is not an idempotent
// replay.
func setFileNumber(d []byte, n int) {
	id := fmt.Sprintf("%06d", n%1_000_000)
	copy(d[49:55], id)
	copy(d[len(d)-b2fmt.RecordLength+49:len(d)-b2fmt.RecordLength+55], id)
}

func (f *benchFiles) bytes() int64 {
	var n int64
	for _, d := range f.data {
		n += int64(len(d))
	}
	return n
}

// b2OfSize generates a valid B2 file of about size bytes (never more).
func b2OfSize(b testing.TB, size int) []byte {
	gen := func(lots, inv int) []byte {
		var buf bytes.Buffer
		if err := b2fmt.Generate(&buf, b2fmt.GenOptions{Seed: 11, Lots: lots, Invoices: inv}); err != nil {
			b.Fatal(err)
		}
		return buf.Bytes()
	}
	// Up to 100 invoices per lot; grow lots, then invoices, to the size.
	const perLot = 100
	one := len(gen(1, perLot))
	lots := max(1, size/one)
	inv := perLot
	if lots == 1 {
		lo, hi := 1, perLot
		for lo < hi { // largest invoice count whose file fits
			mid := (lo + hi + 1) / 2
			if len(gen(1, mid)) <= size {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		inv = lo
	}
	data := gen(lots, inv)
	rep, err := b2fmt.Validate(bytes.NewReader(data), b2fmt.Options{})
	if err != nil || !rep.Valid {
		b.Fatalf("generated B2 not valid: %v %+v", err, rep.Errors)
	}
	return data
}

// uploadAll sends every file to dir, one file at a time on each session.
func uploadAll(sessions []*sftp.Client, dir, prefix string, files [][]byte) (closing time.Duration, err error) {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, c := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(files) {
					return
				}
				name := path.Join(dir, fmt.Sprintf("%sF%05d.b2", prefix, i))
				d, err := uploadOne(c, name, files[i])
				mu.Lock()
				closing += d
				mu.Unlock()
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("%s: %w", name, err)
					}
					mu.Unlock()
					next.Store(int64(len(files))) // stop the other workers
					return
				}
			}
		}()
	}
	wg.Wait()
	return closing, first
}

// uploadOne uploads one file and returns how long its close took.
func uploadOne(c *sftp.Client, name string, data []byte) (time.Duration, error) {
	f, err := c.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return 0, err
	}
	if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
		f.Close()
		return 0, err
	}
	t0 := time.Now()
	err = f.Close() // on OCT: returns after the durable take-in
	return time.Since(t0), err
}

// uploader sends the set of files to dir on one server, names prefixed;
// closing is the total time of the closes as the client saw them (pkg/sftp
// client only).
type uploader func(dir, prefix string) (closing time.Duration, err error)

// benchUploader returns the uploader of s's client for one server.
func benchUploader(b *testing.B, s benchSet, files *benchFiles, addr, user, keyPath string, key ssh.Signer, host ssh.PublicKey) uploader {
	if !s.opensshClient {
		clients := benchClients(b, addr, user, key, host, s.sessions)
		return func(dir, prefix string) (time.Duration, error) {
			return uploadAll(clients, dir, prefix, files.data)
		}
	}
	o := testenv.SFTPOptions{Addr: addr, User: user, Identity: keyPath, KnownHosts: testenv.KnownHosts(b, b.TempDir(), addr, host), Dir: files.local}
	batchDir := b.TempDir()
	return func(dir, prefix string) (time.Duration, error) {
		return 0, sftpPutAll(o, batchDir, s.sessions, dir, prefix, len(files.data))
	}
}

// sftpPutAll runs one OpenSSH sftp client per session, each putting its
// share of the local files (benchFiles.write) into dir.
func sftpPutAll(o testenv.SFTPOptions, batchDir string, sessions int, dir, prefix string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	errs := make(chan error, sessions)
	for k := 0; k < sessions; k++ {
		var lines []string
		for i := k; i < n; i += sessions {
			lines = append(lines, fmt.Sprintf("put %s %s", localName(i), path.Join(dir, fmt.Sprintf("%sF%05d.b2", prefix, i))))
		}
		batch := filepath.Join(batchDir, fmt.Sprintf("batch%d", k))
		if err := os.WriteFile(batch, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return err
		}
		cmd, err := testenv.SFTPCommand(ctx, o, batch)
		if err != nil {
			return err
		}
		go func() {
			out, err := cmd.CombinedOutput()
			if err != nil {
				err = fmt.Errorf("sftp -b: %v: %s", err, out)
			}
			errs <- err
		}()
	}
	var first error
	for k := 0; k < sessions; k++ {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func benchUpload(b *testing.B, octs []*benchOCT, sshd *testenv.SSHD, s benchSet) {
	b.StopTimer()
	files := newBenchFiles(b, s)
	if s.opensshClient {
		files.local = b.TempDir()
	}
	type side struct {
		name       string
		upload     func(round int) (closing time.Duration, err error)
		after      func(round int) error // checks and cleaning, not measured
		time, shut time.Duration         // upload time, closes
		cpu        time.Duration         // the client, plus the server's processes for OpenSSH
		clientCPU  time.Duration         // the client alone (OpenSSH side)
		machine    time.Duration         // all CPUs busy, kernel threads included (/proc/stat)
	}
	var sides []*side
	for _, oct := range octs {
		up := benchUploader(b, s, files, oct.addr, "vendor", oct.keyPath, oct.key, oct.hostKey)
		outbox := filepath.Join(oct.dir, oct.tenant, mailbox.Outbox)
		sides = append(sides, &side{name: oct.name,
			upload: func(round int) (time.Duration, error) {
				return up("/"+mailbox.Inbox, fmt.Sprintf("R%03d", round))
			},
			after: func(int) error {
				checkTakenIn(b, oct, s.files)
				// The vendor fetches its acknowledgements; clear them so
				// that every round starts from the same mailbox.
				return clearDir(outbox)
			},
		})
	}
	up := benchUploader(b, s, files, sshd.Addr, sshd.User, sshd.KeyPath, sshd.Client, sshd.HostKey)
	sshDir := b.TempDir()
	sshRound := func(round int) string { return filepath.Join(sshDir, fmt.Sprintf("r%03d", round)) }
	// OpenSSH's files are removed after their round, before the kernel has
	// written them back: this side never pays for disk writes, which OCT's
	// take-in must (synced before the close returns). openssh_synced is
	// the same upload followed by a syncfs of the filesystem, timed: the
	// files on disk, for comparison. The target is against plain openssh.
	syncedRound := func(round int) string { return filepath.Join(sshDir, fmt.Sprintf("s%03d", round)) }
	sides = append(sides, &side{name: "openssh_synced",
		upload: func(round int) (time.Duration, error) {
			if err := os.Mkdir(syncedRound(round), 0o700); err != nil {
				return 0, err
			}
			cl, err := up(syncedRound(round), "")
			if err == nil {
				err = syncFS(syncedRound(round))
			}
			return cl, err
		},
		after: func(round int) error { return os.RemoveAll(syncedRound(round)) },
	})
	sides = append(sides, &side{name: "openssh",
		upload: func(round int) (time.Duration, error) {
			if err := os.Mkdir(sshRound(round), 0o700); err != nil {
				return 0, err
			}
			return up(sshRound(round), "")
		},
		after: func(round int) error { return os.RemoveAll(sshRound(round)) },
	})

	// Each round uploads the set to every server, the order rotating.
	for i := 0; i < b.N; i++ {
		for k := range sides {
			sd := sides[(i+k)%len(sides)]
			files.renumber()
			if err := files.write(); err != nil {
				b.Fatal(err)
			}
			c0, o0 := cpuNow()
			m0 := machineCPU()
			t0 := time.Now()
			b.StartTimer()
			cl, err := sd.upload(i)
			b.StopTimer()
			sd.time += time.Since(t0)
			c1, o1 := cpuNow()
			sd.machine += machineCPU() - m0
			sd.shut += cl
			if err == nil {
				err = sd.after(i)
			}
			if err != nil {
				b.Fatalf("%s upload: %v", sd.name, err)
			}
			sd.cpu += c1 - c0
			if strings.HasPrefix(sd.name, "openssh") {
				sd.clientCPU += c1 - c0
				sd.cpu += o1 - o0
			}
		}
	}

	n := float64(b.N)
	mb := float64(files.bytes()) * n / 1e6
	count := float64(s.files) * n
	b.ReportMetric(0, "ns/op") // every server is in an op: the rates below are what counts
	ssh := sides[len(sides)-1]
	for _, sd := range sides {
		b.ReportMetric(mb/sd.time.Seconds(), sd.name+"_MB/s")
		b.ReportMetric(count/sd.time.Seconds(), sd.name+"_files/s")
		if !s.opensshClient {
			// Mean time of a file's close as the client sees it: on
			// OCT, the durable take-in.
			b.ReportMetric(float64(sd.shut.Microseconds())/1000/count, sd.name+"_close_ms")
		}
		// CPU per MB uploaded, client included on both sides (the same
		// client): on a machine whose cores are busy this, not latency,
		// sets the rates.
		b.ReportMetric(float64(sd.cpu.Microseconds())/1000/mb, sd.name+"_cpu_ms/MB")
		// The same for the whole machine: the kernel's own threads too
		// (write-back, I/O completion), which no process is charged for.
		b.ReportMetric(float64(sd.machine.Microseconds())/1000/mb, sd.name+"_machine_cpu_ms/MB")
		if sd != ssh {
			b.ReportMetric(ssh.time.Seconds()/sd.time.Seconds(), sd.name+"/openssh")
		}
		if sd.name == "oct" {
			for _, o := range sides {
				if o.name == "openssh_synced" {
					b.ReportMetric(o.time.Seconds()/sd.time.Seconds(), "oct/openssh_synced")
				}
			}
		}
	}
	b.ReportMetric(float64(ssh.clientCPU.Microseconds())/1000/mb, "client_cpu_ms/MB")
}

// syncFS writes back everything of dir's filesystem (syncfs(2)).
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// machineCPU returns the time all CPUs spent busy so far (/proc/stat:
// user, nice, system, irq and softirq; not idle, iowait or steal).
func machineCPU() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := strings.Fields(string(line)) // cpu user nice system idle iowait irq softirq steal ...
	var busy time.Duration
	for _, i := range []int{1, 2, 3, 6, 7} {
		if i < len(f) {
			var ticks int64
			fmt.Sscan(f[i], &ticks)
			busy += time.Duration(ticks) * (time.Second / 100) // USER_HZ
		}
	}
	return busy
}

// cpuNow returns the CPU time (user + system) used so far by this process
// and its waited-for children (the OpenSSH sftp clients), and by the sshd
// and sftp-server processes with their waited-for children (read from
// /proc: the OpenSSH side of the benchmark; the machine runs no other
// sshd; a connection's processes end with it).
func cpuNow() (self, openssh time.Duration) {
	var ru syscall.Rusage
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		if syscall.Getrusage(who, &ru) == nil {
			self += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15) cutime(16)
		// cstime(17), in clock ticks.
		open, close := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
		if open < 0 || close < open {
			continue
		}
		switch string(data[open+1 : close]) {
		case "sshd", "sshd-session", "sshd-auth", "sftp-server":
		default:
			continue
		}
		f := strings.Fields(string(data[close+1:]))
		if len(f) < 15 {
			continue
		}
		for _, v := range f[11:15] {
			var ticks int64
			fmt.Sscan(v, &ticks)
			openssh += time.Duration(ticks) * (time.Second / 100) // USER_HZ
		}
	}
	return self, openssh
}

// checkTakenIn fails b unless each of the files of the round was taken in
// as a new accepted file: inbox and errors/ empty, one accepted
// acknowledgement per file in outbox/.
func checkTakenIn(b *testing.B, oct *benchOCT, files int) {
	tree := filepath.Join(oct.dir, oct.tenant)
	for _, f := range []string{mailbox.Inbox, mailbox.Errors} {
		if ents, err := os.ReadDir(filepath.Join(tree, f)); err != nil || len(ents) != 0 {
			b.Fatalf("%s: %d files left (%v)", f, len(ents), err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(tree, mailbox.Outbox))
	if err != nil {
		b.Fatal(err)
	}
	acks := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), mailbox.AckJSONSuffix) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(tree, mailbox.Outbox, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		var ack gateway.Ack
		if err := json.Unmarshal(data, &ack); err != nil {
			b.Fatal(err)
		}
		if ack.Status != gateway.StatusAccepted || ack.Duplicate {
			b.Fatalf("%s: status %s, duplicate %v", e.Name(), ack.Status, ack.Duplicate)
		}
		acks++
	}
	if acks != files {
		b.Fatalf("%d accepted acknowledgements for %d files", acks, files)
	}
}

func clearDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
