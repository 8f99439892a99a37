package sftp

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// KeyRing is an in-memory Tenants built from each tenant's authorized_keys
// lines (store.Tenant.SSHKeys). Several keys per tenant allow rotation; a
// key may belong to one tenant only. Replace swaps the whole set at once,
// e.g. after a tenant was edited. Safe for concurrent use.
type KeyRing struct {
	mu   sync.RWMutex
	keys map[string]string // ssh wire form of the key -> tenant id
}

// NewKeyRing indexes keys (tenant id -> authorized_keys lines).
func NewKeyRing(keys map[string][]string) (*KeyRing, error) {
	k := &KeyRing{}
	if err := k.Replace(keys); err != nil {
		return nil, err
	}
	return k, nil
}

// Replace replaces every key of the ring. On error the ring is unchanged.
// Blank lines and comments are skipped; options in front of a key (as in
// authorized_keys) are ignored.
func (k *KeyRing) Replace(keys map[string][]string) error {
	m := make(map[string]string)
	for tenant, lines := range keys {
		for i, line := range lines {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
			if err != nil {
				return fmt.Errorf("sftp: tenant %s key %d: %w", tenant, i+1, err)
			}
			w := string(pub.Marshal())
			if other, ok := m[w]; ok && other != tenant {
				return fmt.Errorf("sftp: key %s is given to tenants %s and %s", ssh.FingerprintSHA256(pub), other, tenant)
			}
			m[w] = tenant
		}
	}
	k.mu.Lock()
	k.keys = m
	k.mu.Unlock()
	return nil
}

// TenantForKey implements Tenants.
func (k *KeyRing) TenantForKey(_ context.Context, key ssh.PublicKey) (string, error) {
	k.mu.RLock()
	t, ok := k.keys[string(key.Marshal())]
	k.mu.RUnlock()
	if !ok {
		return "", ErrUnknownKey
	}
	return t, nil
}
