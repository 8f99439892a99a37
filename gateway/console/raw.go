package console

import (
	"context"
	"io"
	"net/http"

	"github.com/octgw/oct/gateway/store"
)

// BlobOpener opens raw bytes by sha256 (store.Blobs has it).
type BlobOpener interface {
	Open(ctx context.Context, sum string) (io.ReadCloser, error)
}

// lotRaw serves a lot's outbound file (what was or will be sent to its
// destination) to a user with the raw permission who sees the lot. The
// download is journalled on the lot before a byte is sent: no audit event,
// no download.
func (c *Console) lotRaw(w http.ResponseWriter, r *http.Request, s reqSession) {
	l, err := c.o.Store.Lot(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, s, err)
		return
	}
	u := s.u()
	if !u.seesLot(l) {
		c.notFound(w, s)
		return
	}
	if !u.CanRaw() {
		c.forbidden(w, s)
		return
	}
	if c.o.Blobs == nil || l.Blob == "" {
		c.notFound(w, s)
		return
	}
	c.serveRaw(w, r, s, "lot:"+l.ID, l.Blob, l.ID+".lot")
}

// fileRaw serves the file as the vendor sent it, to a user with the raw
// permission who sees the whole file (not an insurer: the file may hold
// lots for other destinations).
func (c *Console) fileRaw(w http.ResponseWriter, r *http.Request, s reqSession) {
	f, err := c.o.Store.File(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, s, err)
		return
	}
	u := s.u()
	if !u.seesFileOwn(f) {
		c.notFound(w, s)
		return
	}
	if !u.CanRaw() {
		c.forbidden(w, s)
		return
	}
	if c.o.Blobs == nil || f.SHA256 == "" {
		c.notFound(w, s)
		return
	}
	c.serveRaw(w, r, s, "file:"+f.ID, f.SHA256, f.ID+".raw")
}

func (c *Console) serveRaw(w http.ResponseWriter, r *http.Request, s reqSession, subject, sum, name string) {
	ctx := r.Context()
	rc, err := c.o.Blobs.Open(ctx, sum)
	if err != nil {
		c.fail(w, s, err)
		return
	}
	defer rc.Close()
	if err := c.audit(ctx, subject, "raw-download", s.u(), "sha256 "+sum); err != nil {
		c.fail(w, s, err)
		return
	}
	c.log.Info("console raw download", "agent", s.agent, "subject", subject)
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		c.log.Warn("console raw download cut", "subject", subject, "error", err)
	}
}

var _ BlobOpener = store.Blobs(nil)
