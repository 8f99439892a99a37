package observe

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
)

// NIRMask replaces a NIR-like value in logs.
const NIRMask = "[NIR]"

// A NIR: sex (1 or 2), year, month, département (2 digits, or 2A/2B for
// Corsica), commune, order number, then an optional 2-digit key; written
// together or in its usual groups separated by single spaces.
var (
	nirWithKey = regexp.MustCompile(`^[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[ABab]) ?\d{3} ?\d{3} ?\d{2}`)
	nirNoKey   = regexp.MustCompile(`^[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[ABab]) ?\d{3} ?\d{3}`)
)

// RedactNIR masks every NIR-like value in s: a 13-digit number (15 with its
// key) starting with 1 or 2, not part of a longer digit run, also with a
// Corsican 2A/2B département or in spaced groups ("1 85 05 78 006 084 36").
// Other 13- or 15-digit numbers starting with 1 or 2 (a Unix time in
// milliseconds...) are masked too: a false positive costs less than a leak.
func RedactNIR(s string) string {
	if !mayHoldNIR(s) {
		return s
	}
	var out []byte
	last := 0
	for i := 0; i < len(s); i++ {
		if (s[i] != '1' && s[i] != '2') || (i > 0 && isDigit(s[i-1])) {
			continue
		}
		n := matchNIR(s[i:])
		if n == 0 {
			continue
		}
		out = append(out, s[last:i]...)
		out = append(out, NIRMask...)
		last = i + n
		i = last - 1
	}
	if out == nil {
		return s
	}
	return string(append(out, s[last:]...))
}

// matchNIR returns the length of the NIR at the start of s, 0 if none: the
// longest form not followed by another digit.
func matchNIR(s string) int {
	for _, re := range []*regexp.Regexp{nirWithKey, nirNoKey} {
		if loc := re.FindStringIndex(s); loc != nil && (loc[1] == len(s) || !isDigit(s[loc[1]])) {
			return loc[1]
		}
	}
	return 0
}

// mayHoldNIR is the fast path: a NIR needs at least 12 digits.
func mayHoldNIR(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			if n++; n >= 12 {
				return true
			}
		}
	}
	return false
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// RedactAttr masks NIR-like values in an attribute; it fits
// slog.HandlerOptions.ReplaceAttr. Strings, errors, fmt.Stringers and the
// members of groups are redacted; other kinds pass unchanged.
func RedactAttr(_ []string, a slog.Attr) slog.Attr {
	a.Value = redactValue(a.Value)
	return a
}

func redactValue(v slog.Value) slog.Value {
	v = v.Resolve()
	switch v.Kind() {
	case slog.KindString:
		if r := RedactNIR(v.String()); r != v.String() {
			return slog.StringValue(r)
		}
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]slog.Attr, len(attrs))
		for i, a := range attrs {
			out[i] = slog.Attr{Key: a.Key, Value: redactValue(a.Value)}
		}
		return slog.GroupValue(out...)
	case slog.KindAny:
		var s string
		switch x := v.Any().(type) {
		case error:
			s = x.Error()
		case fmt.Stringer:
			s = x.String()
		case []byte:
			s = string(x)
		default:
			return v
		}
		if r := RedactNIR(s); r != s {
			return slog.StringValue(r)
		}
	}
	return v
}

// Redacting wraps next so that the message and every attribute of every
// record (those given to With included) go through RedactNIR first. It
// works with any handler, whatever its ReplaceAttr.
func Redacting(next slog.Handler) slog.Handler { return redactHandler{next} }

type redactHandler struct{ next slog.Handler }

func (h redactHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return h.next.Enabled(ctx, lv)
}

func (h redactHandler) Handle(ctx context.Context, r slog.Record) error {
	c := slog.NewRecord(r.Time, r.Level, RedactNIR(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		c.AddAttrs(RedactAttr(nil, a))
		return true
	})
	return h.next.Handle(ctx, c)
}

func (h redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = RedactAttr(nil, a)
	}
	return redactHandler{h.next.WithAttrs(out)}
}

func (h redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{h.next.WithGroup(name)}
}
