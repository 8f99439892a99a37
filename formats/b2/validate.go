package b2

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/nir"
)

// Limits bound what Validate reads. Zero means the documented default;
// a negative value means no limit.
type Limits struct {
	MaxBytes   int64 // default DefaultMaxBytes
	MaxRecords int64 // default DefaultMaxRecords
	MaxErrors  int   // errors kept in the Report; default DefaultMaxErrors
}

// Defaults for Limits.
const (
	DefaultMaxBytes   = 4 << 30    // 4 GiB
	DefaultMaxRecords = 40_000_000 // about 5 GB of records
	DefaultMaxErrors  = fixed.DefaultMaxErrors
)

// Validation constants (project conventions, docs/formats/b2.md).
const (
	// MaxJunkRun: after this many consecutive unreadable records (wrong
	// length, unknown type) the input is declared not-b2 and reading stops.
	MaxJunkRun = 32
	// MaxLines is the most 3x/4x records an invoice may hold (§1.3).
	MaxLines = 999
	// maxDupSet bounds the per-lot set of invoice numbers used to find
	// duplicates (memory stays flat on absurd lots; a lot has at most 999
	// invoices by its 3-digit counters).
	maxDupSet = 1 << 16
	// realignWindow is how far Realign looks for the next record start in
	// back-to-back files.
	realignWindow = 4 * RecordLength
)

// Options configure Validate.
type Options struct {
	Limits Limits
	// Summaries keeps per-lot and per-invoice summaries in the Report. Off
	// for huge files: memory then stays flat whatever the file size.
	Summaries bool
	// KnownAMC, when set, is asked about every non-blank AMC number of a
	// type-2 record; false gives an unknown-amc error.
	KnownAMC func(amc string) bool
}

// Stats counts what was read.
type Stats struct {
	Records  int64 `json:"records"`
	Lots     int64 `json:"lots"`
	Invoices int64 `json:"invoices"`
	Bytes    int64 `json:"bytes"`
}

// Report is the outcome of Validate.
type Report struct {
	Valid   bool
	Errors  []fixed.Error
	Dropped int64 // errors counted past Limits.MaxErrors
	Stats   Stats
	Header  envelope.Info // decoded 000 header
	Framing Framing       // as read (FramingNone for back-to-back)
	Lots    []Lot         // only with Options.Summaries
}

// Lot summarises one lot. Index is its 0-based position in the file (the
// argument of ExtractLot and RebuildLot).
type Lot struct {
	Index       int
	Emitter     string
	Number      int
	Date        fixed.Day
	Variant     string
	DestCaisse  string
	FirstRecord int64 // physical record number of the type 1
	Records     int64 // type 1 to type 6 inclusive
	Valid       bool
	Invoices    []Invoice
}

// Invoice summarises one invoice. NIR is the raw 13 characters followed by
// the 2-digit key: callers must hash it (nir.Hasher) and never log it.
type Invoice struct {
	Number      string
	NIR         string
	GrandRegime string
	Caisse      string
	AMC         string
	PEC         string
	Lines       int   // 3x/4x records, complements included
	Billed      int64 // cents: Σ type-3 total expense + Σ type-4 fees
	AMO         int64 // cents
	AMCAmount   int64 // cents
	FirstRecord int64
	Valid       bool
}

// Validate reads a B2 file and checks it. The error is only for an I/O
// failure of r; every finding (including limits exceeded, where reading
// stops early) is in the Report.
func Validate(r io.Reader, opt Options) (*Report, error) {
	return NewValidator(opt).Validate(r)
}

// Validator validates B2 files one after the other, reusing its buffers
// (no allocation per record). Not safe for concurrent use.
type Validator struct {
	opt Options
	rd  Reader
	lim io.LimitedReader
	v   state
}

// NewValidator returns a Validator with the given options.
func NewValidator(opt Options) *Validator {
	return &Validator{opt: opt}
}

// Validate checks one file.
func (val *Validator) Validate(r io.Reader) (*Report, error) {
	o := val.opt
	maxBytes := o.Limits.MaxBytes
	if maxBytes == 0 {
		maxBytes = DefaultMaxBytes
	}
	maxRecords := o.Limits.MaxRecords
	if maxRecords == 0 {
		maxRecords = DefaultMaxRecords
	}
	maxErrors := o.Limits.MaxErrors
	if maxErrors == 0 {
		maxErrors = DefaultMaxErrors
	}
	if maxErrors < 0 {
		maxErrors = int(^uint(0) >> 1)
	}
	src := r
	if maxBytes > 0 {
		val.lim = io.LimitedReader{R: r, N: maxBytes + 1}
		src = &val.lim
	}
	val.rd.Reset(src)
	s := &val.v
	s.reset(o)
	s.col.Max = maxErrors
	rep := &Report{}
	s.rep = rep
	var ioErr error
	for !s.stop {
		data, err := val.rd.next()
		if err == io.EOF {
			break
		}
		if err == ErrLineTooLong {
			s.addf(ErrNotB2, s.records+1, "", "a line is longer than %d bytes: not a B2 file", MaxLine)
			break
		}
		if err != nil {
			ioErr = err
			break
		}
		if len(data) == 0 {
			continue
		}
		num := val.rd.curNum
		if maxBytes > 0 && val.rd.curOff+int64(len(data)) > maxBytes {
			s.addf(ErrFileTooLarge, num, "", "file larger than %d bytes: reading stopped", maxBytes)
			s.stop, s.limited = true, true
			break
		}
		if maxRecords > 0 && num > maxRecords {
			s.addf(ErrTooManyRecords, num, "", "more than %d records: reading stopped", maxRecords)
			s.stop, s.limited = true, true
			break
		}
		s.records = num
		s.record(&val.rd, data, num)
	}
	if ioErr != nil {
		return nil, ioErr
	}
	s.finish()
	rep.Stats.Records = s.records
	rep.Stats.Lots = s.lotCount
	rep.Stats.Invoices = s.invCount
	rep.Stats.Bytes = val.rd.Offset()
	rep.Framing = val.rd.Framing()
	rep.Errors = s.col.Errors()
	rep.Dropped = s.col.Dropped()
	rep.Valid = len(rep.Errors) == 0 && rep.Dropped == 0
	s.rep = nil
	return rep, nil
}

// Structural position in the file.
const (
	posStart    = iota // nothing read
	posFile            // after 000 or 6: expect 1 or 999
	posLot             // after 1 (or its complements): expect 2 or 6
	posInvHead         // after 2 or a 2x complement
	posLines           // after 3/4 or a line complement
	posAfterInv        // after 5: expect 2 or 6
	posDone            // after 999
)

type lotState struct {
	v          *variant
	emitter    [9]byte
	number     int64
	numberOK   bool
	date       fixed.Day
	dateOK     bool
	invoices   int64
	lines      int64
	linesOK    bool // every line was readable (type 6 line count checkable)
	first      int64
	errBase    int64
	amountSum  int64
	summaryIdx int // index in rep.Lots, -1 without summaries
}

type invState struct {
	keys      [RecordLength]byte
	keysOK    bool
	number    int64
	lines     int64
	countOK   bool // every record of the invoice was readable
	sumsOK    bool // every amount was readable
	sums      [8]int64
	prev      Kind      // previous record of the invoice
	line      byte      // type of the current parent line ('3' or '4')
	seq       [26]uint8 // last sequence number (2 digits) per letter
	first     int64
	errBase   int64
	summary   Invoice
	summaryOn bool
}

// Indexes of the type-5 totals in invState.sums and the Type5 fields.
var t5Totals = [8]fixed.Ref{
	Type5.Ref("base_services"), Type5.Ref("amo_services"), Type5.Ref("fees"), Type5.Ref("amo_fees"),
	Type5.Ref("patient_share"), Type5.Ref("amc_services"), Type5.Ref("amc_fees"), Type5.Ref("billed_services"),
}

const (
	sBase = iota
	sAMOServices
	sFees
	sAMOFees
	sPatient
	sAMCServices
	sAMCFees
	sBilled
)

var (
	t1Emitter   = Type1.Ref("emitter")
	t1Lot       = Type1.Ref("lot_number")
	t1Date      = Type1.Ref("lot_date")
	t1Variant   = Type1.Ref("variant")
	t1Caisse    = Type1.Ref("dest_caisse")
	t2Regime    = Type2.Ref("grand_regime")
	t2Caisse    = Type2.Ref("caisse")
	t2AMC       = Type2.Ref("amc")
	t2PSAMC     = Type2PS.Ref("amc")
	c2SNIR      = Comp2S.Ref("individual_nir")
	c2SKey      = Comp2S.Ref("individual_key")
	c2PPEC      = Comp2P.Ref("pec")
	t3Start     = Type3.Ref("stay_start")
	t3End       = Type3.Ref("stay_end")
	t3Base      = Type3.Ref("base")
	t3AMO       = Type3.Ref("amo")
	t3Total     = Type3.Ref("total")
	t3AMC       = Type3.Ref("amc")
	t4AMC       = Type4.Ref("amc")
	t5Count     = Type5.Ref("line_count")
	t6Emitter   = Type6.Ref("emitter")
	t6Invoices  = Type6.Ref("invoices")
	t6Lines     = Type6.Ref("lines")
	t6Invoices2 = Type6.Ref("invoices2")
	t6Invoices3 = Type6.Ref("invoices3")
	t6Amount1   = Type6.Ref("amount1")
	t6Lot       = Type6.Ref("lot_number")
	seq37Ref    = Comp3F.Ref("seq")

	// Readers of the same fields in records that passed scan.
	t3BaseN   = numOf(t3Base)
	t3AMON    = numOf(t3AMO)
	t3TotalN  = numOf(t3Total)
	t3AMCN    = numOf(t3AMC)
	t4AMCN    = numOf(t4AMC)
	seq37N    = numOf(seq37Ref)
	t5TotalsN = func() (t [len(t5Totals)]num) {
		for i, r := range t5Totals {
			t[i] = numOf(r)
		}
		return t
	}()
)

// state is the validator's working state, reused between files.
type state struct {
	opt      Options
	rep      *Report
	col      fixed.Collector
	stop     bool
	limited  bool
	records  int64
	pos      int
	header   [RecordLength]byte
	hdrOK    bool // a full 128-byte 000 was read
	orphan   bool // inside records that belong to nothing (error already given)
	junk     int
	lotCount int64
	invCount int64
	lot      lotState
	inLot    bool
	inv      invState
	inInv    bool
	sawEnd   bool
	dup      map[int64]struct{}
	amc      map[string]bool
	badCols  [RecordLength]bool
	// partner is the health-partner number of the last readable type 2,
	// used to recognise record starts in back-to-back files.
	partner     [9]byte
	havePartner bool
}

func (s *state) reset(o Options) {
	dup, amc := s.dup, s.amc
	*s = state{opt: o, dup: dup, amc: amc}
	if s.dup == nil {
		s.dup = make(map[int64]struct{}, 64)
	}
	clear(s.dup)
	if o.KnownAMC != nil {
		if s.amc == nil {
			s.amc = make(map[string]bool)
		}
		clear(s.amc)
	}
}

func (s *state) errCount() int64 { return int64(s.col.Len()) + s.col.Dropped() }

func (s *state) addf(code fixed.Code, rec int64, field, format string, args ...any) {
	s.col.Addf(code, rec, field, format, args...)
}

// record processes one physical record (non-empty Data).
func (s *state) record(rd *Reader, data []byte, num int64) {
	if num == 1 {
		if len(data) < 3 || string(data[:3]) != "000" {
			s.addf(ErrNotB2, 1, "", "the file does not start with a 000 header")
			s.stop = true
			return
		}
		if len(data) >= RecordLength && isNoemieNorm(envelope.HNorm.Bytes(data)) {
			s.addf(ErrNotB2, 1, "norm", "norm %q is a NOEMIE référence, not B2", strings.TrimSpace(string(envelope.HNorm.Bytes(data))))
			s.stop = true
			return
		}
	}
	if s.pos == posDone {
		s.addf(ErrRecordOrder, num, "", "data after the 999 trailer: reading stopped")
		s.stop = true
		return
	}
	ps := s.inLot && !s.lot.v.full
	if num > 1 && !rd.LineFramed() && len(data) == RecordLength {
		// Back-to-back file: a record of the wrong length shifts the ones
		// after it. Check that this record and the next one look like
		// records, and find the real boundary when they do not.
		here := s.isStart(data)
		if !here || !weakStart(rd.PeekNext()) {
			// When this record starts right, only a shorter record is
			// looked for (what follows may just be a bad record).
			limit := RecordLength
			if !here {
				limit = 2 * RecordLength
			}
			if r2, found := rd.Realign(limit, s.startAt); found && len(r2.Data) != RecordLength {
				data = r2.Data
				if !here { // a piece of a shifted record: nothing in it can be read
					s.damaged(num, len(data))
					s.unreadable()
					return
				}
			}
		}
	}
	k, lpos, ok := classify(data, ps)
	if !ok {
		if len(data) != RecordLength {
			s.damaged(num, len(data))
			return
		}
		s.junk++
		s.addf(ErrRecordType, num, "type", "unknown record type %q", printable(data[:1]))
		s.unreadable()
		return
	}
	if len(data) != RecordLength {
		s.damaged(num, len(data))
		if s.stop {
			return
		}
		// Keep the structure: a short or long record still counts where its
		// type says, but none of its fields is trusted.
		s.structure(k, lpos, data, num, false)
		return
	}
	s.junk = 0
	s.structure(k, lpos, data, num, true)
}

// damaged reports a record of the wrong length. Its type is still used
// when it can be read, so the invoice and lot counts stay right.
func (s *state) damaged(num int64, n int) {
	s.addf(ErrRecordLength, num, "", "record is %d characters, not %d", n, RecordLength)
	s.junk++
	if s.inInv {
		s.inv.sumsOK = false
	}
	if s.junk >= MaxJunkRun {
		s.addf(ErrNotB2, s.records, "", "%d consecutive unreadable records: reading stopped", s.junk)
		s.stop = true
	}
}

// unreadable marks the open invoice and lot as no longer countable (a record
// of unknown type may have been a line) and stops on a run of junk.
func (s *state) unreadable() {
	if s.inInv {
		s.inv.countOK = false
		s.inv.sumsOK = false
	}
	if s.inLot {
		s.lot.linesOK = false
	}
	if s.junk >= MaxJunkRun {
		s.addf(ErrNotB2, s.records, "", "%d consecutive unreadable records: reading stopped", s.junk)
		s.stop = true
	}
}

// startAt is the Realign predicate: a record start recognised by isStart,
// or, where the next record is expected anyway, one that weakStart accepts.
func (s *state) startAt(b []byte, aligned bool) bool {
	return s.isStart(b) || aligned && weakStart(b)
}

// weakStart: a record type followed by a 9-digit number, or 999; also
// true for fewer than 26 bytes (end of file: nothing to compare).
func weakStart(b []byte) bool {
	if len(b) < 26 {
		return true
	}
	switch b[0] {
	case '1', '2', '3', '4', '5', '6':
		return digits9(b[1:10])
	case '9':
		return b[1] == '9' && b[2] == '9'
	}
	return false
}

// isStart says whether b (at least the first 26 bytes of a record) looks
// like the next record of a back-to-back file in the current state: a line
// or trailer carrying the keys of the open invoice, an invoice header of
// the lot's partner with a well-formed NIR, a lot trailer of the lot's
// emitter, a lot header where a lot may start, or the 999 of this file. It
// is used to notice a shifted record and to find the next record start.
func (s *state) isStart(b []byte) bool {
	if len(b) < 26 {
		return false
	}
	switch b[0] {
	case '3', '4', '5':
		if !s.inInv {
			return s.inLot && s.havePartner && same9(b[1:10], s.partner[:])
		}
		if s.inv.keysOK {
			return same25(b[1:26], s.inv.keys[1:26])
		}
		return s.havePartner && same9(b[1:10], s.partner[:])
	case '2':
		if !s.inLot {
			return false
		}
		p := string(b[1:10])
		if !(s.havePartner && p == string(s.partner[:]) || p == string(s.lot.emitter[:])) {
			return false
		}
		_, ok := nir.Number(b[11:24])
		return ok && fixed.AllDigits(b[24:26])
	case '1':
		if s.inLot && s.pos == posLot {
			return string(b[1:10]) == string(s.lot.emitter[:]) || len(b) > letterAt39 && isUpper(b[letterAt39])
		}
		return (s.pos == posFile || s.pos == posAfterInv) && fixed.AllDigits(b[1:10]) && fixed.AllDigits(b[16:22])
	case '6':
		return s.inLot && string(b[1:10]) == string(s.lot.emitter[:])
	case '9':
		return s.hdrOK && len(b) >= envelope.IdentLen && string(b[:3]) == "999" && envelope.SameIdent(s.header[:], b)
	}
	return false
}

// same9 and same25 are string(a) == string(b) for 9 and 25 bytes, a word
// at a time (these run on every record of a back-to-back file).
func same9(a, b []byte) bool {
	a, b = a[:9], b[:9]
	return binary.LittleEndian.Uint64(a) == binary.LittleEndian.Uint64(b) && a[8] == b[8]
}

func same25(a, b []byte) bool {
	a, b = a[:25], b[:25]
	return binary.LittleEndian.Uint64(a) == binary.LittleEndian.Uint64(b) &&
		binary.LittleEndian.Uint64(a[8:]) == binary.LittleEndian.Uint64(b[8:]) &&
		binary.LittleEndian.Uint64(a[16:]) == binary.LittleEndian.Uint64(b[16:]) &&
		a[24] == b[24]
}

// digits9 is fixed.AllDigits for 9 bytes: a byte is a digit when its high
// nibble is 3 and adding 6 does not carry out of its low nibble (no carry
// can cross bytes once every high nibble is 3).
func digits9(b []byte) bool {
	b = b[:9]
	const hi = 0xF0F0F0F0F0F0F0F0
	const three = 0x3030303030303030
	x := binary.LittleEndian.Uint64(b)
	return x&hi == three && (x+0x0606060606060606)&hi == three && b[8]-'0' <= 9
}

func printable(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7F {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "\\x%02x", c)
		}
	}
	return sb.String()
}

func isNoemieNorm(b []byte) bool {
	t := strings.TrimRight(string(b), " ")
	return len(t) > 0 && fixed.AllDigits([]byte(t))
}

// fields checks the charset, the numeric fields and the dates of a record
// against its layout. It returns false when a Numeric/Amount/Date field is
// unreadable (so sums and comparisons are not trusted).
func (s *state) fields(c *compiled, data []byte, num int64) bool {
	if !c.scan(data) {
		return s.fieldsSlow(c, data, num)
	}
	ok := true
	for i, p := range c.dateAt {
		if b := (*[6]byte)(data[p:]); !everyYear(b) && string(b[:]) != "000000" && !parseDateOK(b[:]) {
			r := c.dates[i]
			s.addf(ErrDate, num, r.Name, "%q is not a date (YYMMDD)", r.Bytes(data))
			ok = false
		}
	}
	return ok
}

// fieldsSlow finds and reports what scan refused.
func (s *state) fieldsSlow(c *compiled, data []byte, num int64) bool {
	var bad byte
	for _, x := range data {
		bad |= notCharset[x]
	}
	if bad != 0 {
		s.charset(c, data, num)
	}
	digitsOK := true
	for _, sp := range c.spans {
		if !fixed.AllDigits(data[sp[0]:sp[1]]) {
			s.numeric(c, data, num, sp)
			digitsOK = false
		}
	}
	if digitsOK {
		for _, r := range c.dates {
			if _, dok := r.Date(data); !dok {
				s.addf(ErrDate, num, r.Name, "%q is not a date (YYMMDD)", r.Bytes(data))
			}
		}
	}
	return false
}

// notCharset is 1 for bytes outside the B2 character set.
var notCharset = func() (t [256]byte) {
	for i := range t {
		if !fixed.UpperAlnum[i] {
			t[i] = 1
		}
	}
	return t
}()

// charset reports one error per record: the first bad byte and its field.
func (s *state) charset(c *compiled, data []byte, num int64) {
	first, count := -1, 0
	for i, x := range data {
		bad := notCharset[x] != 0
		s.badCols[i] = bad
		if bad {
			count++
			if first < 0 {
				first = i
			}
		}
	}
	more := ""
	if count > 1 {
		more = fmt.Sprintf(" (%d bad characters in the record)", count)
	}
	s.addf(ErrCharset, num, c.fieldName(first), "character %q at column %d is not allowed (upper-case letters, digits and blank only)%s",
		printable(data[first:first+1]), first+1, more)
}

// numeric reports the fields of a digit span that are not all digits,
// ignoring fields already reported for their charset: one error per record
// and span, naming the first field.
func (s *state) numeric(c *compiled, data []byte, num int64, sp [2]int) {
	var names []string
	var first fixed.Ref
	for _, r := range c.L.Refs() {
		p, ln := r.Pos()
		st, en := p-1, p-1+ln
		if st < sp[0] || en > sp[1] || fixed.AllDigits(data[st:en]) {
			continue
		}
		skip := false
		for i := st; i < en; i++ {
			if notCharset[data[i]] != 0 {
				skip = true
			}
		}
		if skip {
			continue
		}
		if names == nil {
			first = r
		}
		names = append(names, r.Name)
	}
	if names == nil {
		return
	}
	code := ErrNumericField
	if first.Kind == fixed.Date {
		code = ErrDate
	}
	more := ""
	if len(names) > 1 {
		more = " (also " + strings.Join(names[1:], ", ") + ")"
	}
	s.addf(code, num, first.Name, "%q: digits expected%s", first.Bytes(data), more)
}
