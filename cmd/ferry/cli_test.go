package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// These tests need no server.

func TestVersionAndHelp(t *testing.T) {
	c := newCLI(t, "")
	r := c.run("version").mustSucceed(t)
	if !strings.HasPrefix(r.stdout, "ferry dev (commit ") || !strings.Contains(r.stdout, "go1.") {
		t.Errorf("version output %q", r.stdout)
	}
	r = c.run("--json", "version").mustSucceed(t)
	if !strings.Contains(r.stdout, `"go": "go1.`) {
		t.Errorf("version --json output %q", r.stdout)
	}
	for _, cmd := range [][]string{{"--help"}, {"login", "--help"}, {"accounts", "--help"}, {"accounts", "check", "--help"}} {
		r := c.run(cmd...).mustSucceed(t)
		if !strings.Contains(r.stdout, "USAGE") {
			t.Errorf("%v: no usage in %q", cmd, r.stdout)
		}
	}
}

func TestCompletion(t *testing.T) {
	c := newCLI(t, "")
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := c.run("completion", sh).mustSucceed(t)
		if !strings.Contains(r.stdout, "ferry") {
			t.Errorf("%s completion: %q", sh, r.stdout)
		}
	}
	if r := c.run("completion", "tcsh"); r.code != exitUsage {
		t.Errorf("unknown shell: exit %d", r.code)
	}
	// The scripts ask ferry for candidates; check ferry answers. urfave/cli
	// reads os.Args to decide what to complete, so it must look like a
	// real invocation.
	args := c.args("--generate-bash-completion")
	old := os.Args
	os.Args = args
	defer func() { os.Args = old }()
	r := c.run("--generate-bash-completion").mustSucceed(t)
	for _, want := range []string{"login", "accounts", "version"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("completion candidates %q lack %s", r.stdout, want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	c := newCLI(t, "")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"login"}, "give exactly one SERVER"},
		{[]string{"login", "http://example.social"}, "only allowed for loopback"},
		{[]string{"login", "https://example.social/@me"}, "without a path"},
		{[]string{"login", "exa mple"}, "white space"},
		{[]string{"--log-level", "loud", "accounts"}, "--log-level"},
		{[]string{"--nope"}, "flag provided but not defined"},
		{[]string{"accounts", "remove"}, "exactly one ACCOUNT"},
		{[]string{"login", "a.example", "b.example"}, "give exactly one SERVER"},
	}
	for _, tc := range cases {
		r := c.run(tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, r.code, r.stderr, exitUsage, tc.want)
		}
	}
}

func TestAccountsEmptyAndUnknown(t *testing.T) {
	c := newCLI(t, "")
	r := c.run("accounts").mustSucceed(t)
	if !strings.Contains(r.stdout, "no accounts yet") {
		t.Errorf("accounts on empty store: %q", r.stdout)
	}
	r = c.run("accounts", "check", "nobody@nowhere.example")
	if r.code != exitError || !strings.Contains(r.stderr, "ferry login SERVER") {
		t.Errorf("unknown account: exit %d, %q", r.code, r.stderr)
	}
	fi, err := os.Stat(filepath.Join(c.dataDir, "ferry.db"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("database mode: %v %v", fi.Mode(), err)
	}
}

// A web site that is not a fediverse server must be refused at login with
// a clear message, before anything is stored.
func TestLoginNonFediverseServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html><body>my blog</body></html>"))
	}))
	defer srv.Close()
	c := newCLI(t, "")
	r := c.run("login", srv.URL, "--token", "abc")
	if r.code != exitError || !strings.Contains(r.stderr, "does not look like a fediverse server") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "abc") {
		t.Fatal("the token appears in the error")
	}
}

func TestTokenFileMustBePrivate(t *testing.T) {
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readTokenFile(f); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable token file: %v", err)
	}
	if err := os.Chmod(f, 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := readTokenFile(f); err != nil || tok != "secret" {
		t.Fatalf("readTokenFile = %q, %v", tok, err)
	}
}

func TestInterspersedFlags(t *testing.T) {
	app := newApp(&globalOptions{})
	got := strings.Join(interspersed(app, []string{"ferry", "--json", "login", "https://x.example", "--name", "main", "--oob", "--", "-odd"}), " ")
	want := "ferry --json login --name main --oob https://x.example -- -odd"
	if got != want {
		t.Fatalf("interspersed = %q, want %q", got, want)
	}
	got = strings.Join(interspersed(app, []string{"ferry", "--data-dir", "/d", "accounts", "check", "me@x", "--help"}), " ")
	if want := "ferry --data-dir /d accounts check --help me@x"; got != want {
		t.Fatalf("interspersed = %q, want %q", got, want)
	}
}
