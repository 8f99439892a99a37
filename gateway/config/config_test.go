package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultsWithoutFile(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "./oct-data" || c.HTTP.Listen != "127.0.0.1:8080" || c.Store.Kind != "sqlite" || !*c.Store.SQLite.GroupCommit {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestUnknownKeyNamesKeyAndLine(t *testing.T) {
	_, err := Parse("oct.yaml", []byte("data_dir: /tmp/x\nhttp:\n  listen: 127.0.0.1:9\n  lisen_timeout: 3s\n"))
	var uk *UnknownKeyError
	if !errors.As(err, &uk) || !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v", err)
	}
	if uk.Line != 4 || uk.Key != "lisen_timeout" || uk.Section != "http" {
		t.Fatalf("got %+v", uk)
	}
	_, err = Parse("oct.yaml", []byte("limts:\n  max_records: 3\n"))
	if !errors.As(err, &uk) || uk.Suggest != "limits" || uk.Line != 1 || !strings.Contains(err.Error(), `did you mean "limits"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestEmptyListenerSwitchesItOff(t *testing.T) {
	c, err := Parse("x", []byte("sftp:\n  listen: \"\"\n"))
	if err != nil || c.SFTP.Listen != "" {
		t.Fatalf("sftp.listen \"\" gave %q (%v)", c.SFTP.Listen, err)
	}
	if c, _ := Parse("x", []byte("log:\n  level: debug\n")); c.SFTP.Listen != "127.0.0.1:2222" {
		t.Fatalf("default sftp.listen lost: %q", c.SFTP.Listen)
	}
}

func TestValuesParse(t *testing.T) {
	c, err := Parse("x", []byte("limits:\n  max_file_bytes: 2MiB\nworkers:\n  lease_ttl: 45s\nstore:\n  sqlite:\n    group_commit: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.MaxFileBytes != 2<<20 || c.Workers.LeaseTTL != 45*time.Second || *c.Store.SQLite.GroupCommit {
		t.Fatalf("%+v", c)
	}
	if _, err := Parse("x", []byte("limits:\n  max_file_bytes: lots\n")); err == nil {
		t.Fatal("bad size accepted")
	}
	if _, err := Parse("x", []byte("store:\n  kind: redis\n")); err == nil || !strings.Contains(err.Error(), "store.redis.addr") {
		t.Fatalf("redis without addr: %v", err)
	}
	if _, err := Parse("x", []byte("store:\n  kind: mongo\n")); err == nil || !strings.Contains(err.Error(), "store.kind") {
		t.Fatalf("bad kind: %v", err)
	}
}
