package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestDaemonListenIsLoopbackUnlessTold(t *testing.T) {
	c := newCLI(t, "")
	for _, addr := range []string{"0.0.0.0:9464", ":9464", "192.0.2.1:9464", "example.org:9464"} {
		r := c.run("daemon", "--listen", addr)
		if r.code != 2 || !strings.Contains(r.stderr, "not a loopback address") || !strings.Contains(r.stderr, "--listen-public") {
			t.Errorf("--listen %s: exit %d\n%s", addr, r.code, r.stderr)
		}
	}
	for addr, want := range map[string]bool{
		"127.0.0.1:9464": true, "[::1]:9464": true, "localhost:0": true, "127.3.4.5:1": true,
		"0.0.0.0:9464": false, ":9464": false, "[::]:9464": false, "10.0.0.1:80": false, "127.0.0.1": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v", addr, got)
		}
	}
}

// TestExampleWatch checks that the examples agree on the daemon's
// --listen address: the unit serves it, its start and the timer's check
// ask its /healthz, Prometheus scrapes it.
func TestExampleWatch(t *testing.T) {
	const addr = "127.0.0.1:9464"
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for name, wants := range map[string][]string{
		"ferry.service":             {"ExecStart=%h/.local/bin/ferry daemon --listen " + addr, "ExecStartPost=/usr/bin/curl ", "--fail ", "http://" + addr + "/healthz"},
		"ferry-healthcheck.service": {"Type=oneshot", "http://" + addr + "/healthz", "systemctl --user restart ferry.service"},
		"ferry-healthcheck.timer":   {"OnUnitActiveSec=1min", "[Install]"},
		"prometheus.yml":            {"job_name: ferry", `targets: ["` + addr + `"]`},
	} {
		text := read(name)
		for _, want := range wants {
			if !strings.Contains(text, want) {
				t.Errorf("%s lacks %q", name, want)
			}
		}
	}
	if !slices.ContainsFunc(newDaemonCommand(&globalOptions{}).Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), "listen") }) {
		t.Error("daemon has no --listen")
	}
}
