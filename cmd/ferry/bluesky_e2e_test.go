package main

import (
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/api/bsky"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/post"
)

// End-to-end tests of Bluesky accounts: login, accounts check and
// mirroring a feed to a real local PDS.

// bskyAccount creates an account on the shared PDS and writes its password
// to a 0600 file.
func bskyAccount(t *testing.T, name string) (*testenv.PDSAccount, string) {
	t.Helper()
	env := testenv.SharedPDS(t, 1)
	u, err := env.PDSes[0].CreateAccount(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte(u.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return u, pw
}

// bskyHandle is the handle ferry stores the account under.
func bskyHandle(u *testenv.PDSAccount) string {
	return u.Handle + "@" + strings.TrimPrefix(u.PDS.URL, "http://")
}

func TestE2EBlueskyLoginAndCheck(t *testing.T) {
	u, pwFile := bskyAccount(t, "cli")
	c := newCLI(t, "")

	// A password file others can read is refused; a wrong password exits 4
	// without storing anything.
	open := filepath.Join(t.TempDir(), "open")
	if err := os.WriteFile(open, []byte(u.Password), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := c.run("login", u.PDS.URL, "--handle", u.Handle, "--password-file", open); r.code == 0 || !strings.Contains(r.stderr, "chmod 600") {
		t.Fatalf("world-readable password file: exit %d %q", r.code, r.stderr)
	}
	wrong := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrong, []byte("not-the-password-42"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := c.run("login", u.PDS.URL, "--handle", u.Handle, "--password-file", wrong)
	if bad.code != exitAuth || !strings.Contains(bad.stderr, "does not accept this handle and password") ||
		strings.Contains(bad.stderr, "not-the-password-42") {
		t.Fatalf("wrong password: exit %d %q", bad.code, bad.stderr)
	}
	if r := c.run("login", u.PDS.URL, "--password-file", pwFile); r.code == 0 || !strings.Contains(r.stderr, "--handle") {
		t.Fatalf("login to a PDS without --handle: exit %d %q", r.code, r.stderr)
	}
	// A handle that resolves nowhere: a clear message.
	if r := c.run("login", "nobody-here.test", "--password-file", pwFile); r.code != exitError || !strings.Contains(r.stderr, "does not resolve") {
		t.Fatalf("login with a handle that does not resolve: exit %d %q", r.code, r.stderr)
	}
	if r := c.run("accounts").mustSucceed(t); strings.Contains(r.stdout, u.Handle) {
		t.Fatalf("a failed login stored the account:\n%s", r.stdout)
	}

	login := c.run("login", u.PDS.URL, "--handle", u.Handle, "--password-file", pwFile, "--name", "sky").mustSucceed(t)
	if !strings.Contains(login.stdout, "logged in as "+bskyHandle(u)+" (atproto-pds ") {
		t.Errorf("login output %q", login.stdout)
	}

	check := c.run("--json", "accounts", "check", "sky").mustSucceed(t)
	var checks []platform.AccountCheck
	if err := json.Unmarshal([]byte(check.stdout), &checks); err != nil || len(checks) != 1 {
		t.Fatalf("accounts check --json: %v\n%s", err, check.stdout)
	}
	got := checks[0]
	if got.Handle != bskyHandle(u) || got.Platform != "bluesky" || got.AccountID != u.DID || got.Server != u.PDS.URL ||
		!got.TokenOK || got.Limits.MaxChars != 300 || !got.Limits.CountGraphemes || got.Limits.MaxMedia != 4 {
		t.Errorf("check = %+v", got)
	}
	human := c.run("accounts", "check", "sky").mustSucceed(t)
	for _, want := range []string{bskyHandle(u), "bluesky", u.DID, u.PDS.URL, "300 graphemes per post", "4 media", "works"} {
		if !strings.Contains(human.stdout, want) {
			t.Errorf("accounts check output lacks %q:\n%s", want, human.stdout)
		}
	}
	for _, r := range []result{login, check, human} {
		if strings.Contains(r.stdout+r.stderr, u.Password) || strings.Contains(r.stdout+r.stderr, "Jwt") {
			t.Fatalf("the password or the session tokens appear in the output:\n%s\n%s", r.stdout, r.stderr)
		}
	}

	// A refresh during a command rotates the tokens; ferry's registry saves
	// them in the database, and the next command works with them.
	g := &globalOptions{DataDir: c.dataDir, stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
		log: slog.New(slog.DiscardHandler)}
	st, err := g.openStore(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	before, err := st.Account(t.Context(), "sky")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := g.session(before)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.(interface{ Client() *atproto.Client }).Client().Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	st, err = g.openStore(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	after, err := st.Account(t.Context(), "sky")
	st.Close()
	if err != nil || after.Token == before.Token {
		t.Fatalf("the rotated session was not saved (%v)", err)
	}
	c.run("accounts", "check", "sky").mustSucceed(t)

	// The built binary, with the password in FERRY_PASSWORD, logs in again.
	cmd := exec.Command(ferryBinary(t), "--data-dir", c.dataDir, "login", u.PDS.URL, "--handle", u.Handle, "--name", "sky")
	cmd.Env = append(os.Environ(), "FERRY_PASSWORD="+u.Password)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "logged in as "+bskyHandle(u)) || strings.Contains(string(out), u.Password) {
		t.Fatalf("ferry login with FERRY_PASSWORD: %v\n%s", err, out)
	}
	// Without a password source and without a terminal: a clear usage error.
	cmd = exec.Command(ferryBinary(t), "--data-dir", c.dataDir, "login", u.PDS.URL, "--handle", u.Handle)
	cmd.Env = withoutEnv(os.Environ(), "FERRY_PASSWORD")
	cmd.Stdin = strings.NewReader("")
	out, err = cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitUsage || !strings.Contains(string(out), "--password-file") {
		t.Fatalf("login without a password: %v\n%s", err, out)
	}
}

func withoutEnv(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// bskyPost is a post record of the account and its URI.
type bskyPost struct {
	URI string
	*bsky.FeedPost
}

// bskyPosts returns the account's post records, oldest first.
func bskyPosts(t *testing.T, u *testenv.PDSAccount) []bskyPost {
	t.Helper()
	c, err := atproto.Login(t.Context(), u.PDS.URL, u.Handle, u.Password, atproto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := c.ListRecords(t.Context(), atproto.PostCollection, "", 100, true)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]bskyPost, 0, len(recs))
	for _, r := range recs {
		fp, ok := r.Value.(*bsky.FeedPost)
		if !ok {
			t.Fatalf("record %s is a %T", r.URI, r.Value)
		}
		out = append(out, bskyPost{r.URI, fp})
	}
	return out
}

// bskyThread puts the records of ps other than skip in thread order,
// following their reply refs from the one that answers nothing (record
// keys order them by the origin's time and a hash, not by part).
func bskyThread(t *testing.T, ps []bskyPost, skip string) []bskyPost {
	t.Helper()
	var root *bskyPost
	child := map[string]bskyPost{}
	for i, p := range ps {
		switch {
		case p.URI == skip:
		case p.Reply == nil:
			if root != nil {
				t.Fatalf("two thread starts: %s and %s", root.URI, p.URI)
			}
			root = &ps[i]
		default:
			child[p.Reply.Parent.Uri] = p
		}
	}
	if root == nil {
		t.Fatal("no thread start")
	}
	thread := []bskyPost{*root}
	for next, ok := child[root.URI]; ok; next, ok = child[next.URI] {
		thread = append(thread, next)
	}
	return thread
}

// facetSpans returns the text each facet of p covers, with its kind.
func facetSpans(t *testing.T, p bskyPost) []string {
	t.Helper()
	var out []string
	for _, f := range p.Facets {
		if f.Index.ByteEnd > int64(len(p.Text)) || f.Index.ByteStart >= f.Index.ByteEnd {
			t.Fatalf("facet %d–%d outside %q", f.Index.ByteStart, f.Index.ByteEnd, p.Text)
		}
		span := p.Text[f.Index.ByteStart:f.Index.ByteEnd]
		switch ft := f.Features[0]; {
		case ft.RichtextFacet_Link != nil:
			if ft.RichtextFacet_Link.Uri != span {
				t.Errorf("link facet over %q points to %q", span, ft.RichtextFacet_Link.Uri)
			}
			out = append(out, "link "+span)
		case ft.RichtextFacet_Tag != nil:
			if "#"+ft.RichtextFacet_Tag.Tag != span {
				t.Errorf("tag facet over %q is %q", span, ft.RichtextFacet_Tag.Tag)
			}
			out = append(out, "tag "+span)
		default:
			out = append(out, "other "+span)
		}
	}
	return out
}

func TestE2EMirrorFeedToBluesky(t *testing.T) {
	u, pwFile := bskyAccount(t, "mirror")
	c := newCLI(t, "")
	c.run("login", u.PDS.URL, "--handle", u.Handle, "--password-file", pwFile, "--name", "sky").mustSucceed(t)
	f := newMirFeed(t)
	t0 := time.Now().Add(-2 * time.Hour)
	old := []mirRSSItem{{GUID: "old-1", Title: "Old", Link: f.srv.URL + "/old-1", HTML: "<p>old</p>", At: t0}}
	f.set(f.rssDoc(old...))
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "blog-to-bluesky"
source = { type = "feed", url = "%s/feed.xml" }
template = "{{.Content}}\n\n{{.Link}}"

[[route.sink]]
account = "sky"
length = "split"
`, f.srv.URL))
	c.run("--config", cfg, "config", "check").mustSucceed(t)
	mirror := func() { t.Helper(); c.run("--config", cfg, "mirror").mustSucceed(t) }

	// First run: nothing is posted.
	mirror()
	if ps := bskyPosts(t, u); len(ps) != 0 {
		t.Fatalf("first run posted %d records", len(ps))
	}

	// A new item is posted once, its link a facet, its image attached.
	fresh := mirRSSItem{GUID: "new-1", Title: "New", Link: f.srv.URL + "/new-1",
		HTML: `<p>Fresh post with an image.</p>`, At: time.Now().Add(-time.Minute), Image: true}
	f.set(f.rssDoc(append(old, fresh)...))
	mirror()
	mirror()
	ps := bskyPosts(t, u)
	freshURI := ""
	if len(ps) == 1 {
		freshURI = ps[0].URI
	}
	if len(ps) != 1 {
		t.Fatalf("after a new item: %d records, want 1", len(ps))
	}
	if spans := facetSpans(t, ps[0]); !strings.Contains(ps[0].Text, "Fresh post with an image.") ||
		strings.Join(spans, "|") != "link "+fresh.Link {
		t.Errorf("copy %q with facets %q", ps[0].Text, spans)
	}
	if e := ps[0].Embed; e == nil || e.EmbedImages == nil || len(e.EmbedImages.Images) != 1 || e.EmbedImages.Images[0].AspectRatio == nil {
		t.Errorf("copy embed = %+v", ps[0].Embed)
	}

	// A 1000-character item with emoji, CJK, hashtags and links becomes a
	// self-thread of parts within 300 graphemes, facets on the right bytes.
	var b strings.Builder
	for i := 0; b.Len() < 2400; i++ {
		fmt.Fprintf(&b, "Teil %d: 日本語の文章です 👩‍👩‍👧 🇯🇵 #タグ%d see https://example.org/p/%d and more words here. ", i, i, i)
	}
	long := strings.TrimSpace(b.String())
	if n := len([]rune(long)); n < 1000 {
		t.Fatalf("the long item has %d characters", n)
	}
	item := mirRSSItem{GUID: "long-1", Title: "Long", Link: f.srv.URL + "/long-1", HTML: "<p>" + long + "</p>", At: time.Now()}
	f.set(f.rssDoc(append(old, fresh, item)...))
	mirror()
	mirror()
	ps = bskyPosts(t, u)
	thread := bskyThread(t, ps, freshURI)
	if len(thread) < 4 {
		t.Fatalf("the long item became a thread of %d of %d records, want at least 4", len(thread), len(ps)-1)
	}
	t.Logf("the long item became %d parts; the second: %q", len(thread), thread[1].Text)
	var joined strings.Builder
	links, tags := 0, 0
	for i, p := range thread {
		if n := atproto.Graphemes(p.Text); n > 300 {
			t.Errorf("part %d has %d graphemes", i, n)
		}
		for _, s := range facetSpans(t, p) {
			switch {
			case strings.HasPrefix(s, "link https://example.org/p/"), s == "link "+item.Link:
				links++
			case strings.HasPrefix(s, "tag #タグ"):
				tags++
			default:
				t.Errorf("part %d: unexpected facet %q", i, s)
			}
		}
		if i == 0 {
			if p.Reply != nil {
				t.Errorf("the first part is a reply")
			}
		} else if p.Reply == nil || p.Reply.Root.Uri != thread[0].URI || p.Reply.Parent.Uri != thread[i-1].URI {
			t.Errorf("part %d reply = %+v, want root %s and parent %s", i, p.Reply, thread[0].URI, thread[i-1].URI)
		}
		joined.WriteString(p.Text + " ")
	}
	if links < strings.Count(long, "https://example.org/p/") || tags == 0 {
		t.Errorf("%d link and %d tag facets for %d links", links, tags, strings.Count(long, "https://"))
	}
	if !strings.Contains(joined.String(), "👩‍👩‍👧") || !strings.Contains(joined.String(), "日本語の文章です") {
		t.Error("the thread lost the emoji or the CJK text")
	}
	if n := len(bskyPosts(t, u)); n != len(ps) {
		t.Fatalf("%d records after running again, want %d", n, len(ps))
	}

	// An item without images gets a card of its link's page.
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<html><head><meta property="og:title" content="Card title"><meta property="og:description" content="Card text"></head></html>`)
	}))
	defer site.Close()
	carded := mirRSSItem{GUID: "card-1", Title: "Card", Link: site.URL + "/card-1", HTML: "<p>With a card.</p>", At: time.Now()}
	f.set(f.rssDoc(append(old, fresh, item, carded)...))
	mirror()
	after := bskyPosts(t, u)
	if len(after) != len(ps)+1 {
		t.Fatalf("%d records after the card item, want %d", len(after), len(ps)+1)
	}
	found := false
	for _, p := range after {
		if e := p.Embed; strings.Contains(p.Text, "With a card.") && e != nil && e.EmbedExternal != nil {
			found = e.EmbedExternal.External.Uri == carded.Link && e.EmbedExternal.External.Title == "Card title"
		}
	}
	if !found {
		t.Error("the item without images has no link card")
	}
}

// A GoToSocial account mirrored to Bluesky: a post with two images keeps
// both alt texts, a self-thread of three arrives as a thread, a
// followers-only post stays behind, and a delete at the origin deletes the
// copy.
func TestE2EMirrorGoToSocialToBluesky(t *testing.T) {
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	a := mirUser(t, in)
	c := newCLI(t, env.CAFile)
	ha := mirLogin(t, c, in, a)
	u, pwFile := bskyAccount(t, "fromgts")
	c.run("login", u.PDS.URL, "--handle", u.Handle, "--password-file", pwFile, "--name", "sky").mustSucceed(t)
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "gts-to-bluesky"
source = { type = "account", account = "%s" }

[route.filter]
visibility = ["public", "unlisted"]

[[route.sink]]
account = "sky"
length = "split"
`, ha))
	mirror := func() { t.Helper(); c.run("--config", cfg, "mirror").mustSucceed(t) }
	origin := mirSinkFor(t, env, in, a)
	mirPublish(t, origin, post.Post{Text: "before the first run", Visibility: post.Public}, "")
	mirror()
	if n := len(bskyPosts(t, u)); n != 0 {
		t.Fatalf("the first run posted %d", n)
	}

	var imgs []string
	for i, col := range []color.RGBA{{R: 255, A: 255}, {B: 255, A: 255}} {
		p := filepath.Join(t.TempDir(), fmt.Sprintf("img%d.png", i))
		if err := os.WriteFile(p, mirPNG(t, col), 0o600); err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, p)
	}
	mirPublish(t, origin, post.Post{Text: "Two squares", Visibility: post.Public, Language: "en",
		Media: []post.Media{{Path: imgs[0], Description: "a red square"}, {Path: imgs[1], Description: "a blue square"}}}, "")
	t1 := mirPublish(t, origin, post.Post{Text: "Thread one", Visibility: post.Public}, "")
	t2 := mirPublish(t, origin, post.Post{Text: "Thread two", Visibility: post.Public}, t1)
	t3 := mirPublish(t, origin, post.Post{Text: "Thread three", Visibility: post.Public}, t2)
	mirPublish(t, origin, post.Post{Text: "followers only", Visibility: post.Private}, "")
	mirror()
	mirror()

	ps := bskyPosts(t, u)
	byText := map[string]bskyPost{}
	for _, p := range ps {
		byText[p.Text] = p
	}
	if len(ps) != 4 {
		t.Fatalf("Bluesky has %d posts, want 4: %v", len(ps), byText)
	}
	sq := byText["Two squares"]
	if sq.FeedPost == nil || sq.Embed == nil || sq.Embed.EmbedImages == nil || len(sq.Embed.EmbedImages.Images) != 2 ||
		sq.Embed.EmbedImages.Images[0].Alt != "a red square" || sq.Embed.EmbedImages.Images[1].Alt != "a blue square" {
		t.Fatalf("the post with two images: %+v", sq)
	}
	c1, c2, c3 := byText["Thread one"], byText["Thread two"], byText["Thread three"]
	if c1.FeedPost == nil || c2.FeedPost == nil || c3.FeedPost == nil {
		t.Fatalf("thread copies missing: %v", byText)
	}
	if c1.Reply != nil || c2.Reply == nil || c2.Reply.Parent.Uri != c1.URI || c2.Reply.Root.Uri != c1.URI ||
		c3.Reply == nil || c3.Reply.Parent.Uri != c2.URI || c3.Reply.Root.Uri != c1.URI {
		t.Errorf("the thread: %+v / %+v / %+v", c1.Reply, c2.Reply, c3.Reply)
	}

	if err := a.API(t.Context(), http.MethodDelete, "/api/v1/statuses/"+t3, nil, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delete on GoToSocial to take effect", func() bool {
		return a.API(t.Context(), http.MethodGet, "/api/v1/statuses/"+t3, nil, nil) != nil
	})
	mirror()
	for _, p := range bskyPosts(t, u) {
		if p.URI == c3.URI {
			t.Fatal("the copy of the deleted post is still there")
		}
	}
	if n := len(bskyPosts(t, u)); n != 3 {
		t.Errorf("%d posts after the delete, want 3", n)
	}
}
