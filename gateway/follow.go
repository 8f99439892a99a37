package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/octgw/oct/formats/b2"
	"github.com/octgw/oct/gateway/store"
)

// A Follower takes a file in while it is being uploaded: a channel that
// receives a file piece by piece (the SFTP intake) gives it the bytes in
// order, as they are written to the upload file; they are copied into a
// ring and a validation goroutine computes the sha256 and runs the B2
// validation on them there, while they are still in the CPU's caches. At
// the clean end of the upload, IntakeFollowed links the file into the blob
// store without reading it again and records it exactly as Intake does
// (same checks, same acknowledgement, same commit): the close then waits
// only for the syncs.
//
// Following is an optimisation, never a second path with its own rules:
// whenever it cannot vouch for the bytes (another flow than B2, a file
// above the size limit, the channel calling Abort because bytes came twice
// or a gap was never filled, a blob store that cannot adopt the file, a
// size that differs), IntakeFollowed reads the file again through Intake. A Follower is used by one goroutine
// at a time (the upload serialises its writes). Its validation goroutine
// starts with the first 512 bytes and has ended once IntakeFollowed or
// Abort returned; one of the two must be called.
type Follower struct {
	g    *Gateway
	src  Source
	head []byte // bytes held until the flow can be told (sniffLen)
	size int64
	h    hash.Hash
	v    *b2Check // nil until the flow is known to be B2
	ring *[]byte  // the ring's buffer, from Gateway.rings
	off  bool     // not following: IntakeFollowed reads the file again
	used bool     // IntakeFollowed took the file in without reading it
}

// sniffLen is how many first bytes flow detection looks at (as sniff).
const sniffLen = 512

// Follow starts following an upload described by src.
func (g *Gateway) Follow(src Source) *Follower {
	return &Follower{g: g, src: src, h: sha256.New()}
}

// Write gives the follower the next bytes of the file, in order. It never
// fails: a follower that cannot go on stops following, and the file is
// read again at the end.
func (fl *Follower) Write(p []byte) (int, error) {
	if fl.off {
		return len(p), nil
	}
	fl.size += int64(len(p))
	if fl.size > fl.g.limits.MaxFileBytes {
		fl.Abort() // Intake refuses it with ErrTooLarge
		return len(p), nil
	}
	if fl.v == nil {
		fl.head = append(fl.head, p...)
		if len(fl.head) < sniffLen || !fl.start() {
			return len(p), nil
		}
		p, fl.head = fl.head, nil
	}
	// Copied into the ring; the validation goroutine hashes and validates.
	if _, err := fl.v.w.Write(p); err != nil {
		fl.Abort()
	}
	return len(p), nil
}

// start decides the flow from the bytes held and, for B2, starts the
// validation; false: not following.
func (fl *Follower) start() bool {
	flow := fl.src.Flow
	if flow == "" {
		flow = detectFlow(fl.src.Name, fl.head[:min(len(fl.head), sniffLen)])
	}
	if flow != store.FlowB2 {
		fl.Abort() // certificates, PEC, SCOR: small, read whole at the end
		return false
	}
	buf, _ := fl.g.rings.Get().(*[]byte)
	if buf == nil {
		b := make([]byte, ringSize)
		buf = &b
	}
	fl.ring = buf
	q := newFollowRing(*buf, fl.h)
	fl.v = fl.g.startB2Check(q, q)
	return true
}

// finish ends the validation (werr: the upload failed) and gives the ring
// back.
func (fl *Follower) finish(werr error) (*b2.Report, error) {
	rep, err := fl.v.finish(werr)
	fl.v = nil
	fl.g.rings.Put(fl.ring)
	fl.ring = nil
	return rep, err
}

// Abort stops following and ends the validation goroutine, if any. Safe to
// call more than once; IntakeFollowed then reads the file again.
func (fl *Follower) Abort() {
	if fl == nil || fl.off {
		return
	}
	fl.off = true
	fl.head = nil
	if fl.v != nil {
		_, _ = fl.finish(errFollowAborted)
	}
}

var errFollowAborted = errors.New("gateway: follow aborted")

// IntakeFollowed takes in the file f (opened for reading, its upload
// finished) that fl followed: same result as Intake(ctx, tenant, src, f),
// without reading the bytes again when fl followed all of them. fl has
// ended when it returns.
func (g *Gateway) IntakeFollowed(ctx context.Context, tenant string, src Source, f *os.File, fl *Follower) (Ack, error) {
	start := time.Now()
	ack, followed, err := g.intakeFollowed(ctx, tenant, src, f, fl)
	fl.Abort() // a no-op once the validation finished
	if !followed {
		if _, serr := f.Seek(0, io.SeekStart); serr != nil {
			err = fmt.Errorf("%w: %v", ErrUnavailable, serr)
		} else {
			ack, err = g.intake(ctx, tenant, src, f)
		}
	}
	g.m.observeIntake(src.Channel, ack, err, time.Since(start))
	g.logRefused(ctx, tenant, src, err)
	return ack, err
}

// Followed reports whether IntakeFollowed took the file in from what was
// followed, without reading it again.
func (fl *Follower) Followed() bool { return fl != nil && fl.used }

// hashedAdopter is implemented by blob stores that can link an open local
// file whose sha256 the caller computed (blobdir).
type hashedAdopter interface {
	CanAdopt(f *os.File) bool
	AdoptHashed(ctx context.Context, f *os.File, sum string, size int64) error
}

// intakeFollowed is IntakeFollowed when every byte was followed; followed
// false: nothing was done, read the file again.
func (g *Gateway) intakeFollowed(ctx context.Context, tenant string, src Source, f *os.File, fl *Follower) (Ack, bool, error) {
	ha, _ := g.blobs.(hashedAdopter)
	if fl == nil || fl.off || ha == nil || !ha.CanAdopt(f) {
		return Ack{}, false, nil
	}
	if fl.v == nil && (len(fl.head) == 0 || !fl.start()) { // under sniffLen bytes
		return Ack{}, false, nil
	}
	if info, err := f.Stat(); err != nil || info.Size() != fl.size {
		return Ack{}, false, nil
	}
	release, err := g.admit(ctx, tenant)
	if err != nil {
		return Ack{}, true, err
	}
	defer release()
	if fl.head != nil { // the whole file was under one write
		if _, err := fl.v.w.Write(fl.head); err != nil {
			return Ack{}, false, nil
		}
	}
	// The sum is complete once the validation goroutine has read every
	// byte: the validation ends first (it always reads to the end).
	rep, verr := fl.finish(nil)
	fl.off = true
	if verr != nil {
		return Ack{}, true, fmt.Errorf("%w: validation: %v", ErrUnavailable, verr)
	}
	sum, size := hex.EncodeToString(fl.h.Sum(nil)), fl.size
	perr := ha.AdoptHashed(ctx, f, sum, size)
	fl.used = perr == nil
	ack, err := g.recordB2(ctx, tenant, src, sum, size, perr, rep, verr)
	return ack, true, err
}
