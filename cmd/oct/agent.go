package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/octgw/oct/gateway/console"
)

var agentName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

func agentCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "agent", Short: "Support agents who may log in to the console"}
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add an agent; the password is read from standard input (one line) and stored bcrypt-hashed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !agentName.MatchString(args[0]) {
				return fmt.Errorf("agent name %q: lower-case letters, digits, . _ -", args[0])
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
			hash, err := console.HashPassword(pw)
			if err != nil {
				return err
			}
			path := cfg.Console.AgentsFile
			if path == "" {
				path = cfg.Path("", "agents")
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return err
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(f, "%s:%s\n", args[0], hash); err != nil {
				f.Close()
				return err
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "agent %s added to %s (restart oct serve to load it)\n", args[0], path)
			return f.Close()
		},
	}
	cmd.AddCommand(add)
	return cmd
}
