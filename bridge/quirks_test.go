package bridge_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/fakemastodon"
	"github.com/fedi-ferry/ferry/sinks/memsink"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/sources/mastodon"
)

// Mirroring from Mastodon-API servers with the deviations of snac2 and
// Hollo (issue 16), through the real account source on the fake server.

type quirkClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *quirkClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *quirkClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type quirkRig struct {
	clock *quirkClock
	c     *fedi.Client
	sink  *memsink.Sink
	route *bridge.Route
}

func newQuirkRig(t *testing.T, q fakemastodon.Quirks) *quirkRig {
	t.Helper()
	clk := &quirkClock{t: time.Now().UTC().Truncate(time.Second)}
	srv := fakemastodon.Start(fakemastodon.Config{Software: "snac", Quirks: q, Now: clk.now})
	t.Cleanup(srv.Close)
	_, token := srv.AddAccount("alice")
	base, err := fedi.ParseServer(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := fedi.NewClient(base, token, http.DefaultClient)
	sink := memsink.New()
	src := mastodon.New(mastodon.Options{Client: c})
	r := &bridge.Route{Name: "alice", Kind: bridge.KindAccount, Source: src, SourceAccount: "alice@" + srv.Host,
		Sinks: []bridge.Target{{Account: "me@sink.example", Sink: sink}}}
	return &quirkRig{clock: clk, c: c, sink: sink, route: r}
}

func (g *quirkRig) call(t *testing.T, method, path string, body map[string]string) fedi.Status {
	t.Helper()
	var st fedi.Status
	var in any
	if body != nil {
		in = body
	}
	if _, err := g.c.Do(t.Context(), method, path, nil, in, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func (g *quirkRig) post(t *testing.T, text, replyTo string) fedi.Status {
	t.Helper()
	body := map[string]string{"status": text, "visibility": "public"}
	if replyTo != "" {
		body["in_reply_to_id"] = replyTo
	}
	return g.call(t, http.MethodPost, "/api/v1/statuses", body)
}

func (g *quirkRig) texts() []string {
	var out []string
	for _, p := range g.sink.Posts() {
		out = append(out, p.Draft.Post.Text)
	}
	slices.Sort(out)
	return out
}

// Deleting the newest mirrored post deletes its copy on the next run,
// without waiting for a newer post.
func TestMirrorDeleteOfNewestPost(t *testing.T) {
	g := newQuirkRig(t, fakemastodon.Quirks{})
	e, _, clk := newEngine(t, bridge.Options{})
	mirRun(t, e, clk, g.route) // the first run: nothing yet
	older := g.post(t, "older", "")
	g.clock.add(time.Second)
	newest := g.post(t, "newest", "")
	mirRun(t, e, clk, g.route)
	if g.sink.Count() != 2 {
		t.Fatalf("mirrored %q", g.texts())
	}
	g.call(t, http.MethodDelete, "/api/v1/statuses/"+url.PathEscape(newest.ID), nil)
	mirRun(t, e, clk, g.route)
	if got := g.texts(); !slices.Equal(got, []string{"older"}) {
		t.Errorf("after deleting the newest post: %q", got)
	}
	// And the last post too: an empty window checks the newest copies.
	g.call(t, http.MethodDelete, "/api/v1/statuses/"+url.PathEscape(older.ID), nil)
	mirRun(t, e, clk, g.route)
	if g.sink.Count() != 0 {
		t.Errorf("after deleting every post: %q", g.texts())
	}
}

// An edit on a server that changes the post's ID (snac2) edits the copy
// instead of mirroring the post again, and the old ID answering 404 does
// not delete the copy.
func TestMirrorEditChangesID(t *testing.T) {
	g := newQuirkRig(t, fakemastodon.Quirks{IDChangesOnEdit: true})
	e, _, clk := newEngine(t, bridge.Options{})
	mirRun(t, e, clk, g.route)
	first := g.post(t, "first", "")
	g.clock.add(time.Second)
	g.post(t, "second", "")
	mirRun(t, e, clk, g.route)
	g.clock.add(2 * time.Second)
	ed := g.call(t, http.MethodPut, "/api/v1/statuses/"+url.PathEscape(first.ID), map[string]string{"status": "first, edited"})
	if ed.ID == first.ID {
		t.Fatal("the fake kept the ID")
	}
	for range 2 {
		mirRun(t, e, clk, g.route)
	}
	if got := g.texts(); !slices.Equal(got, []string{"first, edited", "second"}) {
		t.Errorf("after an edit that changed the ID: %q", got)
	}
	if p, ed, del := g.sink.Calls(memsink.OpPublish), g.sink.Calls(memsink.OpEdit), g.sink.Calls(memsink.OpDelete); p != 2 || ed != 1 || del != 0 {
		t.Errorf("%d publishes, %d edits, %d deletes; want the edit as an edit (2, 1, 0)", p, ed, del)
	}
}

// An edit on a server without edited_at (Hollo) reaches the copy.
func TestMirrorEditWithoutEditedAt(t *testing.T) {
	g := newQuirkRig(t, fakemastodon.Quirks{NoEditedAt: true})
	e, _, clk := newEngine(t, bridge.Options{})
	mirRun(t, e, clk, g.route)
	p := g.post(t, "before", "")
	mirRun(t, e, clk, g.route)
	mirRun(t, e, clk, g.route)
	if n := g.sink.Calls(memsink.OpEdit); n != 0 {
		t.Errorf("%d edits of an unedited post", n)
	}
	g.call(t, http.MethodPut, "/api/v1/statuses/"+url.PathEscape(p.ID), map[string]string{"status": "after"})
	mirRun(t, e, clk, g.route)
	if got := g.texts(); !slices.Equal(got, []string{"after"}) {
		t.Errorf("after an edit without edited_at: %q", got)
	}
}

// Self-replies posted within one second on a server whose IDs do not sort
// by time within a second (snac2) are all mirrored, as a thread.
func TestMirrorSameSecondSelfReplies(t *testing.T) {
	g := newQuirkRig(t, fakemastodon.Quirks{IDChangesOnEdit: true})
	e, _, clk := newEngine(t, bridge.Options{})
	mirRun(t, e, clk, g.route)
	g.clock.add(time.Second)
	parent := ""
	var want []string
	for i := range 5 {
		text := fmt.Sprintf("thread part %d", i)
		parent = g.post(t, text, parent).ID
		want = append(want, text)
	}
	mirRun(t, e, clk, g.route)
	mirRun(t, e, clk, g.route)
	if got := g.texts(); !slices.Equal(got, want) {
		t.Fatalf("mirrored %q, want %q", got, want)
	}
	for _, p := range g.sink.Posts() {
		if !strings.HasSuffix(p.Draft.Post.Text, "part 0") && p.Draft.ReplyTo == "" {
			t.Errorf("%q is not threaded", p.Draft.Post.Text)
		}
	}
}

// glitchySource answers an empty newest page while empty is set: a
// server's passing glitch, the case in which the engine checks copies
// without a window to compare with.
type glitchySource struct {
	*mastodon.Source
	empty bool
}

func (g *glitchySource) Fetch(ctx context.Context, cursor string) (sources.Page, error) {
	if g.empty {
		return sources.Page{}, nil
	}
	return g.Source.Fetch(ctx, cursor)
}

// An edited post whose ID changed (snac2) keeps its copy when the
// server's window comes back empty: its first-seen ID answers 404, its
// URI still finds it. A post really deleted meanwhile loses its copy.
func TestMirrorEmptyWindowEditChangedID(t *testing.T) {
	g := newQuirkRig(t, fakemastodon.Quirks{IDChangesOnEdit: true})
	src := &glitchySource{Source: g.route.Source.(*mastodon.Source)}
	g.route.Source = src
	e, _, clk := newEngine(t, bridge.Options{})
	mirRun(t, e, clk, g.route)
	edited := g.post(t, "to be edited", "")
	g.clock.add(time.Second)
	deleted := g.post(t, "to be deleted", "")
	mirRun(t, e, clk, g.route)
	if g.sink.Count() != 2 {
		t.Fatalf("mirrored %q", g.texts())
	}
	g.clock.add(2 * time.Second)
	if ed := g.call(t, http.MethodPut, "/api/v1/statuses/"+url.PathEscape(edited.ID), map[string]string{"status": "edited"}); ed.ID == edited.ID {
		t.Fatal("the fake kept the ID")
	}
	g.call(t, http.MethodDelete, "/api/v1/statuses/"+url.PathEscape(deleted.ID), nil)
	src.empty = true
	mirRun(t, e, clk, g.route)
	if got := g.texts(); !slices.Equal(got, []string{"to be edited"}) {
		t.Errorf("after an empty window: copies %q, want the edited post's copy kept and the deleted one's gone", got)
	}
	src.empty = false
	mirRun(t, e, clk, g.route)
	if got := g.texts(); !slices.Equal(got, []string{"edited"}) {
		t.Errorf("after the window came back: %q", got)
	}
}
