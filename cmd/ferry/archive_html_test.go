package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/archivesite/sitetest"
	"github.com/fedi-ferry/ferry/internal/browser"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/post"
)

// `ferry archive html` on a Mastodon export after `ferry archive import`:
// one JSON document, the site's pages, usage errors. (The browser checks
// of the same export are in package archivesite.)
func TestArchiveHTMLCommand(t *testing.T) {
	c := newCLI(t, "")
	dir := filepath.Join(t.TempDir(), "archive")
	site := filepath.Join(t.TempDir(), "site")
	c.run("archive", "import", "../../archivesite/testdata/mastodon-export", "--into", dir).mustSucceed(t)
	out := c.run("--json", "archive", "html", dir, "--out", site).mustSucceed(t)
	doc, _ := oneJSON(t, "archive html", out.stdout).(map[string]any)
	for _, k := range []string{"posts", "months", "pages_written", "pages_skipped", "bytes", "first_page_bytes", "media_copied"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("archive html --json: no %q in\n%s", k, out.stdout)
		}
	}
	if doc["posts"] != float64(10) || doc["months"] != float64(3) {
		t.Errorf("archive html --json: %s", out.stdout)
	}
	for _, f := range []string{"index.html", "2023-01.html", "2023-02.html", "2023-03.html", "search-index.js", "search.js", "style.css", "media/avatar.png"} {
		if _, err := os.Stat(filepath.Join(site, f)); err != nil {
			t.Errorf("the site has no %s: %v", f, err)
		}
	}
	again := c.run("archive", "html", dir, "--out", site).mustSucceed(t)
	if !strings.Contains(again.stdout, "rendered 10 posts in 3 months") || !strings.Contains(again.stdout, "0 files written, 7 unchanged") {
		t.Errorf("second run:\n%s", again.stdout)
	}
	if r := c.run("archive", "html", dir); r.code != 2 || !strings.Contains(r.stderr, "--out") {
		t.Errorf("without --out: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := c.run("archive", "html", dir, "--out", dir); r.code == 0 {
		t.Error("a site written into the archive itself was accepted")
	}
}

type htmlSummary struct {
	Posts          int   `json:"posts"`
	Months         int   `json:"months"`
	PagesWritten   int   `json:"pages_written"`
	PagesSkipped   int   `json:"pages_skipped"`
	MediaCopied    int   `json:"media_copied"`
	Bytes          int64 `json:"bytes"`
	FirstPageBytes int64 `json:"first_page_bytes"`
}

// The archive of a live GoToSocial account, made by `ferry archive`, shown
// by headless Chromium from file://: every post, the content warning
// collapsed, alt text present, ?q= narrowing to the matching posts; a
// re-run after `ferry archive` rewrites only what changed.
func TestE2EArchiveHTML(t *testing.T) {
	testenv.Require(t)
	bin := browser.Require(t)
	env := testenv.Shared(t, 1)
	a := env.Instances[0]
	ctx := t.Context()
	alice, err := a.CreateUser(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	root := arcPost(t, ctx, alice, url.Values{"status": {"thread root about lighthouses"}, "visibility": {"public"}})
	parent := root
	for i := 1; i <= 2; i++ {
		parent = arcPost(t, ctx, alice, url.Values{"status": {"thread part " + string(rune('0'+i)) + " about lighthouses"}, "in_reply_to_id": {parent.ID}, "visibility": {"unlisted"}})
	}
	arcPost(t, ctx, alice, url.Values{"status": {"the butler did it"}, "spoiler_text": {"mystery spoilers"}, "sensitive": {"true"}})
	mid := arcUpload(t, ctx, alice, "a red diagonal line on white")
	withMedia := arcPost(t, ctx, alice, url.Values{"status": {"a picture of a line"}, "media_ids[]": {mid}})
	arcPost(t, ctx, alice, url.Values{"status": {"which one?"}, "poll[options][]": {"tea", "coffee"}, "poll[expires_in]": {"3600"}})
	arcPost(t, ctx, alice, url.Values{"status": {"followers only"}, "visibility": {"private"}})
	if err := alice.API(ctx, http.MethodPost, "/api/v1/statuses/"+withMedia.ID+"/reblog", nil, nil); err != nil {
		t.Fatal(err)
	}
	victim := arcPost(t, ctx, alice, url.Values{"status": {"soon deleted"}})
	arcSetPictures(t, ctx, alice)

	c := newCLI(t, env.CAFile)
	c.run("login", a.BaseURL, "--token-file", writeTokenFile(t, alice.Token), "--name", "old").mustSucceed(t)
	dir := filepath.Join(t.TempDir(), "archive")
	c.run("archive", "old", "--out", dir).mustSucceed(t)
	if err := alice.API(ctx, http.MethodDelete, "/api/v1/statuses/"+victim.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delete to take effect", func() bool {
		return alice.API(ctx, http.MethodGet, "/api/v1/statuses/"+victim.ID, nil, nil) != nil
	})
	c.run("archive", "old", "--out", dir, "--refresh").mustSucceed(t)

	site := filepath.Join(t.TempDir(), "site")
	out := c.run("--json", "archive", "html", dir, "--out", site).mustSucceed(t)
	assertNoToken(t, alice.Token, out)
	oneJSON(t, "archive html", out.stdout)
	var s1 htmlSummary
	if err := json.Unmarshal([]byte(out.stdout), &s1); err != nil {
		t.Fatalf("%v\n%s", err, out.stdout)
	}
	t.Logf("first build: %+v", s1)
	if s1.Posts != 9 || s1.PagesWritten != 5 || s1.MediaCopied < 2 || s1.FirstPageBytes == 0 {
		t.Errorf("first build %+v", s1)
	}

	lower := func(p post.Post) string {
		s := strings.ToLower(p.Text + " " + p.Summary)
		for _, m := range p.Media {
			s += " " + strings.ToLower(m.Description)
		}
		return s
	}
	sitetest.Check(t, bin, dir, site,
		sitetest.Search{Query: url.Values{"q": {"lighthouses"}}.Encode(), Want: func(p post.Post) bool { return strings.Contains(lower(p), "lighthouses") }},
		sitetest.Search{Query: url.Values{"q": {`"thread part"`}}.Encode(), Want: func(p post.Post) bool { return strings.Contains(lower(p), "thread part") }},
		sitetest.Search{Query: url.Values{"q": {"diagonal"}}.Encode(), Want: func(p post.Post) bool { return strings.Contains(lower(p), "diagonal") }},
		sitetest.Search{Query: url.Values{"q": {"mystery"}}.Encode(), Want: func(p post.Post) bool { return strings.Contains(lower(p), "mystery") }},
	)

	// A new post: the re-run rewrites its month page, the index and the
	// search index, and leaves the rest.
	arcPost(t, ctx, alice, url.Values{"status": {"one more post"}})
	c.run("archive", "old", "--out", dir).mustSucceed(t)
	out = c.run("--json", "archive", "html", dir, "--out", site).mustSucceed(t)
	var s2 htmlSummary
	json.Unmarshal([]byte(out.stdout), &s2)
	t.Logf("second build: %+v", s2)
	if s2.Posts != s1.Posts+1 || s2.PagesWritten < 1 || s2.PagesWritten > 4 || s2.PagesSkipped < 2 || s2.MediaCopied != 0 {
		t.Errorf("second build %+v, want one more post, at most 4 files rewritten and no media copied", s2)
	}
	human := c.run("archive", "html", dir, "--out", site).mustSucceed(t)
	if !strings.Contains(human.stdout, "0 files written") {
		t.Errorf("an unchanged archive rewrote files:\n%s", human.stdout)
	}
}
