package bridge_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/sinks/memsink"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/sources/memsource"
)

// Options.Applied hears of every step a sink carried out or refused, with
// the origin's creation time for the lag.
func TestEngineTellsAppliedSteps(t *testing.T) {
	var mu sync.Mutex
	var got []bridge.Applied
	e, _, clk := newEngine(t, bridge.Options{Applied: func(a bridge.Applied) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, a)
	}})
	src, sink := memsource.New(), memsink.New()
	r := &bridge.Route{Name: "acct", Kind: bridge.KindAccount, Source: src, SourceAccount: "me@src.example",
		Sinks: []bridge.Target{{Account: "me@sink.example", Sink: sink}}}
	mirRun(t, e, clk, r)

	made := clk.Now().Add(-time.Minute)
	p := post.Post{OriginID: "1", Text: "first", Visibility: post.Public, CreatedAt: made}
	src.Set(p)
	mirRun(t, e, clk, r)
	p.Text, p.EditedAt = "first, edited", clk.Now()
	src.Set(p)
	mirRun(t, e, clk, r)
	if _, err := e.Handle(context.Background(), r, sources.Event{Kind: sources.Deleted, Post: post.Post{OriginID: "1"}}); err != nil {
		t.Fatal(err)
	}
	sink.Fail(memsink.OpPublish, memsink.Fault{Err: &sinks.PermanentError{Err: mirPermanent{}}})
	src.Set(post.Post{OriginID: "2", Text: "refused", Visibility: post.Public, CreatedAt: clk.Now()})
	mirRun(t, e, clk, r)

	mu.Lock()
	defer mu.Unlock()
	var kinds []string
	for _, a := range got {
		kinds = append(kinds, fmt.Sprintf("%s %s %s refused=%v", a.Route, a.Sink, a.Kind, a.Refused))
	}
	want := []string{
		"acct me@sink.example publish refused=false",
		"acct me@sink.example edit refused=false",
		"acct me@sink.example delete refused=false",
		"acct me@sink.example publish refused=true",
	}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("applied steps:\n%q\nwant\n%q", kinds, want)
	}
	if !got[0].OriginAt.Equal(made) || got[0].At.Sub(got[0].OriginAt) < time.Minute {
		t.Errorf("the publish's times: origin %v, at %v", got[0].OriginAt, got[0].At)
	}
}
