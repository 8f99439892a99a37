package referentials

import "embed"

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
