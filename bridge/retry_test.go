package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/schedule"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/sinks/memsink"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/sources/feed"
	"github.com/fedi-ferry/ferry/sources/memsource"
)

// Transient failures (issue: one 502 must not end a route's pass) and
// lost answers (the post was made, the caller got an error).

func bad502() error {
	return &fedi.APIError{Method: "POST", URL: "https://sink.example/api/v1/statuses", Status: 502, Message: "Bad Gateway"}
}

// retryLater is an error carrying a server's Retry-After.
type retryLater time.Duration

func (r retryLater) Error() string             { return "503 Service Unavailable" }
func (r retryLater) RetryAfter() time.Duration { return time.Duration(r) }

// started returns a feed route whose first run is done, on a new engine.
func started(t *testing.T, o bridge.Options) (*bridge.Engine, *memsource.Source, *memsink.Sink, *bridge.Route, func(*bridge.Route) (bridge.Result, error, time.Duration)) {
	t.Helper()
	e, _, clk := newEngine(t, o)
	src, sink := memsource.New(), memsink.New()
	r := mirFeedRoute("blog", src, sink)
	mirRun(t, e, clk, r)
	run := func(r *bridge.Route) (res bridge.Result, err error, took time.Duration) {
		took = onClock(t, clk, func() { res, err = e.Run(context.Background(), r) })
		return res, err, took
	}
	return e, src, sink, r, run
}

func TestEngineTransientFailureRetriedInTheRun(t *testing.T) {
	t.Parallel() // retries wait out the store\'s real in-flight grace
	_, src, sink, r, run := started(t, bridge.Options{})
	src.Set(mirItem("x", "X", time.Now()))
	sink.Fail(memsink.OpPublish, memsink.Fault{Err: bad502()})
	res, err, took := run(r)
	if err != nil {
		t.Fatalf("one 502 ended the run: %v", err)
	}
	if sink.Count() != 1 || res.Published != 1 || res.Retried != 1 {
		t.Fatalf("%d posts, published %d, retried %d", sink.Count(), res.Published, res.Retried)
	}
	// The retry was reconciled first: the sink was asked whether the
	// failed attempt had made the post.
	if sink.Calls(memsink.OpFind) != 1 || sink.Calls(memsink.OpPublish) != 2 {
		t.Errorf("find %d, publish %d", sink.Calls(memsink.OpFind), sink.Calls(memsink.OpPublish))
	}
	if took != time.Second {
		t.Errorf("paused %v before the retry, want 1s", took)
	}
}

func TestEngineLostAnswerRetriedThroughTheFinder(t *testing.T) {
	t.Parallel() // retries wait out the store\'s real in-flight grace
	_, src, sink, r, run := started(t, bridge.Options{})
	src.Set(mirItem("x", "X", time.Now()))
	// The server made the post; the answer was lost on the way back.
	sink.Fail(memsink.OpPublish, memsink.Fault{Err: bad502(), Done: true})
	res, err, _ := run(r)
	if err != nil {
		t.Fatal(err)
	}
	if sink.Count() != 1 || sink.Calls(memsink.OpPublish) != 1 || res.Published != 1 {
		t.Fatalf("%d posts after %d publishes: the retry posted blindly", sink.Count(), sink.Calls(memsink.OpPublish))
	}
	// The found copy is recorded: the next runs post nothing, an edit reaches it.
	run(r)
	x := mirItem("x", "X", time.Now())
	x.Text = "X body, edited"
	src.Set(x)
	if _, err, _ := run(r); err != nil || sink.Count() != 1 || sink.Calls(memsink.OpEdit) != 1 {
		t.Fatalf("after: err %v, %d posts, %d edits", err, sink.Count(), sink.Calls(memsink.OpEdit))
	}
}

func TestEngineRetriesAreBounded(t *testing.T) {
	t.Parallel() // retries wait out the store\'s real in-flight grace
	_, src, sink, r, run := started(t, bridge.Options{})
	src.Set(mirItem("x", "X", time.Now()))
	for range 5 {
		sink.Fail(memsink.OpPublish, memsink.Fault{Err: bad502()})
	}
	res, err, took := run(r)
	if err == nil {
		t.Fatal("five 502s in a row: no error")
	}
	if o, _ := bridge.Outcome(err); o != schedule.Transient {
		t.Errorf("outcome %v, want transient", o)
	}
	// 1 + 4 retries, pausing 1s, 2s, 4s, 8s.
	if sink.Calls(memsink.OpPublish) != 5 || res.Retried != 4 || took != 15*time.Second {
		t.Errorf("publish %d, retried %d, paused %v", sink.Calls(memsink.OpPublish), res.Retried, took)
	}
	// The step stays journaled; the next run posts it, once.
	if _, err, _ := run(r); err != nil || sink.Count() != 1 {
		t.Fatalf("next run: err %v, %d posts", err, sink.Count())
	}
}

func TestEngineRetryHonoursRetryAfter(t *testing.T) {
	t.Parallel() // retries wait out the store\'s real in-flight grace
	_, src, sink, r, run := started(t, bridge.Options{})
	src.Set(mirItem("x", "X", time.Now()))
	sink.Fail(memsink.OpPublish, memsink.Fault{Err: retryLater(5 * time.Second)})
	if _, err, took := run(r); err != nil || took != 5*time.Second || sink.Count() != 1 {
		t.Fatalf("err %v, paused %v, %d posts", err, took, sink.Count())
	}
	// A Retry-After beyond the bound ends the run at once, for the route's
	// back-off to honour.
	src.Set(mirItem("x", "X", time.Now()), mirItem("y", "Y", time.Now()))
	sink.Fail(memsink.OpPublish, memsink.Fault{Err: retryLater(10 * time.Minute)})
	_, err, took := run(r)
	if o, after := bridge.Outcome(err); o != schedule.Transient || after != 10*time.Minute || took != 0 {
		t.Fatalf("outcome %v after %v, paused %v (err %v)", o, after, took, err)
	}
}

func TestEnginePermanentFailureIsNotRetried(t *testing.T) {
	t.Parallel() // retries wait out the store\'s real in-flight grace
	_, src, sink, r, run := started(t, bridge.Options{})
	src.Set(mirItem("x", "X", time.Now()))
	sink.Fail(memsink.OpPublish, memsink.Fault{Err: &fedi.APIError{Method: "POST", Status: 422, Message: "text too long"}})
	res, err, took := run(r)
	if err != nil || res.Failed != 1 || res.Retried != 0 || took != 0 || sink.Calls(memsink.OpPublish) != 1 {
		t.Fatalf("err %v, failed %d, retried %d, paused %v", err, res.Failed, res.Retried, took)
	}
	if o, _ := bridge.Outcome(&fedi.APIError{Status: 401}); o != schedule.Permanent {
		t.Errorf("a 401 is %v", o)
	}
	if o, _ := bridge.Outcome(&sinks.PermanentError{Err: errors.New("no")}); o != schedule.Permanent {
		t.Errorf("a PermanentError is %v", o)
	}
	if o, _ := bridge.Outcome(fmt.Errorf("route blog: read the source: %w", &feed.StatusError{Status: 410})); o != schedule.Permanent {
		t.Errorf("a feed's 410 is %v", o)
	}
	if o, _ := bridge.Outcome(&feed.StatusError{Status: 502}); o != schedule.Transient {
		t.Errorf("a feed's 502 is %v", o)
	}
	if o, after := bridge.Outcome(&feed.RetryError{Status: 429, Wait: time.Minute}); o != schedule.Transient || after != time.Minute {
		t.Errorf("a feed's 429 is %v, after %v", o, after)
	}
	if o, _ := bridge.Outcome(nil); o != schedule.OK {
		t.Errorf("nil is %v", o)
	}
}

// A streamed post whose publish fails for now is retried the same way.
func TestEngineStreamedEventRetried(t *testing.T) {
	t.Parallel() // retries wait out the store\'s real in-flight grace
	e, _, clk := newEngine(t, bridge.Options{})
	src, sink := memsource.New(), memsink.New()
	r := &bridge.Route{Name: "acct", Kind: bridge.KindAccount, Source: src, SourceAccount: "me@src.example",
		Sinks: []bridge.Target{{Account: "me@sink.example", Sink: sink}}}
	mirRun(t, e, clk, r)
	sink.Fail(memsink.OpPublish, memsink.Fault{Err: bad502(), Done: true}, memsink.Fault{Err: bad502()})
	var res bridge.Result
	var err error
	onClock(t, clk, func() {
		res, err = e.Handle(context.Background(), r, sources.Event{Kind: sources.Created,
			Post: post.Post{OriginID: "9", Text: "streamed", Visibility: post.Public, CreatedAt: time.Now()}})
	})
	if err != nil || sink.Count() != 1 || res.Published != 1 {
		t.Fatalf("err %v, %d posts, published %d", err, sink.Count(), res.Published)
	}
}
