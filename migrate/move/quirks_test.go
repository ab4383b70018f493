package move

import (
	"net/url"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/fakemastodon"
)

// fakeSide logs in to a fake Mastodon-API server that calls itself
// software, as migrate plan does.
func fakeSide(t *testing.T, software string) *Side {
	t.Helper()
	srv := fakemastodon.Start(fakemastodon.Config{Software: software, Version: "1.0"})
	t.Cleanup(srv.Close)
	_, token := srv.AddAccount("me")
	base, _ := url.Parse(srv.URL)
	hc, _ := fedi.NewHTTPClient(fedi.HTTPOptions{})
	c := fedi.NewClient(base, token, hc)
	me, err := fedi.VerifyCredentials(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	sw, err := fedi.NodeInfo(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return &Side{Handle: "me@" + srv.Host, Client: c, Software: sw, Account: me, URI: srv.URL + "/users/me"}
}

// migrate plan against servers that say they run Hollo and snac2: the
// right page, the administrator's command line, and no Mastodon rules.
func TestPreflightAgainstFakeServers(t *testing.T) {
	hollo, snac := fakeSide(t, "hollo"), fakeSide(t, "snac")
	plan, err := Preflight(t.Context(), hollo, snac, publicClient())
	if err != nil {
		t.Fatal(err)
	}
	var text []string
	for _, c := range plan.Checks {
		text = append(text, c.Name+": "+c.Detail)
	}
	all := strings.Join(text, "\n") + "\n" + plan.Warning
	for _, want := range []string{
		hollo.Client.Base().String() + "/accounts/" + hollo.Account.ID + "/migrate",
		"only snac's administrator can do it",
		"Hollo documents no limit on repeated Moves",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("plan does not say %q:\n%s", want, all)
		}
	}
	for _, bad := range []string{"/settings/migration", "/settings/aliases", "30 days"} {
		if strings.Contains(all, bad) {
			t.Errorf("plan says %q:\n%s", bad, all)
		}
	}

	plan, err = Preflight(t.Context(), snac, hollo, publicClient())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range plan.Checks {
		if c.Name == "move-api" {
			found = !c.OK && strings.Contains(c.Detail, "cannot see whether it was done")
		}
	}
	if !found {
		t.Errorf("snac2's Move is not reported as admin-only and unverifiable: %+v", plan.Checks)
	}
}
