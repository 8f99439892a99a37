package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/octgw/oct/gateway/store"
)

var tenantName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ErrBadTenantName is returned for a name outside [a-z0-9._-]{1,63}.
var ErrBadTenantName = errors.New("bad-tenant-name")

// AddTenant creates a tenant and returns its API token. The token is shown
// once: only its hash is stored.
func AddTenant(ctx context.Context, st store.Store, name, actor string, created time.Time) (store.Tenant, string, error) {
	if !tenantName.MatchString(name) {
		return store.Tenant{}, "", fmt.Errorf("%w: %q (want lower-case letters, digits, . _ -, at most 63)", ErrBadTenantName, name)
	}
	if _, err := st.Tenant(ctx, name); err == nil {
		return store.Tenant{}, "", fmt.Errorf("%w: tenant %q exists", store.ErrDuplicate, name)
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.Tenant{}, "", err
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return store.Tenant{}, "", err
	}
	token := "oct_" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw[:])
	t := store.Tenant{ID: name, Name: name, TokenHash: TokenHash(token), Created: created.UTC()}
	err := st.Commit(ctx, &store.Change{
		Actor:   actor,
		Tenants: []store.Tenant{t},
		Events:  []store.Event{{Subject: "tenant:" + name, Type: "tenant-added", Actor: actor}},
	})
	if err != nil {
		return store.Tenant{}, "", err
	}
	return t, token, nil
}
