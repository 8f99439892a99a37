package b2

import (
	"encoding/binary"

	"github.com/octgw/oct/formats/fixed"
)

// Kind identifies a record: its type ('0' for the 000 header, '9' for the
// 999 trailer, '1'..'6') and its complement letter (0 for a main record).
type Kind struct {
	Type   byte
	Letter byte
}

// String gives the usual name: "000", "999", "2", "3S", "4M".
func (k Kind) String() string {
	switch {
	case k.Type == '0':
		return "000"
	case k.Type == '9':
		return "999"
	case k.Letter != 0:
		return string([]byte{k.Type, k.Letter})
	case k.Type == 0:
		return "?"
	}
	return string([]byte{k.Type})
}

// Complement letters sit at column 36 or 39 (formats.md §1.2, §1.4).
const (
	letterAt36 = 35 // 0-based
	letterAt39 = 38
)

func isUpper(c byte) bool { return c-'A' < 26 }

// classify returns the kind of a record and the 0-based position of its
// complement letter (0 for none). ok is false when column 1 is not a B2
// record type. Type-1 complements are recognised by the caller (by
// position: a type 1 directly after a lot header).
func classify(rec []byte, ps bool) (k Kind, pos int, ok bool) {
	if len(rec) == 0 {
		return Kind{}, 0, false
	}
	t := rec[0]
	switch t {
	case '0':
		return Kind{Type: '0'}, 0, len(rec) >= 3 && rec[1] == '0' && rec[2] == '0'
	case '9':
		return Kind{Type: '9'}, 0, len(rec) >= 3 && rec[1] == '9' && rec[2] == '9'
	case '1', '5', '6':
		return Kind{Type: t}, 0, true
	case '2', '3', '4':
		if len(rec) > letterAt36 && isUpper(rec[letterAt36]) {
			return Kind{t, rec[letterAt36]}, letterAt36, true
		}
		if t != '4' && !(t == '2' && ps) && len(rec) > letterAt39 && isUpper(rec[letterAt39]) {
			return Kind{t, rec[letterAt39]}, letterAt39, true
		}
		return Kind{Type: t}, 0, true
	}
	return Kind{}, 0, false
}

// compiled is a layout prepared for the validator's single pass: merged
// spans of columns that must be digits, the date fields, and the field that
// owns each column (to name the field of a charset fault).
type compiled struct {
	L     *fixed.Layout
	spans [][2]int // 0-based half-open
	dates []fixed.Ref
	// dateAt is the 0-based start of each of dates.
	dateAt []int
	owner  [RecordLength]int16 // index in L.Refs(), -1 for none
	// dmask/dwant: for each 8-byte word of the record, the high-nibble mask
	// of the digit columns and the value it must have (0x3 per digit).
	dmask, dwant [RecordLength / 8]uint64
	// digitWord marks the words made only of digit columns.
	digitWord [RecordLength / 8]bool
	// easy is, for each word, a value known to pass (blanks in text
	// columns, '0' in digit columns): a word equal to it needs no test.
	easy [RecordLength / 8]uint64
}

func compile(l *fixed.Layout) *compiled {
	c := &compiled{L: l}
	for i := range c.owner {
		c.owner[i] = -1
	}
	var digit [RecordLength]bool
	for i, r := range l.Refs() {
		p, ln := r.Pos()
		for j := p - 1; j < p-1+ln; j++ {
			c.owner[j] = int16(i)
			if r.Kind == fixed.Numeric || r.Kind == fixed.Amount || r.Kind == fixed.Date {
				digit[j] = true
			}
		}
		if r.Kind == fixed.Date {
			c.dates = append(c.dates, r)
			c.dateAt = append(c.dateAt, p-1)
		}
	}
	for i, d := range digit {
		if d {
			c.dmask[i/8] |= 0xF0 << (8 * (i % 8))
			c.dwant[i/8] |= 0x30 << (8 * (i % 8))
		}
	}
	for i, d := range digit {
		e := uint64(' ')
		if d {
			e = '0'
		}
		c.easy[i/8] |= e << (8 * (i % 8))
	}
	for w := range c.digitWord {
		all := true
		for _, d := range digit[w*8 : w*8+8] {
			all = all && d
		}
		c.digitWord[w] = all
	}
	for i := 0; i < RecordLength; {
		if !digit[i] {
			i++
			continue
		}
		j := i
		for j < RecordLength && digit[j] {
			j++
		}
		c.spans = append(c.spans, [2]int{i, j})
		i = j
	}
	return c
}

// fieldName returns the name of the field owning 0-based column i.
func (c *compiled) fieldName(i int) string {
	if i < 0 || i >= RecordLength || c.owner[i] < 0 {
		return ""
	}
	return c.L.Refs()[c.owner[i]].Name
}

// scan checks a 128-byte record 8 bytes at a time: every byte in the B2
// charset (blank, 0-9, A-Z), and every digit column a digit. It returns
// false when anything is wrong; the caller then finds out what byte by byte.
//
// Each word is checked the cheapest way its layout allows: eight digit
// columns by their high nibble (3) and by adding 0x46 (which sets the high
// bit of a byte above '9'), a word equal to its easy value (blanks and
// zeros, e.g. an empty zone) by one comparison, any other by charsetHigh
// and the digit mask. hi gathers
// words whose high bits flag bad bytes, all words that must be zero. The
// loop handles four words per turn (the same code four times): the loop
// and its branches cost as much as the checks otherwise.
//
// The additions may carry from a byte >= 0x80 into the next byte, making
// that next byte's flag meaningless; but the byte that carried is flagged
// itself (by its own high bit or by the nibble test), and no byte below
// the first bad one of a word is affected, so the verdict is exact.
func (c *compiled) scan(data []byte) bool {
	d := (*[RecordLength]byte)(data)
	const h = 0x8080808080808080
	var hi, all uint64
	for i := 0; i < RecordLength/8; i += 4 {
		x0 := binary.LittleEndian.Uint64(d[i*8:])
		x1 := binary.LittleEndian.Uint64(d[i*8+8:])
		x2 := binary.LittleEndian.Uint64(d[i*8+16:])
		x3 := binary.LittleEndian.Uint64(d[i*8+24:])
		switch {
		case c.digitWord[i+0]:
			hi |= x0 + 0x4646464646464646
			all |= x0&0xF0F0F0F0F0F0F0F0 ^ 0x3030303030303030
		case x0 == c.easy[i+0]:
		default:
			hi |= charsetHigh(x0)
			all |= x0&c.dmask[i+0] ^ c.dwant[i+0]
		}
		switch {
		case c.digitWord[i+1]:
			hi |= x1 + 0x4646464646464646
			all |= x1&0xF0F0F0F0F0F0F0F0 ^ 0x3030303030303030
		case x1 == c.easy[i+1]:
		default:
			hi |= charsetHigh(x1)
			all |= x1&c.dmask[i+1] ^ c.dwant[i+1]
		}
		switch {
		case c.digitWord[i+2]:
			hi |= x2 + 0x4646464646464646
			all |= x2&0xF0F0F0F0F0F0F0F0 ^ 0x3030303030303030
		case x2 == c.easy[i+2]:
		default:
			hi |= charsetHigh(x2)
			all |= x2&c.dmask[i+2] ^ c.dwant[i+2]
		}
		switch {
		case c.digitWord[i+3]:
			hi |= x3 + 0x4646464646464646
			all |= x3&0xF0F0F0F0F0F0F0F0 ^ 0x3030303030303030
		case x3 == c.easy[i+3]:
		default:
			hi |= charsetHigh(x3)
			all |= x3&c.dmask[i+3] ^ c.dwant[i+3]
		}
	}
	return hi&h|all == 0
}

// charsetHigh returns a word whose byte high bits flag the bytes of x
// that are not blank, a digit or an upper-case letter, up to the first
// byte >= 0x80 (the additions may carry past it; see scan). The low bits
// are meaningless. See notCharsetSWAR for the formula.
func charsetHigh(x uint64) uint64 {
	blank := (x + 0x6060606060606060) ^ (x + 0x5F5F5F5F5F5F5F5F) // >= 0x20, > 0x20
	digit := (x + 0x5050505050505050) ^ (x + 0x4646464646464646) // >= 0x30, > 0x39
	upper := (x + 0x3F3F3F3F3F3F3F3F) ^ (x + 0x2525252525252525) // >= 0x41, > 0x5A
	return x | ^(blank ^ digit ^ upper)
}

// notCharsetSWAR returns a word with the high bit of every byte of x that
// is not blank, a digit or an upper-case letter (and only those bits):
// charsetHigh on the bytes' low seven bits (nothing can carry), then the
// bytes >= 0x80. Tests check charsetHigh's formula through it.
//
// The allowed bytes are three ranges, [0x20,0x20], [0x30,0x39] and
// [0x41,0x5A]: a byte is allowed exactly when an odd number of the six
// bounds 0x20 ≤, 0x20 <, 0x30 ≤, 0x39 <, 0x41 ≤, 0x5A < hold for it, so the
// exclusive or of the six comparisons is the answer. For a byte <= 0x7F,
// adding 0x80-n sets its high bit when it is >= n, adding 0x7F-n when it
// is > n.
func notCharsetSWAR(x uint64) uint64 {
	const h = 0x8080808080808080
	return (charsetHigh(x&^h) | x) & h
}

// allDigitsSWAR reports whether b holds only '0'..'9', given that every byte
// is already known to be in the B2 charset (blank, digits, A-Z): then a byte
// is a digit exactly when its high nibble is 3.
func allDigitsSWAR(b []byte) bool {
	const hi = 0xF0F0F0F0F0F0F0F0
	const three = 0x3030303030303030
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b)&hi != three {
			return false
		}
		b = b[8:]
	}
	for _, x := range b {
		if x&0xF0 != 0x30 {
			return false
		}
	}
	return true
}

// Precompiled tables (immutable after init).
var (
	cHeader  = compile(Header)
	cTrailer = compile(Trailer)
	cType1   = compile(Type1)
	cComp1   = compile(Comp1)
	cType2   = compile(Type2)
	cType2PS = compile(Type2PS)
	cType3   = compile(Type3)
	cType3PS = compile(Type3PS)
	cType4   = compile(Type4)
	cType4PS = compile(Type4PS)
	cType5   = compile(Type5)
	cType5PS = compile(Type5PS)
	cType6   = compile(Type6)
	cUnk36   = compile(Comp36Unknown)
	cUnk39   = compile(Comp39Unknown)

	// complements[type-'2'][0 for col 36, 1 for col 39][letter-'A']
	complements = func() (t [3][2][26]*compiled) {
		set := func(typ byte, pos int, letter byte, l *fixed.Layout) {
			p := 0
			if pos == letterAt39 {
				p = 1
			}
			t[typ-'2'][p][letter-'A'] = compile(l)
		}
		set('2', letterAt39, 'S', Comp2S)
		set('2', letterAt39, 'B', Comp2B)
		set('2', letterAt39, 'P', Comp2P)
		set('2', letterAt36, 'X', Comp2X)
		set('3', letterAt39, 'S', Comp3S)
		set('3', letterAt39, 'E', Comp3E)
		set('3', letterAt36, 'F', Comp3F)
		set('3', letterAt36, 'H', Comp3H)
		set('4', letterAt36, 'S', Comp4S)
		set('4', letterAt36, 'E', Comp4E)
		set('4', letterAt36, 'B', Comp4B)
		set('4', letterAt36, 'H', Comp4H)
		set('4', letterAt36, 'M', Comp4M)
		for i := range t {
			for l := range t[i][0] {
				if t[i][0][l] == nil {
					t[i][0][l] = cUnk36
				}
				if t[i][1][l] == nil {
					t[i][1][l] = cUnk39
				}
			}
		}
		return t
	}()
)

// complementLayout returns the layout of a complement record.
func complementLayout(k Kind, pos int) *compiled {
	p := 0
	if pos == letterAt39 {
		p = 1
	}
	return complements[k.Type-'2'][p][k.Letter-'A']
}

// Known reports whether the complement has a layout of its own (not the
// pass-through one).
func knownComplement(k Kind, pos int) bool {
	c := complementLayout(k, pos)
	return c != cUnk36 && c != cUnk39
}

// variant holds what differs between the CP/ES and PS layouts.
type variant struct {
	name   string
	full   bool // CP/ES: every layout known, totals checked
	t2     *compiled
	t3     *compiled
	t4     *compiled
	t5     *compiled
	keyEnd int // type 2 and 5 keys are cols 2..keyEnd (1-based, inclusive)
	// field accessors
	invoice, nir, nirKey fixed.Ref
	careDate, t4AMO      fixed.Ref
	t4Fees               fixed.Ref
	// t4AMON and t4FeesN read t4AMO and t4Fees in checked records.
	t4AMON, t4FeesN num
}

var (
	variantCP = &variant{name: "CP", full: true, t2: cType2, t3: cType3, t4: cType4, t5: cType5, keyEnd: 38,
		invoice: Type2.Ref("invoice"), nir: Type2.Ref("nir"), nirKey: Type2.Ref("nir_key"),
		careDate: Type4.Ref("care_date"), t4AMO: Type4.Ref("amo"), t4Fees: Type4.Ref("fees"),
		t4AMON: numOf(Type4.Ref("amo")), t4FeesN: numOf(Type4.Ref("fees"))}
	variantPS = &variant{name: "PS", t2: cType2PS, t3: cType3PS, t4: cType4PS, t5: cType5PS, keyEnd: 35,
		invoice: Type2PS.Ref("invoice"), nir: Type2PS.Ref("nir"), nirKey: Type2PS.Ref("nir_key"),
		careDate: Type4PS.Ref("care_date"), t4AMO: Type4PS.Ref("amo"), t4Fees: Type4PS.Ref("fees"),
		t4AMON: numOf(Type4PS.Ref("amo")), t4FeesN: numOf(Type4PS.Ref("fees"))}
)

// variantOf maps the type-1 variant code (cols 79-80) to its layouts: CP
// and ES share theirs; any other value is the liberal-practitioner layout.
func variantOf(code []byte) *variant {
	if string(code) == "CP" || string(code) == "ES" {
		return variantCP
	}
	return variantPS
}
