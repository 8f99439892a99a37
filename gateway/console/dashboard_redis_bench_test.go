package console_test

import (
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/anomalies/anomaliestest"
	"github.com/octgw/oct/gateway/console"
	"github.com/octgw/oct/gateway/store/redis"
	"github.com/octgw/oct/internal/testenv"
)

// BenchmarkDashboardRedis is BenchmarkDashboard over the Redis store
// (OCT_INTEGRATION=1, redis-server): 20 000 lots of one tenant, all
// created. The Redis store serves a tenant + state query by walking the
// tenant's index: reading each state by tenant made a vendor's page take
// 3.1 s here; reading the state's own index first (lotsIn) makes it ~26 ms.
func BenchmarkDashboardRedis(b *testing.B) {
	srv := testenv.StartRedis(b, testenv.RedisOptions{})
	f := anomaliestest.New(b) // clock and session plumbing only
	ctx := f.Ctx
	st, err := redis.Open(ctx, redis.Options{Addr: srv.Addr, Now: f.Clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	seedLots(b, ctx, st, 20000, 500)
	q, _ := anomalies.New(anomalies.Options{Store: st, Clock: f.Clock})
	var agents []console.Agent
	for _, a := range testAgents {
		h, _ := bcrypt.GenerateFromPassword([]byte("secret-"+a.Name), bcrypt.MinCost)
		a.Hash = string(h)
		agents = append(agents, a)
	}
	c, err := console.New(console.Options{Store: st, Queue: q, Agents: agents, Clock: f.Clock, DashboardBudget: 30e9})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(c)
	b.Cleanup(hs.Close)
	e := &env{t: b, f: f, srv: hs, c: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	for _, who := range []string{"alice", "carol", "olga"} {
		b.Run(who, func(b *testing.B) {
			e.c.Jar, _ = cookiejar.New(nil)
			f.Clock.Advance(120e9)
			e.login(who)
			for b.Loop() {
				if code, _, _ := e.do("GET", "/console/dashboard", nil); code != http.StatusOK {
					b.Fatal(code)
				}
			}
		})
	}
}
