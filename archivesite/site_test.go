package archivesite_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/archivesite"
	srcarchive "github.com/fedi-ferry/ferry/sources/archive"
)

func mustDay(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func importTestdata(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "archive")
	if _, err := srcarchive.Import(t.Context(), "testdata/mastodon-export", dir, srcarchive.Limits{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readAll(t *testing.T, site string) string {
	t.Helper()
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(site, "*.html"))
	for _, f := range files {
		c, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(c)
	}
	return b.String()
}

// Hostile HTML from the archive never reaches the pages as markup, and
// media names that lead out of the archive copy nothing.
func TestUntrustedContent(t *testing.T) {
	dir := importTestdata(t)
	// A media file that is a link out of the archive (an import refuses
	// links; a directory can still hold one) is not followed.
	secret := filepath.Join(t.TempDir(), "secret.png")
	if err := os.WriteFile(secret, []byte("not for the site"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "media_attachments/files/110/000/007/original/missing.png")); err != nil {
		t.Fatal(err)
	}
	site := filepath.Join(t.TempDir(), "site")
	res, err := archivesite.Build(t.Context(), dir, site, archivesite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	all := readAll(t, site)
	for _, bad := range []string{"<script>alert", "onerror", "onclick", "javascript:", "<iframe", "evil.example", "alert(4)"} {
		if strings.Contains(all, bad) {
			t.Errorf("the pages contain %q", bad)
		}
	}
	for _, good := range []string{"<strong>bold</strong>", "café", "<em>ferries</em>", `rel="nofollow noopener noreferrer ugc"`, "The <strong>Kestrel</strong>"} {
		if !strings.Contains(all, good) {
			t.Errorf("the pages lost %q", good)
		}
	}
	if _, err := os.Stat(filepath.Join(site, "media/media_attachments/files/110/000/007/original/missing.png")); err == nil {
		t.Error("a media file linking out of the archive was copied")
	}
	if _, err := os.Stat(filepath.Join(site, "actor.json")); err == nil {
		t.Error("a media path leading out of media_attachments copied actor.json into the site")
	}
	if res.MediaMissing != 1 || res.MediaCopied != 4 {
		t.Errorf("media copied %d, missing %d; want 4 (avatar, header, two pictures) and 1", res.MediaCopied, res.MediaMissing)
	}
}

// The sanitiser keeps the allow-list and nothing else.
func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		`<p>hi <a href="https://x.example/a?b=1&amp;c=2" class="u-url" onclick="x">x</a></p>`: `<p>hi <a href="https://x.example/a?b=1&amp;c=2" rel="nofollow noopener noreferrer ugc">x</a></p>`,
		`<p><a href="javascript:alert(1)">x</a></p>`:                                          `<p>x</p>`,
		`<p><a href="//evil.example/">x</a></p>`:                                              `<p>x</p>`,
		`<script>alert(1)</script><style>p{}</style>text`:                                     `text`,
		`<div><b>bold</b> &lt;not a tag&gt;</div>`:                                            `bold &lt;not a tag&gt;`,
		`<span class="invisible evil">https://</span><span class="ellipsis">x</span>`:         `<span class="invisible">https://</span><span class="ellipsis">x</span>`,
		`<p>unclosed <em>em`:  `<p>unclosed <em>em</em></p>`,
		`</p></em>stray<br/>`: `stray<br>`,
		`<img src=x onerror=alert(1)><svg><script>x</script></svg>after`: `after`,
		`<p title="x" style="color:red">"quotes" & amps</p>`:             `<p>&#34;quotes&#34; &amp; amps</p>`,
		`<a href="mailto:me@x.example">mail</a>`:                         `<a href="mailto:me@x.example" rel="nofollow noopener noreferrer ugc">mail</a>`,
	} {
		if got := string(archivesite.Sanitize(in)); got != want {
			t.Errorf("Sanitize(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}

// A re-run with nothing new writes nothing; a new post rewrites its month,
// the month before it (its "newer" link), the index and the search index.
func TestIncremental(t *testing.T) {
	ctx := t.Context()
	dir := importTestdata(t)
	site := filepath.Join(t.TempDir(), "site")
	first, err := archivesite.Build(ctx, dir, site, archivesite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if first.PagesWritten != first.Months+4 || first.PagesSkipped != 0 {
		t.Fatalf("first build %+v", first)
	}
	again, err := archivesite.Build(ctx, dir, site, archivesite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.PagesWritten != 0 || again.PagesSkipped != first.PagesWritten || again.MediaCopied != 0 {
		t.Fatalf("an unchanged archive rewrote files: %+v", again)
	}
	before, _ := os.Stat(filepath.Join(site, "2023-01.html"))

	appendPost(t, dir, "2023-05-01T08:00:00Z", "<p>a new month</p>")
	third, err := archivesite.Build(ctx, dir, site, archivesite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// 2023-05.html, 2023-03.html, index.html, search-index.js.
	if third.PagesWritten != 4 || third.Months != first.Months+1 || third.Posts != first.Posts+1 {
		t.Errorf("after one new post: %+v", third)
	}
	after, _ := os.Stat(filepath.Join(site, "2023-01.html"))
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("an unchanged month page was rewritten")
	}

	// A page edited by hand is put back.
	if err := os.WriteFile(filepath.Join(site, "2023-01.html"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fourth, err := archivesite.Build(ctx, dir, site, archivesite.Options{})
	if err != nil || fourth.PagesWritten != 1 {
		t.Errorf("a damaged page: %+v %v", fourth, err)
	}
	// Months gone from the archive lose their pages; nothing else goes.
	keepBefore(t, dir, "2023-03")
	fifth, err := archivesite.Build(ctx, dir, site, archivesite.Options{})
	if err != nil || fifth.PagesRemoved != 2 || fifth.Months != 2 {
		t.Errorf("after dropping two months: %+v %v", fifth, err)
	}
	for name, want := range map[string]bool{"2023-03.html": false, "2023-05.html": false, "2023-02.html": true, "media/avatar.png": true} {
		if _, err := os.Stat(filepath.Join(site, name)); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", name, err == nil, want)
		}
	}
	if _, err := archivesite.Build(ctx, dir, dir, archivesite.Options{}); err == nil {
		t.Error("a site written into the archive itself was accepted")
	}
}

// appendPost adds a public post to the outbox of the archive in dir.
func appendPost(t testing.TB, dir, published, content string) {
	t.Helper()
	file := filepath.Join(dir, "outbox.json")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	id := "https://old.example/users/me/statuses/new-" + published
	items := append(doc["orderedItems"].([]any), map[string]any{
		"id": id + "/activity", "type": "Create", "published": published,
		"to":     []string{"https://www.w3.org/ns/activitystreams#Public"},
		"object": map[string]any{"id": id, "type": "Note", "published": published, "content": content, "to": []string{"https://www.w3.org/ns/activitystreams#Public"}},
	})
	doc["orderedItems"] = items
	if b, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// keepBefore drops the outbox items published from month (YYYY-MM) on.
func keepBefore(t *testing.T, dir, month string) {
	t.Helper()
	file := filepath.Join(dir, "outbox.json")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var keep []any
	for _, it := range doc["orderedItems"].([]any) {
		if it.(map[string]any)["published"].(string) < month {
			keep = append(keep, it)
		}
	}
	doc["orderedItems"] = keep
	if b, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
