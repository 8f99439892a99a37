package sim

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// StartSFTP listens on addr and serves simulated AMC SFTP drop boxes until
// Close: any user, any public key (the user name is the endpoint), an
// in-memory file system per user. A file renamed to a final name (not
// starting with "." and not ending in ".p7s") is taken in: its signature
// <name>.p7s, when present, is verified, and returns are scheduled as for
// SMTP. It returns the address and the known_hosts line of its host key.
func (s *Sim) StartSFTP(addr string) (listenAddr, knownHostsLine string, err error) {
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		return "", "", err
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			return &ssh.Permissions{}, nil // any key: the simulator plays open drop boxes
		},
	}
	cfg.AddHostKey(hostKey)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", "", err
	}
	tl := &trackingListener{Listener: l, conns: map[net.Conn]struct{}{}}
	if !s.startServer(func() error { tl.closeAll(); return nil }, func() { s.acceptSSH(tl, cfg) }) {
		l.Close()
		return "", "", ErrClosed
	}
	return l.Addr().String(), knownhosts.Line([]string{knownhosts.Normalize(l.Addr().String())}, hostKey.PublicKey()), nil
}

func (s *Sim) acceptSSH(l net.Listener, cfg *ssh.ServerConfig) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		if !s.enter() {
			c.Close()
			return
		}
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.serveSSH(c, cfg)
		}()
	}
}

func (s *Sim) serveSSH(c net.Conn, cfg *ssh.ServerConfig) {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	var lwg sync.WaitGroup // request discarders, which end with the connection
	defer lwg.Wait()
	defer sc.Close()
	lwg.Go(func() { ssh.DiscardRequests(reqs) })
	fs := &memFS{s: s, user: sc.User(), files: map[string][]byte{}}
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		ok := false
		for req := range creqs {
			isSFTP := req.Type == "subsystem" && len(req.Payload) >= 4 && string(req.Payload[4:]) == "sftp"
			_ = req.Reply(isSFTP, nil)
			if isSFTP {
				ok = true
				break
			}
		}
		if !ok {
			ch.Close()
			continue
		}
		lwg.Go(func() { ssh.DiscardRequests(creqs) })
		h := sftp.Handlers{FileGet: fs, FilePut: fs, FileCmd: fs, FileList: fs}
		rs := sftp.NewRequestServer(ch, h, sftp.WithStartDirectory("/"))
		_ = rs.Serve()
		rs.Close()
	}
}

// memFS is one connection's in-memory drop box.
type memFS struct {
	s     *Sim
	user  string
	mu    sync.Mutex
	files map[string][]byte
}

type memWriter struct {
	fs   *memFS
	name string
}

func (w *memWriter) WriteAt(p []byte, off int64) (int, error) {
	w.fs.mu.Lock()
	defer w.fs.mu.Unlock()
	b := w.fs.files[w.name]
	if need := int(off) + len(p); need > len(b) {
		if int64(need) > w.fs.s.cfg.MaxFileSize*2 {
			return 0, fmt.Errorf("file too large")
		}
		b = append(b, make([]byte, need-len(b))...)
	}
	copy(b[off:], p)
	w.fs.files[w.name] = b
	return len(p), nil
}

func (fs *memFS) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	name := path.Clean(r.Filepath)
	if f := fs.s.takeFault(fs.user, "upload"); f != nil {
		return nil, sftp.ErrSSHFxPermissionDenied
	}
	fs.mu.Lock()
	fs.files[name] = nil
	fs.mu.Unlock()
	return &memWriter{fs: fs, name: name}, nil
}

func (fs *memFS) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	b, ok := fs.files[path.Clean(r.Filepath)]
	if !ok {
		return nil, os.ErrNotExist
	}
	return bytes.NewReader(b), nil
}

func (fs *memFS) Filecmd(r *sftp.Request) error {
	switch r.Method {
	case "Rename", "PosixRename":
		from, to := path.Clean(r.Filepath), path.Clean(r.Target)
		fs.mu.Lock()
		b, ok := fs.files[from]
		if !ok {
			fs.mu.Unlock()
			return os.ErrNotExist
		}
		if _, exists := fs.files[to]; exists && r.Method == "Rename" {
			fs.mu.Unlock()
			return sftp.ErrSSHFxFailure
		}
		delete(fs.files, from)
		fs.files[to] = b
		sig := fs.files[to+".p7s"]
		fs.mu.Unlock()
		base := path.Base(to)
		if !strings.HasPrefix(base, ".") && !strings.HasSuffix(base, ".p7s") {
			fs.s.accept(inbound{channel: "sftp", endpoint: fs.user, messageID: to, file: b, signature: sig, tls: true})
		}
		return nil
	case "Remove":
		fs.mu.Lock()
		delete(fs.files, path.Clean(r.Filepath))
		fs.mu.Unlock()
		return nil
	case "Setstat", "Mkdir":
		return nil
	}
	return sftp.ErrSSHFxOpUnsupported
}

type fileInfo struct {
	name string
	size int64
	dir  bool
}

func (f fileInfo) Name() string { return f.name }
func (f fileInfo) Size() int64  { return f.size }
func (f fileInfo) Mode() os.FileMode {
	if f.dir {
		return os.ModeDir | 0o755
	}
	return 0o644
}
func (f fileInfo) ModTime() time.Time { return time.Time{} }
func (f fileInfo) IsDir() bool        { return f.dir }
func (f fileInfo) Sys() any           { return nil }

type lister []os.FileInfo

func (l lister) ListAt(out []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if n < len(out) {
		return n, io.EOF
	}
	return n, nil
}

func (fs *memFS) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	p := path.Clean(r.Filepath)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	switch r.Method {
	case "List":
		var out lister
		for name, b := range fs.files {
			if path.Dir(name) == p {
				out = append(out, fileInfo{name: path.Base(name), size: int64(len(b))})
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
		return out, nil
	case "Stat", "Lstat":
		if b, ok := fs.files[p]; ok {
			return lister{fileInfo{name: path.Base(p), size: int64(len(b))}}, nil
		}
		// Directories exist implicitly.
		return lister{fileInfo{name: path.Base(p), dir: true}}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}
