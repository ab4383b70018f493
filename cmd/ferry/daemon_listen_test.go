package main

import (
	"strings"
	"testing"
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
