package fixed

import (
	"errors"
	"testing"
	"time"
)

func TestNewLayoutRejectsBadTables(t *testing.T) {
	cases := map[string][]Field{
		"overlap":  {{"a", 1, 3, Numeric}, {"b", 3, 2, Alpha}},
		"outside":  {{"a", 9, 3, Numeric}},
		"noname":   {{"", 1, 1, Alpha}},
		"dup":      {{"a", 1, 1, Alpha}, {"a", 2, 1, Alpha}},
		"nokind":   {{"a", 1, 1, 0}},
		"datesize": {{"a", 1, 4, Date}},
	}
	for name, fields := range cases {
		if _, err := NewLayout(name, 10, fields...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewLayout("ok", 10, Field{"a", 1, 3, Numeric}, Field{"b", 4, 6, Date}, Field{"c", 10, 1, Alpha}); err != nil {
		t.Fatal(err)
	}
}

func TestAccessorsAndSetters(t *testing.T) {
	l := MustLayout("t", 20,
		Field{"num", 1, 4, Numeric},
		Field{"txt", 5, 6, Alpha},
		Field{"amt", 11, 4, Amount},
		Field{"day", 15, 6, Date},
	)
	rec := []byte("0042ABC   0150240229")
	if v, ok := l.Ref("num").Int(rec); !ok || v != 42 {
		t.Fatalf("num = %d %v", v, ok)
	}
	if s := l.Ref("txt").String(rec); s != "ABC" {
		t.Fatalf("txt = %q", s)
	}
	if d, ok := l.Ref("day").Date(rec); !ok || d != (Day{2024, time.February, 29}) {
		t.Fatalf("day = %v %v", d, ok)
	}
	out := make([]byte, 20)
	for _, step := range []error{
		l.Ref("num").SetInt(out, 42), l.Ref("txt").SetString(out, "ABC"),
		l.Ref("amt").SetInt(out, 150), l.Ref("day").SetDate(out, Day{2024, time.February, 29}),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	if string(out) != string(rec) {
		t.Fatalf("round trip %q != %q", out, rec)
	}
	if err := l.Ref("num").SetInt(out, 12345); !errors.Is(err, ErrFieldOverflow) {
		t.Fatalf("overflow: %v", err)
	}
	if err := l.Ref("txt").SetString(out, "TOOLONGX"); !errors.Is(err, ErrFieldOverflow) {
		t.Fatalf("overflow: %v", err)
	}
	var bad []string
	l.Check([]byte("00X2ABC   0150230229"), func(r Ref, k Kind) { bad = append(bad, r.Name) })
	if len(bad) != 2 || bad[0] != "num" || bad[1] != "day" {
		t.Fatalf("check = %v", bad)
	}
}

func TestParseDate(t *testing.T) {
	good := map[string]Day{"000000": {}, "240229": {2024, 2, 29}, "991231": {1999, 12, 31}, "000229": {2000, 2, 29}}
	for s, want := range good {
		if d, ok := ParseDate([]byte(s)); !ok || d != want {
			t.Errorf("%s: %v %v", s, d, ok)
		}
	}
	for _, s := range []string{"230229", "241301", "240431", "240100", "2401A1", "24010"} {
		if _, ok := ParseDate([]byte(s)); ok {
			t.Errorf("%s accepted", s)
		}
	}
}

func TestErrorIsCode(t *testing.T) {
	const c Code = "nir-key"
	var err error = Errorf(c, 3, "nir", "key %d", 12)
	if !errors.Is(err, c) || errors.Is(err, Code("other")) {
		t.Fatal("errors.Is on Code")
	}
	if got := err.Error(); got != "nir-key at record 3, field nir: key 12" {
		t.Fatal(got)
	}
	var col Collector
	col.Max = 2
	for i := 0; i < 5; i++ {
		col.Addf(c, int64(i), "", "x")
	}
	if col.Len() != 2 || col.Dropped() != 3 || !col.Has(c) {
		t.Fatalf("collector %d %d", col.Len(), col.Dropped())
	}
}

func TestCharset(t *testing.T) {
	if UpperAlnum.FirstBad([]byte("ABC 123")) != -1 || UpperAlnum.FirstBad([]byte("AB-C")) != 2 || UpperAlnum.FirstBad([]byte("abc")) != 0 {
		t.Fatal("charset")
	}
}
