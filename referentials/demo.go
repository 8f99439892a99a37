package referentials

import (
	"embed"
	"strings"
)

//go:embed demodata/*.csv
var demoFS embed.FS

// DemoFeed is a small, realistic referential for `oct demo` and tests: a
// few CPAM and MSA caisses (test caisses 01996/01997 included, a scheduled
// cipher change for 01511), AMC numbers in the SESAM regroupement format and
// conventions over SMTP, SFTP and HTTPS with a scheduled endpoint change.
func DemoFeed() Feed {
	feed := Feed{Source: "demo"}
	for _, n := range []string{"amo.csv", "amc-regroupement.csv", "conventions.csv"} {
		b, err := demoFS.ReadFile("demodata/" + n)
		if err != nil {
			panic(err) // embedded: cannot happen
		}
		f, err := DetectFile(n, b)
		if err != nil {
			panic(err)
		}
		feed.Files = append(feed.Files, f)
	}
	return feed
}

// The HTTPS endpoints of the demo referential that a simulator stands in
// for: the SSA SSA01 (medical certificates) and the optics convention of
// SANTEPHARM (PEC requests).
const (
	DemoSSAEndpoint = "https://fhir.ssa01.invalid/r4"
	DemoPECEndpoint = "https://pec.santepharm.invalid/v1"
)

// DemoFeedAt is DemoFeed with its SSA and PEC endpoints at ssaURL and
// pecURL (a simulator's addresses).
func DemoFeedAt(ssaURL, pecURL string) Feed {
	feed := DemoFeed()
	r := strings.NewReplacer(DemoSSAEndpoint, ssaURL, DemoPECEndpoint, pecURL)
	for i, f := range feed.Files {
		feed.Files[i].Data = []byte(r.Replace(string(f.Data)))
	}
	feed.Source = "demo (simulated endpoints)"
	return feed
}
