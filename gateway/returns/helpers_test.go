package returns

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/noemie"
	"github.com/octgw/oct/gateway/intake/mailbox"
	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/gateway/store/blobdir"
	"github.com/octgw/oct/gateway/store/sqlite"
)

// Test data: one tenant, its lots are emitter 750000001, dated 2026-01-05.
const (
	tenantA  = "vendor-a"
	tenantB  = "vendor-b"
	emitterA = "750000001"
)

var lotDay = fixed.Day{Year: 2026, Month: time.January, Dom: 5}

type env struct {
	t       *testing.T
	ctx     context.Context
	st      *sqlite.Store
	blobs   *blobdir.Dir
	folders *mailbox.Folders
	dir     string
	proc    *Processor
	wakes   atomic.Int64
	now     time.Time
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	e := &env{t: t, ctx: ctx, dir: dir, now: time.Date(2026, 1, 9, 10, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return e.now }
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(dir, "oct.db"), Now: clock, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	if e.blobs, err = blobdir.Open(filepath.Join(dir, "blobs")); err != nil {
		t.Fatal(err)
	}
	if e.folders, err = mailbox.New(filepath.Join(dir, "folders")); err != nil {
		t.Fatal(err)
	}
	e.proc, err = NewProcessor(Options{Journal: st, Blobs: e.blobs, Relay: FoldersRelay(e.folders),
		OnReturn: func() { e.wakes.Add(1) }, Now: clock, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{tenantA, tenantB} {
		if err := st.Commit(ctx, &store.Change{Tenants: []store.Tenant{{ID: id, Name: id, Created: e.now}}}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// lotSpec describes a lot to create and walk to a state.
type lotSpec struct {
	id, tenant, emitter string
	number              int
	invoices            []string        // invoice numbers
	fileID              string          // 000 file id of the outbound lot file (blob), "" for none
	upTo                lifecycle.State // last state walked to ("" = sent)
}

// addLot creates file, lot and pending invoices, walks the lot created →
// routed → signed → sent with Commit, and expects an ARL and an RSP.
func (e *env) addLot(s lotSpec) store.Lot {
	e.t.Helper()
	if s.tenant == "" {
		s.tenant = tenantA
	}
	if s.emitter == "" {
		s.emitter = emitterA
	}
	if s.number == 0 {
		s.number = 1
	}
	blob := ""
	if s.fileID != "" {
		head, err := envelope.Encode(envelope.Info{SenderType: "TE", Sender: "00000" + s.emitter, ReceiverType: "CT",
			Receiver: "00000001422422", Application: "TR", FileID: s.fileID, Created: lotDay, Norm: "CP", Version: "B2"})
		if err != nil {
			e.t.Fatal(err)
		}
		if blob, _, err = e.blobs.Put(e.ctx, bytes.NewReader(head), 1<<20); err != nil {
			e.t.Fatal(err)
		}
	}
	fileID := "F-" + s.id
	c := &store.Change{Actor: "test",
		Files: []store.File{{ID: fileID, Tenant: s.tenant, Channel: "sftp", SHA256: "sum-" + s.id, Format: "b2",
			State: lifecycle.FileReceived, ReceivedAt: e.now}},
		Lots: []store.Lot{{ID: s.id, File: fileID, Tenant: s.tenant, Emitter: s.emitter, Number: s.number,
			Date: lotDay.String(), Destination: "01422@422.01.rss.fr", State: lifecycle.LotCreated,
			Invoices: len(s.invoices), Blob: blob, UpdatedAt: e.now}},
		Expectations: []store.Expectation{
			{ID: s.id + "-arl", Lot: s.id, Kind: "arl", DueAt: e.now.Add(48 * time.Hour)},
			{ID: s.id + "-rsp", Lot: s.id, Kind: "rsp", DueAt: e.now.Add(30 * 24 * time.Hour)},
		},
	}
	for i, n := range s.invoices {
		c.Invoices = append(c.Invoices, store.Invoice{ID: fmt.Sprintf("%s-%d", s.id, i), Lot: s.id, Tenant: s.tenant,
			Number: n, NIRHash: "h", Billed: 1000, AMO: 700, AMCPart: 300, State: lifecycle.InvoicePending})
	}
	if err := e.st.Commit(e.ctx, c); err != nil {
		e.t.Fatal(err)
	}
	walk := []lifecycle.State{lifecycle.LotCreated, lifecycle.LotRouted, lifecycle.LotSigned, lifecycle.LotSent}
	for i, st := range walk {
		if st == s.upTo {
			walk = walk[:i+1]
		}
	}
	e.walk(s.id, walk...)
	l, err := e.st.Lot(e.ctx, s.id)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// walk moves a lot through states, one Commit per step.
func (e *env) walk(lot string, states ...lifecycle.State) {
	e.t.Helper()
	for i := 1; i < len(states); i++ {
		if err := e.st.Commit(e.ctx, &store.Change{Actor: "test", Transitions: []store.Transition{{
			Kind: lifecycle.Lot, ID: lot, From: states[i-1], To: states[i], Actor: "test"}}}); err != nil {
			e.t.Fatalf("lot %s %s -> %s: %v", lot, states[i-1], states[i], err)
		}
	}
}

func (e *env) lotState(id string) lifecycle.State {
	e.t.Helper()
	l, err := e.st.Lot(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return l.State
}

func (e *env) invoice(lot, id string) store.Invoice {
	e.t.Helper()
	is, err := e.st.Invoices(e.ctx, lot)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, i := range is {
		if i.ID == id {
			return i
		}
	}
	e.t.Fatalf("no invoice %s", id)
	return store.Invoice{}
}

func (e *env) anomalies(kind string) []store.Anomaly {
	e.t.Helper()
	as, err := e.st.Anomalies(e.ctx, store.AnomalyQuery{Kind: kind})
	if err != nil {
		e.t.Fatal(err)
	}
	return as
}

func (e *env) feed(tenant string) []store.Return {
	e.t.Helper()
	rs, err := e.st.Returns(e.ctx, tenant, 0, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	return rs
}

func (e *env) process(raw []byte) Outcome {
	e.t.Helper()
	out, err := e.proc.Process(e.ctx, raw)
	if err != nil {
		e.t.Fatalf("process: %v", err)
	}
	return out
}

// relayed lists the files in a tenant's returns/ folder.
func (e *env) relayed(tenant string) map[string][]byte {
	e.t.Helper()
	dir := filepath.Join(e.dir, "folders", tenant, mailbox.Returns)
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, de := range ents {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			e.t.Fatal(err)
		}
		out[de.Name()] = b
	}
	return out
}

// arlFile writes an OCT-ARL v1 file acknowledging lots.
func arlFile(t testing.TB, acks ...arl.ARL) []byte {
	t.Helper()
	hdr := envelope.Info{SenderType: "CT", Sender: "00000001422422", ReceiverType: "OT", Receiver: "00000123456789",
		Application: "TR", FileID: "A00001", Created: fixed.Day{Year: 2026, Month: time.January, Dom: 7}}
	for i := range acks {
		acks[i].Header = hdr
		if acks[i].Emitter == "" {
			acks[i].Emitter = "00000" + emitterA
		}
		if acks[i].LotDate.IsZero() {
			acks[i].LotDate = lotDay
		}
		acks[i].Received = fixed.Day{Year: 2026, Month: time.January, Dom: 6}
	}
	var b bytes.Buffer
	if err := arl.Write(&b, acks...); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// rspInvoice is one invoice answered by an RSP.
type rspInvoice struct {
	number  string
	lot     int
	state   byte   // 'P', 'R', 'D' or ' '
	code    string // reject code when state is 'R'
	warning string // a 290 warning code
}

// rspFile writes a NOEMIE 580 file answering invoices; mandataire is the
// 15-digit 020/040 number.
func rspFile(t testing.TB, mandataire string, invs ...rspInvoice) []byte {
	t.Helper()
	hdr, batches := noemie.GenBatches(noemie.GenOptions{Seed: 7, Lots: 1, Invoices: len(invs)})
	b := &batches[0]
	if mandataire != "" {
		b.Payment.Mandataire, b.Payment.Destinataire = mandataire, mandataire
	}
	for i, in := range invs {
		inv := &b.Invoices[i]
		inv.Number, inv.LotNumber, inv.LotDate = in.number, in.lot, lotDay
		inv.AMC = noemie.Part{}
		inv.AMCProcessing = ""
		inv.Rejects = nil
		inv.AMO = noemie.Part{Requested: 1000, State: in.state}
		switch in.state {
		case 'P':
			inv.AMO.Paid = 700
		case 'R':
			inv.Rejects = append(inv.Rejects, noemie.Reject{Entity: "294", Code: in.code, Label: "BENEFICIAIRE INCONNU", Level: 'F', Part: 'O'})
		}
		if in.warning != "" {
			inv.Rejects = append(inv.Rejects, noemie.Reject{Entity: "290", Code: in.warning, Label: "BASE RECALCULEE", Line: 1, Level: 'L', Part: ' '})
		}
	}
	var buf bytes.Buffer
	if err := noemie.Write(&buf, hdr, batches, noemie.WriteOptions{LineBreaks: true}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// message wraps files the way insurers send returns: multipart/mixed, each
// file an application/EDI-consent part, gzip then base64 (76 columns).
func message(t testing.TB, subject string, files ...[]byte) []byte {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "From: 01422@422.01.rss.fr\r\nTo: oct@example.test\r\nSubject: %s\r\n", subject)
	b.WriteString("Message-ID: <" + subject + "@422.01.rss.fr>\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n")
	for _, f := range files {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(f)
		zw.Close()
		enc := base64.StdEncoding.EncodeToString(z.Bytes())
		b.WriteString("--b1\r\nContent-Type: application/EDI-consent\r\nContent-Transfer-Encoding: base64\r\n")
		b.WriteString("Content-Description: RETOUR/Z\r\n\r\n")
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--b1--\r\n")
	return []byte(b.String())
}

// recordingRelay counts deliveries.
type recordingRelay struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordingRelay) Relay(_ context.Context, tenant, name string, _ []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, tenant+"/"+name)
	return nil
}
