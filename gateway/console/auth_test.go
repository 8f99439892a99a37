package console

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadAgents(t *testing.T) {
	h, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "agents")
	os.WriteFile(good, []byte("# support\nalice:"+h+"\n\nbob:"+h+"\n"), 0o600)
	as, err := LoadAgents(good)
	if err != nil || len(as) != 2 || as[1].Name != "bob" {
		t.Fatalf("%+v %v", as, err)
	}
	for _, bad := range []string{"alice\n", "alice:plaintext\n", "alice:" + h + "\nalice:" + h + "\n"} {
		p := filepath.Join(dir, "bad")
		os.WriteFile(p, []byte(bad), 0o600)
		if _, err := LoadAgents(p); !errors.Is(err, ErrAgents) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
