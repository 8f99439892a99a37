package referentials

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Format of a feed file.
type Format string

// Formats.
const (
	FormatCSV   Format = "csv"   // our CSV, header row, ';' or ',' separated (docs/referentials.md)
	FormatJSON  Format = "json"  // {"amo":[...],"amc":[...],"conventions":[...]}
	FormatSESAM Format = "sesam" // positional ';' tables de regroupement / convention (formats.md §5.5)
)

// FeedFile is one file of a feed. Table is required for CSV and SESAM
// files; a JSON file names its tables itself.
type FeedFile struct {
	Name   string
	Table  Table
	Format Format
	Data   []byte
}

// Feed is what one import applies: the tables it carries replace the
// current ones, the others are kept.
type Feed struct {
	Source string // where it came from: "file:…", an URL, "demo"; recorded in the version
	Files  []FeedFile
}

// Data is the content of the referential.
type Data struct {
	AMO         []AMOEntry   `json:"amo"`
	AMC         []AMCEntry   `json:"amc"`
	Conventions []Convention `json:"conventions"`
}

// ParseOptions tunes parsing.
type ParseOptions struct {
	// Domain of AMO mailboxes derived from the directory (default rss.fr).
	Domain string
}

// parsed is the result of parsing a feed: the tables it carries.
type parsed struct {
	data   Data
	tables map[Table]bool
}

// DetectFile guesses the table and format of a dropped file from its name
// and first line: *.json is JSON; a CSV whose header starts with
// grand_regime, amc or operator is our CSV of that table; otherwise a
// positional SESAM table with 10 fields (regroupement) or 22 (convention).
func DetectFile(name string, data []byte) (FeedFile, error) {
	f := FeedFile{Name: name, Data: data}
	if strings.EqualFold(path.Ext(name), ".json") {
		f.Format = FormatJSON
		return f, nil
	}
	first := firstLine(toUTF8(data))
	fields := strings.Split(first, ";")
	if len(fields) == 1 {
		fields = strings.Split(first, ",")
	}
	switch strings.ToLower(strings.TrimSpace(fields[0])) {
	case "grand_regime":
		f.Format, f.Table = FormatCSV, TableAMO
		return f, nil
	case "amc":
		f.Format, f.Table = FormatCSV, TableAMC
		return f, nil
	case "operator":
		f.Format, f.Table = FormatCSV, TableConventions
		return f, nil
	}
	n := len(strings.Split(first, ";"))
	switch {
	case n == regroupementFields || n == regroupementFields+1:
		f.Format, f.Table = FormatSESAM, TableAMC
	case n == conventionFields || n == conventionFields+1:
		f.Format, f.Table = FormatSESAM, TableConventions
	default:
		return f, errorf(ErrImport, nil, "%s: cannot tell which table this file holds", name)
	}
	return f, nil
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	return ""
}

// toUTF8 returns the data as a string, reading it as ISO-8859-1 when it is
// not valid UTF-8 (older tables are Latin-1).
func toUTF8(b []byte) string {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if utf8.Valid(b) {
		return string(b)
	}
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// parseFeed parses every file and validates each table on its own. All bad
// lines of all files are collected.
func parseFeed(feed Feed, opt ParseOptions) (parsed, []LineError) {
	p := parsed{tables: map[Table]bool{}}
	var errs []LineError
	for _, f := range feed.Files {
		var e []LineError
		switch f.Format {
		case FormatJSON:
			e = parseJSON(f, &p)
		case FormatCSV:
			e = parseCSV(f, &p)
		case FormatSESAM:
			e = parseSESAM(f, &p)
		default:
			e = []LineError{{File: f.Name, Code: LineSyntax, Message: fmt.Sprintf("unknown format %q", f.Format)}}
		}
		errs = append(errs, e...)
	}
	if len(feed.Files) == 0 {
		errs = append(errs, LineError{Code: LineSyntax, Message: "empty feed"})
	}
	errs = append(errs, normalize(&p.data, opt)...)
	return p, errs
}

// ---- JSON ----

func parseJSON(f FeedFile, p *parsed) []LineError {
	data := []byte(toUTF8(f.Data))
	lineAt := func(off int64) int { return 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n")) }
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	fail := func(off int64, field, code, msg string) []LineError {
		return []LineError{{File: f.Name, Line: lineAt(off), Field: field, Code: code, Message: msg}}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fail(dec.InputOffset(), "", LineSyntax, "a JSON object is expected")
	}
	var errs []LineError
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fail(dec.InputOffset(), "", LineSyntax, err.Error())
		}
		name, _ := t.(string)
		tbl := Table(name)
		if !tbl.valid() {
			return fail(dec.InputOffset(), name, LineUnknownColumn, "unknown table")
		}
		if p.tables[tbl] {
			return fail(dec.InputOffset(), name, LineDuplicate, "table given twice in the feed")
		}
		p.tables[tbl] = true
		if t, err := dec.Token(); err != nil || t != json.Delim('[') {
			return fail(dec.InputOffset(), name, LineSyntax, "an array is expected")
		}
		for dec.More() {
			// Skip whitespace so the offset points at the element itself.
			off := dec.InputOffset()
			for off < int64(len(data)) && strings.ContainsRune(" \t\r\n,", rune(data[off])) {
				off++
			}
			line := lineAt(off)
			var err error
			switch tbl {
			case TableAMO:
				var e AMOEntry
				if err = dec.Decode(&e); err == nil {
					e.line, e.file = line, f.Name
					p.data.AMO = append(p.data.AMO, e)
				}
			case TableAMC:
				var e AMCEntry
				if err = dec.Decode(&e); err == nil {
					e.line, e.file = line, f.Name
					p.data.AMC = append(p.data.AMC, e)
				}
			case TableConventions:
				var e Convention
				if err = dec.Decode(&e); err == nil {
					e.line, e.file = line, f.Name
					p.data.Conventions = append(p.data.Conventions, e)
				}
			}
			if err != nil {
				var ute *json.UnmarshalTypeError
				field := ""
				if errors.As(err, &ute) {
					field = ute.Field
				}
				errs = append(errs, LineError{File: f.Name, Line: line, Field: field, Code: LineSyntax, Message: err.Error()})
				if !errors.As(err, &ute) && !strings.Contains(err.Error(), "unknown field") {
					return errs // the stream is broken: stop here
				}
			}
		}
		if _, err := dec.Token(); err != nil {
			return append(errs, fail(dec.InputOffset(), name, LineSyntax, err.Error())...)
		}
	}
	if _, err := dec.Token(); err != nil {
		return append(errs, fail(dec.InputOffset(), "", LineSyntax, err.Error())...)
	}
	if _, err := dec.Token(); err != io.EOF {
		errs = append(errs, fail(dec.InputOffset(), "", LineSyntax, "trailing data after the JSON object")...)
	}
	return errs
}

// ---- CSV (ours, with a header row) ----

var csvColumns = map[Table][]string{
	TableAMO:         {"grand_regime", "caisse", "organisme", "centre", "label", "mailbox", "transport", "cipher", "test", "from", "until"},
	TableAMC:         {"amc", "name", "regroupement", "operator", "from", "until"},
	TableConventions: {"operator", "name", "regroupement", "professions", "norms", "transport", "address", "cipher", "third_party", "test", "ident", "from", "until"},
}

type row struct {
	file string
	line int
	get  func(col string) string
	errs *[]LineError
}

func (r row) fail(field, code, format string, args ...any) {
	*r.errs = append(*r.errs, LineError{File: r.file, Line: r.line, Field: field, Code: code, Message: fmt.Sprintf(format, args...)})
}

func (r row) digits(col string, n int) string {
	v := strings.TrimSpace(r.get(col))
	if v == "" {
		r.fail(col, LineMissing, "required")
	} else if len(v) != n || !isDigits(v) {
		r.fail(col, LineInvalid, "%d digits expected, got %q", n, v)
	}
	return v
}

func (r row) required(col string) string {
	v := strings.TrimSpace(r.get(col))
	if v == "" {
		r.fail(col, LineMissing, "required")
	}
	return v
}

func (r row) boolean(col string) bool {
	switch strings.ToLower(strings.TrimSpace(r.get(col))) {
	case "", "0", "false", "no", "n", "non":
		return false
	case "1", "true", "yes", "y", "o", "oui":
		return true
	}
	r.fail(col, LineInvalid, "boolean expected, got %q", r.get(col))
	return false
}

// parseTime accepts YYYY-MM-DD (midnight UTC) and RFC 3339.
func (r row) time(col string) time.Time {
	v := strings.TrimSpace(r.get(col))
	if v == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		r.fail(col, LineInvalid, "date YYYY-MM-DD or RFC 3339 expected, got %q", v)
	}
	return t
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == '|' || r == ',' }) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func parseCSV(f FeedFile, p *parsed) []LineError {
	var errs []LineError
	cols, ok := csvColumns[f.Table]
	if !ok {
		return []LineError{{File: f.Name, Code: LineSyntax, Message: fmt.Sprintf("unknown table %q", f.Table)}}
	}
	if p.tables[f.Table] {
		return []LineError{{File: f.Name, Code: LineDuplicate, Message: fmt.Sprintf("table %s given twice in the feed", f.Table)}}
	}
	p.tables[f.Table] = true
	text := toUTF8(f.Data)
	cr := csv.NewReader(strings.NewReader(text))
	cr.Comma = ';'
	if h := firstLine(text); !strings.Contains(h, ";") && strings.Contains(h, ",") {
		cr.Comma = ','
	}
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return []LineError{{File: f.Name, Line: 1, Code: LineSyntax, Message: "header row expected: " + err.Error()}}
	}
	hline, _ := cr.FieldPos(0)
	index := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(cols, h) {
			errs = append(errs, LineError{File: f.Name, Line: hline, Field: h, Code: LineUnknownColumn, Message: "known columns: " + strings.Join(cols, ";")})
			continue
		}
		if _, dup := index[h]; dup {
			errs = append(errs, LineError{File: f.Name, Line: hline, Field: h, Code: LineDuplicate, Message: "column given twice"})
		}
		index[h] = i
	}
	if len(errs) > 0 {
		return errs
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.StartLine
			}
			errs = append(errs, LineError{File: f.Name, Line: line, Code: LineSyntax, Message: err.Error()})
			continue
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) > len(header) {
			errs = append(errs, LineError{File: f.Name, Line: line, Code: LineFieldCount, Message: fmt.Sprintf("%d fields, header has %d", len(rec), len(header))})
			continue
		}
		r := row{file: f.Name, line: line, errs: &errs, get: func(col string) string {
			if i, ok := index[col]; ok && i < len(rec) {
				return rec[i]
			}
			return ""
		}}
		switch f.Table {
		case TableAMO:
			p.data.AMO = append(p.data.AMO, AMOEntry{
				GrandRegime: r.get("grand_regime"), Caisse: r.get("caisse"),
				Organisme: r.get("organisme"), Centre: r.get("centre"),
				Label: strings.TrimSpace(r.get("label")), Mailbox: strings.TrimSpace(r.get("mailbox")),
				Transport: Transport(strings.ToLower(strings.TrimSpace(r.get("transport")))),
				Cipher:    Cipher(strings.ToLower(strings.TrimSpace(r.get("cipher")))),
				Test:      r.boolean("test"), Period: Period{From: r.time("from"), Until: r.time("until")},
				line: line, file: f.Name,
			})
		case TableAMC:
			p.data.AMC = append(p.data.AMC, AMCEntry{
				AMC: r.get("amc"), Name: strings.TrimSpace(r.get("name")),
				Regroupement: strings.TrimSpace(r.get("regroupement")), Operator: strings.TrimSpace(r.get("operator")),
				Period: Period{From: r.time("from"), Until: r.time("until")},
				line:   line, file: f.Name,
			})
		case TableConventions:
			var norms []Norm
			for _, n := range splitList(r.get("norms")) {
				norms = append(norms, Norm(strings.ToUpper(n)))
			}
			p.data.Conventions = append(p.data.Conventions, Convention{
				Operator: strings.TrimSpace(r.get("operator")), Name: strings.TrimSpace(r.get("name")),
				Regroupement: strings.TrimSpace(r.get("regroupement")),
				Professions:  splitList(strings.ToLower(r.get("professions"))), Norms: norms,
				Transport:  Transport(strings.ToLower(strings.TrimSpace(r.get("transport")))),
				Address:    strings.TrimSpace(r.get("address")),
				Cipher:     Cipher(strings.ToLower(strings.TrimSpace(r.get("cipher")))),
				ThirdParty: strings.TrimSpace(r.get("third_party")), Test: r.boolean("test"),
				Ident:  strings.TrimSpace(r.get("ident")),
				Period: Period{From: r.time("from"), Until: r.time("until")},
				line:   line, file: f.Name,
			})
		}
	}
	return errs
}

// ---- SESAM positional tables (formats.md §5.5) ----
//
// Column meanings are ASSUMPTIONS drawn from one real sample; they are
// documented in docs/referentials.md and kept here, in one place.

const (
	regroupementFields = 10
	conventionFields   = 22
)

// Regroupement columns (1-based in the doc, 0-based here).
const (
	rgStatus       = 0 // "C": entry in force (assumed); any other value is refused
	rgAMC          = 3 // AMC number, 8 digits
	rgName         = 4 // AMC name
	rgRegroupement = 5 // regroupement code
	rgOperator     = 8 // operator (OCT / platform) code
)

// Convention columns.
const (
	cvStatus       = 0  // "C" (assumed in force)
	cvOperator     = 5  // operator code
	cvName         = 6  // operator label
	cvRegroupement = 8  // regroupement code
	cvThirdParty   = 10 // "T": third-party payment (assumed)
	cvFlagsFrom    = 13 // 13..17: five numeric flags of unknown meaning, kept in Extra
	cvFlagsTo      = 17
	cvIdent        = 18 // operator identifier (e.g. ORSP1)
	cvRouting      = 19 // routing code (e.g. SP)
	cvHost         = 20 // host id (e.g. 005)
	cvDomain       = 21 // mail domain
)

// SESAMMailbox derives an operator mailbox from the routing code, host id and
// domain by analogy with the AMO mailbox: <routage><hôte>@<hôte>.<routage>.<domaine>
// (formats.md §4.1, UNCONFIRMED). Lower-cased.
func SESAMMailbox(routing, host, domain string) string {
	r, h, d := strings.ToLower(routing), strings.ToLower(host), strings.ToLower(domain)
	return r + h + "@" + h + "." + r + "." + d
}

func parseSESAM(f FeedFile, p *parsed) []LineError {
	var errs []LineError
	want := 0
	switch f.Table {
	case TableAMC:
		want = regroupementFields
	case TableConventions:
		want = conventionFields
	default:
		return []LineError{{File: f.Name, Code: LineSyntax, Message: fmt.Sprintf("no SESAM table for %q", f.Table)}}
	}
	if p.tables[f.Table] {
		return []LineError{{File: f.Name, Code: LineDuplicate, Message: fmt.Sprintf("table %s given twice in the feed", f.Table)}}
	}
	p.tables[f.Table] = true
	for i, l := range strings.Split(toUTF8(f.Data), "\n") {
		line := i + 1
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		fs := strings.Split(l, ";")
		if len(fs) == want+1 && fs[want] == "" {
			fs = fs[:want]
		}
		if len(fs) != want {
			errs = append(errs, LineError{File: f.Name, Line: line, Code: LineFieldCount, Message: fmt.Sprintf("%d fields, %d expected", len(fs), want)})
			continue
		}
		for j := range fs {
			fs[j] = strings.TrimSpace(fs[j])
		}
		if fs[0] != "C" {
			errs = append(errs, LineError{File: f.Name, Line: line, Field: "status", Code: LineInvalid, Message: fmt.Sprintf("status %q: only C is known", fs[0])})
			continue
		}
		if f.Table == TableAMC {
			p.data.AMC = append(p.data.AMC, AMCEntry{
				AMC: fs[rgAMC], Name: fs[rgName], Regroupement: fs[rgRegroupement], Operator: fs[rgOperator],
				line: line, file: f.Name,
			})
			continue
		}
		c := Convention{
			Operator: fs[cvOperator], Name: fs[cvName], Regroupement: fs[cvRegroupement],
			Norms: []Norm{NormDRE}, Transport: SMTP, Cipher: AES128, Ident: fs[cvIdent],
			line: line, file: f.Name,
		}
		if fs[cvThirdParty] != "" {
			c.ThirdParty = fs[cvThirdParty]
		}
		if fs[cvRouting] == "" || fs[cvHost] == "" || fs[cvDomain] == "" {
			errs = append(errs, LineError{File: f.Name, Line: line, Field: "domain", Code: LineMissing, Message: "routing code, host id and domain are required to derive the mailbox"})
		} else {
			c.Address = SESAMMailbox(fs[cvRouting], fs[cvHost], fs[cvDomain])
		}
		c.Extra = map[string]string{}
		for j := cvFlagsFrom; j <= cvFlagsTo; j++ {
			c.Extra["col"+strconv.Itoa(j+1)] = fs[j]
		}
		p.data.Conventions = append(p.data.Conventions, c)
	}
	return errs
}

// ---- validation of each table ----

func lineErr(file string, line int, field, code, format string, args ...any) LineError {
	return LineError{File: file, Line: line, Field: field, Code: code, Message: fmt.Sprintf(format, args...)}
}

// normalize fills defaults and checks each entry and the uniqueness of keys
// within each table. It does not check references between tables.
func normalize(d *Data, opt ParseOptions) []LineError {
	var errs []LineError
	add := func(e LineError) { errs = append(errs, e) }
	digits := func(file string, line int, field, v string, n int) {
		if v == "" {
			add(lineErr(file, line, field, LineMissing, "required"))
		} else if len(v) != n || !isDigits(v) {
			add(lineErr(file, line, field, LineInvalid, "%d digits expected, got %q", n, v))
		}
	}
	period := func(file string, line int, p Period) {
		if !p.From.IsZero() && !p.Until.IsZero() && !p.From.Before(p.Until) {
			add(lineErr(file, line, "until", LineInvalid, "until must be after from"))
		}
	}
	for i := range d.AMO {
		e := &d.AMO[i]
		e.GrandRegime, e.Caisse = strings.TrimSpace(e.GrandRegime), strings.TrimSpace(e.Caisse)
		e.Organisme, e.Centre = strings.TrimSpace(e.Organisme), strings.TrimSpace(e.Centre)
		digits(e.file, e.line, "grand_regime", e.GrandRegime, 2)
		digits(e.file, e.line, "caisse", e.Caisse, 3)
		if e.Organisme == "" {
			e.Organisme = e.Caisse
		}
		digits(e.file, e.line, "organisme", e.Organisme, 3)
		if e.Centre != "" {
			digits(e.file, e.line, "centre", e.Centre, 3)
		}
		if e.Transport == "" {
			e.Transport = SMTP
		}
		if !validTransport(e.Transport) {
			add(lineErr(e.file, e.line, "transport", LineInvalid, "smtp, sftp or https expected, got %q", e.Transport))
		}
		if e.Cipher == "" {
			e.Cipher = AES128
		}
		if !validCipher(e.Cipher) {
			add(lineErr(e.file, e.line, "cipher", LineInvalid, "aes128, 3des or none expected, got %q", e.Cipher))
		}
		if e.Mailbox == "" && e.Transport == SMTP && e.GrandRegime != "" && e.Organisme != "" {
			e.Mailbox = AMOMailbox(e.GrandRegime, e.Organisme, opt.Domain)
		}
		if e.Mailbox == "" && validTransport(e.Transport) {
			add(lineErr(e.file, e.line, "mailbox", LineMissing, "required for transport %s", e.Transport))
		}
		period(e.file, e.line, e.Period)
	}
	for i := range d.AMC {
		e := &d.AMC[i]
		e.AMC = NormalizeAMC(e.AMC)
		digits(e.file, e.line, "amc", e.AMC, 8)
		if e.Regroupement == "" {
			add(lineErr(e.file, e.line, "regroupement", LineMissing, "required"))
		}
		if e.Operator == "" {
			add(lineErr(e.file, e.line, "operator", LineMissing, "required"))
		}
		period(e.file, e.line, e.Period)
	}
	for i := range d.Conventions {
		c := &d.Conventions[i]
		if c.Operator == "" {
			add(lineErr(c.file, c.line, "operator", LineMissing, "required"))
		}
		if c.Transport == "" {
			c.Transport = SMTP
		}
		if !validTransport(c.Transport) {
			add(lineErr(c.file, c.line, "transport", LineInvalid, "smtp, sftp or https expected, got %q", c.Transport))
		}
		if c.Cipher == "" {
			c.Cipher = AES128
			if c.Transport != SMTP {
				c.Cipher = CipherNone
			}
		}
		if !validCipher(c.Cipher) {
			add(lineErr(c.file, c.line, "cipher", LineInvalid, "aes128, 3des or none expected, got %q", c.Cipher))
		}
		if c.Address == "" {
			add(lineErr(c.file, c.line, "address", LineMissing, "required"))
		}
		if len(c.Norms) == 0 {
			add(lineErr(c.file, c.line, "norms", LineMissing, "at least one of B2, DRE, NOEMIE, SCOR, PEC"))
		}
		for _, n := range c.Norms {
			if !validNorm(n) {
				add(lineErr(c.file, c.line, "norms", LineInvalid, "unknown norm %q", n))
			}
		}
		slices.Sort(c.Professions)
		c.Professions = slices.Compact(c.Professions)
		slices.Sort(c.Norms)
		c.Norms = slices.Compact(c.Norms)
		if len(c.Extra) == 0 {
			c.Extra = nil
		}
		period(c.file, c.line, c.Period)
	}
	// Uniqueness: the same key may appear only with disjoint periods, so the
	// entry in force at any instant is unique.
	type seen struct {
		p    Period
		line int
		prof []string
	}
	amo := map[string][]seen{}
	for _, e := range d.AMO {
		k := e.GrandRegime + e.Caisse
		for _, s := range amo[k] {
			if s.p.overlaps(e.Period) {
				add(lineErr(e.file, e.line, "caisse", LineDuplicate, "grand régime %s caisse %s already given at line %d for an overlapping period", e.GrandRegime, e.Caisse, s.line))
				break
			}
		}
		amo[k] = append(amo[k], seen{p: e.Period, line: e.line})
	}
	amc := map[string][]seen{}
	for _, e := range d.AMC {
		for _, s := range amc[e.AMC] {
			if s.p.overlaps(e.Period) {
				add(lineErr(e.file, e.line, "amc", LineDuplicate, "AMC %s already given at line %d for an overlapping period", e.AMC, s.line))
				break
			}
		}
		amc[e.AMC] = append(amc[e.AMC], seen{p: e.Period, line: e.line})
	}
	conv := map[string][]seen{}
	for _, c := range d.Conventions {
		for _, s := range conv[c.Operator] {
			if s.p.overlaps(c.Period) && professionsOverlap(s.prof, c.Professions) {
				add(lineErr(c.file, c.line, "professions", LineDuplicate, "operator %s already has a convention at line %d for overlapping professions and period", c.Operator, s.line))
				break
			}
		}
		conv[c.Operator] = append(conv[c.Operator], seen{p: c.Period, line: c.line, prof: c.Professions})
	}
	return errs
}

// professionsOverlap: two identical sets overlap, and so do two sets sharing
// a profession. "All" (empty) overlaps only "all": a specific convention may
// override the catch-all one.
func professionsOverlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == 0 && len(b) == 0
	}
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}
