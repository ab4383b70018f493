package main

import (
	"fmt"
	"image/color"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/post"
)

// End-to-end tests of Bluesky accounts as route sources: Bluesky →
// GoToSocial with `ferry mirror`, and a two-way GoToSocial ↔ Bluesky pair
// of routes streamed by `ferry daemon`.

// bskyOrigin writes posts on a Bluesky account beside ferry, with record
// keys from a TID clock as Bluesky apps make them.
type bskyOrigin struct {
	c     *atproto.Client
	mu    sync.Mutex
	clock *syntax.TIDClock
}

func newBskyOrigin(t *testing.T, u *testenv.PDSAccount) *bskyOrigin {
	t.Helper()
	c, err := atproto.Login(t.Context(), u.PDS.URL, u.Handle, u.Password, atproto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &bskyOrigin{c: c, clock: syntax.NewTIDClock(3)}
}

// post writes a post with facets for its links and mentions and, when img
// is not nil, one image with alt text; it returns the post's at:// URI.
func (o *bskyOrigin) post(t *testing.T, text string, img []byte, alt string) string {
	t.Helper()
	ctx := t.Context()
	facets, err := atproto.Facets(ctx, text, o.c.ResolveHandle)
	if err != nil {
		t.Fatal(err)
	}
	rec := &bsky.FeedPost{Text: text, Facets: facets, CreatedAt: syntax.DatetimeNow().String()}
	if img != nil {
		blob, err := o.c.UploadBlob(ctx, img, "image/png")
		if err != nil {
			t.Fatal(err)
		}
		rec.Embed = &bsky.FeedPost_Embed{EmbedImages: &bsky.EmbedImages{Images: []*bsky.EmbedImages_Image{{Alt: alt, Image: blob}}}}
	}
	o.mu.Lock()
	key := o.clock.Next().String()
	o.mu.Unlock()
	r, _, err := o.c.CreateRecord(ctx, atproto.PostCollection, key, rec, true)
	if err != nil {
		t.Fatal(err)
	}
	return r.URI
}

func (o *bskyOrigin) delete(t *testing.T, uri string) {
	t.Helper()
	u, err := syntax.ParseATURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.c.DeleteRecord(t.Context(), u.Collection().String(), u.RecordKey().String()); err != nil {
		t.Fatal(err)
	}
}

// bskyLoginCLI logs c in to u's account as name, through base (the PDS, or
// a proxy in front of it).
func bskyLoginCLI(t *testing.T, c *ferryCLI, base string, u *testenv.PDSAccount, pwFile, name string) {
	t.Helper()
	c.run("login", base, "--handle", u.Handle, "--password-file", pwFile, "--name", name).mustSucceed(t)
}

// gtsTexts counts u's statuses by their plain text.
func gtsTexts(t *testing.T, u *testenv.User) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, st := range mirStatuses(t, u) {
		out[mirText(st)]++
	}
	return out
}

// bskyTexts counts u's Bluesky posts by their text.
func bskyTexts(t *testing.T, u *testenv.PDSAccount) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, p := range bskyPosts(t, u) {
		out[p.Text]++
	}
	return out
}

// A Bluesky post with an image and a mention arrives on GoToSocial with the
// image's alt text and the mention as a link to the profile (mentions =
// "link": nobody on the fediverse is pinged for a Bluesky account); a
// delete on Bluesky deletes the copy.
func TestE2EMirrorBlueskyToGoToSocial(t *testing.T) {
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	b := mirUser(t, in)
	c := newCLI(t, env.CAFile)
	hb := mirLogin(t, c, in, b)
	u, pwFile := bskyAccount(t, "tofedi")
	friend, _ := bskyAccount(t, "friend")
	bskyLoginCLI(t, c, u.PDS.URL, u, pwFile, "sky")
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "bluesky-to-gts"
source = { type = "account", account = "sky" }

[[route.sink]]
account = "%s"
mentions = "link"
`, hb))
	c.run("--config", cfg, "config", "check").mustSucceed(t)
	mirror := func() { t.Helper(); c.run("--config", cfg, "mirror").mustSucceed(t) }
	origin := newBskyOrigin(t, u)
	origin.post(t, "before the first run", nil, "")
	mirror()
	if n := len(mirStatuses(t, b)); n != 0 {
		t.Fatalf("the first run posted %d", n)
	}

	const alt = "a green square on Bluesky"
	uri := origin.post(t, "Hello from Bluesky, @"+friend.Handle+" — see https://example.org/ferry",
		mirPNG(t, color.RGBA{G: 200, A: 255}), alt)
	mirror()
	mirror()
	sts := mirStatuses(t, b)
	if len(sts) != 1 {
		t.Fatalf("GoToSocial has %d statuses, want 1", len(sts))
	}
	st := sts[0]
	text := mirText(st)
	if len(st.MediaAttachments) != 1 || st.MediaAttachments[0].Description != alt || st.MediaAttachments[0].Type != "image" {
		t.Errorf("the copy's media: %+v", st.MediaAttachments)
	}
	if !strings.Contains(text, "Hello from Bluesky") || !strings.Contains(text, "https://bsky.app/profile/"+friend.DID) ||
		strings.Contains(text, "@"+friend.Handle) || len(st.Mentions) != 0 {
		t.Errorf("the copy's text %q (mentions %+v): want the mention as a link to %s", text, st.Mentions, friend.DID)
	}
	if !strings.Contains(text, "https://example.org/ferry") {
		t.Errorf("the copy lost the link: %q", text)
	}

	// A poll notices a delete among the posts it reads again (the newest
	// page, between its oldest and newest post): a later post puts the
	// deleted one inside that span. The daemon hears deletes from the stream.
	origin.post(t, "a later post", nil, "")
	mirror()
	origin.delete(t, uri)
	mirror()
	if g := gtsTexts(t, b); len(g) != 1 || g["a later post"] != 1 {
		t.Errorf("GoToSocial has %v after the delete on Bluesky, want only the later post", g)
	}
}

// twoWay is a GoToSocial account and a Bluesky account mirrored into each
// other by a running daemon.
type twoWay struct {
	gts    *testenv.User
	sky    *testenv.PDSAccount
	gtsPub func(text string)
	skyPub func(text string) string // returns the post's at:// URI
	skyDel func(uri string)
	daemon *mirDaemon
}

func startTwoWay(t *testing.T) *twoWay {
	t.Helper()
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	a := mirUser(t, in)
	c := newCLI(t, env.CAFile)
	ha := mirLogin(t, c, in, a)
	u, pwFile := bskyAccount(t, "twoway")
	bskyLoginCLI(t, c, u.PDS.URL, u, pwFile, "sky")
	// Polling is slow on purpose: what arrives within seconds came by the
	// streams.
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "gts-to-bluesky"
source = { type = "account", account = "%[1]s" }
schedule = "2m"

[[route.sink]]
account = "sky"

[[route]]
name = "bluesky-to-gts"
source = { type = "account", account = "sky" }
schedule = "2m"

[[route.sink]]
account = "%[1]s"
`, ha))
	c.run("--config", cfg, "config", "check").mustSucceed(t)
	c.run("--config", cfg, "mirror").mustSucceed(t) // the first run
	gtsOrigin := mirSinkFor(t, env, in, a)
	skyOrigin := newBskyOrigin(t, u)
	d := startMirDaemon(t, ferryBinary(t), c, cfg)
	// A post made before the streams are up would be caught by polling
	// only: wait for the Bluesky one to say so, and give GoToSocial's (which
	// logs nothing when it connects) as long again.
	start := time.Now()
	waitFor(t, "the daemon to stream the Bluesky account", func() bool {
		return strings.Contains(d.logText(), "bluesky source: streaming")
	})
	time.Sleep(max(time.Since(start), time.Second))
	return &twoWay{gts: a, sky: u, daemon: d,
		gtsPub: func(text string) { mirPublish(t, gtsOrigin, post.Post{Text: text, Visibility: post.Public}, "") },
		skyPub: func(text string) string { return skyOrigin.post(t, text, nil, "") },
		skyDel: func(uri string) { skyOrigin.delete(t, uri) },
	}
}

// until polls cond every 20 ms and returns how long it took to hold, or
// fails after within.
func until(t *testing.T, what string, within time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not after %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// A GoToSocial ↔ Bluesky pair of routes never loops: a post made on either
// side appears once on the other, and nothing comes back; a delete on
// Bluesky, streamed, deletes the copy.
func TestE2EMirrorBlueskyTwoWay(t *testing.T) {
	w := startTwoWay(t)
	w.gtsPub("written on GoToSocial")
	until(t, "the GoToSocial post on Bluesky", 60*time.Second, func() bool { return bskyTexts(t, w.sky)["written on GoToSocial"] > 0 })
	skyURI := w.skyPub("written on Bluesky")
	until(t, "the Bluesky post on GoToSocial", 60*time.Second, func() bool { return gtsTexts(t, w.gts)["written on Bluesky"] > 0 })
	// Give a copy time to come back through the other route: several
	// stream events and daemon ticks.
	time.Sleep(4 * time.Second)
	g, s := gtsTexts(t, w.gts), bskyTexts(t, w.sky)
	if len(g) != 2 || g["written on GoToSocial"] != 1 || g["written on Bluesky"] != 1 {
		t.Errorf("GoToSocial: %v, want each post once", g)
	}
	if len(s) != 2 || s["written on GoToSocial"] != 1 || s["written on Bluesky"] != 1 {
		t.Errorf("Bluesky: %v, want each post once", s)
	}
	// A delete on Bluesky reaches the daemon by the stream, even of the
	// newest post, and deletes the copy.
	w.skyDel(skyURI)
	until(t, "the copy of the deleted Bluesky post to go", 30*time.Second, func() bool { return gtsTexts(t, w.gts)["written on Bluesky"] == 0 })
}

// Streaming latency through `ferry daemon`, both ways, over loopback:
// FIGURES lines, no timed assertion. Runs only with FERRY_BENCH=1.
func TestE2EBlueskyStreamLatency(t *testing.T) {
	if os.Getenv("FERRY_BENCH") != "1" {
		t.Skip("set FERRY_BENCH=1 to run the streaming latency benchmark")
	}
	w := startTwoWay(t)
	const n = 10
	measure := func(name string, publish func(string), arrived func(string) bool) {
		var ds []time.Duration
		for i := range n {
			text := fmt.Sprintf("latency %s %d", name, i)
			start := time.Now()
			publish(text)
			until(t, text, 60*time.Second, func() bool { return arrived(text) })
			ds = append(ds, time.Since(start))
			time.Sleep(300 * time.Millisecond)
		}
		slices.Sort(ds)
		line := fmt.Sprintf("FIGURES bluesky stream %s: n=%d median=%s p90=%s min=%s max=%s", name, n,
			ds[n/2].Round(time.Millisecond), ds[n*9/10].Round(time.Millisecond), ds[0].Round(time.Millisecond), ds[n-1].Round(time.Millisecond))
		t.Log(line)
		if f := os.Getenv("FERRY_BENCH_OUT"); f != "" {
			appendFile(t, f, line+"\n")
		}
	}
	measure("gts-to-bluesky", w.gtsPub, func(text string) bool { return bskyTexts(t, w.sky)[text] > 0 })
	measure("bluesky-to-gts", func(text string) { w.skyPub(text) }, func(text string) bool { return gtsTexts(t, w.gts)[text] > 0 })
}
