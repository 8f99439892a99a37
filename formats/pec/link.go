package pec

// PECNumberValid reports whether s is a PEC number as OCT-PEC v1 carries
// it: exactly 16 characters [0-9A-Z] (the width of the B2/DRE 2P
// complement field, col 83, formats.md §5.2), not all zeros.
func PECNumberValid(s string) bool {
	if len(s) != PECNumberLen {
		return false
	}
	zeros := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
		if c != '0' {
			zeros = false
		}
	}
	return !zeros
}

// LinkKey normalises a PEC number as found in an AMC answer or in the 2P
// complement of a B2/DRE invoice (fixed-width, blank-padded, possibly
// lower-cased by the practice software) to the key the gateway stores to
// link quote → agreement → invoice: blanks around it removed, letters
// upper-cased. ok is false when what remains is not a valid PEC number
// (empty, all zeros — the field left unfilled — wrong length or
// characters), and the invoice then carries no PEC.
//
// The key is the PEC number itself, not personal data; it may be logged.
func LinkKey(s string) (key string, ok bool) {
	i, j := 0, len(s)
	for i < j && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	for j > i && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	if j-i != PECNumberLen {
		return "", false
	}
	b := []byte(s[i:j])
	for k, c := range b {
		if c >= 'a' && c <= 'z' {
			b[k] = c - ('a' - 'A')
		}
	}
	key = string(b)
	if !PECNumberValid(key) {
		return "", false
	}
	return key, true
}

// Field2P returns the 16-character value to write in the 2P complement's
// PEC field for a PEC number: the link key itself (already 16 characters).
// ok is false when number is not a valid PEC number.
func Field2P(number string) (string, bool) {
	return LinkKey(number)
}
