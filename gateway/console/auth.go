package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// HashPassword returns a bcrypt hash for an agents file.
func HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}

const cookieName = "oct_console"

type session struct {
	agent   string
	user    Agent // role and scope, fixed at login
	csrf    string
	expires time.Time
}

// sessions are in memory: a restart logs everybody out.
type sessions struct {
	mu   sync.Mutex
	m    map[string]*session
	ttl  time.Duration
	max  int
	now  func() time.Time
	hash map[string]string // agent -> bcrypt hash
	who  map[string]Agent  // agent -> role and scope
	// dummy is compared against when the agent is unknown, so that a wrong
	// name takes as long as a wrong password.
	dummy []byte
}

func newSessions(agents []Agent, ttl time.Duration, now func() time.Time) *sessions {
	s := &sessions{m: map[string]*session{}, ttl: ttl, max: 10000, now: now, hash: map[string]string{}, who: map[string]Agent{}}
	for _, a := range agents {
		s.hash[a.Name] = a.Hash
		s.who[a.Name] = a.normal()
	}
	s.dummy, _ = bcrypt.GenerateFromPassword([]byte("dummy password"), bcrypt.MinCost)
	return s
}

func token() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// login checks a password and opens a session.
func (s *sessions) login(name, password string) (string, bool) {
	h, ok := s.hash[name]
	if !ok {
		bcrypt.CompareHashAndPassword(s.dummy, []byte(password))
		return "", false
	}
	if bcrypt.CompareHashAndPassword([]byte(h), []byte(password)) != nil {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.m) >= s.max {
		for id, x := range s.m {
			if now.After(x.expires) {
				delete(s.m, id)
			}
		}
		if len(s.m) >= s.max {
			return "", false
		}
	}
	id := token()
	s.m[id] = &session{agent: name, user: s.who[name], csrf: token(), expires: now.Add(s.ttl)}
	return id, true
}

func (s *sessions) get(r *http.Request) (*session, string) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil, ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.m[c.Value]
	if x == nil {
		return nil, ""
	}
	if s.now().After(x.expires) {
		delete(s.m, c.Value)
		return nil, ""
	}
	cp := *x
	return &cp, c.Value
}

func (s *sessions) logout(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// onDuty lists the agents with a live session who may work anomalies
// (admin, support): a vendor or insurer user is never assigned one.
func (s *sessions) onDuty() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now, seen := s.now(), map[string]bool{}
	var out []string
	for _, x := range s.m {
		if now.Before(x.expires) && !seen[x.agent] && (user{x.user}).CanAct() {
			seen[x.agent] = true
			out = append(out, x.agent)
		}
	}
	return out
}

func csrfOK(sess *session, r *http.Request) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) == 1
}
