package certdir

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/octgw/oct/internal/testenv"
)

// TestSlapd runs against a real OpenLDAP server (OCT_INTEGRATION=1).
func TestSlapd(t *testing.T) {
	s := testenv.StartSlapd(t, "o=sesam-vitale,c=fr")
	base := "ou=AC-FACTURATION,o=sesam-vitale,c=fr"
	s.Add(t, base, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"AC-FACTURATION"}})
	real := time.Now().UTC().Truncate(time.Second)
	const mb = "01422@422.01.rss.fr"
	dn := "cn=" + mb + "," + base
	s.Add(t, dn, map[string][]string{
		"objectClass": {"inetOrgPerson"}, "cn": {mb}, "sn": {"CPAM de la Loire"},
		"userCertificate;binary": {
			string(makeCert(t, mb, 100, real.AddDate(-1, 0, 0), real.AddDate(1, 0, 0))),
			string(makeCert(t, mb, 200, real.AddDate(0, 0, -1), real.AddDate(0, 0, 20))),
			string(makeCert(t, mb, 300, real.AddDate(-2, 0, 0), real.AddDate(0, 0, -1))),
		},
	})
	// An entry with a filter-special character in its cn must not break the search.
	odd := "amc(test)*@x.invalid"
	s.Add(t, "cn="+odd+","+base, map[string][]string{
		"objectClass": {"inetOrgPerson"}, "cn": {odd}, "sn": {"AMC"},
		"userCertificate;binary": {string(makeCert(t, odd, 7, real.AddDate(0, 0, -1), real.AddDate(2, 0, 0)))},
	})
	clock := real
	d, err := New(Config{URL: s.URL, BaseDN: base, Now: func() time.Time { return clock }, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := d.Certificate(ctx, mb)
	if err != nil || c.SerialNumber.Int64() != 200 {
		t.Fatalf("selected %v %v", c, err)
	}
	if c, err := d.Certificate(ctx, odd); err != nil || c.SerialNumber.Int64() != 7 {
		t.Fatalf("odd cn: %v %v", c, err)
	}
	if _, err := d.Certificate(ctx, "01999@999.01.rss.fr"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing entry: %v", err)
	}
	exp := d.Check(ctx, []string{mb, odd}, 30*24*time.Hour)
	if len(exp) != 1 || exp[0].Mailbox != mb || exp[0].Serial != "c8" || exp[0].Problem != "expiring" {
		t.Fatalf("check = %+v", exp)
	}
	// A new certificate is published: seen only once the TTL has passed.
	s.AddValues(t, dn, "userCertificate;binary", string(makeCert(t, mb, 400, real.AddDate(0, 0, -1), real.AddDate(3, 0, 0))))
	if c, _ := d.Certificate(ctx, mb); c.SerialNumber.Int64() != 200 {
		t.Fatalf("cache bypassed: %v", c.SerialNumber)
	}
	clock = real.Add(2 * time.Hour)
	if c, err := d.Certificate(ctx, mb); err != nil || c.SerialNumber.Int64() != 400 {
		t.Fatalf("after TTL: %v %v", c, err)
	}
	if exp := d.Check(ctx, []string{mb}, 0); len(exp) != 0 {
		t.Fatalf("rolled over but reported: %+v", exp)
	}
	// Directory gone: the cached copy keeps serving; a new mailbox fails.
	s.Proc.Stop(0, 0)
	clock = real.Add(4 * time.Hour)
	if c, err := d.Certificate(ctx, mb); err != nil || c.SerialNumber.Int64() != 400 {
		t.Fatalf("stale after stop: %v %v", c, err)
	}
	if _, err := d.Certificate(ctx, odd+"2"); !errors.Is(err, ErrDirectory) {
		t.Fatalf("down: %v", err)
	}
}
