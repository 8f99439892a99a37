package fixed

// Charset is a 256-entry table of allowed bytes.
type Charset [256]bool

// NewCharset builds a table from the listed ranges ("AZ", "09") and single
// bytes.
func NewCharset(ranges ...string) *Charset {
	var c Charset
	for _, r := range ranges {
		switch len(r) {
		case 1:
			c[r[0]] = true
		case 2:
			for b := int(r[0]); b <= int(r[1]); b++ {
				c[b] = true
			}
		default:
			panic("fixed: charset range must be 1 or 2 bytes: " + r)
		}
	}
	return &c
}

// UpperAlnum is the B2 character set: upper-case unaccented letters, digits
// and the blank (formats.md §1.2). Punctuation is refused.
var UpperAlnum = NewCharset("AZ", "09", " ")

// FirstBad returns the index of the first byte of b not in c, or -1.
func (c *Charset) FirstBad(b []byte) int {
	for i, x := range b {
		if !c[x] {
			return i
		}
	}
	return -1
}
