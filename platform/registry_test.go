package platform_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/platform/platforms"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/sources/memsource"
	"github.com/fedi-ferry/ferry/state"
)

func registry(t *testing.T) *platform.Registry {
	t.Helper()
	reg, err := platforms.Registry(platform.Env{UserAgent: "ferry-test"})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestPlatformOfAccount(t *testing.T) {
	reg := registry(t)
	if got := strings.Join(reg.Names(), ","); got != "bluesky,misskey,mastodon" {
		t.Fatalf("platforms %s", got)
	}
	// Accounts stored before platforms were recorded are Mastodon-API
	// accounts.
	for _, name := range []string{"", state.DefaultPlatform} {
		p, err := reg.Platform(name)
		if err != nil || p.Name() != "mastodon" {
			t.Fatalf("Platform(%q) = %v, %v", name, p, err)
		}
	}
	_, err := reg.Open(state.Account{Handle: "me@pds.example", Server: "https://pds.example", Platform: "atproto"})
	if err == nil || !strings.Contains(err.Error(), `platform "atproto"`) || !strings.Contains(err.Error(), "me@pds.example") {
		t.Fatalf("an account of an unknown platform: %v", err)
	}
	if _, err := platform.New(platform.Env{}, registryPlatform(reg, "mastodon"), registryPlatform(reg, "mastodon")); err == nil {
		t.Fatal("a repeated platform name was accepted")
	}
}

func registryPlatform(reg *platform.Registry, name string) platform.Platform {
	p, _ := reg.Platform(name)
	return p
}

// The registry builds every source type of the config file, and says what
// the bridge must know about each.
func TestSourceTypes(t *testing.T) {
	reg := registry(t)
	var ua string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua = r.Header.Get("User-Agent")
		fmt.Fprint(w, `<rss version="2.0"><channel><title>b</title><item><guid>1</guid><title>one</title></item></channel></rss>`)
	}))
	defer srv.Close()
	feed, err := reg.Source(platform.SourceSpec{Type: platform.SourceFeed, URL: srv.URL})
	if err != nil || feed.Kind != bridge.KindFeed || feed.Stream || feed.Account != "" {
		t.Fatalf("feed: %+v, %v", feed, err)
	}
	if p, err := feed.Source.Fetch(t.Context(), ""); err != nil || len(p.Posts) != 1 || ua != "ferry-test" {
		t.Fatalf("feed fetch: %+v, %v, user agent %q", p, err, ua)
	}
	if _, err := reg.Source(platform.SourceSpec{Type: platform.SourceFeed, URL: "ftp://x"}); err == nil {
		t.Error("a feed that is not http was accepted")
	}

	arc, err := reg.Source(platform.SourceSpec{Type: platform.SourceArchive, Path: "../sources/archive/testdata/mastodon-export"})
	if err != nil || arc.Kind != bridge.KindAccount || arc.Stream {
		t.Fatalf("archive: %+v, %v", arc, err)
	}
	if p, err := arc.Source.Fetch(t.Context(), ""); err != nil || len(p.Posts) != 5 {
		t.Fatalf("archive fetch: %d posts, %v", len(p.Posts), err)
	}

	sess, err := reg.Open(state.Account{Handle: "me@social.example", Server: "https://social.example", AccountID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, stream := range []bool{false, true} {
		acct, err := reg.Source(platform.SourceSpec{Type: platform.SourceAccount, Session: sess, Stream: stream})
		if err != nil || acct.Kind != bridge.KindAccount || acct.Account != "me@social.example" || acct.Stream != stream {
			t.Fatalf("account (stream %v): %+v, %v", stream, acct, err)
		}
	}
	if _, err := reg.Source(platform.SourceSpec{Type: platform.SourceAccount}); err == nil {
		t.Error("an account source without an account was accepted")
	}
	if _, err := reg.Source(platform.SourceSpec{Type: "gopher"}); err == nil || !strings.Contains(err.Error(), `"gopher"`) {
		t.Errorf("unknown source type: %v", err)
	}
}

// optsSession is a Session whose SourceOpener records the options it was
// asked for.
type optsSession struct {
	platform.Session
	got *platform.SourceOptions
}

func (s optsSession) Source(o platform.SourceOptions) sources.Source {
	*s.got = o
	return memsource.New()
}

// A route that mirrors boosts tells the account's platform, which may read
// them separately (Bluesky's reposts).
func TestSourceBoostsReachThePlatform(t *testing.T) {
	reg, err := platforms.Registry(platform.Env{})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := reg.Open(state.Account{Handle: "me@social.example", Server: "https://social.example", AccountID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, boosts := range []bool{false, true} {
		var got platform.SourceOptions
		if _, err := reg.Source(platform.SourceSpec{Type: platform.SourceAccount, Session: optsSession{sess, &got}, Boosts: boosts}); err != nil {
			t.Fatal(err)
		}
		if got.Boosts != boosts {
			t.Errorf("boosts %v reached the platform as %v", boosts, got.Boosts)
		}
	}
}
