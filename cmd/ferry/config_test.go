package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestExamplesLoad loads every examples/*.toml through the real config
// loader, so the examples never rot.
func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.toml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		cfg, err := loadConfig(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(cfg.Routes) == 0 {
			t.Errorf("%s: no routes", f)
		}
		for _, r := range cfg.Routes {
			if r.Line == 0 || len(r.SinkAcct) == 0 {
				t.Errorf("%s: route %s: line %d, sinks %v", f, r.Route.Name, r.Line, r.SinkAcct)
			}
		}
	}
}

// TestExampleUnit checks that the systemd unit runs the daemon with the
// signals it handles.
func TestExampleUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "ferry.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{"ExecStart=%h/.local/bin/ferry daemon", "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM", "[Install]"} {
		if !strings.Contains(unit, want) {
			t.Errorf("ferry.service lacks %q", want)
		}
	}
	// The daemon exposes the flags the unit and the docs rely on.
	g := &globalOptions{}
	cmd := newDaemonCommand(g)
	for _, f := range []string{"tick", "workers", "grace", "run-timeout"} {
		if !slices.ContainsFunc(cmd.Flags, func(fl cli.Flag) bool { return slices.Contains(fl.Names(), f) }) {
			t.Errorf("daemon has no --%s", f)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	const good = `
[[route]]
name = "blog"
source = { type = "feed", url = "https://blog.example/feed.xml" }

[[route.sink]]
account = "me@social.example"
`
	tests := []struct {
		name, src string
		want      string // substring of the error, including file:line
	}{
		{"unknown sink key", good + "colour = \"red\"\n", "ferry.toml:8: unknown key \"route.sink.colour\""},
		{"unknown source key", strings.Replace(good, `type = "feed",`, `type = "feed", ttl = 5,`, 1), "ferry.toml:4: unknown key \"route.source.ttl\""},
		{"unknown top-level", good + "\n[server]\nport = 1\n", "ferry.toml:9: unknown table or key \"server\""},
		{"backup without dirs", good + "\n[[backup]]\naccount = \"x\"\n", "ferry.toml:9: backup/x: say where to keep it"},
		{"backup unknown key", good + "\n[[backup]]\naccount = \"x\"\ngraph = \"/tmp/g\"\nkeep = 3\n", "ferry.toml:12: unknown key \"backup.keep\""},
		{"backup schedule", good + "\n[[backup]]\naccount = \"x\"\ngraph = \"/tmp/g\"\nschedule = \"daily\"\n", "backup/x: schedule"},
		{"bad first_run", strings.Replace(good, `name = "blog"`, "name = \"blog\"\nfirst_run = \"all\"", 1), "ferry.toml:2: route \"blog\": first_run \"all\""},
		{"bad schedule", strings.Replace(good, `name = "blog"`, "name = \"blog\"\nschedule = \"often\"", 1), "schedule: \"often\": neither an interval"},
		{"too frequent", strings.Replace(good, `name = "blog"`, "name = \"blog\"\nschedule = \"1s\"", 1), "at least 10s"},
		{"bad source type", strings.Replace(good, `"feed"`, `"gopher"`, 1), "source type \"gopher\""},
		{"no sink", good[:strings.Index(good, "[[route.sink]]")], "add at least one [[route.sink]]"},
		{"bad policy", good + "length = \"shorten\"\n", "route \"blog\", sink me@social.example: length = \"shorten\""},
		{"bad regex", good + "[route.filter]\ninclude = \"(\"\n", "filter: include"},
		{"bad template", strings.Replace(good, `name = "blog"`, "name = \"blog\"\ntemplate = \"{{.Titel}}\"", 1), "template"},
		{"syntax", good + "x = = 1\n", "ferry.toml:8:"},
		{"duplicate", good + good, "the name is used twice"},
		{"wrong type", strings.Replace(good, `name = "blog"`, "name = \"blog\"\nmax_per_hour = \"ten\"", 1), "ferry.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("ferry.toml", tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := parseConfig("ferry.toml", good); err != nil {
		t.Fatal(err)
	}
}
