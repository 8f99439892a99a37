package fixed

import "bytes"

// Bytes returns the field's bytes, a sub-slice of rec (no copy).
func (r Ref) Bytes(rec []byte) []byte { return rec[r.start:r.end] }

// String returns the field as text; Alpha fields lose their trailing blanks.
func (r Ref) String(rec []byte) string {
	b := rec[r.start:r.end]
	if r.Kind == Alpha {
		b = bytes.TrimRight(b, " ")
	}
	return string(b)
}

// IsBlank reports whether the field holds only blanks.
func (r Ref) IsBlank(rec []byte) bool {
	for _, c := range rec[r.start:r.end] {
		if c != ' ' {
			return false
		}
	}
	return true
}

// IsZero reports whether the field holds only '0'.
func (r Ref) IsZero(rec []byte) bool {
	for _, c := range rec[r.start:r.end] {
		if c != '0' {
			return false
		}
	}
	return true
}

// Int parses the field as an unsigned decimal; ok is false if any byte is not
// a digit. Amounts come back in cents.
func (r Ref) Int(rec []byte) (v int64, ok bool) { return ParseUint(rec[r.start:r.end]) }

// Date parses the field as YYMMDD; see ParseDate.
func (r Ref) Date(rec []byte) (Day, bool) { return ParseDate(rec[r.start:r.end]) }

// Equal reports whether the field holds the same bytes in a and b.
func (r Ref) Equal(a, b []byte) bool { return bytes.Equal(a[r.start:r.end], b[r.start:r.end]) }

// SetString writes s left-aligned, blank-padded; s longer than the field is
// an error (never silently truncated).
func (r Ref) SetString(rec []byte, s string) error {
	n := r.end - r.start
	if len(s) > n {
		return Errorf(ErrFieldOverflow, 0, r.Name, "%d bytes for a %d-byte field", len(s), n)
	}
	copy(rec[r.start:], s)
	for i := r.start + len(s); i < r.end; i++ {
		rec[i] = ' '
	}
	return nil
}

// SetInt writes v right-aligned, zero-padded.
func (r Ref) SetInt(rec []byte, v int64) error {
	if v < 0 {
		return Errorf(ErrFieldOverflow, 0, r.Name, "negative value %d", v)
	}
	for i := r.end - 1; i >= r.start; i-- {
		rec[i] = byte('0' + v%10)
		v /= 10
	}
	if v != 0 {
		return Errorf(ErrFieldOverflow, 0, r.Name, "value does not fit %d digits", r.end-r.start)
	}
	return nil
}

// SetDate writes d as YYMMDD (or 000000 for the zero Day).
func (r Ref) SetDate(rec []byte, d Day) error {
	if r.end-r.start != 6 {
		return Errorf(ErrFieldOverflow, 0, r.Name, "not a 6-byte date field")
	}
	d.AppendYYMMDD(rec[r.start:r.start])
	return nil
}

// SetBytes copies b into the field, which must be exactly as long.
func (r Ref) SetBytes(rec []byte, b []byte) error {
	if len(b) != r.end-r.start {
		return Errorf(ErrFieldOverflow, 0, r.Name, "%d bytes for a %d-byte field", len(b), r.end-r.start)
	}
	copy(rec[r.start:r.end], b)
	return nil
}

// ErrFieldOverflow is returned by the setters when a value does not fit.
const ErrFieldOverflow Code = "field-overflow"

// AllDigits reports whether every byte of b is '0'..'9'.
func AllDigits(b []byte) bool {
	for _, c := range b {
		if c-'0' > 9 {
			return false
		}
	}
	return true
}

// ParseUint parses unsigned decimal digits without allocating. More than 18
// digits is refused (the norms have none that long).
func ParseUint(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		d := c - '0'
		if d > 9 {
			return 0, false
		}
		v = v*10 + int64(d)
	}
	return v, true
}
