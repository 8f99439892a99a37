package referentials

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/octgw/oct/internal/durable"
)

// DiffFormat is the value of "format" in the header line of a diff file.
const DiffFormat = "oct-referential-diff/1"

// diffHeader is the first line of a diff file.
type diffHeader struct {
	Format  string `json:"format"`
	From    uint64 `json:"from"`
	To      uint64 `json:"to"`
	FromSHA string `json:"from_sha256,omitempty"`
	ToSHA   string `json:"to_sha256,omitempty"`
	Count   int    `json:"count"`
}

// WriteDiffJSONL writes a diff as JSON lines: one header line
// {"format":"oct-referential-diff/1","from":F,"to":T,"from_sha256":…,"to_sha256":…,"count":N}
// then N lines {"op":"added|removed|changed","table":"amo|amc|conventions","key":…,"before":{…},"after":{…}}
// in table then key order. Documented in docs/referentials.md.
func WriteDiffJSONL(w io.Writer, d Diff) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(diffHeader{Format: DiffFormat, From: d.From, To: d.To, FromSHA: d.FromSHA, ToSHA: d.ToSHA, Count: len(d.Changes)}); err != nil {
		return err
	}
	for _, c := range d.Changes {
		if err := enc.Encode(c); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// ReadDiffJSONL reads what WriteDiffJSONL wrote and checks the count.
func ReadDiffJSONL(r io.Reader) (Diff, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var h diffHeader
	if err := dec.Decode(&h); err != nil {
		return Diff{}, fmt.Errorf("diff header: %w", err)
	}
	if h.Format != DiffFormat {
		return Diff{}, fmt.Errorf("diff header: format %q, want %q", h.Format, DiffFormat)
	}
	d := Diff{From: h.From, To: h.To, FromSHA: h.FromSHA, ToSHA: h.ToSHA, Changes: []Change{}}
	for dec.More() {
		var c Change
		if err := dec.Decode(&c); err != nil {
			return Diff{}, fmt.Errorf("diff line %d: %w", len(d.Changes)+2, err)
		}
		d.Changes = append(d.Changes, c)
	}
	if len(d.Changes) != h.Count {
		return Diff{}, fmt.Errorf("diff: header announces %d changes, file holds %d", h.Count, len(d.Changes))
	}
	return d, nil
}

// DiffFileName is the name a diff is published under:
// referential-diff-<from>-<to>.jsonl, zero-padded so names sort by version.
func DiffFileName(d Diff) string {
	return fmt.Sprintf("referential-diff-%010d-%010d.jsonl", d.From, d.To)
}

// DirPublisher writes each diff into every directory of Dirs (e.g. the
// vendors' SFTP referentials/ folders), atomically (temp + fsync + rename),
// so a vendor never reads half a file.
type DirPublisher struct {
	Dirs []string
}

// Publish implements Publisher.
func (p DirPublisher) Publish(ctx context.Context, d Diff) error {
	for _, dir := range p.Dirs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := durable.WriteFile(dir, DiffFileName(d), func(w io.Writer) error { return WriteDiffJSONL(w, d) }); err != nil {
			return err
		}
	}
	return nil
}
