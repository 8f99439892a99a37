package blobdir

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// groupSync makes many concurrent Puts durable with one syncfs(2): the
// blob-side twin of the store's group commit. Each Put writes and renames its
// blob, then waits for a sync that *started* after its rename; the first
// waiter runs it, the others arriving meanwhile share the next one.
//
// syncfs flushes every dirty inode of the filesystem and commits its
// journal, which covers the blob's data, its directory entry and any new
// shard directories. Where syncfs is not available (ENOSYS) each Put falls
// back to fsyncing its file and directories.
type groupSync struct {
	root *os.File

	mu       sync.Mutex
	cond     *sync.Cond
	started  uint64 // generation of the last sync started
	done     uint64 // generation of the last sync finished
	running  bool
	lastErr  error
	noSyncfs bool
}

func newGroupSync(root string) (*groupSync, error) {
	f, err := os.Open(root)
	if err != nil {
		return nil, fmt.Errorf("blobdir: %w", err)
	}
	g := &groupSync{root: f}
	g.cond = sync.NewCond(&g.mu)
	return g, nil
}

// errNoSyncfs tells the caller to fsync its own files.
var errNoSyncfs = errors.New("syncfs not available")

// wait returns once everything written before the call is durable.
func (g *groupSync) wait() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.noSyncfs {
		return errNoSyncfs
	}
	target := g.started + 1 // a sync already running may have started before our rename
	for g.done < target {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.started++
		gen := g.started
		g.mu.Unlock()
		err := unix.Syncfs(int(g.root.Fd()))
		g.mu.Lock()
		g.running = false
		g.done = gen
		g.lastErr = err
		if errors.Is(err, unix.ENOSYS) {
			g.noSyncfs = true
			g.cond.Broadcast()
			return errNoSyncfs
		}
		g.cond.Broadcast()
	}
	if g.lastErr != nil {
		return fmt.Errorf("blobdir: syncfs: %w", g.lastErr)
	}
	return nil
}

func (g *groupSync) close() error { return g.root.Close() }
