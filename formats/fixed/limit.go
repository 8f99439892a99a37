package fixed

import (
	"errors"
	"io"
)

// ErrByteLimit is returned by a LimitReader once more than its maximum was
// asked for. Readers turn it into their own stable limit code.
var ErrByteLimit = errors.New("byte limit")

// LimitReader reads at most Max bytes of R and then fails with
// ErrByteLimit (unlike io.LimitReader, which ends quietly): a format reader
// can tell "the file ends here" from "the file is larger than allowed".
type LimitReader struct {
	R   io.Reader
	Max int64
	n   int64
}

func (l *LimitReader) Read(b []byte) (int, error) {
	if l.n > l.Max {
		return 0, ErrByteLimit
	}
	if rest := l.Max - l.n; rest < int64(len(b))-1 { // no overflow when Max is MaxInt64
		b = b[:rest+1]
	}
	n, err := l.R.Read(b)
	l.n += int64(n)
	if l.n > l.Max {
		return n, ErrByteLimit
	}
	return n, err
}
