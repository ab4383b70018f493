package daemon_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/daemon"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/schedule"
	"github.com/fedi-ferry/ferry/sinks/memsink"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/sources/memsource"
	"github.com/fedi-ferry/ferry/state"
	"github.com/fedi-ferry/ferry/state/bridgestore"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestLeasedStream: two daemons sharing a PostgreSQL database follow a
// streaming route's source one at a time (the stream lease); when the one
// streaming stops, the other takes the stream over, and every streamed
// post is mirrored once. Real clock, real PostgreSQL, in-memory source and
// sink.
func TestLeasedStream(t *testing.T) {
	url := testenv.PostgresDB(t)
	src, sink := memsource.New(), memsink.New()
	route := &bridge.Route{Name: "acct", Kind: bridge.KindAccount, Source: src,
		Sinks: []bridge.Target{{Account: "me@sink.example", Sink: sink}}}
	sched, err := schedule.Parse("1h")
	if err != nil {
		t.Fatal(err)
	}
	const ttl = 3 * time.Second
	type running struct {
		st     *state.Store
		cancel context.CancelFunc
		done   chan error
	}
	startD := func(holder string) *running {
		st := state.TestStoreAt(t, url)
		ctx, cancel := context.WithCancel(context.Background())
		r := &running{st: st, cancel: cancel, done: make(chan error, 1)}
		go func() {
			r.done <- daemon.Run(ctx, daemon.Options{Store: st, Engine: bridge.New(bridgestore.New(st), bridge.Options{}),
				Tick: 200 * time.Millisecond, Holder: holder, LeaseTTL: ttl,
				Load: func(context.Context) (daemon.Config, error) {
					return daemon.Config{Routes: []daemon.Route{{Route: route, Schedule: sched, Spec: "1h", Stream: true}}}, nil
				}})
		}()
		t.Cleanup(func() { cancel(); <-r.done })
		return r
	}
	a, b := startD("A"), startD("B")
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	holderOf := func(name string) string {
		ls, err := a.st.Leases(context.Background(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.Name == name {
				return l.Holder
			}
		}
		return ""
	}
	eventually("the first run", func() bool { r, _ := a.st.BridgeRoute(t.Context(), "acct"); return r.Started })
	eventually("a stream", func() bool { return src.Streams() == 1 })
	// Several lease periods: still one stream, held by one daemon.
	time.Sleep(2 * ttl)
	if n := src.Streams(); n != 1 {
		t.Fatalf("%d streams with two daemons; want one", n)
	}
	first := holderOf("stream/acct")
	if first != "A" && first != "B" {
		t.Fatalf("stream lease held by %q", first)
	}
	push := func(id string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := src.Push(ctx, sources.Event{Kind: sources.Created, Post: post.Post{OriginID: id, Text: "streamed " + id,
			URL: "https://example.org/" + id, CreatedAt: time.Now()}}); err != nil {
			t.Fatalf("push %s: %v", id, err)
		}
	}
	push("s1")
	eventually("s1 mirrored", func() bool { return sink.Count() == 1 })

	// The streaming daemon stops; the other takes the stream over.
	stopping, other := a, "B"
	if first == "B" {
		stopping, other = b, "A"
	}
	stopping.cancel()
	if err := <-stopping.done; err != nil {
		t.Fatal(err)
	}
	stopping.done <- nil // for the cleanup
	eventually("the other daemon's stream", func() bool { return src.Streams() == 2 && holderOf("stream/acct") == other })
	push("s2")
	eventually("s2 mirrored", func() bool { return sink.Count() == 2 })
	time.Sleep(500 * time.Millisecond)
	if n := sink.Count(); n != 2 {
		t.Fatalf("%d copies of 2 streamed posts", n)
	}
	if h := holderOf("daemon/" + first); h != "" {
		t.Errorf("the stopped daemon's own lease is still held by %q", h)
	}
}

// TestLeasedRefill: a leased daemon whose runs end quickly starts the
// routes still due soon after, not at its next tick. Before, it refilled
// its workers once per tick: with 2 workers and a 10 s tick, 20 due routes
// took 100 s (the PostgreSQL benchmark's 3 daemons × 32 workers ran
// exactly 96 routes a second however many were due).
func TestLeasedRefill(t *testing.T) {
	st := state.TestStoreAt(t, testenv.PostgresDB(t))
	src, sink := memsource.New(), memsink.New()
	sched, err := schedule.Parse("1h")
	if err != nil {
		t.Fatal(err)
	}
	var routes []daemon.Route
	for i := range 20 {
		r := &bridge.Route{Name: fmt.Sprintf("r%02d", i), Kind: bridge.KindAccount, Source: src,
			Sinks: []bridge.Target{{Account: "me@sink.example", Sink: sink}}}
		routes = append(routes, daemon.Route{Route: r, Schedule: sched, Spec: "1h"})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{Store: st, Engine: bridge.New(bridgestore.New(st), bridge.Options{}),
			Tick: 10 * time.Second, Workers: 2, Holder: "A", LeaseTTL: 30 * time.Second,
			Load: func(context.Context) (daemon.Config, error) { return daemon.Config{Routes: routes}, nil }})
	}()
	defer func() { cancel(); <-done }()
	start := time.Now()
	for {
		rs, err := st.BridgeRoutes(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		ran := 0
		for _, r := range rs {
			if !r.LastRunAt.IsZero() {
				ran++
			}
		}
		if ran == len(routes) {
			t.Logf("%d routes ran on 2 workers in %s (tick 10s)", ran, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > 8*time.Second {
			t.Fatalf("%d of %d due routes ran in 8s on 2 workers: the workers wait for the next tick", ran, len(routes))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
