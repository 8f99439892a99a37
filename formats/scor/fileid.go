package scor

import (
	"crypto/sha256"
	"encoding/binary"
)

// fileIDAlphabet is the character set of a SCOR file id after its 'S'.
const fileIDAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// FileID returns the 6-character file identifier of the SCOR lot that
// accompanies the lot lotID: 'S' followed by 5 characters [0-9A-Z] taken
// from a SHA-256 of lotID. It fills the 6-character file_id of the OCT-ARL
// layout (formats/arl), so that the SCOR lot's own ARL correlates to it.
// The B2 lot it accompanies has the same émetteur, lot number and date, and
// the practitioner software's own file id: the two ARLs differ by file id
// unless that id happens to equal this one (1 in 36^5 for an id starting
// with S). The same lotID always gives the same id (a resend keeps it).
func FileID(lotID string) string {
	sum := sha256.Sum256([]byte("oct-scor-file-id\x00" + lotID))
	v := binary.BigEndian.Uint64(sum[:8])
	b := []byte{'S', 0, 0, 0, 0, 0}
	for i := 5; i >= 1; i-- {
		b[i] = fileIDAlphabet[v%36]
		v /= 36
	}
	return string(b)
}

// IsFileID reports whether s has the shape FileID gives: 'S' and 5
// characters [0-9A-Z].
func IsFileID(s string) bool {
	if len(s) != 6 || s[0] != 'S' {
		return false
	}
	for i := 1; i < 6; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
