package testenv

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"
)

// ServeLoopback runs an in-process server's serve on a new loopback
// listener and returns its address and stop. stop (also run at cleanup,
// once) cancels serve's context, waits for it to return (20 s at most) and
// fails the test if serve failed or left() reports goroutines of the
// server still running.
func ServeLoopback(t testing.TB, serve func(context.Context, net.Listener) error, left func() int64) (addr string, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, l) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Serve did not return after shutdown")
		}
		if n := left(); n != 0 {
			t.Errorf("%d server goroutines still running after Serve returned", n)
		}
	})
	t.Cleanup(stop)
	return l.Addr().String(), stop
}
