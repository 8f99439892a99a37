package observe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
)

// ComponentKey is the log attribute that names the component a record comes
// from (logger.With("component", "intake/sftp")).
const ComponentKey = "component"

// maxOverrides bounds the number of per-component levels (they are set
// over HTTP).
const maxOverrides = 256

// Levels holds a default log level and per-component overrides, changeable
// at runtime. The zero value is not usable: use NewLevels.
type Levels struct {
	mu        sync.RWMutex
	def       slog.Level
	overrides map[string]slog.Level
	min       slog.Level // lowest of def and the overrides
}

// NewLevels returns Levels whose components all log at def.
func NewLevels(def slog.Level) *Levels {
	return &Levels{def: def, overrides: map[string]slog.Level{}, min: def}
}

// Level is the level of a component ("" is the default level).
func (l *Levels) Level(component string) slog.Level {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if lv, ok := l.overrides[component]; ok && component != "" {
		return lv
	}
	return l.def
}

// Default is the level of components without an override.
func (l *Levels) Default() slog.Level {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.def
}

// SetDefault changes the level of components without an override.
func (l *Levels) SetDefault(lv slog.Level) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.def = lv
	l.recompute()
}

// Set overrides the level of one component.
func (l *Levels) Set(component string, lv slog.Level) error {
	if err := checkComponent(component); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.overrides[component]; !ok && len(l.overrides) >= maxOverrides {
		return fmt.Errorf("more than %d component levels", maxOverrides)
	}
	l.overrides[component] = lv
	l.recompute()
	return nil
}

// Reset removes a component's override: it logs at the default level again.
func (l *Levels) Reset(component string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.overrides, component)
	l.recompute()
}

// Overrides returns a copy of the per-component levels.
func (l *Levels) Overrides() map[string]slog.Level {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make(map[string]slog.Level, len(l.overrides))
	for k, v := range l.overrides {
		out[k] = v
	}
	return out
}

func (l *Levels) recompute() {
	l.min = l.def
	for _, lv := range l.overrides {
		l.min = min(l.min, lv)
	}
}

func (l *Levels) lowest() slog.Level {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.min
}

// checkComponent accepts the names the code uses ("store.sqlite",
// "intake/sftp"): 1 to 64 of [A-Za-z0-9._/-].
func checkComponent(c string) error {
	if c == "" || len(c) > 64 {
		return errors.New("component: 1 to 64 characters")
	}
	for _, r := range c {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._/-", r)
		if !ok {
			return fmt.Errorf("component %q: only letters, digits and . _ / -", c)
		}
	}
	return nil
}

// Handler wraps next so that a record is passed on only when its level is
// at least the level of its component: the "component" attribute given to
// Logger.With, or else one in the record itself, or else the default level.
// next should accept every level Levels may let through (give it
// slog.LevelDebug, or lower): the filtering happens here.
func (l *Levels) Handler(next slog.Handler) slog.Handler {
	return &levelHandler{l: l, next: next}
}

type levelHandler struct {
	l         *Levels
	next      slog.Handler
	component string // from WithAttrs, "" when unknown
	known     bool   // component was set by WithAttrs
	grouped   bool   // WithGroup was called: later attrs are not top-level
}

func (h *levelHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	floor := h.l.lowest() // the component may still be named by the record
	if h.known {
		floor = h.l.Level(h.component)
	}
	return lv >= floor && h.next.Enabled(ctx, lv)
}

func (h *levelHandler) Handle(ctx context.Context, r slog.Record) error {
	if !h.known {
		component := ""
		if !h.grouped {
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == ComponentKey {
					component = a.Value.Resolve().String()
					return false
				}
				return true
			})
		}
		if r.Level < h.l.Level(component) {
			return nil
		}
	}
	return h.next.Handle(ctx, r)
}

func (h *levelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	if !h.grouped {
		for _, a := range attrs {
			if a.Key == ComponentKey {
				c.component, c.known = a.Value.Resolve().String(), true
			}
		}
	}
	return &c
}

func (h *levelHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.grouped = true
	return &c
}

// HTTPHandler serves the levels:
//
//	GET /admin/loglevel                              {"default":"INFO","components":{"store.redis":"DEBUG"}}
//	GET /admin/loglevel?component=X                  {"component":"X","level":"DEBUG"}
//	PUT /admin/loglevel?component=X&level=debug      override X's level
//	PUT /admin/loglevel?component=X&level=default    remove X's override
//	PUT /admin/loglevel?level=warn                   change the default level
//
// Levels are debug, info, warn, error (or slog's "info+2" forms). Mount it
// behind the operators' authentication or on a loopback-only listener.
func (l *Levels) HTTPHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		component := q.Get("component")
		if component != "" {
			if err := checkComponent(component); err != nil {
				levelError(w, http.StatusBadRequest, err.Error())
				return
			}
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodPut:
			level := q.Get("level")
			switch {
			case level == "":
				levelError(w, http.StatusBadRequest, "level: required (debug, info, warn, error, or default to remove an override)")
				return
			case strings.EqualFold(level, "default") && component != "":
				l.Reset(component)
			default:
				var lv slog.Level
				if err := lv.UnmarshalText([]byte(level)); err != nil {
					levelError(w, http.StatusBadRequest, "level: "+err.Error())
					return
				}
				if component == "" {
					l.SetDefault(lv)
				} else if err := l.Set(component, lv); err != nil {
					levelError(w, http.StatusBadRequest, err.Error())
					return
				}
			}
		default:
			w.Header().Set("Allow", "GET, HEAD, PUT")
			levelError(w, http.StatusMethodNotAllowed, "use GET or PUT")
			return
		}
		if component != "" {
			writeLevelJSON(w, map[string]string{"component": component, "level": l.Level(component).String()})
			return
		}
		comps := map[string]string{}
		for k, v := range l.Overrides() {
			comps[k] = v.String()
		}
		writeLevelJSON(w, struct {
			Default    string            `json:"default"`
			Components map[string]string `json:"components"`
		}{l.Default().String(), comps})
	})
}

func levelError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func writeLevelJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
