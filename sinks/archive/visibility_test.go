package archive

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/fakemastodon"
)

// Issue 16 item 11: a server that leaves followers-only and direct posts
// out of the account's own statuses list (snac2): the archive summary says
// the archive lacks them; a server that lists them says nothing.
func TestRunWarnsWhenPrivatePostsAreHidden(t *testing.T) {
	for _, hidden := range []bool{false, true} {
		srv := fakemastodon.Start(fakemastodon.Config{Quirks: fakemastodon.Quirks{HiddenPrivatePosts: hidden}})
		t.Cleanup(srv.Close)
		_, token := srv.AddAccount("me")
		base, _ := url.Parse(srv.URL)
		hc, _ := fedi.NewHTTPClient(fedi.HTTPOptions{})
		c := fedi.NewClient(base, token, hc)
		ctx := context.Background()
		for _, vis := range []string{"public", "unlisted", "private", "direct", "public"} {
			if _, err := c.Do(ctx, "POST", "/api/v1/statuses", nil, map[string]string{"status": vis + " post", "visibility": vis}, nil); err != nil {
				t.Fatal(err)
			}
		}
		s, err := OpenStore(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		sum, err := Run(ctx, s, Options{Client: c, Cursors: memCursors{}, Account: "me@" + srv.Host})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		warned := strings.Contains(strings.Join(sum.Warnings, "\n"), "followers-only and direct posts out")
		if warned != hidden {
			t.Errorf("hidden=%v: warnings %q (posts %d)", hidden, sum.Warnings, sum.NewPosts)
		}
	}
}
