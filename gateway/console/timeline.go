package console

import (
	"sort"
	"time"

	"github.com/octgw/oct/anomalies"
)

// tlEntry is one line of a lot's timeline.
type tlEntry struct {
	Time   time.Time
	Class  string // event, transition, attempt, return, expect, anomaly: a style and a test hook
	What   string
	Actor  string
	Detail string
}

// timeline merges what happened to a lot, oldest first: its journal
// events (transitions, actions, downloads), send attempts, returns
// received, return deadlines and anomalies opened. Free text goes through
// MaskNIR.
func timeline(v lotView) []tlEntry {
	var out []tlEntry
	for _, e := range v.Events {
		t := tlEntry{Time: e.Time, Class: "event", What: e.Type, Actor: e.Actor, Detail: anomalies.MaskNIR(e.Reason)}
		if e.Type == "transition" {
			t.Class, t.What = "transition", string(e.To)
			if e.From != "" {
				t.What = string(e.From) + " → " + string(e.To)
			}
		}
		out = append(out, t)
	}
	for _, a := range v.Attempts {
		what := "send to " + a.Destination
		if a.Resend {
			what = "resend to " + a.Destination
		}
		if a.Outcome != "" {
			what += ": " + a.Outcome
		}
		out = append(out, tlEntry{Time: a.Started, Class: "attempt", What: what, Detail: anomalies.MaskNIR(a.Detail)})
	}
	for _, x := range v.Returns {
		out = append(out, tlEntry{Time: x.Received, Class: "return", What: x.Kind + " received", Detail: x.ID})
	}
	for _, x := range v.Expectations {
		what := x.Kind + " expected by then"
		switch {
		case x.SatisfiedBy != "":
			what = x.Kind + " deadline (met)"
		case x.Fired:
			what = x.Kind + " deadline passed"
		}
		out = append(out, tlEntry{Time: x.DueAt, Class: "expect", What: what})
	}
	for _, a := range v.Anomalies {
		out = append(out, tlEntry{Time: a.Created, Class: "anomaly", What: "anomaly " + a.Kind + " (" + string(a.State) + ")", Detail: anomalies.MaskNIR(a.Reason)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}
