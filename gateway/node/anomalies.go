package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/octgw/oct/anomalies"
	"github.com/octgw/oct/gateway/console"
	"github.com/octgw/oct/gateway/intake/mailbox"
)

// folderNotifier tells a vendor about a handed-back anomaly or a rebuilt
// lot: a JSON notice in its SFTP outbox/ (the name is derived from the
// anomaly and the action, so a repeated notice overwrites itself).
type folderNotifier struct{ f *mailbox.Folders }

func (n folderNotifier) Notify(ctx context.Context, no anomalies.Notice) error {
	root, err := n.f.Open(no.Tenant)
	if err != nil {
		return err
	}
	defer root.Close()
	b, err := json.MarshalIndent(no, "", "  ")
	if err != nil {
		return err
	}
	name := fmt.Sprintf("notice-%s-%s.json", no.Anomaly, no.Action)
	return mailbox.WriteAtomic(ctx, root, mailbox.Outbox, name, bytes.NewReader(b))
}

// openSupport builds the work queue, the console and the chaser.
func (n *Node) openSupport() (map[string]http.Handler, error) {
	clock := anomalies.ClockFunc(time.Now)
	roster := &lateRoster{}
	q, err := anomalies.New(anomalies.Options{
		Store: n.Store, Blobs: n.Blobs, Clock: clock, Notifier: folderNotifier{n.Folders}, Logger: n.Logger,
		Rules: n.Config.Anomalies.Rules, Roster: roster,
	})
	if err != nil {
		return nil, err
	}
	var agents []console.Agent
	if p := n.Config.Console.AgentsFile; p != "" {
		if agents, err = console.LoadAgents(p); err != nil {
			return nil, fmt.Errorf("console.agents_file: %w", err)
		}
	} else if _, err := os.Stat(n.Config.Path("", "agents")); err == nil {
		if agents, err = console.LoadAgents(n.Config.Path("", "agents")); err != nil {
			return nil, fmt.Errorf("%s: %w", n.Config.Path("", "agents"), err)
		}
	}
	c, err := console.New(console.Options{Store: n.Store, Queue: q, Agents: agents, Logger: n.Logger, Clock: clock,
		SessionTTL: n.Config.Console.SessionTTL, Blobs: n.Blobs, Referentials: n.Referentials})
	if err != nil {
		return nil, err
	}
	roster.c = c
	n.Queue, n.Console = q, c
	chase := n.Config.Anomalies.Chase
	if chase.Default.ARL == 0 { // one ARL deadline unless the chase policy says otherwise
		chase.Default.ARL = n.Config.Delivery.ARLDeadline
	}
	n.chaser = anomalies.NewChaser(n.Store, chase, clock, n.Logger)
	return c.Routes(), nil
}

// lateRoster: the agents on duty are those logged in to the console, which
// is built after the queue.
type lateRoster struct{ c *console.Console }

func (r *lateRoster) OnDuty(ctx context.Context, team string, now time.Time) ([]string, error) {
	return r.c.OnDuty(ctx, team, now)
}

// runChaser chases missing returns and assigns new anomalies until ctx
// ends; wait blocks until it has stopped.
func (n *Node) runChaser(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	if n.chaser == nil {
		return wg.Wait
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(n.Config.Anomalies.Every)
		defer t.Stop()
		done := make(chan struct{})
		go func() { // the chaser's own loop
			defer close(done)
			_ = n.chaser.Run(ctx, n.Config.Anomalies.Every, nil)
		}()
		for {
			select {
			case <-ctx.Done():
				<-done
				return
			case <-t.C:
				if _, err := n.Queue.AutoAssignOpen(ctx, 100, "auto"); err != nil && ctx.Err() == nil {
					n.Logger.Debug("auto-assignment", "error", err)
				}
			}
		}
	}()
	return wg.Wait
}
