package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/octgw/oct/gateway/returns"
)

// openReturns builds the return processor (always: the demo and the
// simulator feed it directly) and, when an IMAP mailbox is configured, the
// poller that feeds it.
func (n *Node) openReturns() error {
	hooks := map[string]*returns.Webhook{}
	for tenant, w := range n.Config.Returns.Webhooks {
		secret, err := os.ReadFile(w.SecretFile)
		if err != nil {
			return fmt.Errorf("returns.webhooks.%s.secret_file: %w", tenant, err)
		}
		hooks[tenant] = &returns.Webhook{URL: w.URL, Secret: []byte(strings.TrimSpace(string(secret))), MaxAttempts: w.MaxAttempts, Logger: n.Logger}
	}
	relay := returns.Multi{returns.FoldersRelay(n.Folders)}
	if len(hooks) > 0 {
		relay = append(relay, returns.TenantWebhooks(func(tenant string) *returns.Webhook { return hooks[tenant] }))
	}
	p, err := returns.NewProcessor(returns.Options{
		Journal: n.Store, Blobs: n.Blobs, Relay: relay, OnReturn: n.Returns.Notify, Logger: n.Logger,
	})
	if err != nil {
		return fmt.Errorf("returns: %w", err)
	}
	n.ReturnProcessor = p
	im := n.Config.Returns.IMAP
	if im.Addr == "" {
		return nil
	}
	pw, err := os.ReadFile(im.PasswordFile)
	if err != nil {
		return fmt.Errorf("returns.imap.password_file: %w", err)
	}
	cur, err := returns.NewFileCursor(filepath.Join(n.Config.DataDir, "returns-cursor"))
	if err != nil {
		return err
	}
	mode := map[string]string{"implicit": returns.TLSImplicit, "starttls": returns.TLSStartTLS, "none": returns.TLSNone}[im.TLS]
	n.poller, err = returns.NewPoller(returns.PollerOptions{
		Addr: im.Addr, TLS: mode, Username: im.Username, Password: strings.TrimSpace(string(pw)),
		Mailbox: im.Mailbox, Processed: im.Processed, Unparsable: im.Unparsable, Interval: im.Interval,
		Handler: p, Cursor: cur, Logger: n.Logger,
	})
	return err
}

// runPoller runs the IMAP poller (if any) until ctx ends; wait blocks until
// it has stopped.
func (n *Node) runPoller(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	if n.poller != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.poller.Run(ctx); err != nil {
				n.Logger.Error("returns poller stopped", "error", err)
			}
		}()
	}
	return wg.Wait
}
