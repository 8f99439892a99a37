package blobdir

import (
	"os"

	"golang.org/x/sys/unix"
)

// writebackEvery: a Put asks the kernel to start writing its temporary
// file back each time this many more bytes were written, so that the sync
// that makes the blob durable finds little left to write (a large blob is
// then written to disk while it is still being received, not after).
const writebackEvery = 4 << 20

// writeback is the temporary file of a Put, started towards the disk as it
// grows. sync_file_range(SYNC_FILE_RANGE_WRITE) only starts the write-out:
// it guarantees nothing, durability still comes from the sync at the end.
type writeback struct {
	f       *os.File
	written int64
	started int64 // bytes [0, started) handed to write-out
}

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.written += int64(n)
	if w.written-w.started >= writebackEvery {
		// Best effort: an error (ENOSYS, EINVAL on some file systems) only
		// means the final sync does all the work.
		_ = unix.SyncFileRange(int(w.f.Fd()), w.started, w.written-w.started, unix.SYNC_FILE_RANGE_WRITE)
		w.started = w.written
	}
	return n, err
}
