package fixed

import (
	"fmt"
	"sort"
)

// Kind is the way a field's bytes are to be read.
type Kind uint8

const (
	// Alpha: left-aligned, blank-padded text in the layout's charset ("A").
	Alpha Kind = iota + 1
	// Numeric: right-aligned, zero-padded digits ("N").
	Numeric
	// Amount: digits with two implied decimals, in cents ("5+2").
	Amount
	// Date: YYMMDD; 000000 means "no date" (formats.md §8.11).
	Date
	// Raw: bytes kept as they are and not checked (reserved or unknown zones).
	Raw
)

func (k Kind) String() string {
	switch k {
	case Alpha:
		return "A"
	case Numeric:
		return "N"
	case Amount:
		return "amount"
	case Date:
		return "date"
	case Raw:
		return "raw"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Field is one row of a layout table, positions 1-based as in the norms.
type Field struct {
	Name string
	Pos  int // 1-based first column
	Len  int
	Kind Kind
}

// Ref is a precomputed accessor for one field of one layout.
type Ref struct {
	Name       string
	Kind       Kind
	start, end int // 0-based, half-open
}

// Pos returns the 1-based position and the length of the field.
func (r Ref) Pos() (pos, length int) { return r.start + 1, r.end - r.start }

// Valid reports whether the Ref was obtained from a layout.
func (r Ref) Valid() bool { return r.end > r.start }

// Layout is a checked table of fields for records of a fixed length.
type Layout struct {
	Name   string
	Length int
	fields []Field
	refs   []Ref
	index  map[string]int
}

// NewLayout checks the table: every field inside the record, no two fields
// overlapping, names unique and non-empty, known kinds.
func NewLayout(name string, length int, fields ...Field) (*Layout, error) {
	if length <= 0 {
		return nil, fmt.Errorf("fixed: layout %s: length %d", name, length)
	}
	l := &Layout{Name: name, Length: length, fields: append([]Field(nil), fields...), index: make(map[string]int, len(fields))}
	for i, f := range fields {
		switch {
		case f.Name == "":
			return nil, fmt.Errorf("fixed: layout %s: field %d has no name", name, i)
		case f.Pos < 1 || f.Len < 1 || f.Pos-1+f.Len > length:
			return nil, fmt.Errorf("fixed: layout %s: field %s at %d+%d outside a %d-byte record", name, f.Name, f.Pos, f.Len, length)
		case f.Kind < Alpha || f.Kind > Raw:
			return nil, fmt.Errorf("fixed: layout %s: field %s has no kind", name, f.Name)
		case f.Kind == Date && f.Len != 6:
			return nil, fmt.Errorf("fixed: layout %s: date field %s must be 6 long", name, f.Name)
		}
		if _, dup := l.index[f.Name]; dup {
			return nil, fmt.Errorf("fixed: layout %s: field %s twice", name, f.Name)
		}
		l.index[f.Name] = i
		l.refs = append(l.refs, Ref{Name: f.Name, Kind: f.Kind, start: f.Pos - 1, end: f.Pos - 1 + f.Len})
	}
	order := make([]int, len(fields))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return fields[order[a]].Pos < fields[order[b]].Pos })
	for i := 1; i < len(order); i++ {
		p, c := fields[order[i-1]], fields[order[i]]
		if p.Pos+p.Len > c.Pos {
			return nil, fmt.Errorf("fixed: layout %s: fields %s and %s overlap", name, p.Name, c.Name)
		}
	}
	return l, nil
}

// MustLayout is NewLayout for package-level tables; it panics on a bad table,
// which a test of the package catches at once.
func MustLayout(name string, length int, fields ...Field) *Layout {
	l, err := NewLayout(name, length, fields...)
	if err != nil {
		panic(err)
	}
	return l
}

// Fields returns the table (a copy).
func (l *Layout) Fields() []Field { return append([]Field(nil), l.fields...) }

// Refs returns the accessors in table order. The slice must not be modified.
func (l *Layout) Refs() []Ref { return l.refs }

// Ref returns the accessor of a named field; it panics on an unknown name so
// that a typo in a format package fails its first test, not a production file.
func (l *Layout) Ref(name string) Ref {
	i, ok := l.index[name]
	if !ok {
		panic(fmt.Sprintf("fixed: layout %s has no field %q", l.Name, name))
	}
	return l.refs[i]
}

// Lookup is Ref without the panic.
func (l *Layout) Lookup(name string) (Ref, bool) {
	i, ok := l.index[name]
	if !ok {
		return Ref{}, false
	}
	return l.refs[i], true
}

// Check validates every field of rec against its kind (digits for Numeric
// and Amount, a real calendar date or 000000 for Date). Alpha fields are not
// checked here: charset checks are done over the whole record by the reader,
// which is cheaper. bad is called once per faulty field, in table order.
// rec must be at least Length long.
func (l *Layout) Check(rec []byte, bad func(r Ref, kind Kind)) {
	for _, r := range l.refs {
		switch r.Kind {
		case Numeric, Amount:
			if !AllDigits(rec[r.start:r.end]) {
				bad(r, r.Kind)
			}
		case Date:
			if _, ok := r.Date(rec); !ok {
				bad(r, Date)
			}
		}
	}
}
