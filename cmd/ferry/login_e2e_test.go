package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/state"
)

// End-to-end tests of login and accounts against real GoToSocial servers.

func writeTokenFile(t *testing.T, token string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// assertNoToken fails if token appears in any output of r.
func assertNoToken(t *testing.T, token string, rs ...result) {
	t.Helper()
	for _, r := range rs {
		if strings.Contains(r.stdout, token) || strings.Contains(r.stderr, token) {
			t.Fatalf("the token appears in ferry's output:\n%s\n%s", r.stdout, r.stderr)
		}
	}
}

func TestE2ELoginTokenFileAndCheck(t *testing.T) {
	testenv.Require(t)
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	ctx := t.Context()
	u, err := in.CreateUser(ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, env.CAFile)

	login := c.run("login", in.BaseURL, "--token-file", writeTokenFile(t, u.Token), "--name", "main").mustSucceed(t)
	if !strings.Contains(login.stdout, "logged in as "+u.Username+"@"+in.Host+" (gotosocial 0.19.2)") {
		t.Errorf("login output %q", login.stdout)
	}

	list := c.run("accounts").mustSucceed(t)
	if !strings.Contains(list.stdout, u.Username+"@"+in.Host) || !strings.Contains(list.stdout, "main") {
		t.Errorf("accounts output %q", list.stdout)
	}

	check := c.run("--json", "accounts", "check", "main").mustSucceed(t)
	var checks []platform.AccountCheck
	if err := json.Unmarshal([]byte(check.stdout), &checks); err != nil || len(checks) != 1 {
		t.Fatalf("accounts check --json: %v\n%s", err, check.stdout)
	}
	got := checks[0]
	if got.Software != "gotosocial" || got.Version != "0.19.2" || !got.TokenOK {
		t.Errorf("check = %+v", got)
	}
	// GoToSocial publishes its limits in /api/v2/instance (and counts URLs
	// at their length whatever characters_reserved_per_url says).
	if got.LimitsFrom != "api/v2/instance" || got.Limits.MaxChars != 5000 || got.Limits.MaxMedia != 6 ||
		len(got.Limits.MediaTypes) == 0 || got.Limits.CharsPerURL != 0 {
		t.Errorf("limits = %+v from %q", got.Limits, got.LimitsFrom)
	}
	human := c.run("accounts", "check").mustSucceed(t)
	for _, want := range []string{"gotosocial 0.19.2", "5000 characters per post", "token", "works"} {
		if !strings.Contains(human.stdout, want) {
			t.Errorf("accounts check output lacks %q:\n%s", want, human.stdout)
		}
	}

	fi, err := os.Stat(filepath.Join(c.dataDir, "ferry.db"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("database file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	assertNoToken(t, u.Token, login, list, check, human)

	// A bad token is refused at login and nothing is stored.
	bad := c.run("login", in.BaseURL, "--token", "not-a-token")
	if bad.code != exitAuth || !strings.Contains(bad.stderr, "does not accept this token") {
		t.Errorf("bad token: exit %d %q", bad.code, bad.stderr)
	}
}

var authURLPattern = regexp.MustCompile(`https://\S+/oauth/authorize\?\S+`)

// waitForAuthURL waits until ferry printed its authorization address.
func waitForAuthURL(t *testing.T, stderr *syncBuffer) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if m := authURLPattern.FindString(stderr.String()); m != "" {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("ferry printed no authorization address:\n%s", stderr.String())
	return ""
}

// The interactive flow with the loopback redirect: the test plays the
// person's browser, signing in at GoToSocial and following the redirect
// back to ferry's one-shot listener.
func TestE2ELoginInteractiveLoopback(t *testing.T) {
	testenv.Require(t)
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	u, err := in.CreateUser(ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, env.CAFile)

	stdin, stdinW := io.Pipe() // a terminal nobody types into
	defer stdinW.Close()
	stderr, wait := c.start(ctx, stdin, "login", in.BaseURL, "--no-browser", "--callback-port", "0")
	authURL := waitForAuthURL(t, stderr)
	if !strings.Contains(authURL, "code_challenge_method=S256") || !strings.Contains(authURL, "redirect_uri=http%3A%2F%2F127.0.0.1%3A") {
		t.Errorf("authorization address lacks PKCE or the loopback redirect: %s", authURL)
	}
	redirect, _, err := in.Authorize(ctx, authURL, u)
	if err != nil {
		t.Fatalf("browser side: %v", err)
	}
	if redirect.Hostname() != "127.0.0.1" {
		t.Fatalf("redirected to %s, want ferry's listener", redirect)
	}
	resp, err := http.Get(redirect.String())
	if err != nil {
		t.Fatalf("follow the redirect to ferry: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "ferry is now authorized") {
		t.Errorf("callback page: %s", page)
	}
	r := wait().mustSucceed(t)
	if !strings.Contains(r.stdout, "logged in as "+u.Username+"@"+in.Host) {
		t.Errorf("login output %q", r.stdout)
	}

	// The stored token works, is not the one the harness made, and came
	// with the app registration so it can be revoked.
	st, err := state.Open(ctx, filepath.Join(c.dataDir, "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	acct, err := st.Account(ctx, u.Username+"@"+in.Host)
	st.Close()
	if err != nil || acct.ClientID == "" || acct.Token == "" || acct.Token == u.Token {
		t.Fatalf("stored account %v (client %q): %v", acct, acct.ClientID, err)
	}
	assertNoToken(t, acct.Token, r)

	// A second data dir imports the same token by hand; removing the
	// account from the first revokes the token, and the second then says
	// what to do.
	other := newCLI(t, env.CAFile)
	other.run("login", in.BaseURL, "--token-file", writeTokenFile(t, acct.Token)).mustSucceed(t)
	rm := c.run("accounts", "remove", acct.Handle).mustSucceed(t)
	if !strings.Contains(rm.stdout, "token revoked") {
		t.Fatalf("remove output %q", rm.stdout)
	}
	if list := c.run("accounts").mustSucceed(t); strings.Contains(list.stdout, acct.Handle) {
		t.Errorf("removed account still listed: %q", list.stdout)
	}
	chk := other.run("accounts", "check", acct.Handle)
	if chk.code != exitAuth || !strings.Contains(chk.stderr, "ferry login "+in.BaseURL) {
		t.Fatalf("check with a revoked token: exit %d\n%s\n%s", chk.code, chk.stdout, chk.stderr)
	}
	assertNoToken(t, acct.Token, rm, chk)
}

// The out-of-band flow: the server shows a code, the person pastes it.
func TestE2ELoginInteractiveOOB(t *testing.T) {
	testenv.Require(t)
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	u, err := in.CreateUser(ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, env.CAFile)
	stdin, stdinW := io.Pipe()
	stderr, wait := c.start(ctx, stdin, "login", in.BaseURL, "--oob", "--no-browser", "--name", "oob")
	authURL := waitForAuthURL(t, stderr)
	if !strings.Contains(authURL, "redirect_uri=urn%3Aietf%3Awg%3Aoauth%3A2.0%3Aoob") {
		t.Errorf("authorization address does not use the OOB redirect: %s", authURL)
	}
	_, code, err := in.Authorize(ctx, authURL, u)
	if err != nil || code == "" {
		t.Fatalf("browser side: code %q, %v", code, err)
	}
	if _, err := io.WriteString(stdinW, code+"\n"); err != nil {
		t.Fatal(err)
	}
	r := wait().mustSucceed(t)
	if !strings.Contains(r.stdout, "logged in as "+u.Username+"@"+in.Host) {
		t.Errorf("login output %q", r.stdout)
	}
	// The app registration is cached: a second login registers no new app.
	st, err := state.Open(ctx, filepath.Join(c.dataDir, "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	app, err := st.App(ctx, in.BaseURL, "urn:ietf:wg:oauth:2.0:oob", "read write")
	if err != nil {
		t.Fatalf("no cached app: %v", err)
	}
	stderr2, wait2 := c.start(ctx, strings.NewReader(""), "login", in.BaseURL, "--oob", "--no-browser", "--wait", "2s")
	authURL2 := waitForAuthURL(t, stderr2)
	if !strings.Contains(authURL2, "client_id="+app.ClientID) {
		t.Errorf("second login did not reuse the cached app %s: %s", app.ClientID, authURL2)
	}
	if r := wait2(); r.code != exitError || !strings.Contains(r.stderr, "no authorization within 2s") {
		t.Errorf("unanswered login: exit %d %q", r.code, r.stderr)
	}
}
