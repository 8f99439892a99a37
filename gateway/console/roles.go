package console

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/octgw/oct/gateway/store"
)

// Role is what a console user may do. Scope (which tenant's or which
// destinations' data) is separate: see Agent.
type Role string

// Roles.
const (
	// RoleAdmin sees and does everything, raw files included.
	RoleAdmin Role = "admin"
	// RoleSupport works the anomaly queue (actions, bulk) over every
	// tenant; raw files only with the raw permission.
	RoleSupport Role = "support"
	// RoleVendor reads its own tenant's files, lots and anomalies.
	RoleVendor Role = "vendor"
	// RoleInsurer reads the lots addressed to its destinations and their
	// anomalies.
	RoleInsurer Role = "insurer"
)

// Roles lists the roles in a stable order.
var Roles = []Role{RoleAdmin, RoleSupport, RoleVendor, RoleInsurer}

// PermRaw lets a user download raw files (they hold personal data).
const PermRaw = "raw"

// Permissions are the extra permissions an agents file may give.
var Permissions = []string{PermRaw}

// Agent is a user who may log in to the console.
type Agent struct {
	Name         string
	Hash         string   // bcrypt hash of the password
	Role         Role     // "" = support (agents files written before roles)
	Tenant       string   // vendor: its tenant
	Destinations []string // insurer: the destination ids addressed to it
	Perms        []string // extra permissions (PermRaw)
}

// ErrAgents reports a bad agents file or agent.
var ErrAgents = errors.New("console-agents")

func (a Agent) normal() Agent {
	if a.Role == "" {
		a.Role = RoleSupport
	}
	return a
}

// Check reports an agent whose role and scope do not fit together: a
// vendor needs a tenant, an insurer one or more destinations, admin and
// support neither (they see every tenant).
func (a Agent) Check() error {
	a = a.normal()
	switch a.Role {
	case RoleAdmin, RoleSupport:
		if a.Tenant != "" || len(a.Destinations) > 0 {
			return fmt.Errorf("%w: %s: role %s has no tenant or destination scope", ErrAgents, a.Name, a.Role)
		}
	case RoleVendor:
		if a.Tenant == "" || len(a.Destinations) > 0 {
			return fmt.Errorf("%w: %s: a vendor needs tenant= (and no destinations)", ErrAgents, a.Name)
		}
	case RoleInsurer:
		if a.Tenant != "" || len(a.Destinations) == 0 {
			return fmt.Errorf("%w: %s: an insurer needs destinations= (and no tenant)", ErrAgents, a.Name)
		}
	default:
		return fmt.Errorf("%w: %s: unknown role %q (admin, support, vendor, insurer)", ErrAgents, a.Name, a.Role)
	}
	for _, p := range a.Perms {
		if !slices.Contains(Permissions, p) {
			return fmt.Errorf("%w: %s: unknown permission %q (raw)", ErrAgents, a.Name, p)
		}
	}
	for _, s := range append([]string{a.Tenant}, a.Destinations...) {
		if strings.ContainsAny(s, " \t,:=") {
			return fmt.Errorf("%w: %s: bad scope %q", ErrAgents, a.Name, s)
		}
	}
	return nil
}

// Line is the agent as an agents file line.
func (a Agent) Line() string {
	a = a.normal()
	var b strings.Builder
	b.WriteString(a.Name + ":" + a.Hash + " role=" + string(a.Role))
	if a.Tenant != "" {
		b.WriteString(" tenant=" + a.Tenant)
	}
	if len(a.Destinations) > 0 {
		b.WriteString(" destinations=" + strings.Join(a.Destinations, ","))
	}
	if len(a.Perms) > 0 {
		b.WriteString(" perms=" + strings.Join(a.Perms, ","))
	}
	return b.String()
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}

// ParseAgent reads one agents file line: "name:bcrypt-hash" optionally
// followed by space-separated role=, tenant=, destinations= (comma list)
// and perms= (comma list). A line without role= is a support agent, so
// the files written before roles keep loading.
func ParseAgent(line string) (Agent, error) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return Agent{}, fmt.Errorf("%w: empty line", ErrAgents)
	}
	name, hash, ok := strings.Cut(fields[0], ":")
	if !ok || name == "" {
		return Agent{}, fmt.Errorf("%w: want name:bcrypt-hash", ErrAgents)
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return Agent{}, fmt.Errorf("%w: %s: not a bcrypt hash", ErrAgents, name)
	}
	a := Agent{Name: name, Hash: hash}
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok || seen[k] {
			return Agent{}, fmt.Errorf("%w: %s: %q: want key=value, each key once", ErrAgents, name, f)
		}
		seen[k] = true
		switch k {
		case "role":
			a.Role = Role(v)
		case "tenant":
			a.Tenant = v
		case "destinations":
			a.Destinations = splitList(v)
		case "perms":
			a.Perms = splitList(v)
		default:
			return Agent{}, fmt.Errorf("%w: %s: unknown key %q (role, tenant, destinations, perms)", ErrAgents, name, k)
		}
	}
	a = a.normal()
	return a, a.Check()
}

// LoadAgents reads an agents file: one agent a line (see ParseAgent),
// blank lines and lines starting with # ignored (make a hash with
// `oct agent add`, HashPassword or `htpasswd -nbBC 12 name password`).
func LoadAgents(path string) ([]Agent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Agent
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		a, err := ParseAgent(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if seen[a.Name] {
			return nil, fmt.Errorf("%w: %s:%d: %s: the name is already taken", ErrAgents, path, n, a.Name)
		}
		seen[a.Name] = true
		out = append(out, a)
	}
	return out, sc.Err()
}

// --- what a user may see and do ---

// user is the logged-in agent with its role and scope.
type user struct{ Agent }

func (u user) actor() string { return u.Name + "/" + string(u.Role) }

// Global: sees every tenant.
func (u user) Global() bool { return u.Role == RoleAdmin || u.Role == RoleSupport }

// CanAct: anomaly actions and bulk actions.
func (u user) CanAct() bool { return u.Global() }

// CanRaw: raw file downloads.
func (u user) CanRaw() bool { return u.Role == RoleAdmin || slices.Contains(u.Perms, PermRaw) }

func (u user) hasDest(d string) bool { return d != "" && slices.Contains(u.Destinations, d) }

// sees: a record (lot, anomaly) of this tenant and destination.
func (u user) sees(tenant, dest string) bool {
	switch u.Role {
	case RoleVendor:
		return tenant == u.Tenant
	case RoleInsurer:
		return u.hasDest(dest)
	}
	return u.Global()
}

func (u user) seesLot(l store.Lot) bool { return u.sees(l.Tenant, l.Destination) }

func (u user) seesAnomaly(a store.Anomaly) bool { return u.sees(a.Tenant, a.Destination) }

// seesFileOwn: the whole file (its metadata, raw bytes): global users and
// the vendor who sent it. An insurer sees a file only through its lots.
func (u user) seesFileOwn(f store.File) bool {
	if u.Role == RoleVendor {
		return f.Tenant == u.Tenant
	}
	return u.Global()
}

func (u user) filterLots(ls []store.Lot) []store.Lot {
	out := ls[:0:0]
	for _, l := range ls {
		if u.seesLot(l) {
			out = append(out, l)
		}
	}
	return out
}

// Scope describes the user's scope for the header.
func (u user) Scope() string {
	switch u.Role {
	case RoleVendor:
		return "tenant " + u.Tenant
	case RoleInsurer:
		return "destinations " + strings.Join(u.Destinations, ", ")
	}
	return "all tenants"
}
