package anomalies_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/anomalies/anomaliestest"
)

// TestListMostUrgentFirstBeyondMaxScan: the most urgent anomaly is the
// last by id; a queue that reads by id and sorts in memory would miss it
// past MaxScan. The store's deadline order finds it first.
func TestListMostUrgentFirstBeyondMaxScan(t *testing.T) {
	f := anomaliestest.New(t)
	q := newQueue(t, f, anomalies.Options{MaxScan: 5})
	for i := 0; i < 20; i++ {
		f.Anomaly(fmt.Sprintf("A%02d", i), anomalies.KindDeliveryFailed, fmt.Sprintf("lot:L%02d", i), "acme", "D1",
			time.Duration(40-i)*time.Hour) // A19 is due first
	}
	items, err := q.List(f.Ctx, anomalies.Filter{State: anomalies.StateActive, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 || items[0].ID != "A19" || items[1].ID != "A18" || items[2].ID != "A17" {
		t.Fatalf("most urgent first: %v", func() (ids []string) {
			for _, it := range items {
				ids = append(ids, it.ID)
			}
			return
		}())
	}
	// With an age filter too (everything is new: nothing older than 1h).
	f.Clock.Advance(30 * time.Minute)
	if items, _ := q.List(f.Ctx, anomalies.Filter{State: anomalies.StateActive, OlderThan: time.Hour}); len(items) != 0 {
		t.Fatalf("age filter: %d items", len(items))
	}
}
