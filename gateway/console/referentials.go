package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/referentials"
)

// Referentials is the versioned referential (*referentials.Repo has it).
type Referentials interface {
	Versions(ctx context.Context) ([]referentials.Version, error)
	Diff(ctx context.Context, v1, v2 uint64) (referentials.Diff, error)
}

var _ Referentials = (*referentials.Repo)(nil)

// maxDiffRows bounds the changes a diff page lists (the counts are whole).
const maxDiffRows = 500

type refCount struct {
	Table referentials.Table
	Op    referentials.Op
	N     int
}

type refView struct {
	Configured bool
	Versions   []referentials.Version
	From, To   string
	Diff       *referentials.Diff
	Counts     []refCount
	Changes    []referentials.Change
	Cut        bool
}

// referentialsPage lists the versions, newest first, and shows the diff
// between two (?from=&to=; from 0 = empty).
func (c *Console) referentialsPage(w http.ResponseWriter, r *http.Request, s reqSession) {
	v := refView{Configured: c.o.Referentials != nil, From: r.URL.Query().Get("from"), To: r.URL.Query().Get("to")}
	if !v.Configured {
		c.render(w, http.StatusOK, "referentials", &s, v)
		return
	}
	ctx := r.Context()
	var err error
	if v.Versions, err = c.o.Referentials.Versions(ctx); err != nil {
		c.fail(w, s, err)
		return
	}
	slices.Reverse(v.Versions)
	if v.From != "" || v.To != "" {
		from, err1 := strconv.ParseUint(v.From, 10, 64)
		to, err2 := strconv.ParseUint(v.To, 10, 64)
		if err1 != nil || err2 != nil {
			c.fail(w, s, fmt.Errorf("%w: from and to are version numbers", anomalies.ErrBadRequest))
			return
		}
		d, err := c.o.Referentials.Diff(ctx, from, to)
		if errors.Is(err, referentials.ErrVersionNotFound) {
			c.fail(w, s, fmt.Errorf("%w: %v", anomalies.ErrBadRequest, err))
			return
		}
		if err != nil {
			c.fail(w, s, err)
			return
		}
		v.Diff = &d
		counts := map[refCount]int{}
		for _, ch := range d.Changes {
			counts[refCount{Table: ch.Table, Op: ch.Op}]++
		}
		for k, n := range counts {
			k.N = n
			v.Counts = append(v.Counts, k)
		}
		slices.SortFunc(v.Counts, func(a, b refCount) int {
			if a.Table != b.Table {
				return cmpStr(string(a.Table), string(b.Table))
			}
			return cmpStr(string(a.Op), string(b.Op))
		})
		v.Changes = d.Changes
		if len(v.Changes) > maxDiffRows {
			v.Changes, v.Cut = v.Changes[:maxDiffRows], true
		}
	}
	c.render(w, http.StatusOK, "referentials", &s, v)
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
