package returns

import (
	"context"

	"github.com/octgw/oct/gateway/intake/mailbox"
)

// RelayFunc adapts a function to Relay.
type RelayFunc func(ctx context.Context, tenant, name string, data []byte) error

// Relay calls f.
func (f RelayFunc) Relay(ctx context.Context, tenant, name string, data []byte) error {
	return f(ctx, tenant, name, data)
}

// FoldersRelay relays into the tenants' SFTP returns/ folders: the file
// appears atomically, and a second delivery of the same name replaces it
// with the same bytes.
func FoldersRelay(f *mailbox.Folders) Relay {
	return RelayFunc(func(ctx context.Context, tenant, name string, data []byte) error {
		return f.Deliver(ctx, tenant, mailbox.Returns, name, data)
	})
}
