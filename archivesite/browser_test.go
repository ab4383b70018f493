package archivesite_test

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/archivesite"
	"github.com/fedi-ferry/ferry/archivesite/sitetest"
	"github.com/fedi-ferry/ferry/internal/browser"
	"github.com/fedi-ferry/ferry/post"
	srcarchive "github.com/fedi-ferry/ferry/sources/archive"
)

// A Mastodon "Request your archive" export (testdata: a thread, a content
// warning, images with alt text, a poll, a boost, a deleted post, hostile
// HTML), imported as `ferry archive import` does, shown by headless
// Chromium from file://.
func TestBrowserMastodonExport(t *testing.T) {
	bin := browser.Require(t)
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "archive")
	if _, err := srcarchive.ImportIndexed(ctx, "testdata/mastodon-export", dir, srcarchive.Limits{}); err != nil {
		t.Fatal(err)
	}
	site := filepath.Join(t.TempDir(), "site")
	res, err := archivesite.Build(ctx, dir, site, archivesite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	text := func(p post.Post) string {
		s := strings.ToLower(p.Text + " " + p.Summary)
		for _, m := range p.Media {
			s += " " + strings.ToLower(m.Description)
		}
		return s
	}
	q := func(v ...string) string {
		u := url.Values{}
		for i := 0; i < len(v); i += 2 {
			u.Set(v[i], v[i+1])
		}
		return u.Encode()
	}
	sitetest.Check(t, bin, dir, site,
		sitetest.Search{Query: q("q", "ferries"), Want: func(p post.Post) bool { return strings.Contains(text(p), "ferries") }},
		sitetest.Search{Query: q("q", `"cross rivers"`), Want: func(p post.Post) bool { return strings.Contains(text(p), "cross rivers") }},
		// Accents and case are ignored; the content warning is searched.
		sitetest.Search{Query: q("q", "CAFE"), Want: func(p post.Post) bool { return strings.Contains(text(p), "café") }},
		sitetest.Search{Query: q("q", "spoilers"), Want: func(p post.Post) bool { return strings.Contains(text(p), "spoilers") }},
		// Alt text is searched, and filters narrow by date and media.
		sitetest.Search{Query: q("q", "ginger"), Want: func(p post.Post) bool { return strings.Contains(text(p), "ginger") }},
		sitetest.Search{Query: q("media", "1"), Want: func(p post.Post) bool { return len(p.Media) > 0 }},
		sitetest.Search{Query: q("from", "2023-03-01", "until", "2023-03-06"), Want: func(p post.Post) bool {
			return !p.CreatedAt.Before(mustDay("2023-03-01")) && p.CreatedAt.Before(mustDay("2023-03-07"))
		}},
	)
}
