package main

import (
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/internal/fakemastodon"
)

// loginFake starts a fake Mastodon-API server with cfg, makes an account
// "me" there and logs c in to it; it returns the account's handle.
func loginFake(t *testing.T, c *ferryCLI, cfg fakemastodon.Config) (*fakemastodon.Server, string) {
	t.Helper()
	srv := fakemastodon.Start(cfg)
	t.Cleanup(srv.Close)
	_, token := srv.AddAccount("me")
	c.run("login", srv.URL, "--token-file", writeTokenFile(t, token)).mustSucceed(t)
	return srv, "me@" + srv.Host
}

// Issue 16 item 6: a server that publishes its limits only in
// /api/v1/instance (Hollo, snac2): accounts check shows its poll and media
// limits, not Mastodon's defaults.
func TestAccountsCheckShowsV1InstanceLimits(t *testing.T) {
	c := newCLI(t, "")
	_, handle := loginFake(t, c, fakemastodon.Config{Software: "hollo", Version: "0.10.0", PollMaxOptions: 8,
		ImageSizeLimit: 10_000_000, Quirks: fakemastodon.Quirks{MissingEndpoints: []string{"/api/v2/instance"}}})
	r := c.run("accounts", "check", handle)
	r.mustSucceed(t)
	for _, want := range []string{"8 poll options", "images up to 10.0 MB", "api/v1/instance"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("accounts check does not show %q:\n%s", want, r.stdout)
		}
	}
}

// migrate plan between servers that say they run Hollo and snac2: the
// guidance names Hollo's page and snac2's command line, never Mastodon's.
func TestMigratePlanOnFakeHolloAndSnac(t *testing.T) {
	c := newCLI(t, "")
	hollo, from := loginFake(t, c, fakemastodon.Config{Software: "hollo", Version: "0.10.0"})
	_, to := loginFake(t, c, fakemastodon.Config{Software: "snac", Version: "2.94"})
	r := c.run("migrate", "plan", "--from", from, "--to", to)
	out := r.stdout + r.stderr
	for _, want := range []string{hollo.URL + "/accounts/", "/migrate", "only snac's administrator", "Hollo documents no limit"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate plan does not say %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"/settings/migration", "30 days"} {
		if strings.Contains(out, bad) {
			t.Errorf("migrate plan says %q:\n%s", bad, out)
		}
	}
}
