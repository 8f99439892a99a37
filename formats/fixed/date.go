package fixed

import "time"

// CenturyPivot is the project convention for two-digit years (formats.md
// §8.8 says dates are YYMMDD but not which century): YY < CenturyPivot is
// 20YY, otherwise 19YY. Kept in one place so it can change.
const CenturyPivot = 70

// Day is a calendar date without time zone; the zero Day means "no date".
type Day struct {
	Year  int
	Month time.Month
	Dom   int
}

// IsZero reports the "no date" value (000000 in a record).
func (d Day) IsZero() bool { return d.Year == 0 && d.Month == 0 && d.Dom == 0 }

// Time returns the date at midnight UTC.
func (d Day) Time() time.Time { return time.Date(d.Year, d.Month, d.Dom, 0, 0, 0, 0, time.UTC) }

// DayOf truncates t to its UTC calendar day.
func DayOf(t time.Time) Day {
	y, m, dd := t.UTC().Date()
	return Day{y, m, dd}
}

// Before reports whether d is strictly before e.
func (d Day) Before(e Day) bool {
	if d.Year != e.Year {
		return d.Year < e.Year
	}
	if d.Month != e.Month {
		return d.Month < e.Month
	}
	return d.Dom < e.Dom
}

// AddYears returns the same day n years later, 29 February becoming 1 March
// in a non-leap year.
func (d Day) AddYears(n int) Day {
	return DayOf(time.Date(d.Year+n, d.Month, d.Dom, 0, 0, 0, 0, time.UTC))
}

// String formats the day as YYYY-MM-DD.
func (d Day) String() string {
	if d.IsZero() {
		return ""
	}
	return d.Time().Format("2006-01-02")
}

// AppendYYMMDD writes the six digits of d (000000 for the zero Day).
func (d Day) AppendYYMMDD(b []byte) []byte {
	if d.IsZero() {
		return append(b, "000000"...)
	}
	yy := d.Year % 100
	return append(b, byte('0'+yy/10), byte('0'+yy%10), byte('0'+int(d.Month)/10), byte('0'+int(d.Month)%10), byte('0'+d.Dom/10), byte('0'+d.Dom%10))
}

var daysIn = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// ParseDate reads YYMMDD. 000000 is the zero Day with ok true (§8.11). A date
// that does not exist in the calendar (month 13, 30 February, 29 February of
// a non-leap year) is ok false.
func ParseDate(b []byte) (Day, bool) {
	if len(b) != 6 {
		return Day{}, false
	}
	for _, c := range b {
		if c-'0' > 9 {
			return Day{}, false
		}
	}
	yy := int(b[0]-'0')*10 + int(b[1]-'0')
	mm := int(b[2]-'0')*10 + int(b[3]-'0')
	dd := int(b[4]-'0')*10 + int(b[5]-'0')
	if yy == 0 && mm == 0 && dd == 0 {
		return Day{}, true
	}
	if mm < 1 || mm > 12 || dd < 1 || dd > daysIn[mm] {
		return Day{}, false
	}
	year := 1900 + yy
	if yy < CenturyPivot {
		year = 2000 + yy
	}
	if mm == 2 && dd == 29 && !(year%4 == 0 && (year%100 != 0 || year%400 == 0)) {
		return Day{}, false
	}
	return Day{year, time.Month(mm), dd}, true
}
