package b2

import (
	"bufio"
	"io"

	"github.com/octgw/oct/formats/fixed"
)

// Writer writes B2 records. WriteRecord reproduces records as read (data
// then their own terminator), so that copying every record of a Reader to a
// Writer gives the input back byte for byte; Write adds the Writer's
// framing after a 128-byte record.
type Writer struct {
	w    *bufio.Writer
	term string
	n    int64
}

// NewWriter returns a Writer that frames the records it builds with f.
func NewWriter(w io.Writer, f Framing) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 64<<10), term: f.Terminator()}
}

// ErrWriteLength is returned by Write for a record that is not 128 bytes.
const ErrWriteLength fixed.Code = "write-length"

// Write writes one 128-byte record followed by the framing terminator.
func (w *Writer) Write(rec []byte) error {
	if len(rec) != RecordLength {
		return fixed.Errorf(ErrWriteLength, w.n+1, "", "record of %d bytes", len(rec))
	}
	w.n++
	if _, err := w.w.Write(rec); err != nil {
		return err
	}
	_, err := w.w.WriteString(w.term)
	return err
}

// WriteRecord writes a record as it was read: its data and its terminator.
func (w *Writer) WriteRecord(r Record) error {
	if len(r.Data) > 0 {
		w.n++
	}
	if _, err := w.w.Write(r.Data); err != nil {
		return err
	}
	_, err := w.w.Write(r.Term)
	return err
}

// Records is the number of non-empty records written.
func (w *Writer) Records() int64 { return w.n }

// Flush writes buffered data to the underlying writer.
func (w *Writer) Flush() error { return w.w.Flush() }
