package redis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/octgw/oct/gateway/store"
)

// Lease implements store.Store. Jobs come in the order they became
// available (run_at, or the expiry of the lease they were taken back from),
// then by id. An empty kinds list means every kind.
func (s *Store) Lease(ctx context.Context, owner string, kinds []string, n int, ttl time.Duration) ([]store.Lease, error) {
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, nil
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("redis: lease ttl %v: %w", ttl, store.ErrInvalid)
	}
	ks := slices.Clone(kinds)
	slices.Sort(ks)
	ks = slices.Compact(ks)
	now := s.now().UTC()
	until := now.Add(ttl)
	args := []any{s.p, pad(now), padInt(now.UnixNano() + 1), pad(until), owner, strconv.Itoa(n), strconv.Itoa(len(ks))}
	for _, k := range ks {
		args = append(args, k)
	}
	for i := 0; i < n; i++ {
		args = append(args, randomID())
	}
	res, err := leaseScript.Run(ctx, s.c, []string{s.k("i:jq")}, args...).StringSlice()
	if err != nil {
		return nil, s.rerr("lease", err)
	}
	if len(res)%8 != 0 {
		return nil, fmt.Errorf("redis: lease: reply of %d values", len(res))
	}
	out := make([]store.Lease, 0, len(res)/8)
	for i := 0; i < len(res); i += 8 {
		r := res[i : i+8]
		out = append(out, store.Lease{
			Job: store.Job{ID: r[0], Kind: r[1], Subject: r[2], Key: r[3], RunAt: unpad(r[4]),
				Attempts: atoi(r[5]), LastErr: r[6]},
			Owner: owner, Token: r[7], Until: until,
		})
	}
	return out, nil
}

// Extend implements store.Store.
func (s *Store) Extend(ctx context.Context, l store.Lease, ttl time.Duration) (store.Lease, error) {
	if err := s.start(ctx); err != nil {
		return l, err
	}
	if ttl <= 0 {
		return l, fmt.Errorf("redis: extend ttl %v: %w", ttl, store.ErrInvalid)
	}
	now := s.now().UTC()
	until := now.Add(ttl)
	res, err := extendScript.Run(ctx, s.c, []string{s.k("i:jq")}, s.p, l.ID, l.Token, pad(now), pad(until)).Text()
	if err != nil {
		return l, s.rerr("extend", err)
	}
	if res != "OK" {
		return l, fmt.Errorf("redis: extend job %s: %w", l.ID, store.ErrLeaseLost)
	}
	l.Until = until
	return l, nil
}
