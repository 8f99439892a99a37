package b2

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/octgw/oct/formats/fixed"
)

// Fast readers for fields the validator has already checked: once a record
// passed (*compiled).scan, every Numeric, Amount and Date column holds a
// digit, so the values can be read without testing each byte again. They
// must not be used on a record that did not pass scan.

// num reads a digit field of at most 8 columns, 8 bytes at a time. It is
// derived from a layout's Ref (the tables stay the reference).
type num struct {
	end  int    // 0-based end (exclusive) of the field
	mask uint64 // the field's columns in the 8 bytes ending at end
}

func numOf(r fixed.Ref) num {
	p, n := r.Pos()
	end := p - 1 + n
	if n > 8 || end < 8 {
		panic(fmt.Sprintf("b2: field %s at %d+%d cannot be read as one word", r.Name, p, n))
	}
	return num{end: end, mask: 0x0F0F0F0F0F0F0F0F << (8 * (8 - n))}
}

// get returns the field's value; its columns must be digits.
func (n num) get(data []byte) int64 {
	x := binary.LittleEndian.Uint64(data[n.end-8 : n.end])
	return int64(digits8(x & n.mask))
}

// digits8 converts eight digit values (0-9 per byte, the most significant
// in the lowest byte) to their number, pairs then quads then octets (no
// lane can carry into the next).
func digits8(x uint64) uint64 {
	x = (x*10 + x>>8) & 0x00FF00FF00FF00FF
	x = (x*100 + x>>16) & 0x0000FFFF0000FFFF
	x = (x*10000 + x>>32) & 0xFFFFFFFF
	return x
}

// daysFast is the length of each month outside leap years: dates it
// accepts are valid whatever the year; the rest goes to fixed.ParseDate.
var daysFast = [16]uint8{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// dateOK is fixed.ParseDate's verdict on six digits.
func dateOK(b *[6]byte) bool { return everyYear(b) || parseDateOK(b[:]) }

// everyYear reports whether six digits are a month and a day that exist
// every year (small enough to be inlined: the common case of dateOK).
func everyYear(b *[6]byte) bool {
	mm := uint(b[2])*10 + uint(b[3]) - '0'*11
	dd := uint(b[4])*10 + uint(b[5]) - '0'*11
	return mm-1 < 12 && dd-1 < uint(daysFast[mm&15])
}

func parseDateOK(b []byte) bool {
	_, ok := fixed.ParseDate(b)
	return ok
}

// dayOf is fixed.ParseDate on six digits known to be a valid date (or
// 000000).
func dayOf(b []byte) fixed.Day {
	_ = b[5]
	yy := int(b[0]-'0')*10 + int(b[1]-'0')
	mm := int(b[2]-'0')*10 + int(b[3]-'0')
	dd := int(b[4]-'0')*10 + int(b[5]-'0')
	if yy == 0 && mm == 0 && dd == 0 {
		return fixed.Day{}
	}
	year := 1900 + yy
	if yy < fixed.CenturyPivot {
		year = 2000 + yy
	}
	return fixed.Day{Year: year, Month: time.Month(mm), Dom: dd}
}
