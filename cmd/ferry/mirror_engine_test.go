package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/state"
)

// Engine tests: the real engine on the real SQLite store (through the
// adapter cmd/ferry wires), with an in-memory source and sink.

// mirSource is a feed-like source: Fetch returns every post, oldest first.
type mirSource struct {
	mu    sync.Mutex
	posts []post.Post
}

func (s *mirSource) set(ps ...post.Post) { s.mu.Lock(); s.posts = ps; s.mu.Unlock() }

func (s *mirSource) Fetch(ctx context.Context, cursor string) (sources.Page, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sources.Page{Posts: append([]post.Post(nil), s.posts...), Next: "c"}, ctx.Err()
}

// mirSink records posts; failNext makes the next Publish fail after (or
// instead of) posting.
type mirSink struct {
	mu       sync.Mutex
	n        int
	posts    map[string]sinks.Draft
	order    []string
	edits    int
	deletes  int
	failNext error
	postFail bool // failNext happens after the post was made (a crash before the answer)
	badMedia bool // every post with media fails (a dead enclosure link)
	limits   post.Limits
}

func newMirSink() *mirSink {
	return &mirSink{posts: map[string]sinks.Draft{}, limits: post.Limits{MaxChars: 500, CharsPerURL: 23, MaxMedia: 4}}
}

func (s *mirSink) Publish(ctx context.Context, d sinks.Draft) (post.Ref, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.badMedia && len(d.Post.Media) > 0 {
		return post.Ref{}, errors.New("media 1 of 1: connection refused")
	}
	if err := s.failNext; err != nil && !s.postFail {
		s.failNext = nil
		return post.Ref{}, err
	}
	s.n++
	id := fmt.Sprintf("r%d", s.n)
	s.posts[id] = d
	s.order = append(s.order, id)
	if err := s.failNext; err != nil {
		s.failNext, s.postFail = nil, false
		return post.Ref{}, err
	}
	return post.Ref{ID: id, URL: "https://sink.example/" + id}, nil
}

func (s *mirSink) Edit(ctx context.Context, id string, d sinks.Draft) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.posts[id]; !ok {
		return errors.New("edit of an unknown post")
	}
	d.ReplyTo = s.posts[id].ReplyTo
	s.posts[id] = d
	s.edits++
	return nil
}

func (s *mirSink) Delete(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.posts, id)
	s.deletes++
	return nil
}

func (s *mirSink) Find(ctx context.Context, d sinks.Draft, since time.Time) (post.Ref, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, p := range s.posts {
		if p.Post.Text == d.Post.Text && p.ReplyTo == d.ReplyTo {
			return post.Ref{ID: id}, true, nil
		}
	}
	return post.Ref{}, false, nil
}

func (s *mirSink) Limits(ctx context.Context) (post.Limits, error) { return s.limits, nil }

func (s *mirSink) count() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.posts) }

func (s *mirSink) texts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, id := range s.order {
		if d, ok := s.posts[id]; ok {
			out = append(out, d.Post.Text)
		}
	}
	return out
}

type mirPermanent struct{}

func (mirPermanent) Error() string { return "422 text too long" }

func mirItem(id, title string, at time.Time) post.Post {
	return post.Post{OriginID: id, Title: title, Text: title + " body", URL: "https://blog.example/" + id, CreatedAt: at}
}

func mirFeedRoute(name string, src sources.Source, sink sinks.Sink) *bridge.Route {
	return &bridge.Route{Name: name, Kind: bridge.KindFeed, Source: src,
		Sinks: []bridge.Target{{Account: "me@sink.example", Sink: sink}}}
}

func mirRun(t *testing.T, e *bridge.Engine, r *bridge.Route) bridge.Result {
	t.Helper()
	res, err := e.Run(context.Background(), r)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

func TestEngineFeedExactlyOnce(t *testing.T) {
	st := state.TestStore(t)
	e := bridge.New(newBridgeStore(st), bridge.Options{})
	t0 := time.Now().Add(-time.Hour)
	src, sink := &mirSource{}, newMirSink()
	r := mirFeedRoute("blog", src, sink)
	src.set(mirItem("a", "Old A", t0), mirItem("b", "Old B", t0.Add(time.Minute)))

	// First run: existing items are recorded, nothing is posted.
	if res := mirRun(t, e, r); !res.Baseline || sink.count() != 0 {
		t.Fatalf("first run posted %d (baseline %v)", sink.count(), res.Baseline)
	}
	src.set(mirItem("a", "Old A", t0), mirItem("b", "Old B", t0.Add(time.Minute)), mirItem("c", "New C", t0.Add(2*time.Minute)))
	mirRun(t, e, r)
	mirRun(t, e, r)
	if got := sink.texts(); len(got) != 1 || !strings.HasPrefix(got[0], "New C") {
		t.Fatalf("after new item: %q", got)
	}
	// The same item under a new GUID (same link) is not new.
	c2 := mirItem("c", "New C", t0.Add(2*time.Minute))
	c2.OriginID = "urn:new-guid-for-c"
	src.set(c2)
	if res := mirRun(t, e, r); res.New != 0 || sink.count() != 1 {
		t.Fatalf("GUID change reposted: %+v", res)
	}
	// New GUID and new link, same content: still the same item.
	c3 := c2
	c3.OriginID, c3.URL = "urn:third-guid", "https://blog.example/moved/c"
	src.set(c3)
	if res := mirRun(t, e, r); res.New != 0 || sink.count() != 1 {
		t.Fatalf("GUID+link change reposted: %+v", res)
	}
	// The link in the copy is now stale: it was edited to the new one.
	if sink.edits != 1 || !strings.Contains(sink.texts()[0], "/moved/c") {
		t.Fatalf("moved link: %d edits, %q", sink.edits, sink.texts())
	}
	// An edit edits the copy, once.
	c4 := c3
	c4.Text = "New C body, corrected"
	src.set(c4)
	mirRun(t, e, r)
	mirRun(t, e, r)
	if sink.edits != 2 || sink.count() != 1 {
		t.Fatalf("edit: %d edits, %d posts", sink.edits, sink.count())
	}
	// An item that leaves the feed and comes back is not new either.
	src.set()
	mirRun(t, e, r)
	src.set(mirItem("a", "Old A", t0))
	if res := mirRun(t, e, r); res.New != 0 || sink.count() != 1 {
		t.Fatalf("a returning item reposted: %+v", res)
	}
}

func TestEngineFirstRunLastN(t *testing.T) {
	st := state.TestStore(t)
	e := bridge.New(newBridgeStore(st), bridge.Options{})
	t0 := time.Now().Add(-time.Hour)
	src, sink := &mirSource{}, newMirSink()
	r := mirFeedRoute("blog", src, sink)
	r.FirstRun = 2
	src.set(mirItem("a", "A", t0), mirItem("b", "B", t0.Add(time.Minute)), mirItem("c", "C", t0.Add(2*time.Minute)))
	mirRun(t, e, r)
	if got := sink.texts(); len(got) != 2 || !strings.HasPrefix(got[0], "B") || !strings.HasPrefix(got[1], "C") {
		t.Fatalf("last:2 posted %q", got)
	}
}

func TestEngineCrashReconciledByFinder(t *testing.T) {
	st := state.TestStore(t)
	e := bridge.New(newBridgeStore(st), bridge.Options{})
	t0 := time.Now().Add(-time.Hour)
	src, sink := &mirSource{}, newMirSink()
	r := mirFeedRoute("blog", src, sink)
	mirRun(t, e, r)
	src.set(mirItem("x", "X", t0))
	// The post is made, but the answer is lost (a crash, a timeout).
	sink.failNext, sink.postFail = errors.New("connection reset"), true
	if _, err := e.Run(context.Background(), r); err == nil {
		t.Fatal("the failed run reported no error")
	}
	if sink.count() != 1 {
		t.Fatalf("%d posts after the failed attempt", sink.count())
	}
	mirRun(t, e, r)
	mirRun(t, e, r)
	if sink.count() != 1 {
		t.Fatalf("duplicate after recovery: %d posts", sink.count())
	}
	// The copy is recorded: an edit reaches it.
	x := mirItem("x", "X", t0)
	x.Text = "X body, edited"
	src.set(x)
	mirRun(t, e, r)
	if sink.edits != 1 {
		t.Fatalf("edit after recovery: %d edits", sink.edits)
	}
}

func TestEnginePermanentFailureNotRetried(t *testing.T) {
	st := state.TestStore(t)
	e := bridge.New(newBridgeStore(st), bridge.Options{})
	src, sink := &mirSource{}, newMirSink()
	r := mirFeedRoute("blog", src, sink)
	mirRun(t, e, r)
	src.set(mirItem("x", "X", time.Now()))
	sink.failNext = &sinks.PermanentError{Err: mirPermanent{}}
	res := mirRun(t, e, r)
	if res.Failed != 1 {
		t.Fatalf("failed = %d", res.Failed)
	}
	for range 3 {
		mirRun(t, e, r)
	}
	if sink.count() != 0 || sink.n != 0 {
		t.Fatalf("a permanently failed post was retried: %d", sink.n)
	}
	br, _ := st.BridgeRoute(context.Background(), "blog")
	if br.Failed != 1 {
		t.Errorf("status shows %d failed", br.Failed)
	}
}

func TestEngineRunawayCap(t *testing.T) {
	st := state.TestStore(t)
	e := bridge.New(newBridgeStore(st), bridge.Options{})
	src, sink := &mirSource{}, newMirSink()
	r := mirFeedRoute("blog", src, sink)
	r.MaxPerHour = 3
	mirRun(t, e, r)
	var ps []post.Post
	for i := range 10 {
		ps = append(ps, mirItem(fmt.Sprint("n", i), fmt.Sprint("N", i), time.Now().Add(time.Duration(i)*time.Second)))
	}
	src.set(ps...)
	res := mirRun(t, e, r)
	mirRun(t, e, r)
	if !res.Capped || sink.count() != 3 {
		t.Fatalf("cap: capped %v, %d posts", res.Capped, sink.count())
	}
}

func TestEnginePauseDoesNotReplay(t *testing.T) {
	st := state.TestStore(t)
	e := bridge.New(newBridgeStore(st), bridge.Options{})
	src, sink := &mirSource{}, newMirSink()
	r := mirFeedRoute("blog", src, sink)
	mirRun(t, e, r)
	if err := st.BridgeSetPaused(context.Background(), "blog", true); err != nil {
		t.Fatal(err)
	}
	src.set(mirItem("p1", "While paused 1", time.Now()), mirItem("p2", "While paused 2", time.Now()))
	if res := mirRun(t, e, r); !res.Baseline || sink.count() != 0 {
		t.Fatalf("resume replayed the backlog: %d posts", sink.count())
	}
	src.set(mirItem("p1", "While paused 1", time.Now()), mirItem("p2", "While paused 2", time.Now()), mirItem("p3", "After", time.Now()))
	mirRun(t, e, r)
	if got := sink.texts(); len(got) != 1 || !strings.HasPrefix(got[0], "After") {
		t.Fatalf("after resume: %q", got)
	}
}

func TestEngineDryRunWritesNothing(t *testing.T) {
	st := state.TestStore(t)
	src, sink := &mirSource{}, newMirSink()
	r := mirFeedRoute("blog", src, sink)
	mirRun(t, bridge.New(newBridgeStore(st), bridge.Options{}), r)
	src.set(mirItem("d", "Dry", time.Now()))
	dry := bridge.New(newBridgeStore(st), bridge.Options{DryRun: true})
	res := mirRun(t, dry, r)
	if len(res.Planned) != 1 || res.Planned[0].Kind != bridge.StepPublish || sink.n != 0 {
		t.Fatalf("dry run: planned %d, sink %d", len(res.Planned), sink.n)
	}
	// Nothing was recorded: a real run still posts it.
	mirRun(t, bridge.New(newBridgeStore(st), bridge.Options{}), r)
	if sink.count() != 1 {
		t.Fatalf("after the dry run, a real run posted %d", sink.count())
	}
}

func TestEngineSplitThreadAndEditDelete(t *testing.T) {
	st := state.TestStore(t)
	e := bridge.New(newBridgeStore(st), bridge.Options{})
	src, sink := &mirSource{}, newMirSink()
	r := &bridge.Route{Name: "acct", Kind: bridge.KindAccount, Source: src, SourceAccount: "me@src.example",
		Sinks: []bridge.Target{{Account: "me@sink.example", Sink: sink, Policy: bridge.Policy{Thread: bridge.PolicyFirstOnly}}}}
	mirRun(t, e, r)
	long := post.Post{OriginID: "1", Text: strings.TrimSpace(strings.Repeat("Seven hundred characters of text. ", 21)),
		Visibility: post.Public, CreatedAt: time.Now()}
	reply := post.Post{OriginID: "2", Text: "and a reply in the thread", InReplyTo: "1", Visibility: post.Public,
		CreatedAt: time.Now().Add(time.Second)}
	other := post.Post{OriginID: "3", Text: "a reply to someone else", InReplyTo: "999", Visibility: post.Public,
		CreatedAt: time.Now().Add(2 * time.Second)}
	src.set(long, reply, other)
	mirRun(t, e, r)
	if sink.count() != 3 {
		t.Fatalf("%d posts: %q", sink.count(), sink.texts())
	}
	d1, d2, d3 := sink.posts["r1"], sink.posts["r2"], sink.posts["r3"]
	if d1.ReplyTo != "" || d2.ReplyTo != "r1" || d3.ReplyTo != "r2" {
		t.Errorf("thread shape: %q %q %q", d1.ReplyTo, d2.ReplyTo, d3.ReplyTo)
	}
	if d1.Post.Visibility != post.Public || d2.Post.Visibility != post.Unlisted || d3.Post.Visibility != post.Unlisted {
		t.Errorf("first-public: %s %s %s", d1.Post.Visibility, d2.Post.Visibility, d3.Post.Visibility)
	}
	// An edit that makes the long post short edits part 1 and deletes part 2.
	short := long
	short.Text, short.EditedAt = "Now short.", time.Now()
	src.set(short, reply)
	mirRun(t, e, r)
	if sink.posts["r1"].Post.Text != "Now short." || sink.count() != 2 {
		t.Errorf("after shortening edit: %q", sink.texts())
	}
	// A delete event removes the copy.
	if _, err := e.Handle(context.Background(), r, sources.Event{Kind: sources.Deleted, Post: post.Post{OriginID: "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := sink.posts["r3"]; ok || sink.count() != 1 {
		t.Errorf("after delete: %q", sink.texts())
	}
	// A copy read back from the sink account is never mirrored (two-way).
	if ok, _ := st.BridgeIsCopy(context.Background(), "me@sink.example", "r1"); !ok {
		t.Error("r1 is not known as a copy")
	}
}

func TestEngineDeadMediaFallsBackToLinks(t *testing.T) {
	st := state.TestStore(t)
	e := bridge.New(newBridgeStore(st), bridge.Options{})
	src, sink := &mirSource{}, newMirSink()
	r := mirFeedRoute("blog", src, sink)
	mirRun(t, e, r)
	p := mirItem("m", "With a dead enclosure", time.Now())
	p.Media = []post.Media{{URL: "https://gone.example/photo.jpg", MIMEType: "image/jpeg"}}
	src.set(p)
	sink.badMedia = true
	for i := range 3 {
		if _, err := e.Run(context.Background(), r); err == nil {
			t.Fatalf("attempt %d succeeded", i+1)
		}
	}
	mirRun(t, e, r)
	if got := sink.texts(); len(got) != 1 || !strings.Contains(got[0], "https://gone.example/photo.jpg") {
		t.Fatalf("after repeated media failures: %q", got)
	}
}
