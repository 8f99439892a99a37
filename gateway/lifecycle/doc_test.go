package lifecycle

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// docPath is the document that draws the machines.
const docPath = "../../docs/lifecycle.md"

// graph is a machine as read from a drawing or a table.
type graph struct {
	initial  State
	edges    map[[2]State]bool
	terminal map[State]bool
	states   map[State]bool
}

func newGraph() *graph {
	return &graph{edges: map[[2]State]bool{}, terminal: map[State]bool{}, states: map[State]bool{}}
}

func fromMachine(m *Machine) *graph {
	g := newGraph()
	g.initial = m.Initial
	for _, s := range m.States() {
		g.states[s] = true
	}
	for from, tos := range m.Next {
		for _, to := range tos {
			g.edges[[2]State{from, to}] = true
		}
	}
	for s, ok := range m.Terminal {
		if ok {
			g.terminal[s] = true
			g.states[s] = true
		}
	}
	return g
}

// diff lists what a has and b lacks, and the reverse.
func diff(what string, a, b *graph) []string {
	var out []string
	if a.initial != b.initial {
		out = append(out, fmt.Sprintf("%s: initial state %q, code says %q", what, a.initial, b.initial))
	}
	for e := range a.edges {
		if !b.edges[e] {
			out = append(out, fmt.Sprintf("%s: %s -> %s is not in the code", what, e[0], e[1]))
		}
	}
	for e := range b.edges {
		if !a.edges[e] {
			out = append(out, fmt.Sprintf("%s: %s -> %s is missing", what, e[0], e[1]))
		}
	}
	for s := range a.terminal {
		if !b.terminal[s] {
			out = append(out, fmt.Sprintf("%s: %s is terminal here, not in the code", what, s))
		}
	}
	for s := range b.terminal {
		if !a.terminal[s] {
			out = append(out, fmt.Sprintf("%s: terminal state %s not marked", what, s))
		}
	}
	for s := range b.states {
		if !a.states[s] {
			out = append(out, fmt.Sprintf("%s: state %s is missing", what, s))
		}
	}
	sort.Strings(out)
	return out
}

var (
	mermaidEdge = regexp.MustCompile(`^\s*(\[\*\]|[a-z_]+)\s*-->\s*(\[\*\]|[a-z_]+)\s*(:.*)?$`)
	backticked  = regexp.MustCompile("`([a-z_]+)`")
)

// parseMermaid reads the edges of a stateDiagram-v2 block.
func parseMermaid(block []string) (*graph, error) {
	g := newGraph()
	for _, line := range block {
		line = strings.TrimSpace(line)
		if line == "" || line == "stateDiagram-v2" || strings.HasPrefix(line, "%%") || strings.HasPrefix(line, "direction ") ||
			strings.HasPrefix(line, "classDef ") || strings.HasPrefix(line, "class ") {
			continue
		}
		m := mermaidEdge.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("unreadable diagram line %q", line)
		}
		from, to := State(m[1]), State(m[2])
		switch {
		case from == "[*]" && to == "[*]":
			return nil, fmt.Errorf("bad line %q", line)
		case from == "[*]":
			if g.initial != "" {
				return nil, fmt.Errorf("two initial states: %s and %s", g.initial, to)
			}
			g.initial = to
			g.states[to] = true
		case to == "[*]":
			g.terminal[from] = true
			g.states[from] = true
		default:
			g.edges[[2]State{from, to}] = true
			g.states[from], g.states[to] = true, true
		}
	}
	return g, nil
}

// parseTable reads a "| state | may go to |" table: the first column names
// the state (and says "initial"), the second lists the next states or says
// "terminal".
func parseTable(rows []string) (*graph, error) {
	g := newGraph()
	for _, row := range rows {
		cells := strings.Split(strings.Trim(strings.TrimSpace(row), "|"), "|")
		if len(cells) < 2 {
			return nil, fmt.Errorf("bad table row %q", row)
		}
		st := backticked.FindStringSubmatch(cells[0])
		if st == nil {
			continue // header or separator
		}
		from := State(st[1])
		g.states[from] = true
		if strings.Contains(cells[0], "initial") {
			g.initial = from
		}
		if strings.Contains(cells[1], "terminal") {
			g.terminal[from] = true
		}
		for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
			g.edges[[2]State{from, State(m[1])}] = true
			g.states[State(m[1])] = true
		}
	}
	return g, nil
}

// section is what the document says about one kind.
type section struct {
	mermaid []string
	table   []string
}

// parseDoc splits the document by "## <kind>" headings and collects the
// mermaid block and the table of each.
func parseDoc(text string) map[Kind]*section {
	out := map[Kind]*section{}
	var cur *section
	inMermaid := false
	for _, line := range strings.Split(text, "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			cur = nil
			word := strings.ToLower(strings.Fields(h + " x")[0])
			if For(Kind(word)) != nil {
				cur = &section{}
				out[Kind(word)] = cur
			}
			continue
		}
		if cur == nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, "```mermaid"):
			inMermaid = true
		case inMermaid && strings.HasPrefix(line, "```"):
			inMermaid = false
		case inMermaid:
			cur.mermaid = append(cur.mermaid, line)
		case strings.HasPrefix(strings.TrimSpace(line), "|"):
			cur.table = append(cur.table, line)
		}
	}
	return out
}

// render writes the diagram and table of a machine, for a document to copy.
func render(m *Machine) string {
	var b strings.Builder
	b.WriteString("```mermaid\nstateDiagram-v2\n")
	fmt.Fprintf(&b, "    [*] --> %s\n", m.Initial)
	for _, s := range m.States() {
		for _, to := range m.Next[s] {
			fmt.Fprintf(&b, "    %s --> %s\n", s, to)
		}
	}
	for _, s := range m.States() {
		if m.Terminal[s] {
			fmt.Fprintf(&b, "    %s --> [*]\n", s)
		}
	}
	b.WriteString("```\n\n| state | may go to |\n|---|---|\n")
	for _, s := range m.States() {
		name := "`" + string(s) + "`"
		if s == m.Initial {
			name += " (initial)"
		}
		var next []string
		for _, to := range m.Next[s] {
			next = append(next, "`"+string(to)+"`")
		}
		cell := strings.Join(next, ", ")
		if m.Terminal[s] {
			cell = "terminal"
		}
		fmt.Fprintf(&b, "| %s | %s |\n", name, cell)
	}
	return b.String()
}

func TestDocumentMatchesTables(t *testing.T) {
	raw, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := parseDoc(string(raw))
	for _, k := range Kinds() {
		m := For(k)
		sec := doc[k]
		if sec == nil {
			t.Errorf("%s has no section \"## %s\" in %s; it should hold:\n%s", k, k, docPath, render(m))
			continue
		}
		code := fromMachine(m)
		var problems []string
		if dg, err := parseMermaid(sec.mermaid); err != nil || len(sec.mermaid) == 0 {
			problems = append(problems, fmt.Sprintf("%s diagram: %v (%d lines)", k, err, len(sec.mermaid)))
		} else {
			problems = append(problems, diff(string(k)+" diagram", dg, code)...)
		}
		if tg, err := parseTable(sec.table); err != nil || len(sec.table) == 0 {
			problems = append(problems, fmt.Sprintf("%s table: %v (%d rows)", k, err, len(sec.table)))
		} else {
			problems = append(problems, diff(string(k)+" table", tg, code)...)
		}
		if len(problems) > 0 {
			t.Errorf("%s does not match lifecycle:\n  %s\nexpected section content:\n%s",
				docPath, strings.Join(problems, "\n  "), render(m))
		}
	}
}

// TestDocCheckerCatchesDrift makes sure the checker itself can fail: a
// missing edge, an extra edge and a wrong terminal are all reported.
func TestDocCheckerCatchesDrift(t *testing.T) {
	m := For(Lot)
	good := render(m)
	doc := parseDoc("## lot\n\n" + good)
	dg, err := parseMermaid(doc[Lot].mermaid)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff("lot", dg, fromMachine(m)); len(d) != 0 {
		t.Fatalf("rendered diagram differs: %v", d)
	}
	tg, _ := parseTable(doc[Lot].table)
	if d := diff("lot", tg, fromMachine(m)); len(d) != 0 {
		t.Fatalf("rendered table differs: %v", d)
	}
	for name, edit := range map[string]func(string) string{
		"missing edge": func(s string) string { return strings.Replace(s, "    sent --> arl_positive\n", "", 1) },
		"extra edge": func(s string) string {
			return strings.Replace(s, "```mermaid\nstateDiagram-v2\n", "```mermaid\nstateDiagram-v2\n    settled --> sent\n", 1)
		},
		"wrong terminal": func(s string) string { return strings.Replace(s, "    settled --> [*]\n", "    sent --> [*]\n", 1) },
		"table edge":     func(s string) string { return strings.Replace(s, "`routed`, `unroutable` |", "`routed` |", 1) },
	} {
		bad := edit(good)
		if bad == good {
			t.Fatalf("%s: edit did not apply", name)
		}
		sec := parseDoc("## lot\n\n" + bad)[Lot]
		dg, err := parseMermaid(sec.mermaid)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tg, _ := parseTable(sec.table)
		if len(diff("d", dg, fromMachine(m)))+len(diff("t", tg, fromMachine(m))) == 0 {
			t.Errorf("%s not detected", name)
		}
	}
}
