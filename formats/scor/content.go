package scor

import (
	"math"
	"strconv"
)

// matrix is a PDF transformation matrix [a b c d e f].
type matrix [6]float64

var identity = matrix{1, 0, 0, 1, 0, 0}

// mul returns m × n (apply m, then n), the order of PDF's "cm": the new CTM
// is M × CTM.
func (m matrix) mul(n matrix) matrix {
	return matrix{
		m[0]*n[0] + m[1]*n[2],
		m[0]*n[1] + m[1]*n[3],
		m[2]*n[0] + m[3]*n[2],
		m[2]*n[1] + m[3]*n[3],
		m[4]*n[0] + m[5]*n[2] + n[4],
		m[4]*n[1] + m[5]*n[3] + n[5],
	}
}

// Limits of the content walk, so that a hostile file cannot make it run
// long: tokens per file, graphics-state depth, form nesting.
const (
	maxTokens    = 2_000_000
	maxStack     = 256
	maxFormDepth = 8
	maxImages    = 64 // images recorded per page
)

// drawn is an image found by the walk, with the CTM in force at its Do.
type drawn struct {
	name   string
	w, h   int
	ctm    matrix
	inline bool
}

// walker interprets the few content-stream operators that place images:
// q, Q, cm, Do (images and forms) and BI … ID … EI (inline images).
type walker struct {
	tokens int
	out    []drawn
	err    error
}

func (wk *walker) run(content []byte, res resources, ctm matrix, depth int) {
	var (
		stack []matrix
		nums  []float64
		name  string
	)
	sc := scanner{b: content}
	for wk.err == nil {
		t, kind := sc.next()
		if kind == tokEOF {
			return
		}
		wk.tokens++
		if wk.tokens > maxTokens {
			wk.err = errTooComplex
			return
		}
		switch kind {
		case tokNumber:
			if f, err := strconv.ParseFloat(string(t), 64); err == nil && !math.IsInf(f, 0) {
				nums = append(nums, f)
				if len(nums) > 6 {
					nums = nums[1:]
				}
			}
			continue
		case tokName:
			name = string(t[1:])
			continue
		case tokOther:
			continue // strings, arrays, dicts: operands we do not use
		}
		// operator
		switch string(t) {
		case "q":
			if len(stack) < maxStack {
				stack = append(stack, ctm)
			}
		case "Q":
			if n := len(stack); n > 0 {
				ctm = stack[n-1]
				stack = stack[:n-1]
			}
		case "cm":
			if len(nums) == 6 {
				ctm = matrix(nums).mul(ctm)
			}
		case "Do":
			if name != "" && res != nil {
				wk.do(name, res, ctm, depth)
			}
		case "BI":
			w, h, ok := sc.inlineImage()
			if ok && len(wk.out) < maxImages {
				wk.out = append(wk.out, drawn{name: "inline", w: w, h: h, ctm: ctm, inline: true})
			}
		}
		nums = nums[:0]
		name = ""
	}
}

func (wk *walker) do(name string, res resources, ctm matrix, depth int) {
	x, ok, err := res.xobject(name)
	if err != nil || !ok {
		return // a missing resource draws nothing
	}
	switch {
	case x.image:
		if len(wk.out) < maxImages {
			wk.out = append(wk.out, drawn{name: name, w: x.width, h: x.height, ctm: ctm})
		}
	case x.form && depth < maxFormDepth:
		inner := x.res
		if inner == nil {
			inner = res // PDF 1.1 forms may use the page's resources
		}
		wk.run(x.content, inner, x.matrix.mul(ctm), depth+1)
	}
}

type constErr string

func (e constErr) Error() string { return string(e) }

const errTooComplex = constErr("content streams too complex to walk")

// Token kinds.
const (
	tokEOF = iota
	tokNumber
	tokName
	tokOther // string, array or dict delimiters, booleans in arrays…
	tokOp
)

// scanner splits a content stream into tokens (ISO 32000-1 §7.2).
type scanner struct {
	b []byte
	i int
}

func isWhite(c byte) bool {
	return c == 0 || c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == ' '
}

func isDelim(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return false
}

func (s *scanner) skipWhite() {
	for s.i < len(s.b) {
		c := s.b[s.i]
		if isWhite(c) {
			s.i++
			continue
		}
		if c == '%' { // comment to end of line
			for s.i < len(s.b) && s.b[s.i] != '\n' && s.b[s.i] != '\r' {
				s.i++
			}
			continue
		}
		return
	}
}

func (s *scanner) regular() []byte {
	start := s.i
	for s.i < len(s.b) && !isWhite(s.b[s.i]) && !isDelim(s.b[s.i]) {
		s.i++
	}
	return s.b[start:s.i]
}

func (s *scanner) next() ([]byte, int) {
	s.skipWhite()
	if s.i >= len(s.b) {
		return nil, tokEOF
	}
	c := s.b[s.i]
	switch {
	case c == '/':
		start := s.i
		s.i++
		s.regular()
		return s.b[start:s.i], tokName
	case c == '(':
		s.literalString()
		return nil, tokOther
	case c == '<':
		if s.i+1 < len(s.b) && s.b[s.i+1] == '<' {
			s.i += 2
			return nil, tokOther
		}
		for s.i < len(s.b) && s.b[s.i] != '>' {
			s.i++
		}
		s.i++
		return nil, tokOther
	case c == '>' || c == '[' || c == ']' || c == '{' || c == '}' || c == ')':
		s.i++
		return nil, tokOther
	}
	t := s.regular()
	if len(t) == 0 { // cannot happen, but never loop
		s.i++
		return nil, tokOther
	}
	if c == '+' || c == '-' || c == '.' || (c >= '0' && c <= '9') {
		return t, tokNumber
	}
	return t, tokOp
}

// literalString skips a (…) string with nesting and escapes.
func (s *scanner) literalString() {
	depth := 0
	for s.i < len(s.b) {
		c := s.b[s.i]
		s.i++
		switch c {
		case '\\':
			s.i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return
			}
		}
	}
}

// inlineImage reads the dictionary of an inline image after BI, skips its
// data up to EI and returns its width and height.
func (s *scanner) inlineImage() (w, h int, ok bool) {
	var key string
	for {
		t, kind := s.next()
		switch kind {
		case tokEOF:
			return 0, 0, false
		case tokName:
			if key == "" {
				key = string(t[1:])
			} else {
				key = "" // a name value (/CS /G): the next name is a key
			}
			continue
		case tokNumber:
			n, err := strconv.Atoi(string(t))
			if err == nil {
				switch key {
				case "W", "Width":
					w = n
				case "H", "Height":
					h = n
				}
			}
			key = ""
			continue
		case tokOp:
			if string(t) == "ID" {
				s.skipInlineData()
				return w, h, w > 0 && h > 0
			}
			key = ""
		default:
			key = ""
		}
	}
}

// skipInlineData moves past the binary data of an inline image: after the
// single white-space byte that follows ID, up to "EI" delimited by white
// space (the usual heuristic; data containing " EI " can fool it).
func (s *scanner) skipInlineData() {
	s.i++
	for s.i+1 < len(s.b) {
		if s.b[s.i] == 'E' && s.b[s.i+1] == 'I' && (s.i == 0 || isWhite(s.b[s.i-1])) &&
			(s.i+2 == len(s.b) || isWhite(s.b[s.i+2])) {
			s.i += 2
			return
		}
		s.i++
	}
	s.i = len(s.b)
}
