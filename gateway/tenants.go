package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

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

// ErrBadKey is returned for a line that is not an SSH public key.
var ErrBadKey = errors.New("bad-ssh-key")

// AddSSHKeys adds the public keys of an authorized_keys text to a tenant's
// SFTP keys (keys already there are skipped) and returns how many were new.
func AddSSHKeys(ctx context.Context, st store.Store, tenant string, authorized []byte, actor string) (int, error) {
	t, err := st.Tenant(ctx, tenant)
	if err != nil {
		return 0, err
	}
	have := map[string]bool{}
	for _, k := range t.SSHKeys {
		if pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err == nil {
			have[string(pk.Marshal())] = true
		}
	}
	added := 0
	for line := 1; len(authorized) > 0; line++ {
		var one []byte
		one, authorized, _ = bytes.Cut(authorized, []byte("\n"))
		one = bytes.TrimSpace(one)
		if len(one) == 0 || one[0] == '#' {
			continue
		}
		pk, comment, _, _, err := ssh.ParseAuthorizedKey(one)
		if err != nil {
			return 0, fmt.Errorf("%w: line %d: %v", ErrBadKey, line, err)
		}
		if have[string(pk.Marshal())] {
			continue
		}
		have[string(pk.Marshal())] = true
		k := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
		if comment != "" {
			k += " " + comment
		}
		t.SSHKeys = append(t.SSHKeys, k)
		added++
	}
	if added == 0 {
		return 0, nil
	}
	return added, st.Commit(ctx, &store.Change{
		Actor:   actor,
		Tenants: []store.Tenant{t},
		Events:  []store.Event{{Subject: "tenant:" + tenant, Type: "ssh-keys-added", Actor: actor, Reason: fmt.Sprintf("%d key(s)", added)}},
	})
}
