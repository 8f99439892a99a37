package b2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
)

// Framing is the way records are separated in a file.
type Framing uint8

const (
	// FramingNone: records back to back (Calebasse).
	FramingNone Framing = iota
	// FramingLF: each record followed by "\n".
	FramingLF
	// FramingCRLF: each record followed by "\r\n".
	FramingCRLF
)

func (f Framing) String() string {
	switch f {
	case FramingLF:
		return "LF"
	case FramingCRLF:
		return "CRLF"
	}
	return "none"
}

// Terminator returns the bytes written after each record.
func (f Framing) Terminator() string {
	switch f {
	case FramingLF:
		return "\n"
	case FramingCRLF:
		return "\r\n"
	}
	return ""
}

// Record is one physical record as read. Data and Term point into the
// Reader's buffer and are valid until the next call to Next.
type Record struct {
	// Data is the record without terminator: 128 bytes when well formed.
	// An empty Data with a non-empty Term is a run of CR/LF that is not
	// attached to a record (at the start of a file, or very long runs):
	// it is not a physical record and has Num 0.
	Data []byte
	// Term is the run of CR and LF bytes that followed the record (empty
	// for back-to-back records). Writing Data then Term reproduces the
	// input byte for byte.
	Term []byte
	// Num is the 1-based physical record number (the 000 header is 1).
	Num int64
	// Offset is the byte offset of Data in the stream.
	Offset int64
}

// ErrLineTooLong is returned by Next when a line-framed file holds a line
// longer than MaxLine: the input is not B2 and reading stops.
var ErrLineTooLong = errors.New("b2: line longer than 64 KiB")

const (
	bufSize = 64 << 10
	// MaxLine is the longest line (in line-framed files) the reader accepts
	// before giving up on the input.
	MaxLine = bufSize / 2
	// maxTerm bounds the CR/LF run attached to one record.
	maxTerm = 1024
	// lineProbe: a file is line framed when a CR or LF appears within the
	// first lineProbe bytes (the first line is then at most two records).
	lineProbe = 2*RecordLength + 2
)

// Reader reads B2 records from a stream: back to back, or separated by LF,
// CRLF or any run of CR/LF (formats.md §1.2, §8.7). It does not allocate per
// record: records are slices of an internal buffer.
//
// Framing is detected on the first record: when a CR or LF appears within
// its first 258 bytes the file is line framed and each line is one record
// (a line of the wrong length is returned as it is, so that the caller
// reports it and the next line is read normally: one bad record never
// shifts the others). Otherwise records are cut every 128 bytes, and CR/LF
// runs between them are skipped; Realign recovers from a bad record length.
type Reader struct {
	src      io.Reader
	buf      []byte
	r, w     int   // unread bytes are buf[r:w]
	base     int64 // stream offset of buf[0]
	err      error // sticky read error (io.EOF at end)
	num      int64
	detected bool
	lines    bool
	framing  Framing
	seenTerm bool
	// The current record, kept as indexes (storing the Record itself costs
	// more than the rest of Next).
	curStart, curLen, curTerm int
	curNum, curOff            int64
}

// NewReader returns a Reader over src.
func NewReader(src io.Reader) *Reader {
	r := &Reader{}
	r.Reset(src)
	return r
}

// Reset makes the Reader read from src, reusing its buffer.
func (r *Reader) Reset(src io.Reader) {
	if r.buf == nil {
		r.buf = make([]byte, bufSize)
	}
	*r = Reader{src: src, buf: r.buf}
}

// Framing returns the framing seen so far: the terminator after the first
// record (FramingNone until one is seen, and for back-to-back files).
func (r *Reader) Framing() Framing { return r.framing }

// LineFramed reports whether records are read as lines.
func (r *Reader) LineFramed() bool { return r.lines }

// Offset is the number of bytes consumed so far.
func (r *Reader) Offset() int64 { return r.base + int64(r.r) }

// fill makes at least want bytes available in buf[r:w] if the stream has
// them. It compacts the buffer, so slices previously returned are invalid.
func (r *Reader) fill(want int) {
	if r.w-r.r >= want || r.err != nil {
		return
	}
	if r.r > 0 {
		copy(r.buf, r.buf[r.r:r.w])
		r.base += int64(r.r)
		r.w -= r.r
		r.r = 0
	}
	zero := 0
	for r.w-r.r < want && r.err == nil && r.w < len(r.buf) {
		m, err := r.src.Read(r.buf[r.w:])
		if m < 0 || m > len(r.buf)-r.w {
			r.err = errBadRead
			break
		}
		r.w += m
		if err != nil {
			r.err = err
			break
		}
		if m > 0 {
			zero = 0
		} else if zero++; zero >= 100 {
			r.err = io.ErrNoProgress
		}
	}
}

var errBadRead = errors.New("b2: source reader returned an invalid count")

func isTerm(c byte) bool { return c == '\n' || c == '\r' }

// indexTerm returns the index of the first CR or LF in b, or -1.
func indexTerm(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return bytes.IndexByte(b, '\r')
	}
	if j := bytes.IndexByte(b[:i], '\r'); j >= 0 {
		return j
	}
	return i
}

// mayHaveControl is false when none of the 128 bytes of b is below 0x20
// (CR and LF among them). It tests 8 bytes at a time whether every byte has
// bit 0x20 or bit 0x40 set (x | x>>1 brings bit 0x40 onto bit 0x20; the
// bit shifted in from the next byte lands on bit 0x80, ignored): only the
// bytes below 0x20 and from 0x80 to 0x9F have neither, so it may be true
// without a control byte (never in valid B2: the caller then looks for
// the terminator the slow way) but never false with one.
func mayHaveControl(b []byte) bool {
	d := (*[RecordLength]byte)(b)
	const bit5 = 0x2020202020202020
	acc := ^uint64(0)
	for i := 0; i < RecordLength; i += 32 { // four words per turn
		x0 := binary.LittleEndian.Uint64(d[i:])
		x1 := binary.LittleEndian.Uint64(d[i+8:])
		x2 := binary.LittleEndian.Uint64(d[i+16:])
		x3 := binary.LittleEndian.Uint64(d[i+24:])
		acc &= (x0 | x0>>1) & (x1 | x1>>1) & (x2 | x2>>1) & (x3 | x3>>1)
	}
	return acc&bit5 != bit5
}

// Next returns the next record, io.EOF at the end of the stream, the
// stream's error, or ErrLineTooLong.
func (r *Reader) Next() (Record, error) {
	data, err := r.next()
	if err != nil {
		return Record{}, err
	}
	return r.record(data), nil
}

// record builds the Record of the current record from its data.
func (r *Reader) record(data []byte) Record {
	e := r.curStart + r.curLen
	return Record{Data: data, Term: r.buf[e : e+r.curTerm], Num: r.curNum, Offset: r.curOff}
}

// next is Next for the validator's loop: only the data is returned (the
// rest is in the cur* fields), so that the results fit in registers.
func (r *Reader) next() ([]byte, error) {
	if r.w-r.r < lineProbe+maxTerm {
		r.fill(lineProbe + maxTerm)
	}
	if r.r == r.w {
		if r.err == io.EOF {
			return nil, io.EOF
		}
		if r.err != nil {
			return nil, r.err
		}
	}
	if !r.detected {
		r.detected = true
		p := r.buf[r.r:r.w]
		if len(p) > lineProbe {
			p = p[:lineProbe]
		}
		r.lines = indexTerm(p) >= 0
	}
	start := r.r
	off := r.Offset()
	if isTerm(r.buf[start]) { // CR/LF not attached to a record
		end := start
		for end < r.w && end-start < maxTerm && isTerm(r.buf[end]) {
			end++
		}
		r.r = end
		r.setCur(start, 0, end-start, 0, off)
		return r.buf[start:start], nil
	}
	var end int
	if r.lines {
		avail := r.buf[start:r.w]
		i := -1
		if len(avail) > RecordLength && isTerm(avail[RecordLength]) && !mayHaveControl(avail[:RecordLength]) {
			i = RecordLength // the usual line: 128 bytes and its terminator
		} else {
			probe := avail
			if len(probe) > RecordLength+1 {
				probe = probe[:RecordLength+1]
			}
			i = indexTerm(probe)
		}
		if i < 0 && len(avail) > RecordLength+1 {
			// Longer than a record: find the end of the line.
			r.fill(MaxLine + 1)
			start = r.r
			avail = r.buf[start:r.w]
			if len(avail) > MaxLine+1 {
				avail = avail[:MaxLine+1]
			}
			i = indexTerm(avail)
			if i < 0 && len(avail) > MaxLine {
				return nil, ErrLineTooLong
			}
		}
		if i < 0 {
			i = len(avail) // last line, no terminator
		}
		end = start + i
	} else {
		end = start + RecordLength
		if end > r.w {
			end = r.w
		}
	}
	r.num++
	t := end
	for t < r.w && t-end < maxTerm && isTerm(r.buf[t]) {
		t++
	}
	r.r = t
	r.setCur(start, end-start, t-end, r.num, off)
	if !r.seenTerm && t > end {
		r.seenTerm = true
		switch {
		case t-end >= 2 && r.buf[end] == '\r' && r.buf[end+1] == '\n':
			r.framing = FramingCRLF
		case r.buf[end] == '\n':
			r.framing = FramingLF
		}
	}
	return r.buf[start:end], nil
}

func (r *Reader) setCur(start, n, term int, num, off int64) {
	r.curStart, r.curLen, r.curTerm, r.curNum, r.curOff = start, n, term, num, off
}

func (r *Reader) cur() Record {
	s, e := r.curStart, r.curStart+r.curLen
	return Record{Data: r.buf[s:e], Term: r.buf[e : e+r.curTerm], Num: r.curNum, Offset: r.curOff}
}

// PeekNext returns up to 128 bytes that follow the current record and its
// terminator, without consuming them (fewer at the end of the stream). The
// slice is valid until the next call to Next or Realign.
func (r *Reader) PeekNext() []byte {
	e := r.r + RecordLength
	if e > r.w {
		e = r.w
	}
	return r.buf[r.r:e]
}

// Realign is for back-to-back files, when the current record or the one
// after it does not look like a record: it looks for the first offset p
// (1 ≤ p ≤ limit) after the start of the current record at which
// isStart(bytes from p, aligned) holds, aligned being true when p is where
// the next record starts anyway, and makes the current record the p bytes
// before it (its terminator excluded). It returns the current record and
// whether a start was found; when the start found is the usual one nothing
// changes. In line-framed files it does nothing (lines resynchronise by
// themselves) and returns false.
//
// isStart is given min(128, bytes left) bytes.
func (r *Reader) Realign(limit int, isStart func(b []byte, aligned bool) bool) (Record, bool) {
	if r.lines || r.curLen == 0 {
		return r.cur(), false
	}
	if limit > bufSize-RecordLength {
		limit = bufSize - RecordLength
	}
	// Bring the current record back to the front of the buffer with limit
	// bytes after it.
	rewind := r.r - r.curStart
	r.r = r.curStart
	r.fill(limit + RecordLength)
	start := r.r
	r.curStart = start
	usual := r.curLen + r.curTerm
	found := -1
	for p := 1; p <= limit && start+p < r.w; p++ {
		c := r.buf[start+p]
		if isTerm(c) {
			continue
		}
		end := start + p + RecordLength
		if end > r.w {
			end = r.w
		}
		if isStart(r.buf[start+p:end], p == usual) {
			found = p
			break
		}
	}
	if found < 0 || found == usual {
		r.r = start + rewind
		return r.cur(), found >= 0
	}
	end := start + found
	d := end
	for d > start && isTerm(r.buf[d-1]) {
		d--
	}
	r.curLen, r.curTerm = d-start, end-d
	r.r = end
	return r.cur(), true
}
