package redis

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/octgw/oct/gateway/lifecycle"
	"github.com/octgw/oct/gateway/store"
)

// Records are Redis hashes with one field per struct field, values as
// strings (binary-safe: no JSON, so no byte of a name or an ack is ever
// rewritten). Times are unix nanoseconds written on 20 zero-padded digits
// (0 = the zero time), so that Lua can compare them as strings and sorted
// set members "<time>|<id>" sort by time, then id.

const padLen = 20

// zeroPad is the padded zero time.
var zeroPad = strings.Repeat("0", padLen)

// pad encodes t; times before 1970 are clamped to 0 (the zero time).
func pad(t time.Time) string {
	if t.IsZero() {
		return zeroPad
	}
	return padInt(t.UnixNano())
}

func padInt(n int64) string {
	if n < 0 {
		n = 0
	}
	s := strconv.FormatInt(n, 10)
	if len(s) >= padLen {
		return s
	}
	return zeroPad[:padLen-len(s)] + s
}

// unpad decodes pad; a missing or bad value is the zero time.
func unpad(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func atoi64(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func bytesOrNil(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// netstrings encodes a list of strings as "<len>:<bytes>," each: lists of
// SSH keys or codes, events in the log, and the index lists the Lua script
// keeps per record (same encoding on both sides).
func netstrings(items ...string) string {
	var b strings.Builder
	for _, s := range items {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
		b.WriteByte(',')
	}
	return b.String()
}

// parseNetstrings is the inverse of netstrings.
func parseNetstrings(s string) ([]string, error) {
	var out []string
	for len(s) > 0 {
		c := strings.IndexByte(s, ':')
		if c <= 0 {
			return nil, fmt.Errorf("netstring: no length")
		}
		n, err := strconv.Atoi(s[:c])
		if err != nil || n < 0 || c+1+n >= len(s) {
			return nil, fmt.Errorf("netstring: bad length %q", s[:c])
		}
		if s[c+1+n] != ',' {
			return nil, fmt.Errorf("netstring: missing comma")
		}
		out = append(out, s[c+1:c+1+n])
		s = s[c+2+n:]
	}
	return out, nil
}

func listOrNil(s string) []string {
	if s == "" {
		return nil
	}
	l, err := parseNetstrings(s)
	if err != nil || len(l) == 0 {
		return nil
	}
	return l
}

func listField(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return netstrings(l...)
}

// --- records <-> hash fields ---

func tenantFields(t store.Tenant) []string {
	return []string{"id", t.ID, "name", t.Name, "tok", t.TokenHash, "keys", listField(t.SSHKeys),
		"disabled", b01(t.Disabled), "created", pad(t.Created)}
}

func tenantFrom(m map[string]string) store.Tenant {
	return store.Tenant{ID: m["id"], Name: m["name"], TokenHash: m["tok"], SSHKeys: listOrNil(m["keys"]),
		Disabled: m["disabled"] == "1", Created: unpad(m["created"])}
}

func fileFields(f store.File) []string {
	return []string{"id", f.ID, "tenant", f.Tenant, "channel", f.Channel, "name", f.Name, "sha", f.SHA256,
		"size", strconv.FormatInt(f.Size, 10), "idem", f.IdemKey, "format", f.Format, "received", pad(f.ReceivedAt),
		"ack", string(f.Ack), "lots", strconv.Itoa(f.Lots), "invoices", strconv.Itoa(f.Invoices)}
}

func fileFrom(m map[string]string) store.File {
	return store.File{ID: m["id"], Tenant: m["tenant"], Channel: m["channel"], Name: m["name"], SHA256: m["sha"],
		Size: atoi64(m["size"]), IdemKey: m["idem"], Format: m["format"], State: lifecycle.State(m["_s"]),
		ReceivedAt: unpad(m["received"]), Ack: bytesOrNil(m["ack"]), Lots: atoi(m["lots"]), Invoices: atoi(m["invoices"])}
}

func lotFields(l store.Lot) []string {
	return []string{"id", l.ID, "file", l.File, "tenant", l.Tenant, "idx", strconv.Itoa(l.Index),
		"emitter", l.Emitter, "number", strconv.Itoa(l.Number), "date", l.Date, "dest", l.Destination,
		"ref", l.RefVersion, "test", b01(l.Test), "invoices", strconv.Itoa(l.Invoices),
		"amount", strconv.FormatInt(l.Amount, 10), "blob", l.Blob, "replaces", l.Replaces, "signed", l.Signed,
		"flow", l.Flow, "bref", l.Ref, "status", l.Status, "pec", l.PEC, "updated", pad(l.UpdatedAt)}
}

func lotFrom(m map[string]string) store.Lot {
	return store.Lot{ID: m["id"], File: m["file"], Tenant: m["tenant"], Index: atoi(m["idx"]), Emitter: m["emitter"],
		Number: atoi(m["number"]), Date: m["date"], Destination: m["dest"], RefVersion: m["ref"], Test: m["test"] == "1",
		State: lifecycle.State(m["_s"]), Invoices: atoi(m["invoices"]), Amount: atoi64(m["amount"]), Blob: m["blob"],
		Replaces: m["replaces"], Signed: m["signed"], Flow: m["flow"], Ref: m["bref"], Status: m["status"], PEC: m["pec"],
		UpdatedAt: unpad(m["updated"])}
}

func invoiceFields(i store.Invoice) []string {
	return []string{"id", i.ID, "lot", i.Lot, "tenant", i.Tenant, "number", i.Number, "nir", i.NIRHash,
		"amc", i.AMC, "pec", i.PEC, "billed", strconv.FormatInt(i.Billed, 10), "amo", strconv.FormatInt(i.AMO, 10),
		"amcpart", strconv.FormatInt(i.AMCPart, 10), "codes", listField(i.Codes)}
}

func invoiceFrom(m map[string]string) store.Invoice {
	return store.Invoice{ID: m["id"], Lot: m["lot"], Tenant: m["tenant"], Number: m["number"], NIRHash: m["nir"],
		AMC: m["amc"], PEC: m["pec"], Billed: atoi64(m["billed"]), AMO: atoi64(m["amo"]), AMCPart: atoi64(m["amcpart"]),
		State: lifecycle.State(m["_s"]), Codes: listOrNil(m["codes"])}
}

func attemptFields(a store.Attempt) []string {
	return []string{"id", a.ID, "lot", a.Lot, "dest", a.Destination, "msgid", a.MessageID, "resend", b01(a.Resend),
		"started", pad(a.Started), "ended", pad(a.Ended), "outcome", a.Outcome, "detail", a.Detail}
}

func attemptFrom(m map[string]string) store.Attempt {
	return store.Attempt{ID: m["id"], Lot: m["lot"], Destination: m["dest"], MessageID: m["msgid"],
		Resend: m["resend"] == "1", Started: unpad(m["started"]), Ended: unpad(m["ended"]), Outcome: m["outcome"],
		Detail: m["detail"]}
}

func expectationFields(e store.Expectation) []string {
	return []string{"id", e.ID, "lot", e.Lot, "kind", e.Kind, "due", pad(e.DueAt), "satby", e.SatisfiedBy,
		"fired", b01(e.Fired)}
}

func expectationFrom(m map[string]string) store.Expectation {
	return store.Expectation{ID: m["id"], Lot: m["lot"], Kind: m["kind"], DueAt: unpad(m["due"]),
		SatisfiedBy: m["satby"], Fired: m["fired"] == "1"}
}

func returnFields(r store.Return) []string {
	return []string{"id", r.ID, "tenant", r.Tenant, "kind", r.Kind, "blob", r.Blob, "lot", r.Lot,
		"orphan", b01(r.Orphan), "summary", string(r.Summary), "received", pad(r.Received)}
}

func returnFrom(m map[string]string) store.Return {
	return store.Return{ID: m["id"], Seq: atoi64(m["seq"]), Tenant: m["tenant"], Kind: m["kind"], Blob: m["blob"],
		Lot: m["lot"], Orphan: m["orphan"] == "1", Summary: bytesOrNil(m["summary"]), Received: unpad(m["received"])}
}

func anomalyFields(a store.Anomaly) []string {
	return []string{"id", a.ID, "kind", a.Kind, "subject", a.Subject, "tenant", a.Tenant, "dest", a.Destination,
		"assignee", a.Assignee, "reason", a.Reason, "sla", pad(a.SLA), "created", pad(a.Created)}
}

func anomalyFrom(m map[string]string) store.Anomaly {
	return store.Anomaly{ID: m["id"], Kind: m["kind"], Subject: m["subject"], Tenant: m["tenant"],
		Destination: m["dest"], State: lifecycle.State(m["_s"]), Assignee: m["assignee"], Reason: m["reason"],
		SLA: unpad(m["sla"]), Created: unpad(m["created"])}
}

// --- events ---

// encodeEvent is an event as stored in the log hash: netstrings of every
// field, hashes included.
func encodeEvent(e store.Event) string {
	return netstrings(strconv.FormatInt(e.Seq, 10), pad(e.Time), e.Subject, e.Type, string(e.From), string(e.To),
		e.Actor, e.Reason, string(e.Data), e.PrevHash, e.Hash)
}

func decodeEvent(s string) (store.Event, error) {
	f, err := parseNetstrings(s)
	if err != nil {
		return store.Event{}, err
	}
	if len(f) != 11 {
		return store.Event{}, fmt.Errorf("event has %d fields, want 11", len(f))
	}
	return store.Event{Seq: atoi64(f[0]), Time: unpad(f[1]), Subject: f[2], Type: f[3],
		From: lifecycle.State(f[4]), To: lifecycle.State(f[5]), Actor: f[6], Reason: f[7], Data: bytesOrNil(f[8]),
		PrevHash: f[9], Hash: f[10]}, nil
}
