package daemon_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/daemon"
	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/fakemastodon"
	"github.com/fedi-ferry/ferry/schedule"
	"github.com/fedi-ferry/ferry/sinks/memsink"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/sources/mastodon"
	"github.com/fedi-ferry/ferry/state"
	"github.com/fedi-ferry/ferry/state/bridgestore"
)

// countingStreamer counts how often the daemon opens the stream.
type countingStreamer struct {
	*mastodon.Source
	opens atomic.Int32
}

func (c *countingStreamer) Stream(ctx context.Context, events chan<- sources.Event) error {
	c.opens.Add(1)
	return c.Source.Stream(ctx, events)
}

// syncBuffer is a log destination safe for the daemon's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// A server that advertises streaming but answers its WebSocket with 404
// (snac2, Hollo): the daemon says so once and polls on the schedule
// instead of reconnecting (and polling after each reconnect) forever.
func TestDaemonNoStreamingAPI(t *testing.T) {
	srv := fakemastodon.Start(fakemastodon.Config{Software: "snac", Quirks: fakemastodon.Quirks{NoStreaming: true}})
	defer srv.Close()
	_, token := srv.AddAccount("alice")
	base, err := fedi.ParseServer(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	hc, _ := fedi.NewHTTPClient(fedi.HTTPOptions{})
	src := &countingStreamer{Source: mastodon.New(mastodon.Options{Client: fedi.NewClient(base, token, hc)})}

	clk := clockwork.NewFakeClockAt(time.Now().Add(time.Minute))
	st := state.TestStore(t)
	var logs syncBuffer
	route := &bridge.Route{Name: "alice", Kind: bridge.KindAccount, Source: src,
		Sinks: []bridge.Target{{Account: "me@sink.example", Sink: memsink.New()}}}
	sched, _ := schedule.Parse("15m")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{
			Store: st, Engine: bridge.New(bridgestore.New(st), bridge.Options{Clock: clk}), Clock: clk, Tick: tick,
			Grace: time.Minute, Jitter: func() float64 { return 0 }, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			Load: func(ctx context.Context) (daemon.Config, error) {
				return daemon.Config{Routes: []daemon.Route{{Route: route, Schedule: sched, Spec: "15m", Stream: true}}}, nil
			},
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon.Run: %v", err)
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for src.opens.Load() == 0 || !strings.Contains(logs.String(), "no streaming API") {
		if time.Now().After(deadline) {
			t.Fatalf("no stream attempt or no message; log:\n%s", logs.String())
		}
		// Move the fake clock through the reconnect back-off a
		// stream that merely failed would get.
		clk.Advance(time.Second)
		time.Sleep(10 * time.Millisecond)
	}
	for range 40 {
		clk.Advance(time.Second)
		time.Sleep(10 * time.Millisecond)
	}
	if n := src.opens.Load(); n != 1 {
		t.Errorf("the stream was opened %d times; want once", n)
	}
	if l := logs.String(); strings.Count(l, "no streaming API; polling every 15m") != 1 || strings.Contains(l, "stream ended") {
		t.Errorf("log:\n%s", l)
	}
}
