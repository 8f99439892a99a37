package b2

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/octgw/oct/formats/fixed"
)

func genFile(t testing.TB, o GenOptions) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Generate(&b, o); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func codes(rep *Report) map[fixed.Code]int {
	m := map[fixed.Code]int{}
	for _, e := range rep.Errors {
		m[e.Code]++
	}
	return m
}

func TestGenerateValid(t *testing.T) {
	for _, variant := range []string{"CP", "ES", "PS"} {
		for _, fr := range []Framing{FramingNone, FramingLF, FramingCRLF} {
			for seed := int64(0); seed < 20; seed++ {
				data := genFile(t, GenOptions{Seed: seed, Lots: 2, Invoices: 5, Variant: variant, Framing: fr})
				rep, err := Validate(bytes.NewReader(data), Options{Summaries: true})
				if err != nil {
					t.Fatal(err)
				}
				if !rep.Valid {
					t.Fatalf("%s/%s/seed %d: %v", variant, fr, seed, rep.Errors)
				}
				if rep.Stats.Lots != 2 || rep.Stats.Invoices != 10 || len(rep.Lots) != 2 || len(rep.Lots[1].Invoices) != 5 {
					t.Fatalf("stats %+v", rep.Stats)
				}
				if rep.Framing != fr {
					t.Fatalf("framing %v != %v", rep.Framing, fr)
				}
			}
		}
	}
}

func TestGenerateEachFault(t *testing.T) {
	for _, variant := range []string{"CP", "PS"} {
		for _, fr := range []Framing{FramingNone, FramingLF, FramingCRLF} {
			for _, fault := range GenFaults() {
				for seed := int64(0); seed < 5; seed++ {
					name := fmt.Sprintf("%s/%s/%s/%d", variant, fr, fault, seed)
					if variant == "PS" && fault == ErrInvoiceTotal {
						if err := Generate(new(bytes.Buffer), GenOptions{Variant: variant, Fault: fault}); !errors.Is(err, ErrGenOptions) {
							t.Errorf("%s: %v", name, err)
						}
						continue
					}
					data := genFile(t, GenOptions{Seed: seed, Lots: 2, Invoices: 4, Variant: variant, Framing: fr, Fault: fault})
					rep, err := Validate(bytes.NewReader(data), Options{})
					if err != nil {
						t.Fatal(err)
					}
					got := codes(rep)
					if rep.Valid || len(got) != 1 || got[fault] == 0 {
						t.Errorf("%s: got %v", name, rep.Errors)
						continue
					}
					e := rep.Errors[0]
					if !errors.Is(&e, fault) {
						t.Errorf("%s: errors.Is", name)
					}
				}
			}
		}
	}
}
