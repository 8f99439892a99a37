package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/octgw/oct/formats/certificate"
	"github.com/octgw/oct/formats/fixed"
)

// The simulated SSA (medical certificates over FHIR R4, OUR API on FHIR
// REST semantics, docs/simulator.md "SSA"):
//
//	POST /ssa/<endpoint>/Bundle   a certificate as a FHIR R4 Bundle
//	  → 201 Task (received), Location: Task/<id>; the same certificate id
//	    again → 200 with its current Task (no second case)
//	  → 400 OperationOutcome, one issue per finding of certificate.Validate
//	    (details.coding.code = our code, expression = the FHIR path)
//	GET /ssa/<endpoint>/Task?_lastUpdated=gt|ge<RFC3339Nano>&_sort=_lastUpdated&_count=N
//	  → 200 searchset Bundle of Task versions updated after the instant,
//	    oldest first, at most N (Config.SSAPageSize when absent, ≤ 1000)
//
// Every status change of a certificate is a new version of its Task and is
// served by the feed: received at POST; under_review SSAReviewDelay later;
// accepted, refused (reason) or arbiter_returned (reason) SSADecisionDelay
// after that, on the Sim's Clock.

// ssaRefusals and ssaArbiter are the simulator's reason codes (ours).
var (
	ssaRefusals = []struct{ code, text string }{
		{"RC01", "Arret de travail non justifie medicalement"},
		{"RC02", "Certificat hors delai"},
		{"RC03", "Assure non identifie"},
	}
	ssaArbiter = []struct{ code, text string }{
		{"AR01", "Expertise medicale: reprise a temps partiel"},
		{"AR02", "Expertise medicale: duree reduite"},
	}
)

// FindingSystem is the code system of our finding codes in
// OperationOutcome.issue.details.
const FindingSystem = "https://oct.example/fhir/CodeSystem/oct-finding"

type ssaState struct {
	seq    int
	certs  map[string]*ssaCert // endpoint + "\x00" + certificate id
	events []ssaEvent          // every Task version, in order
}

type ssaCert struct {
	endpoint string
	current  certificate.StatusUpdate
}

type ssaEvent struct {
	endpoint string
	seq      int
	u        certificate.StatusUpdate
}

func newSSAState() ssaState { return ssaState{certs: map[string]*ssaCert{}} }

// SSATasks returns the current status of every certificate an SSA
// endpoint received.
func (s *Sim) SSATasks(endpoint string) []certificate.StatusUpdate {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []certificate.StatusUpdate
	for _, c := range s.ssa.certs {
		if c.endpoint == endpoint {
			out = append(out, c.current)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TaskID < out[j].TaskID })
	return out
}

// StartSSA listens on addr and serves the simulated SSA FHIR endpoints
// until Close: TLS with the Sim's certificate, a client certificate
// required (verified against Config.HTTPSClientCAs when set), as for
// StartHTTPS.
func (s *Sim) StartSSA(addr string) (string, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ssa/{endpoint}/Bundle", s.handleSSABundle)
	mux.HandleFunc("GET /ssa/{endpoint}/Task", s.handleSSATasks)
	return s.serveTLS(addr, mux)
}

func writeFHIR(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// outcome is an OperationOutcome with one issue per finding.
func outcome(errs []fixed.Error) []byte {
	type coding struct {
		System string `json:"system"`
		Code   string `json:"code"`
	}
	type issue struct {
		Severity    string   `json:"severity"`
		Code        string   `json:"code"`
		Details     any      `json:"details,omitempty"`
		Diagnostics string   `json:"diagnostics,omitempty"`
		Expression  []string `json:"expression,omitempty"`
	}
	oo := struct {
		ResourceType string  `json:"resourceType"`
		Issue        []issue `json:"issue"`
	}{ResourceType: "OperationOutcome"}
	for _, e := range errs {
		is := issue{Severity: "error", Code: "invalid", Diagnostics: e.Message,
			Details: map[string]any{"coding": []coding{{System: FindingSystem, Code: string(e.Code)}}}}
		if e.Code == certificate.ErrRequired {
			is.Code = "required"
		}
		if e.Field != "" {
			is.Expression = []string{e.Field}
		}
		oo.Issue = append(oo.Issue, is)
	}
	if len(oo.Issue) == 0 {
		oo.Issue = []issue{{Severity: "error", Code: "invalid", Diagnostics: "not a certificate"}}
	}
	b, _ := json.Marshal(oo)
	return b
}

func (s *Sim) handleSSABundle(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		http.Error(w, "closing", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	ep := r.PathValue("endpoint")
	if f := s.takeFault(ep, "fhir"); f != nil {
		http.Error(w, f.Message, f.Code)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	now := s.cfg.Clock.Now()
	rec := Received{Channel: "https", Endpoint: ep, Flow: "certificate", MessageID: r.Header.Get("Idempotency-Key"), File: body,
		TLS: r.TLS != nil, At: now}
	verifyHeaderSignature(&rec, r.Header.Get("X-OCT-Signature"))
	rep, err := certificate.Validate(bytes.NewReader(body), certificate.Options{})
	if err == nil && rep.Valid && rep.Encoding != certificate.EncodingFHIR {
		rep.Valid = false
		rep.Errors = []fixed.Error{{Code: certificate.ErrFHIR, Field: "Bundle", Message: "the SSA takes FHIR R4 Bundles only"}}
	}
	if err != nil || !rep.Valid || rep.Certificate == nil {
		var errs []fixed.Error
		if rep != nil {
			errs = rep.Errors
		}
		for i, e := range errs {
			if i == 5 {
				break
			}
			rec.Errors = append(rec.Errors, e.Error())
		}
		oo := outcome(errs)
		rec.Answer = oo
		s.record(rec, nil)
		writeFHIR(w, http.StatusBadRequest, oo)
		return
	}
	rec.Valid = true
	id := rep.Certificate.ID
	rec.Ref = id
	s.mu.Lock()
	key := ep + "\x00" + id
	c, known := s.ssa.certs[key]
	if !known {
		s.ssa.seq++
		c = &ssaCert{endpoint: ep, current: certificate.StatusUpdate{TaskID: fmt.Sprintf("T%s-%06d", safeID(ep), s.ssa.seq),
			CertificateID: id, Status: certificate.StatusReceived, Updated: now}}
		s.ssa.certs[key] = c
		s.appendEventLocked(c)
		s.stats.Certificates++
	}
	cur := c.current
	s.mu.Unlock()
	task, err := certificate.MarshalTask(cur)
	if err != nil {
		http.Error(w, "cannot encode the Task", http.StatusInternalServerError)
		return
	}
	rec.Status, rec.Answer = string(cur.Status), task
	s.record(rec, nil)
	if known {
		writeFHIR(w, http.StatusOK, task)
		return
	}
	s.log.Info("sim: certificate received", "endpoint", ep, "task", cur.TaskID)
	s.schedule(s.cfg.SSAReviewDelay, func() {
		s.ssaSet(key, certificate.StatusUpdate{Status: certificate.StatusUnderReview})
		s.schedule(s.cfg.SSADecisionDelay, func() { s.ssaSet(key, s.ssaDecide(ep, id)) })
	})
	w.Header().Set("Location", "Task/"+cur.TaskID)
	writeFHIR(w, http.StatusCreated, task)
}

// ssaDecide is the final status of a certificate (per Seed, endpoint and
// certificate id).
func (s *Sim) ssaDecide(ep, id string) certificate.StatusUpdate {
	x := s.chance(ep, id, "ssa")
	refuse, arbiter := max(0, s.cfg.SSARefuseRate), max(0, s.cfg.SSAArbiterRate)
	switch {
	case x < refuse:
		r := ssaRefusals[int(s.chance(ep, id, "ssa-reason")*float64(len(ssaRefusals)))]
		return certificate.StatusUpdate{Status: certificate.StatusRefused, ReasonCode: r.code, ReasonText: r.text}
	case x < refuse+arbiter:
		r := ssaArbiter[int(s.chance(ep, id, "ssa-reason")*float64(len(ssaArbiter)))]
		return certificate.StatusUpdate{Status: certificate.StatusArbiterReturned, ReasonCode: r.code, ReasonText: r.text}
	}
	return certificate.StatusUpdate{Status: certificate.StatusAccepted}
}

// ssaSet moves a certificate to the status, reason of next, now.
func (s *Sim) ssaSet(key string, next certificate.StatusUpdate) {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.ssa.certs[key]
	if !ok || s.closed {
		return
	}
	c.current.Status, c.current.ReasonCode, c.current.ReasonText, c.current.Updated = next.Status, next.ReasonCode, next.ReasonText, now
	s.appendEventLocked(c)
	s.notifyLocked()
}

func (s *Sim) appendEventLocked(c *ssaCert) {
	s.ssa.seq++
	s.ssa.events = append(s.ssa.events, ssaEvent{endpoint: c.endpoint, seq: s.ssa.seq, u: c.current})
}

func (s *Sim) handleSSATasks(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		http.Error(w, "closing", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	ep := r.PathValue("endpoint")
	if f := s.takeFault(ep, "feed"); f != nil {
		http.Error(w, f.Message, f.Code)
		return
	}
	q := r.URL.Query()
	var since time.Time
	inclusive := false
	if v := q.Get("_lastUpdated"); v != "" {
		switch {
		case strings.HasPrefix(v, "gt"):
			v = v[2:]
		case strings.HasPrefix(v, "ge"):
			v, inclusive = v[2:], true
		default:
			writeFHIR(w, http.StatusBadRequest, outcome([]fixed.Error{{Code: "search", Field: "_lastUpdated", Message: "want gt<instant> or ge<instant>"}}))
			return
		}
		// An offset's "+" sent unescaped arrives as a blank.
		t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
		if err != nil {
			writeFHIR(w, http.StatusBadRequest, outcome([]fixed.Error{{Code: "search", Field: "_lastUpdated", Message: "not an RFC 3339 instant"}}))
			return
		}
		since = t
	}
	if v := q.Get("_sort"); v != "" && v != "_lastUpdated" {
		writeFHIR(w, http.StatusBadRequest, outcome([]fixed.Error{{Code: "search", Field: "_sort", Message: "only _lastUpdated is supported"}}))
		return
	}
	count := s.cfg.SSAPageSize
	if v := q.Get("_count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeFHIR(w, http.StatusBadRequest, outcome([]fixed.Error{{Code: "search", Field: "_count", Message: "want a positive integer"}}))
			return
		}
		count = min(n, 1000)
	}
	s.mu.Lock()
	var page []ssaEvent
	for _, e := range s.ssa.events {
		if e.endpoint != ep || !since.IsZero() && (e.u.Updated.Before(since) || !inclusive && e.u.Updated.Equal(since)) {
			continue
		}
		page = append(page, e)
	}
	s.mu.Unlock()
	sort.SliceStable(page, func(i, j int) bool {
		if !page[i].u.Updated.Equal(page[j].u.Updated) {
			return page[i].u.Updated.Before(page[j].u.Updated)
		}
		return page[i].seq < page[j].seq
	})
	if len(page) > count {
		page = page[:count]
	}
	us := make([]certificate.StatusUpdate, len(page))
	for i, e := range page {
		us[i] = e.u
	}
	b, err := certificate.MarshalTaskBundle(us)
	if err != nil {
		http.Error(w, "cannot encode the feed", http.StatusInternalServerError)
		return
	}
	writeFHIR(w, http.StatusOK, b)
}

// safeID keeps [A-Za-z0-9-] of an endpoint name for a Task id.
func safeID(v string) string {
	var b strings.Builder
	for _, r := range v {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 || b.Len() > 40 {
		return "x"
	}
	return b.String()
}
