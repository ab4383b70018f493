package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/sinks/memsink"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/sources/memsource"
	"github.com/fedi-ferry/ferry/state"
	"github.com/fedi-ferry/ferry/state/bridgestore"
)

// Engine tests: the real engine on the real SQLite store (through
// bridgestore, as ferry wires it), with an in-memory source and sink and a
// fake clock for the pauses between retries.

// newEngine returns an engine on a fresh store, its store and its clock.
func newEngine(t *testing.T, o bridge.Options) (*bridge.Engine, *state.Store, *clockwork.FakeClock) {
	t.Helper()
	st := state.TestStore(t)
	clk := clockwork.NewFakeClockAt(time.Now())
	o.Clock = clk
	return bridge.New(bridgestore.New(st), o), st, clk
}

// onClock runs fn, advancing clk by a second whenever something waits on
// it, and returns how far the clock was advanced.
func onClock(t *testing.T, clk *clockwork.FakeClock, fn func()) time.Duration {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	var advanced time.Duration
	for {
		select {
		case <-done:
			return advanced
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
		if clk.BlockUntilContext(ctx, 1) == nil {
			clk.Advance(time.Second)
			advanced += time.Second
		}
		cancel()
	}
}

// tryRun runs the route once on the fake clock.
func tryRun(t *testing.T, e *bridge.Engine, clk *clockwork.FakeClock, r *bridge.Route) (res bridge.Result, err error) {
	t.Helper()
	onClock(t, clk, func() { res, err = e.Run(context.Background(), r) })
	return res, err
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

func mirRun(t *testing.T, e *bridge.Engine, clk *clockwork.FakeClock, r *bridge.Route) bridge.Result {
	t.Helper()
	res, err := tryRun(t, e, clk, r)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

func TestEngineFeedExactlyOnce(t *testing.T) {
	e, _, clk := newEngine(t, bridge.Options{})
	t0 := time.Now().Add(-time.Hour)
	src, sink := memsource.New(), memsink.New()
	r := mirFeedRoute("blog", src, sink)
	src.Set(mirItem("a", "Old A", t0), mirItem("b", "Old B", t0.Add(time.Minute)))

	// First run: existing items are recorded, nothing is posted.
	if res := mirRun(t, e, clk, r); !res.Baseline || sink.Count() != 0 {
		t.Fatalf("first run posted %d (baseline %v)", sink.Count(), res.Baseline)
	}
	src.Set(mirItem("a", "Old A", t0), mirItem("b", "Old B", t0.Add(time.Minute)), mirItem("c", "New C", t0.Add(2*time.Minute)))
	mirRun(t, e, clk, r)
	mirRun(t, e, clk, r)
	if got := sink.Texts(); len(got) != 1 || !strings.HasPrefix(got[0], "New C") {
		t.Fatalf("after new item: %q", got)
	}
	// The same item under a new GUID (same link) is not new.
	c2 := mirItem("c", "New C", t0.Add(2*time.Minute))
	c2.OriginID = "urn:new-guid-for-c"
	src.Set(c2)
	if res := mirRun(t, e, clk, r); res.New != 0 || sink.Count() != 1 {
		t.Fatalf("GUID change reposted: %+v", res)
	}
	// New GUID and new link, same content: still the same item.
	c3 := c2
	c3.OriginID, c3.URL = "urn:third-guid", "https://blog.example/moved/c"
	src.Set(c3)
	if res := mirRun(t, e, clk, r); res.New != 0 || sink.Count() != 1 {
		t.Fatalf("GUID+link change reposted: %+v", res)
	}
	// The link in the copy is now stale: it was edited to the new one.
	if sink.Calls(memsink.OpEdit) != 1 || !strings.Contains(sink.Texts()[0], "/moved/c") {
		t.Fatalf("moved link: %d edits, %q", sink.Calls(memsink.OpEdit), sink.Texts())
	}
	// An edit edits the copy, once.
	c4 := c3
	c4.Text = "New C body, corrected"
	src.Set(c4)
	mirRun(t, e, clk, r)
	mirRun(t, e, clk, r)
	if sink.Calls(memsink.OpEdit) != 2 || sink.Count() != 1 {
		t.Fatalf("edit: %d edits, %d posts", sink.Calls(memsink.OpEdit), sink.Count())
	}
	// An item that leaves the feed and comes back is not new either.
	src.Set()
	mirRun(t, e, clk, r)
	src.Set(mirItem("a", "Old A", t0))
	if res := mirRun(t, e, clk, r); res.New != 0 || sink.Count() != 1 {
		t.Fatalf("a returning item reposted: %+v", res)
	}
}

func TestEngineFirstRunLastN(t *testing.T) {
	e, _, clk := newEngine(t, bridge.Options{})
	t0 := time.Now().Add(-time.Hour)
	src, sink := memsource.New(), memsink.New()
	r := mirFeedRoute("blog", src, sink)
	r.FirstRun = 2
	src.Set(mirItem("a", "A", t0), mirItem("b", "B", t0.Add(time.Minute)), mirItem("c", "C", t0.Add(2*time.Minute)))
	mirRun(t, e, clk, r)
	if got := sink.Texts(); len(got) != 2 || !strings.HasPrefix(got[0], "B") || !strings.HasPrefix(got[1], "C") {
		t.Fatalf("last:2 posted %q", got)
	}
}

func TestEngineCrashReconciledByFinder(t *testing.T) {
	t.Parallel() // retries wait out the store's real in-flight grace
	// No retries within the run: the process died right after the
	// attempt; the next run reconciles.
	e, _, clk := newEngine(t, bridge.Options{Retry: bridge.Retry{Total: time.Nanosecond}})
	t0 := time.Now().Add(-time.Hour)
	src, sink := memsource.New(), memsink.New()
	r := mirFeedRoute("blog", src, sink)
	mirRun(t, e, clk, r)
	src.Set(mirItem("x", "X", t0))
	// The post is made, but the answer is lost (a crash, a timeout).
	sink.Fail(memsink.OpPublish, memsink.Fault{Err: errors.New("connection reset"), Done: true})
	if _, err := tryRun(t, e, clk, r); err == nil {
		t.Fatal("the failed run reported no error")
	}
	if sink.Count() != 1 {
		t.Fatalf("%d posts after the failed attempt", sink.Count())
	}
	mirRun(t, e, clk, r)
	mirRun(t, e, clk, r)
	if sink.Count() != 1 {
		t.Fatalf("duplicate after recovery: %d posts", sink.Count())
	}
	// The copy is recorded: an edit reaches it.
	x := mirItem("x", "X", t0)
	x.Text = "X body, edited"
	src.Set(x)
	mirRun(t, e, clk, r)
	if sink.Calls(memsink.OpEdit) != 1 {
		t.Fatalf("edit after recovery: %d edits", sink.Calls(memsink.OpEdit))
	}
}

func TestEnginePermanentFailureNotRetried(t *testing.T) {
	e, st, clk := newEngine(t, bridge.Options{})
	src, sink := memsource.New(), memsink.New()
	r := mirFeedRoute("blog", src, sink)
	mirRun(t, e, clk, r)
	src.Set(mirItem("x", "X", time.Now()))
	sink.Fail(memsink.OpPublish, memsink.Fault{Err: &sinks.PermanentError{Err: mirPermanent{}}})
	res := mirRun(t, e, clk, r)
	if res.Failed != 1 {
		t.Fatalf("failed = %d", res.Failed)
	}
	for range 3 {
		mirRun(t, e, clk, r)
	}
	if sink.Count() != 0 || sink.Calls(memsink.OpPublish) != 1 {
		t.Fatalf("a permanently failed post was retried: %d", sink.Calls(memsink.OpPublish))
	}
	br, _ := st.BridgeRoute(context.Background(), "blog")
	if br.Failed != 1 {
		t.Errorf("status shows %d failed", br.Failed)
	}
}

func TestEngineRunawayCap(t *testing.T) {
	e, _, clk := newEngine(t, bridge.Options{})
	src, sink := memsource.New(), memsink.New()
	r := mirFeedRoute("blog", src, sink)
	r.MaxPerHour = 3
	mirRun(t, e, clk, r)
	var ps []post.Post
	for i := range 10 {
		ps = append(ps, mirItem(fmt.Sprint("n", i), fmt.Sprint("N", i), time.Now().Add(time.Duration(i)*time.Second)))
	}
	src.Set(ps...)
	res := mirRun(t, e, clk, r)
	mirRun(t, e, clk, r)
	if !res.Capped || sink.Count() != 3 {
		t.Fatalf("cap: capped %v, %d posts", res.Capped, sink.Count())
	}
}

func TestEnginePauseDoesNotReplay(t *testing.T) {
	e, st, clk := newEngine(t, bridge.Options{})
	src, sink := memsource.New(), memsink.New()
	r := mirFeedRoute("blog", src, sink)
	mirRun(t, e, clk, r)
	if err := st.BridgeSetPaused(context.Background(), "blog", true); err != nil {
		t.Fatal(err)
	}
	src.Set(mirItem("p1", "While paused 1", time.Now()), mirItem("p2", "While paused 2", time.Now()))
	if res := mirRun(t, e, clk, r); !res.Baseline || sink.Count() != 0 {
		t.Fatalf("resume replayed the backlog: %d posts", sink.Count())
	}
	src.Set(mirItem("p1", "While paused 1", time.Now()), mirItem("p2", "While paused 2", time.Now()), mirItem("p3", "After", time.Now()))
	mirRun(t, e, clk, r)
	if got := sink.Texts(); len(got) != 1 || !strings.HasPrefix(got[0], "After") {
		t.Fatalf("after resume: %q", got)
	}
}

func TestEngineDryRunWritesNothing(t *testing.T) {
	e, st, clk := newEngine(t, bridge.Options{})
	src, sink := memsource.New(), memsink.New()
	r := mirFeedRoute("blog", src, sink)
	mirRun(t, e, clk, r)
	src.Set(mirItem("d", "Dry", time.Now()))
	dry := bridge.New(bridgestore.New(st), bridge.Options{DryRun: true, Clock: clk})
	res := mirRun(t, dry, clk, r)
	if len(res.Planned) != 1 || res.Planned[0].Kind != bridge.StepPublish || sink.Calls(memsink.OpPublish) != 0 {
		t.Fatalf("dry run: planned %d, sink %d", len(res.Planned), sink.Calls(memsink.OpPublish))
	}
	// Nothing was recorded: a real run still posts it.
	mirRun(t, e, clk, r)
	if sink.Count() != 1 {
		t.Fatalf("after the dry run, a real run posted %d", sink.Count())
	}
}

func TestEngineSplitThreadAndEditDelete(t *testing.T) {
	e, st, clk := newEngine(t, bridge.Options{})
	src, sink := memsource.New(), memsink.New()
	r := &bridge.Route{Name: "acct", Kind: bridge.KindAccount, Source: src, SourceAccount: "me@src.example",
		Sinks: []bridge.Target{{Account: "me@sink.example", Sink: sink, Policy: bridge.Policy{Thread: bridge.PolicyFirstOnly}}}}
	mirRun(t, e, clk, r)
	long := post.Post{OriginID: "1", Text: strings.TrimSpace(strings.Repeat("Seven hundred characters of text. ", 21)),
		Visibility: post.Public, CreatedAt: time.Now()}
	reply := post.Post{OriginID: "2", Text: "and a reply in the thread", InReplyTo: "1", Visibility: post.Public,
		CreatedAt: time.Now().Add(time.Second)}
	other := post.Post{OriginID: "3", Text: "a reply to someone else", InReplyTo: "999", Visibility: post.Public,
		CreatedAt: time.Now().Add(2 * time.Second)}
	src.Set(long, reply, other)
	mirRun(t, e, clk, r)
	if sink.Count() != 3 {
		t.Fatalf("%d posts: %q", sink.Count(), sink.Texts())
	}
	d1, _ := sink.Get("r1")
	d2, _ := sink.Get("r2")
	d3, _ := sink.Get("r3")
	if d1.ReplyTo != "" || d2.ReplyTo != "r1" || d3.ReplyTo != "r2" {
		t.Errorf("thread shape: %q %q %q", d1.ReplyTo, d2.ReplyTo, d3.ReplyTo)
	}
	if d1.Post.Visibility != post.Public || d2.Post.Visibility != post.Unlisted || d3.Post.Visibility != post.Unlisted {
		t.Errorf("first-public: %s %s %s", d1.Post.Visibility, d2.Post.Visibility, d3.Post.Visibility)
	}
	// An edit that makes the long post short edits part 1 and deletes part 2.
	short := long
	short.Text, short.EditedAt = "Now short.", time.Now()
	src.Set(short, reply)
	mirRun(t, e, clk, r)
	if d1, _ := sink.Get("r1"); d1.Post.Text != "Now short." || sink.Count() != 2 {
		t.Errorf("after shortening edit: %q", sink.Texts())
	}
	// A delete event removes the copy.
	if _, err := e.Handle(context.Background(), r, sources.Event{Kind: sources.Deleted, Post: post.Post{OriginID: "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := sink.Get("r3"); ok || sink.Count() != 1 {
		t.Errorf("after delete: %q", sink.Texts())
	}
	// A copy read back from the sink account is never mirrored (two-way).
	if ok, _ := st.BridgeIsCopy(context.Background(), "me@sink.example", "r1"); !ok {
		t.Error("r1 is not known as a copy")
	}
}

func TestEngineDeadMediaFallsBackToLinks(t *testing.T) {
	t.Parallel() // retries wait out the store's real in-flight grace
	retry := bridge.Retry{Attempts: 1, First: time.Second, Total: 30 * time.Second}
	e, _, clk := newEngine(t, bridge.Options{Retry: retry})
	src, sink := memsource.New(), memsink.New()
	r := mirFeedRoute("blog", src, sink)
	mirRun(t, e, clk, r)
	p := mirItem("m", "With a dead enclosure", time.Now())
	p.Media = []post.Media{{URL: "https://gone.example/photo.jpg", MIMEType: "image/jpeg"}}
	src.Set(p)
	sink.FailMedia(errors.New("media 1 of 1: connection refused"))
	// The first run tries, and retries, with the media: quick retries
	// after a failure are no reason to drop them.
	res, err := tryRun(t, e, clk, r)
	if err == nil || sink.Calls(memsink.OpPublish) != 1+retry.Attempts || res.Retried != retry.Attempts {
		t.Fatalf("first run: err %v, %d attempts, %d retried", err, sink.Calls(memsink.OpPublish), res.Retried)
	}
	// The run after three failed attempts posts links instead.
	if _, err := tryRun(t, e, clk, r); err == nil {
		t.Fatal("the second run succeeded")
	}
	mirRun(t, e, clk, r)
	if got := sink.Texts(); len(got) != 1 || !strings.Contains(got[0], "https://gone.example/photo.jpg") {
		t.Fatalf("after repeated media failures: %q", got)
	}
}

// meetingSink is a Sink whose Publish returns only once two publishes are
// in progress together (or after two seconds, failing the post).
type meetingSink struct {
	*memsink.Sink
	mu   sync.Mutex
	in   int
	both chan struct{}
}

func (m *meetingSink) Publish(ctx context.Context, d sinks.Draft) (post.Ref, error) {
	m.mu.Lock()
	if m.in++; m.in == 2 {
		close(m.both)
	}
	m.mu.Unlock()
	select {
	case <-m.both:
	case <-time.After(2 * time.Second):
		return post.Ref{}, &sinks.PermanentError{Err: errors.New("published alone: the other route's publish never came")}
	}
	return m.Sink.Publish(ctx, d)
}

// Two routes posting to one account post at the same time: the account's
// lock only keeps them apart from the loop guard of routes reading it.
// (One at a time, a thousand feeds to one account queued the daemon's
// workers behind each other.)
func TestRoutesPostToOneAccountTogether(t *testing.T) {
	e, _, _ := newEngine(t, bridge.Options{})
	sink := &meetingSink{Sink: memsink.New(), both: make(chan struct{})}
	var routes []*bridge.Route
	for i := range 2 {
		src := memsource.New()
		r := mirFeedRoute(fmt.Sprintf("feed-%d", i), src, sink)
		if _, err := e.Run(t.Context(), r); err != nil { // the first run: nothing yet
			t.Fatal(err)
		}
		src.Add(mirItem(fmt.Sprintf("a%d", i), fmt.Sprintf("item %d", i), time.Now()))
		routes = append(routes, r)
	}
	errs := make(chan error, 2)
	for _, r := range routes {
		go func() { _, err := e.Run(context.Background(), r); errs <- err }()
	}
	for range routes {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := sink.Count(); n != 2 {
		t.Errorf("%d posts, want 2", n)
	}
}
