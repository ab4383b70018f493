package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	sinkmasto "github.com/fedi-ferry/ferry/sinks/mastodon"
)

// End-to-end tests of the bridge: ferry mirror against real GoToSocial
// servers, with feeds served by the test on loopback.

// mirPNG is a small real PNG, so servers accept it as an image.
func mirPNG(t testing.TB, c color.Color) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for x := range 32 {
		for y := range 32 {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// mirLogin adds u to c's database and returns its handle.
func mirLogin(t *testing.T, c *ferryCLI, in *testenv.Instance, u *testenv.User) string {
	t.Helper()
	c.run("login", in.BaseURL, "--token-file", writeTokenFile(t, u.Token)).mustSucceed(t)
	return u.Username + "@" + in.Host
}

func mirUser(t *testing.T, in *testenv.Instance) *testenv.User {
	t.Helper()
	u, err := in.CreateUser(t.Context(), "", true)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// mirStatuses returns u's statuses, newest first.
func mirStatuses(t *testing.T, u *testenv.User) []fedi.Status {
	t.Helper()
	var out []fedi.Status
	if err := u.API(t.Context(), http.MethodGet, "/api/v1/accounts/"+u.ID+"/statuses", url.Values{"limit": {"40"}}, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func mirText(st fedi.Status) string {
	if st.Text != "" {
		return st.Text
	}
	return fedi.HTMLText(st.Content, nil)
}

// mirSinkFor returns ferry's own account sink for u: the tests use it to
// make origin posts with media, which the test harness cannot upload.
func mirSinkFor(t *testing.T, env *testenv.Env, in *testenv.Instance, u *testenv.User) *sinkmasto.Sink {
	t.Helper()
	roots, err := fedi.LoadRoots(env.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	base, err := fedi.ParseServer(in.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	hc, _ := fedi.NewHTTPClient(fedi.HTTPOptions{Roots: roots})
	return sinkmasto.New(sinkmasto.Options{Client: fedi.NewClient(base, u.Token, hc)})
}

func mirWriteConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ferry.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// mirFeed serves a mutable RSS document with an ETag, an Atom and a JSON
// Feed document, and an image, counting requests and 304s.
type mirFeed struct {
	mu       sync.Mutex
	rss      string
	requests atomic.Int64
	notMod   atomic.Int64
	srv      *httptest.Server
	png      []byte
}

func (f *mirFeed) set(rss string) { f.mu.Lock(); f.rss = rss; f.mu.Unlock() }

func newMirFeed(t *testing.T) *mirFeed {
	f := &mirFeed{png: mirPNG(t, color.RGBA{R: 200, A: 255})}
	atom, err := os.ReadFile("../../sources/feed/testdata/blog.atom")
	if err != nil {
		t.Fatal(err)
	}
	jsonFeed, err := os.ReadFile("../../sources/feed/testdata/blog.json")
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/img.png":
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(f.png)
		case "/feed.atom":
			// The fixture's enclosure points to a host that does not exist.
			doc := strings.ReplaceAll(string(atom), `<link rel="enclosure" type="audio/mpeg" href="https://atom.example/2.mp3"/>`, "")
			w.Header().Set("Content-Type", "application/atom+xml")
			_, _ = w.Write([]byte(doc))
		case "/feed.json":
			doc := strings.ReplaceAll(string(jsonFeed), "https://json.example/2.png", f.srv.URL+"/img.png")
			doc = strings.ReplaceAll(doc, `"attachments": [{"url": "https://json.example/2.mp4", "mime_type": "video/mp4"}]`, `"tags": ["x"]`)
			w.Header().Set("Content-Type", "application/feed+json")
			_, _ = w.Write([]byte(doc))
		case "/feed.xml":
			f.requests.Add(1)
			f.mu.Lock()
			doc := f.rss
			f.mu.Unlock()
			etag := fmt.Sprintf(`"%x"`, len(doc)*31+strings.Count(doc, "e"))
			w.Header().Set("ETag", etag)
			if r.Header.Get("If-None-Match") == etag {
				f.notMod.Add(1)
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
			_, _ = w.Write([]byte(doc))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

type mirRSSItem struct {
	GUID, Title, Link, HTML string
	At                      time.Time
	Image                   bool
}

// rssDoc renders a real-world-shaped RSS 2.0 document (newest first,
// content:encoded HTML in CDATA, categories, enclosures).
func (f *mirFeed) rssDoc(items ...mirRSSItem) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Loopback Blog</title><link>` + f.srv.URL + `/</link><description>test</description><language>en</language>
`)
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		fmt.Fprintf(&b, "<item><title>%s</title><link>%s</link><guid isPermaLink=\"false\">%s</guid><pubDate>%s</pubDate>"+
			"<category>test</category><content:encoded><![CDATA[%s]]></content:encoded>",
			it.Title, it.Link, it.GUID, it.At.UTC().Format(time.RFC1123Z), it.HTML)
		if it.Image {
			fmt.Fprintf(&b, `<enclosure url="%s/img.png" length="%d" type="image/png"/>`, f.srv.URL, len(f.png))
		}
		b.WriteString("</item>\n")
	}
	b.WriteString("</channel></rss>\n")
	return b.String()
}

func TestE2EMirrorFeedToAccount(t *testing.T) {
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	u := mirUser(t, in)
	c := newCLI(t, env.CAFile)
	handle := mirLogin(t, c, in, u)
	f := newMirFeed(t)
	t0 := time.Now().Add(-2 * time.Hour)
	old := []mirRSSItem{
		{GUID: "old-1", Title: "Old one", Link: f.srv.URL + "/old-1", HTML: "<p>old</p>", At: t0},
		{GUID: "old-2", Title: "Old two", Link: f.srv.URL + "/old-2", HTML: "<p>old</p>", At: t0.Add(time.Minute)},
	}
	f.set(f.rssDoc(old...))
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "rss"
source = { type = "feed", url = "%[1]s/feed.xml" }
template = "{{.Title}}\n\n{{.Content}}\n\n{{.Link}}"

[[route.sink]]
account = "%[2]s"
default_visibility = "unlisted"

[[route]]
name = "atom"
source = { type = "feed", url = "%[1]s/feed.atom" }
first_run = "last:1"

[[route.sink]]
account = "%[2]s"
default_visibility = "unlisted"

[[route]]
name = "json"
source = { type = "feed", url = "%[1]s/feed.json" }
first_run = "last:1"

[[route.sink]]
account = "%[2]s"
default_visibility = "unlisted"
`, f.srv.URL, handle))
	mirror := func() result {
		t.Helper()
		return c.run("--config", cfg, "mirror").mustSucceed(t)
	}
	c.run("--config", cfg, "config", "check").mustSucceed(t)

	// First run: the RSS route posts nothing, Atom and JSON their newest item.
	r := mirror()
	if !strings.Contains(r.stdout, "first run") {
		t.Errorf("first run not reported:\n%s", r.stdout)
	}
	sts := mirStatuses(t, u)
	if len(sts) != 2 {
		t.Fatalf("after the first run: %d posts, want 2 (last:1 of atom and json)", len(sts))
	}
	var gotJSON, gotAtom bool
	for _, st := range sts {
		txt := mirText(st)
		gotAtom = gotAtom || strings.HasPrefix(txt, "Deux & trois")
		if strings.HasPrefix(txt, "Ohne Titel, mit Link.") && len(st.MediaAttachments) == 1 {
			gotJSON = true
		}
	}
	if !gotAtom || !gotJSON {
		t.Errorf("atom %v json %v: %q / %q", gotAtom, gotJSON, mirText(sts[0]), mirText(sts[1]))
	}
	if n := f.requests.Load(); n != 1 {
		t.Errorf("%d feed requests after the first run", n)
	}

	// Unchanged: a 304, nothing posted.
	mirror()
	if f.notMod.Load() != 1 || len(mirStatuses(t, u)) != 2 {
		t.Fatalf("unchanged feed: %d 304s, %d posts", f.notMod.Load(), len(mirStatuses(t, u)))
	}

	// A new item with HTML and an image enclosure is posted once.
	fresh := mirRSSItem{GUID: "new-1", Title: "Fresh &amp; new", Link: f.srv.URL + "/new-1",
		HTML: `<p>Some <b>bold</b> text &amp; a <a href="https://example.org">link</a>.</p>`, At: time.Now().Add(-time.Minute), Image: true}
	f.set(f.rssDoc(append(old, fresh)...))
	mirror()
	mirror()
	sts = mirStatuses(t, u)
	if len(sts) != 3 {
		t.Fatalf("after a new item: %d posts, want 3", len(sts))
	}
	copyID := sts[0].ID
	if txt := mirText(sts[0]); !strings.Contains(txt, "Fresh & new") || !strings.Contains(txt, "Some bold text & a link.") ||
		!strings.Contains(txt, f.srv.URL+"/new-1") || len(sts[0].MediaAttachments) != 1 || sts[0].Visibility != "unlisted" {
		t.Errorf("copy: %q, %d media, %s", txt, len(sts[0].MediaAttachments), sts[0].Visibility)
	}
	if f.notMod.Load() < 2 {
		t.Errorf("the second pass after the new item was not a 304")
	}

	// An edited item edits the post.
	fresh.Title = "Fresh and corrected"
	f.set(f.rssDoc(append(old, fresh)...))
	mirror()
	sts = mirStatuses(t, u)
	if len(sts) != 3 || sts[0].ID != copyID || !strings.Contains(mirText(sts[0]), "Fresh and corrected") {
		t.Fatalf("after an edit: %d posts, newest %s %q", len(sts), sts[0].ID, mirText(sts[0]))
	}
	// A GUID change of the same item does not repost.
	fresh.GUID = "new-1-renamed"
	f.set(f.rssDoc(append(old, fresh)...))
	mirror()
	if n := len(mirStatuses(t, u)); n != 3 {
		t.Fatalf("after a GUID change: %d posts", n)
	}
	// --dry-run shows the post and changes nothing; the real run then posts it.
	later := mirRSSItem{GUID: "new-2", Title: "Dry run item", Link: f.srv.URL + "/new-2", HTML: "<p>x</p>", At: time.Now()}
	f.set(f.rssDoc(append(old, fresh, later)...))
	dry := c.run("--config", cfg, "mirror", "--dry-run", "--route", "rss").mustSucceed(t)
	if !strings.Contains(dry.stdout, "[dry run] rss: would publish on "+handle) || !strings.Contains(dry.stdout, "Dry run item") {
		t.Errorf("dry run output:\n%s", dry.stdout)
	}
	if n := len(mirStatuses(t, u)); n != 3 {
		t.Fatalf("the dry run posted: %d posts", n)
	}
	mirror()
	if n := len(mirStatuses(t, u)); n != 4 {
		t.Fatalf("after the dry run, a real run: %d posts", n)
	}
	st := c.run("--config", cfg, "--json", "status").mustSucceed(t)
	if !strings.Contains(st.stdout, `"route": "rss"`) || !strings.Contains(st.stdout, `"mirrored": 2`) ||
		!strings.Contains(st.stdout, `"account": "`+handle+`"`) {
		t.Errorf("status:\n%s", st.stdout)
	}
}

// mirPublish posts on an origin account through ferry's sink.
func mirPublish(t *testing.T, s *sinkmasto.Sink, p post.Post, replyTo string) string {
	t.Helper()
	ref, err := s.Publish(t.Context(), sinks.Draft{Post: p, ReplyTo: replyTo})
	if err != nil {
		t.Fatal(err)
	}
	return ref.ID
}

func TestE2EMirrorAccountToAccount(t *testing.T) {
	env := testenv.Shared(t, 2)
	a, b := mirUser(t, env.Instances[0]), mirUser(t, env.Instances[1])
	c := newCLI(t, env.CAFile)
	ha, hb := mirLogin(t, c, env.Instances[0], a), mirLogin(t, c, env.Instances[1], b)
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "a-to-b"
source = { type = "account", account = "%s" }

[[route.sink]]
account = "%s"
thread = "first-public"
length = "split"
max_chars = 500   # GoToSocial allows 5000; a lower limit, as a 500-character server would have
`, ha, hb))
	mirror := func() { t.Helper(); c.run("--config", cfg, "mirror").mustSucceed(t) }
	origin := mirSinkFor(t, env, env.Instances[0], a)
	mirPublish(t, origin, post.Post{Text: "before the first run", Visibility: post.Public}, "")
	mirror()
	if n := len(mirStatuses(t, b)); n != 0 {
		t.Fatalf("the first run posted %d", n)
	}

	img := filepath.Join(t.TempDir(), "red.png")
	if err := os.WriteFile(img, mirPNG(t, color.RGBA{R: 255, A: 255}), 0o600); err != nil {
		t.Fatal(err)
	}
	first := mirPublish(t, origin, post.Post{Text: "A thread about squares", Summary: "shapes", Sensitive: true,
		Visibility: post.Public, Language: "en",
		Media: []post.Media{{Path: img, Description: "a red square", FocusX: 0.5, FocusY: -0.25}}}, "")
	second := mirPublish(t, origin, post.Post{Text: "Second post of the thread", Summary: "shapes", Visibility: post.Public}, first)
	long := strings.TrimSpace(strings.Repeat("This sentence is exactly forty-six characters. ", 15)) // ~700
	mirPublish(t, origin, post.Post{Text: long, Visibility: post.Public}, "")
	mirPublish(t, origin, post.Post{Text: "followers only", Visibility: post.Private}, "")
	mirror()
	mirror()

	sts := mirStatuses(t, b)
	if len(sts) != 5 { // the thread (2), the long post split in two, the followers-only post
		for _, s := range sts {
			t.Logf("%s %s reply-to %s: %q", s.ID, s.Visibility, s.InReplyToID, mirText(s))
		}
		t.Fatalf("B has %d posts, want 5", len(sts))
	}
	byText := map[string]fedi.Status{}
	for _, s := range sts {
		byText[mirText(s)] = s
	}
	c1, c2 := byText["A thread about squares"], byText["Second post of the thread"]
	if c1.ID == "" || c2.ID == "" {
		t.Fatalf("thread copies missing: %v", byText)
	}
	if c1.SpoilerText != "shapes" || !c1.Sensitive || c1.Language != "en" || c1.Visibility != "public" {
		t.Errorf("first copy: cw %q sensitive %v lang %q vis %s", c1.SpoilerText, c1.Sensitive, c1.Language, c1.Visibility)
	}
	if len(c1.MediaAttachments) != 1 || c1.MediaAttachments[0].Description != "a red square" {
		t.Errorf("media: %+v", c1.MediaAttachments)
	} else if f := c1.MediaAttachments[0].Meta.Focus; f == nil || f.X != 0.5 || f.Y != -0.25 {
		t.Errorf("focus: %+v", f)
	}
	if c2.InReplyToID != c1.ID || c2.SpoilerText != "shapes" || c2.Visibility != "unlisted" {
		t.Errorf("second copy: reply-to %s (want %s), cw %q, vis %s", c2.InReplyToID, c1.ID, c2.SpoilerText, c2.Visibility)
	}
	var parts []fedi.Status
	for _, s := range sts {
		if strings.HasPrefix(mirText(s), "This sentence") {
			parts = append(parts, s)
		}
	}
	if len(parts) != 2 {
		t.Fatalf("the long post arrived as %d posts", len(parts))
	}
	p1, p2 := parts[1], parts[0] // newest first
	if p2.InReplyToID != p1.ID || p1.Visibility != "public" || p2.Visibility != "unlisted" {
		t.Errorf("split: reply-to %s (want %s), visibilities %s/%s", p2.InReplyToID, p1.ID, p1.Visibility, p2.Visibility)
	}
	for _, p := range parts {
		if n := len([]rune(mirText(p))); n > 500 {
			t.Errorf("a part of %d characters", n)
		}
	}
	if byText["followers only"].Visibility != "private" {
		t.Errorf("followers-only copy is %s", byText["followers only"].Visibility)
	}

	// An edit on A edits B's copy; a delete on A deletes it.
	if err := a.API(t.Context(), http.MethodPut, "/api/v1/statuses/"+second, url.Values{"status": {"Second post, edited"}, "spoiler_text": {"shapes"}}, nil); err != nil {
		t.Fatal(err)
	}
	mirror()
	var got fedi.Status
	if err := b.API(t.Context(), http.MethodGet, "/api/v1/statuses/"+c2.ID, nil, &got); err != nil {
		t.Fatal(err)
	}
	if mirText(got) != "Second post, edited" || got.InReplyToID != c1.ID {
		t.Errorf("after the edit: %q", mirText(got))
	}
	if err := a.API(t.Context(), http.MethodDelete, "/api/v1/statuses/"+second, nil, nil); err != nil {
		t.Fatal(err)
	}
	// GoToSocial completes deletes in the background, on A and then on B.
	waitFor(t, "the delete on A to take effect", func() bool {
		return a.API(t.Context(), http.MethodGet, "/api/v1/statuses/"+second, nil, nil) != nil
	})
	mirror()
	var err error
	waitFor(t, "B's copy to be deleted", func() bool {
		err = b.API(t.Context(), http.MethodGet, "/api/v1/statuses/"+c2.ID, nil, &got)
		return err != nil
	})
	if ae, ok := err.(*testenv.APIError); !ok || ae.StatusCode != http.StatusNotFound {
		t.Errorf("after the delete, B's copy: %v", err)
	}
	if n := len(mirStatuses(t, b)); n != 4 {
		t.Errorf("B has %d posts after the delete, want 4", n)
	}
}

func TestE2EMirrorTwoWayNoLoop(t *testing.T) {
	env := testenv.Shared(t, 2)
	a, b := mirUser(t, env.Instances[0]), mirUser(t, env.Instances[1])
	c := newCLI(t, env.CAFile)
	ha, hb := mirLogin(t, c, env.Instances[0], a), mirLogin(t, c, env.Instances[1], b)
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "a-to-b"
source = { type = "account", account = "%[1]s" }
[[route.sink]]
account = "%[2]s"

[[route]]
name = "b-to-a"
source = { type = "account", account = "%[2]s" }
[[route.sink]]
account = "%[1]s"
`, ha, hb))
	mirror := func() { t.Helper(); c.run("--config", cfg, "mirror").mustSucceed(t) }
	mirror()
	mirPublish(t, mirSinkFor(t, env, env.Instances[0], a), post.Post{Text: "hello from A", Visibility: post.Public}, "")
	mirPublish(t, mirSinkFor(t, env, env.Instances[1], b), post.Post{Text: "hello from B", Visibility: post.Public}, "")
	for range 3 {
		mirror()
	}
	for _, u := range []*testenv.User{a, b} {
		sts := mirStatuses(t, u)
		texts := map[string]int{}
		for _, s := range sts {
			texts[mirText(s)]++
		}
		if len(sts) != 2 || texts["hello from A"] != 1 || texts["hello from B"] != 1 {
			t.Errorf("%s has %v", u.Username, texts)
		}
	}
}

// TestE2EMirrorStatusBudget checks that `ferry status` shows the rate
// budget a rate-limiting server announced to the last mirror run.
func TestE2EMirrorStatusBudget(t *testing.T) {
	testenv.Require(t)
	env := testenv.StartT(t, 1, testenv.Options{RateLimitRequests: 1000})
	in := env.Instances[0]
	u := mirUser(t, in)
	c := newCLI(t, env.CAFile)
	handle := mirLogin(t, c, in, u)
	f := newMirFeed(t)
	f.set(f.rssDoc(mirRSSItem{GUID: "b1", Title: "Budget", Link: f.srv.URL + "/b1", HTML: "<p>b</p>", At: time.Now()}))
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "rss"
source = { type = "feed", url = "%s/feed.xml" }
first_run = "last:1"
[[route.sink]]
account = "%s"
`, f.srv.URL, handle))
	c.run("--config", cfg, "mirror").mustSucceed(t)
	st := c.run("--config", cfg, "status").mustSucceed(t)
	if !strings.Contains(st.stdout, handle) || !strings.Contains(st.stdout, "/1000") {
		t.Errorf("status lacks the budget:\n%s", st.stdout)
	}
}
