package bridgy

import (
	"errors"
	"strings"
	"testing"
)

func TestFediverseAddress(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"alice.bsky.social", "alice.bsky.social@bsky.brid.gy", ""},
		{"@Alice.BSKY.social", "alice.bsky.social@bsky.brid.gy", ""},
		{"snarfed.org", "snarfed.org@bsky.brid.gy", ""},
		{"bob.example.social.ap.brid.gy", "bob@example.social", ""},
		{"handle.invalid", "", "does not verify"},
		{"alice", "", "not a Bluesky handle"},
		{"bob@example.social", "", "not a Bluesky handle"},
		{"x.ap.brid.gy", "", "not a bridged fediverse handle"},
	} {
		got, err := FediverseAddress(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrUnmappable) {
				t.Errorf("FediverseAddress(%q) = %q, %v; want error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("FediverseAddress(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestBlueskyHandle(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"@bob@example.social", "bob.example.social.ap.brid.gy", ""},
		{"snarfed@indieweb.social", "snarfed.indieweb.social.ap.brid.gy", ""},
		{"Punk_Science@Me.DM", "punk-science.me.dm.ap.brid.gy", ""},
		{"a~b@example.social", "a-b.example.social.ap.brid.gy", ""},
		{"alice.bsky.social@bsky.brid.gy", "alice.bsky.social", ""},
		{"_dmh@mastodon.social", "", "begins or ends"},
		{"carb_@mastodon.social", "", "begins or ends"},
		{"bob@example.social:8443", "", "port"},
		{"bob", "", "not a fediverse address"},
		{"b.b@example.social", "", "character"},
		{"bob@-bad.example", "", "not a domain"},
	} {
		got, err := BlueskyHandle(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrUnmappable) {
				t.Errorf("BlueskyHandle(%q) = %q, %v; want error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("BlueskyHandle(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// Mapping a name across and back gives the name again (for names without
// underscores, which Bridgy Fed's mapping loses).
func TestRoundTrip(t *testing.T) {
	for _, addr := range []string{"bob@example.social", "alice9@a.b.c"} {
		h, err := BlueskyHandle(addr)
		if err != nil {
			t.Fatal(err)
		}
		back, err := FediverseAddress(h)
		if err != nil || back != addr {
			t.Errorf("%s → %s → %s, %v", addr, h, back, err)
		}
	}
	for _, h := range []string{"alice.bsky.social", "example.com"} {
		a, err := FediverseAddress(h)
		if err != nil {
			t.Fatal(err)
		}
		back, err := BlueskyHandle(a)
		if err != nil || back != h {
			t.Errorf("%s → %s → %s, %v", h, a, back, err)
		}
	}
	if !IsBridgedBluesky("@a.bsky.social@bsky.brid.gy") || IsBridgedBluesky("a@example.social") {
		t.Error("IsBridgedBluesky")
	}
	if !IsBridgedFediverse("bob.example.social.ap.brid.gy") || IsBridgedFediverse("alice.bsky.social") {
		t.Error("IsBridgedFediverse")
	}
}
