package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/octgw/oct/gateway/console"
)

var agentName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

func agentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "agent", Short: "Users who may log in to the console"}
	var role, tenant string
	var dests, perms []string
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a console user; the password is read from standard input (one line) and stored bcrypt-hashed",
		Long: `Add a console user to the agents file.

Roles: admin (everything), support (queue and actions over every tenant),
vendor (read-only, one tenant: --tenant), insurer (read-only, the lots
addressed to its destinations: --destination, repeatable). Raw file
downloads need --perm raw (admin has it).`,
		Example: `  echo 'a long password' | oct agent add alice --role support
  echo 'a long password' | oct agent add acme-ops --role vendor --tenant acme
  echo 'a long password' | oct agent add cpam --role insurer --destination CPAM-751 --destination CPAM-130`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !agentName.MatchString(args[0]) {
				return fmt.Errorf("agent name %q: lower-case letters, digits, . _ -", args[0])
			}
			a := console.Agent{Name: args[0], Role: console.Role(role), Tenant: tenant, Destinations: dests, Perms: perms}
			if err := a.Check(); err != nil {
				return err
			}
			cfg, err := g.load()
			if err != nil {
				return err
			}
			line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			pw := strings.TrimRight(line, "\r\n")
			if len(pw) < 8 {
				return fmt.Errorf("password: at least 8 characters on standard input (%v)", err)
			}
			if a.Hash, err = console.HashPassword(pw); err != nil {
				return err
			}
			path := cfg.Console.AgentsFile
			if path == "" {
				path = cfg.Path("", "agents")
			}
			if existing, err := console.LoadAgents(path); err == nil {
				for _, x := range existing {
					if x.Name == a.Name {
						return fmt.Errorf("agent %s is already in %s", a.Name, path)
					}
				}
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return err
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintln(f, a.Line()); err != nil {
				f.Close()
				return err
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "agent %s (%s) added to %s (restart oct serve to load it)\n", args[0], a.Line()[strings.Index(a.Line(), " ")+1:], path)
			return f.Close()
		},
	}
	add.Flags().StringVar(&role, "role", string(console.RoleSupport), "admin, support, vendor or insurer")
	add.Flags().StringVar(&tenant, "tenant", "", "vendor: the tenant it sees")
	add.Flags().StringSliceVar(&dests, "destination", nil, "insurer: a destination id it sees (repeat or comma-separate)")
	add.Flags().StringSliceVar(&perms, "perm", nil, "extra permission: raw (download raw files)")
	cmd.AddCommand(add)
	return cmd
}
