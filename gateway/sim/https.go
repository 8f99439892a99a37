package sim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"
)

// StartHTTPS listens on addr and serves simulated AMC API endpoints until
// Close: POST /amc/<endpoint> with multipart/form-data fields "file" (the B2
// file, in clear) and optionally "signature" (detached CMS). TLS uses the
// Sim's certificate and requires a client certificate: one verified
// against Config.HTTPSClientCAs, or any certificate when that is nil.
// Answers: 202 with X-Request-Id once the file is accepted (returns are
// then scheduled like for SMTP), 400 for a malformed request, or the code
// of an injected Fault (Stage "post").
func (s *Sim) StartHTTPS(addr string) (string, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /amc/{endpoint}", s.handlePost)
	mux.HandleFunc("POST /amc/{endpoint}/pec", s.handlePEC)
	return s.serveTLS(addr, mux)
}

// serveTLS serves h on addr with the Sim's certificate, a client
// certificate required (verified against Config.HTTPSClientCAs when set),
// until Close.
func (s *Sim) serveTLS(addr string, h http.Handler) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	tcfg := &tls.Config{Certificates: []tls.Certificate{s.tlsCrt}, MinVersion: tls.VersionTLS12, ClientAuth: tls.RequireAnyClientCert}
	if s.cfg.HTTPSClientCAs != nil {
		tcfg.ClientAuth, tcfg.ClientCAs = tls.RequireAndVerifyClientCert, s.cfg.HTTPSClientCAs
	}
	srv := &http.Server{Handler: h, TLSConfig: tcfg, ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0), BaseContext: func(net.Listener) context.Context { return s.ctx }}
	if !s.startServer(func() error {
		err := srv.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		return err
	}, func() { _ = srv.ServeTLS(l, "", "") }) {
		l.Close()
		return "", ErrClosed
	}
	return l.Addr().String(), nil
}

func (s *Sim) handlePost(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		http.Error(w, "closing", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	ep := r.PathValue("endpoint")
	if f := s.takeFault(ep, "post"); f != nil {
		http.Error(w, f.Message, f.Code)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxFileSize*2+1<<20)
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		http.Error(w, "malformed multipart body: "+err.Error(), http.StatusBadRequest)
		return
	}
	defer r.MultipartForm.RemoveAll()
	file, err := formFile(r, "file", s.cfg.MaxFileSize)
	if err != nil || len(file) == 0 {
		http.Error(w, "a non-empty file field is required", http.StatusBadRequest)
		return
	}
	sig, _ := formFile(r, "signature", 1<<20)
	id := fmt.Sprintf("sim-%s-%d", ep, s.Stats().Files+1)
	rec := s.accept(inbound{channel: "https", endpoint: ep, messageID: id, file: file, signature: sig, tls: r.TLS != nil})
	w.Header().Set("X-Request-Id", id)
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, "accepted %d lot(s)\n", len(rec.Lots))
}

func formFile(r *http.Request, field string, max int64) ([]byte, error) {
	f, _, err := r.FormFile(field)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max {
		err = errors.New("too large")
	}
	return b, err
}

// enter registers a request handler with Close's wait group; false once
// the Sim is closing.
func (s *Sim) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}
