package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

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

// TestConfigCheckEveryMistake runs `ferry config check` on a file with
// three mistakes: it prints all three, each on the line of its key, and
// exits 1.
func TestConfigCheckEveryMistake(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ferry.toml")
	src := `[[route]]
name = "blog"
source = { type = "feed", url = "https://blog.example/feed.xml" }
schedul = "15m"

[[route.sink]]
account = "me@social.example"
length = "shorten"

[[backup]]
account = "me@social.example"
graph = "/srv/lifeboat"
schedule = "1s"
`
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newCLI(t, "").run("--config", p, "config", "check")
	if r.code != exitError {
		t.Errorf("exit %d, want %d", r.code, exitError)
	}
	want := "ferry: " + p + `:4: unknown key "route.schedul"; did you mean "schedule"?` + "\n" +
		p + `:8: route "blog", sink me@social.example: length = "shorten": use split, truncate, cw` + "\n" +
		p + `:13: backup/me@social.example: schedule: "1s": at least 10s between runs` + "\n"
	if r.stderr != want || r.stdout != "" {
		t.Errorf("stdout %q\nstderr:\n%s\nwant:\n%s", r.stdout, r.stderr, want)
	}
}

// TestConfigCheckAccounts runs `ferry config check` on a valid file whose
// accounts ferry does not know: every place naming one is reported.
func TestConfigCheckAccounts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ferry.toml")
	src := `[[route]]
name = "main-to-backup"
source = { type = "account", account = "me@old.example" }
[[route.sink]]
account = "me@new.example"
`
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newCLI(t, "").run("--config", p, "config", "check")
	hint := ": run `ferry accounts` to list accounts or `ferry login SERVER` to add one\n"
	want := "ferry: " + p + `:3: route "main-to-backup": no account "me@old.example"` + hint +
		p + `:5: route "main-to-backup": no account "me@new.example"` + hint
	if r.code != exitError || r.stderr != want {
		t.Errorf("exit %d, stderr:\n%s\nwant:\n%s", r.code, r.stderr, want)
	}
}
