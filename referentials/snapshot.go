package referentials

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Version describes one imported version of the referential.
type Version struct {
	ID         uint64         `json:"id"`     // monotonic, 1 for the first import
	SHA256     string         `json:"sha256"` // of the canonical JSON of the content (Data)
	ImportedAt time.Time      `json:"imported_at"`
	Source     string         `json:"source"`
	Tables     []Table        `json:"tables"` // the tables the feed replaced
	Counts     map[Table]int  `json:"counts"`
	Confirmed  bool           `json:"confirmed,omitempty"` // a large removal was confirmed
	Removed    map[Table]int  `json:"removed,omitempty"`
	Extra      map[string]any `json:"extra,omitempty"`
}

// Snapshot is one immutable version of the referential with its indexes.
// It is safe for concurrent use; never modify what it returns.
type Snapshot struct {
	Version Version
	data    Data
	amo     map[string][]*AMOEntry   // GR+caisse → entries (disjoint periods)
	amc     map[string][]*AMCEntry   // AMC → entries
	conv    map[string][]*Convention // operator → conventions
}

// emptySnapshot is version 0: nothing imported yet.
func emptySnapshot() *Snapshot { return newSnapshot(Version{}, Data{}) }

func newSnapshot(v Version, d Data) *Snapshot {
	s := &Snapshot{Version: v, data: d,
		amo: map[string][]*AMOEntry{}, amc: map[string][]*AMCEntry{}, conv: map[string][]*Convention{}}
	for i := range s.data.AMO {
		e := &s.data.AMO[i]
		s.amo[e.GrandRegime+e.Caisse] = append(s.amo[e.GrandRegime+e.Caisse], e)
	}
	for i := range s.data.AMC {
		e := &s.data.AMC[i]
		s.amc[e.AMC] = append(s.amc[e.AMC], e)
	}
	for i := range s.data.Conventions {
		c := &s.data.Conventions[i]
		s.conv[c.Operator] = append(s.conv[c.Operator], c)
	}
	return s
}

// Data returns a copy of the content (without import line positions).
func (s *Snapshot) Data() Data {
	d := Data{AMO: slices.Clone(s.data.AMO), AMC: slices.Clone(s.data.AMC), Conventions: slices.Clone(s.data.Conventions)}
	for i := range d.AMO {
		d.AMO[i].line, d.AMO[i].file = 0, ""
	}
	for i := range d.AMC {
		d.AMC[i].line, d.AMC[i].file = 0, ""
	}
	for i := range d.Conventions {
		d.Conventions[i].line, d.Conventions[i].file = 0, ""
	}
	return d
}

// AMO returns the directory entry in force at t for (grand régime, caisse).
func (s *Snapshot) AMO(grandRegime, caisse string, t time.Time) (AMOEntry, bool) {
	for _, e := range s.amo[grandRegime+caisse] {
		if e.Period.In(t) {
			return *e, true
		}
	}
	return AMOEntry{}, false
}

// AMC returns the regroupement entry in force at t for an AMC number (any
// form NormalizeAMC accepts).
func (s *Snapshot) AMC(amc string, t time.Time) (AMCEntry, bool) {
	for _, e := range s.amc[NormalizeAMC(amc)] {
		if e.Period.In(t) {
			return *e, true
		}
	}
	return AMCEntry{}, false
}

// Convention returns the operator's convention in force at t for the
// profession: a convention naming the profession wins over a catch-all one.
// ok is false when none is in force.
func (s *Snapshot) Convention(operator, profession string, t time.Time) (Convention, bool) {
	var all *Convention
	for _, c := range s.conv[operator] {
		if !c.Period.In(t) {
			continue
		}
		if len(c.Professions) == 0 {
			all = c
		} else if c.Serves(profession) {
			return *c, true
		}
	}
	if all != nil {
		return *all, true
	}
	return Convention{}, false
}

// Counts per table.
func (s *Snapshot) counts() map[Table]int {
	return map[Table]int{TableAMO: len(s.data.AMO), TableAMC: len(s.data.AMC), TableConventions: len(s.data.Conventions)}
}

// canonical sorts the tables by key so the same content always hashes the same.
func canonical(d *Data) {
	slices.SortFunc(d.AMO, func(a, b AMOEntry) int { return cmp.Compare(a.Key(), b.Key()) })
	slices.SortFunc(d.AMC, func(a, b AMCEntry) int { return cmp.Compare(a.Key(), b.Key()) })
	slices.SortFunc(d.Conventions, func(a, b Convention) int { return cmp.Compare(a.Key(), b.Key()) })
	if d.AMO == nil {
		d.AMO = []AMOEntry{}
	}
	if d.AMC == nil {
		d.AMC = []AMCEntry{}
	}
	if d.Conventions == nil {
		d.Conventions = []Convention{}
	}
}

func hashData(d Data) (string, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// checkReferences verifies that every AMC entry names an operator that has
// at least one convention. Errors point at the AMC line when it came from
// this feed, else at the current version.
func checkReferences(d Data) []LineError {
	ops := map[string]bool{}
	for _, c := range d.Conventions {
		ops[c.Operator] = true
	}
	var errs []LineError
	for _, e := range d.AMC {
		if e.Operator != "" && !ops[e.Operator] {
			file := e.file
			if file == "" {
				file = "(current version)"
			}
			errs = append(errs, lineErr(file, e.line, "operator", LineUnknownOperator, "AMC %s: operator %s has no convention", e.AMC, e.Operator))
		}
	}
	return errs
}

// ---- diffs ----

// Op of a change.
type Op string

// Ops.
const (
	Added   Op = "added"
	Removed Op = "removed"
	Changed Op = "changed"
)

// Change is one entry that differs between two versions.
type Change struct {
	Op     Op              `json:"op"`
	Table  Table           `json:"table"`
	Key    string          `json:"key"`
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// Diff lists the changes from one version to another, sorted by table then key.
type Diff struct {
	From    uint64   `json:"from"`
	To      uint64   `json:"to"`
	FromSHA string   `json:"from_sha256,omitempty"`
	ToSHA   string   `json:"to_sha256,omitempty"`
	Changes []Change `json:"changes"`
}

// Count returns the number of changes of an op in a table ("" = any).
func (d Diff) Count(t Table, op Op) int {
	n := 0
	for _, c := range d.Changes {
		if (t == "" || c.Table == t) && (op == "" || c.Op == op) {
			n++
		}
	}
	return n
}

// Only keeps the changes of the given tables (e.g. TableAMC and
// TableConventions for the AMC changes endpoint).
func (d Diff) Only(tables ...Table) Diff {
	out := d
	out.Changes = nil
	for _, c := range d.Changes {
		if slices.Contains(tables, c.Table) {
			out.Changes = append(out.Changes, c)
		}
	}
	return out
}

func keyed[T any](entries []T, key func(T) string) (map[string]json.RawMessage, error) {
	m := make(map[string]json.RawMessage, len(entries))
	for _, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		m[key(e)] = b
	}
	return m, nil
}

func diffTable(t Table, a, b map[string]json.RawMessage) []Change {
	var out []Change
	for k, va := range a {
		vb, ok := b[k]
		switch {
		case !ok:
			out = append(out, Change{Op: Removed, Table: t, Key: k, Before: va})
		case !bytes.Equal(va, vb):
			out = append(out, Change{Op: Changed, Table: t, Key: k, Before: va, After: vb})
		}
	}
	for k, vb := range b {
		if _, ok := a[k]; !ok {
			out = append(out, Change{Op: Added, Table: t, Key: k, After: vb})
		}
	}
	slices.SortFunc(out, func(x, y Change) int { return cmp.Compare(x.Key, y.Key) })
	return out
}

// DiffSnapshots computes the changes from a to b.
func DiffSnapshots(a, b *Snapshot) (Diff, error) {
	d := Diff{From: a.Version.ID, To: b.Version.ID, FromSHA: a.Version.SHA256, ToSHA: b.Version.SHA256, Changes: []Change{}}
	type pair struct {
		t    Table
		a, b func() (map[string]json.RawMessage, error)
	}
	pairs := []pair{
		{TableAMO, func() (map[string]json.RawMessage, error) { return keyed(a.data.AMO, AMOEntry.Key) },
			func() (map[string]json.RawMessage, error) { return keyed(b.data.AMO, AMOEntry.Key) }},
		{TableAMC, func() (map[string]json.RawMessage, error) { return keyed(a.data.AMC, AMCEntry.Key) },
			func() (map[string]json.RawMessage, error) { return keyed(b.data.AMC, AMCEntry.Key) }},
		{TableConventions, func() (map[string]json.RawMessage, error) { return keyed(a.data.Conventions, Convention.Key) },
			func() (map[string]json.RawMessage, error) { return keyed(b.data.Conventions, Convention.Key) }},
	}
	for _, p := range pairs {
		ma, err := p.a()
		if err != nil {
			return Diff{}, fmt.Errorf("diff: %w", err)
		}
		mb, err := p.b()
		if err != nil {
			return Diff{}, fmt.Errorf("diff: %w", err)
		}
		d.Changes = append(d.Changes, diffTable(p.t, ma, mb)...)
	}
	return d, nil
}

// Mailboxes lists, sorted and without duplicates, the SMTP addresses of the
// AMO entries and conventions in force at t: the certificates to watch.
func (s *Snapshot) Mailboxes(t time.Time) []string {
	var out []string
	for _, e := range s.data.AMO {
		if e.Transport == SMTP && e.Period.In(t) {
			out = append(out, e.Mailbox)
		}
	}
	for _, c := range s.data.Conventions {
		if c.Transport == SMTP && c.Period.In(t) {
			out = append(out, c.Address)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
