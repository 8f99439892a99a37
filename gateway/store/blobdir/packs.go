package blobdir

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"crypto/rand"
	"encoding/hex"
)

// Small blobs can be kept in pack files instead of one file each: creating
// a file costs far more than appending to one (measured on this project's
// VM: ~1 ms of kernel CPU per file creation, > 100 000 appends/s), and the
// returns processor keeps two small blobs per message. A pack is an
// append-only file of records
//
//	"OCTB" | sha256 (32 bytes) | length (uint32 BE) | CRC-32C of the data (uint32 BE) | data
//
// under <root>/packs/. Each process appends to its own pack (a random name
// per Open, rolled at packRoll bytes), so several nodes may share the
// directory. The index (sum → pack, offset) is kept in memory: built by
// reading the record headers of every pack at Open, and refreshed from
// where it stopped when a blob is not found (another node's pack grew).
// Durability is the same grouped syncfs as for blob files (or an fsync of
// the pack where syncfs is missing): a Put returns once its record is on
// stable storage. A record torn by a crash is never acknowledged; reading
// stops at the first record that does not check, and new records always go
// to a new pack.

const (
	packMagic  = "OCTB"
	packHeader = 4 + 32 + 4 + 4
	packRoll   = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// packLoc is where a packed blob is: 24 bytes per blob in the index
// (with its 32-byte key, about 80 bytes per blob in the map).
type packLoc struct {
	pack uint32 // index in packs.names
	n    uint32
	off  int64 // of the data
}

type packs struct {
	dir string

	mu      sync.Mutex
	cur     *os.File
	curName string
	curOff  int64
	index   map[[32]byte]packLoc
	names   []string          // pack names by number
	number  map[string]uint32 // pack name → number
	scanned map[string]int64  // pack name → bytes read by the index
}

// packNumber numbers a pack name for the index.
func (p *packs) packNumber(name string) uint32 {
	if n, ok := p.number[name]; ok {
		return n
	}
	p.names = append(p.names, name)
	p.number[name] = uint32(len(p.names) - 1)
	return p.number[name]
}

func sumKey(sum string) ([32]byte, bool) {
	var k [32]byte
	b, err := hex.DecodeString(sum)
	if err != nil || len(b) != 32 {
		return k, false
	}
	copy(k[:], b)
	return k, true
}

func openPacks(root string) (*packs, error) {
	p := &packs{dir: filepath.Join(root, "packs"), index: map[[32]byte]packLoc{}, number: map[string]uint32{}, scanned: map[string]int64{}}
	if err := os.MkdirAll(p.dir, 0o750); err != nil {
		return nil, fmt.Errorf("blobdir: %w", err)
	}
	if err := p.refreshLocked(); err != nil {
		return nil, err
	}
	return p, nil
}

// find returns where sum is, reading new records of the packs on a miss.
func (p *packs) find(sum string) (packLoc, bool, error) {
	k, ok := sumKey(sum)
	if !ok {
		return packLoc{}, false, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if l, ok := p.index[k]; ok {
		return l, true, nil
	}
	if err := p.refreshLocked(); err != nil {
		return packLoc{}, false, err
	}
	l, ok := p.index[k]
	return l, ok, nil
}

// refreshLocked reads the records added to every pack since the last read.
func (p *packs) refreshLocked() error {
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return fmt.Errorf("blobdir: packs: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".pack") || name == p.curName {
			continue // our own pack is indexed as it is written
		}
		if err := p.scanLocked(name); err != nil {
			return err
		}
	}
	return nil
}

// scanLocked indexes the records of one pack from where it stopped, up to
// the first record that is incomplete or does not check.
func (p *packs) scanLocked(name string) error {
	f, err := os.Open(filepath.Join(p.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blobdir: packs: %w", err)
	}
	defer f.Close()
	off := p.scanned[name]
	var hdr [packHeader]byte
	for {
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			break // end, or a header still being written
		}
		if string(hdr[:4]) != packMagic {
			break
		}
		var k [32]byte
		copy(k[:], hdr[4:36])
		n := int64(binary.BigEndian.Uint32(hdr[36:40]))
		want := binary.BigEndian.Uint32(hdr[40:44])
		data := make([]byte, n)
		if _, err := f.ReadAt(data, off+packHeader); err != nil {
			break
		}
		if crc32.Checksum(data, castagnoli) != want {
			break
		}
		if _, ok := p.index[k]; !ok {
			p.index[k] = packLoc{pack: p.packNumber(name), off: off + packHeader, n: uint32(n)}
		}
		off += packHeader + n
	}
	p.scanned[name] = off
	return nil
}

// append writes one record to this process's pack and indexes it, unless
// the blob is indexed already; it returns the pack that holds the blob.
// The caller makes it durable.
func (p *packs) append(sum string, data []byte) (string, error) {
	k, ok := sumKey(sum)
	if !ok {
		return "", fmt.Errorf("blobdir: bad sum %q", sum)
	}
	raw := k[:]
	rec := make([]byte, packHeader+len(data))
	copy(rec, packMagic)
	copy(rec[4:36], raw)
	binary.BigEndian.PutUint32(rec[36:40], uint32(len(data)))
	binary.BigEndian.PutUint32(rec[40:44], crc32.Checksum(data, castagnoli))
	copy(rec[packHeader:], data)
	p.mu.Lock()
	defer p.mu.Unlock()
	if l, ok := p.index[k]; ok {
		return p.names[l.pack], nil
	}
	if p.cur == nil || p.curOff+int64(len(rec)) > packRoll {
		if err := p.rollLocked(); err != nil {
			return "", err
		}
	}
	if _, err := p.cur.WriteAt(rec, p.curOff); err != nil {
		// The record may be torn: never write after it.
		_ = p.cur.Close()
		p.cur, p.curName = nil, ""
		return "", fmt.Errorf("blobdir: pack write: %w", err)
	}
	p.index[k] = packLoc{pack: p.packNumber(p.curName), off: p.curOff + packHeader, n: uint32(len(data))}
	p.curOff += int64(len(rec))
	return p.curName, nil
}

// fsync makes a pack and its directory entry durable (where syncfs is
// missing).
func (p *packs) fsync(name string) error {
	f, err := os.OpenFile(filepath.Join(p.dir, name), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return err
	}
	return syncDir(p.dir)
}

func (p *packs) rollLocked() error {
	if p.cur != nil {
		_ = p.cur.Close()
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	name := hex.EncodeToString(rnd[:]) + ".pack"
	f, err := os.OpenFile(filepath.Join(p.dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("blobdir: new pack: %w", err)
	}
	p.cur, p.curName, p.curOff = f, name, 0
	p.scanned[name] = 0
	return nil
}

// open returns the blob at l.
func (p *packs) open(l packLoc) (io.ReadCloser, error) {
	p.mu.Lock()
	name := p.names[l.pack]
	p.mu.Unlock()
	f, err := os.Open(filepath.Join(p.dir, name))
	if err != nil {
		return nil, fmt.Errorf("blobdir: %w", err)
	}
	return packReader{io.NewSectionReader(f, l.off, int64(l.n)), f}, nil
}

type packReader struct {
	*io.SectionReader
	f *os.File
}

func (r packReader) Close() error { return r.f.Close() }

func (p *packs) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		err := p.cur.Close()
		p.cur = nil
		return err
	}
	return nil
}

// readSmall reads r up to limit+1 bytes: the whole content when it is
// small, else a reader that still yields every byte.
func readSmall(r io.Reader, limit int64) (small []byte, rest io.Reader, err error) {
	buf, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(buf)) <= limit {
		return buf, nil, nil
	}
	return nil, io.MultiReader(bytes.NewReader(buf), r), nil
}
