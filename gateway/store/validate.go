package store

import (
	"fmt"

	"github.com/octgw/oct/gateway/lifecycle"
)

// ValidateChange checks what every implementation refuses before touching
// anything: records without ids, transitions of kinds without a state
// machine, events that pretend to be transitions, jobs without a kind.
// The error wraps ErrInvalid.
func ValidateChange(c *Change) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("store: "+format+": %w", append(a, ErrInvalid)...)
	}
	for _, t := range c.Tenants {
		if t.ID == "" {
			return bad("tenant without id")
		}
	}
	for _, f := range c.Files {
		if f.ID == "" || f.Tenant == "" {
			return bad("file without id or tenant")
		}
	}
	ids := []struct {
		what string
		n    int
		id   func(i int) string
	}{
		{"lot", len(c.Lots), func(i int) string { return c.Lots[i].ID }},
		{"invoice", len(c.Invoices), func(i int) string { return c.Invoices[i].ID }},
		{"attempt", len(c.Attempts), func(i int) string { return c.Attempts[i].ID }},
		{"expectation", len(c.Expectations), func(i int) string { return c.Expectations[i].ID }},
		{"return", len(c.Returns), func(i int) string { return c.Returns[i].ID }},
		{"anomaly", len(c.Anomalies), func(i int) string { return c.Anomalies[i].ID }},
		{"done", len(c.Done), func(i int) string { return c.Done[i].ID }},
		{"retry", len(c.Retry), func(i int) string { return c.Retry[i].Lease.ID }},
	}
	for _, k := range ids {
		for i := 0; i < k.n; i++ {
			if k.id(i) == "" {
				return bad("%s without id", k.what)
			}
		}
	}
	for _, t := range c.Transitions {
		if t.ID == "" {
			return bad("transition without id")
		}
		if lifecycle.For(t.Kind) == nil {
			return bad("transition of unknown kind %q", t.Kind)
		}
	}
	for _, e := range c.Events {
		if e.Subject == "" || e.Type == "" || e.Type == "transition" {
			return bad("event needs a subject and a type other than transition")
		}
	}
	for _, j := range c.Enqueue {
		if j.Kind == "" {
			return bad("job without kind")
		}
	}
	return nil
}
