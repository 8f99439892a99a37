// Command cardemu runs an emulated OCT smart card on a vpcd slot, for the
// signing integration tests (it is built by the tests). It serves until
// SIGTERM or SIGINT.
//
//	cardemu -vpcd 127.0.0.1:35963 -ctl /tmp/w/card0.ctl -keys /tmp/w/card0 -pin 1234
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/octgw/oct/gateway/signing/internal/cardemu"
)

func main() {
	addr := flag.String("vpcd", "127.0.0.1:35963", "vpcd slot address")
	ctlPath := flag.String("ctl", "", "control socket path (required)")
	keys := flag.String("keys", "", "directory with key-<ref>.pem and cert-<ref>.pem (required)")
	pin := flag.String("pin", "1234", "card PIN")
	tries := flag.Int("tries", 3, "PIN tries")
	chunk := flag.Int("chunk", 128, "largest response data field before 61xx chaining")
	flag.Parse()
	if *ctlPath == "" || *keys == "" {
		flag.Usage()
		os.Exit(2)
	}
	ks, err := cardemu.LoadKeys(*keys)
	if err != nil {
		log.Fatal(err)
	}
	v := &cardemu.VPCD{Addr: *addr, Card: cardemu.New(cardemu.Config{PIN: []byte(*pin), MaxTries: *tries, Keys: ks, Chunk: *chunk})}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = v.Insert(ictx)
	cancel()
	if err != nil {
		log.Fatalf("insert: %v", err)
	}
	_ = os.Remove(*ctlPath)
	l, err := net.Listen("unix", *ctlPath)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("card inserted on %s, control on %s", *addr, *ctlPath)
	done := make(chan error, 1)
	go func() { done <- cardemu.ServeControl(l, v) }()
	<-ctx.Done()
	_ = l.Close()
	<-done
	v.Remove()
	log.Printf("card stopped")
}
