package daemon_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/daemon"
	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/schedule"
	"github.com/fedi-ferry/ferry/sinks/memsink"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/sources/memsource"
	"github.com/fedi-ferry/ferry/state"
	"github.com/fedi-ferry/ferry/state/bridgestore"
)

// The daemon on a fake clock, with the real engine on a real SQLite store
// and an in-memory source and sink. The engine does not retry within a
// run here (bridge's tests cover that), so every failure reaches the
// daemon's back-off.

type rig struct {
	t      *testing.T
	clk    *clockwork.FakeClock
	st     *state.Store
	src    *memsource.Source
	sink   *memsink.Sink
	route  *bridge.Route
	loads  atomic.Int32
	reload chan struct{}
	stop   context.CancelFunc
	done   chan error
}

const tick = 10 * time.Second

// start runs a daemon with one feed route on schedule spec, plus jobs.
func start(t *testing.T, spec string, stream bool, jobs ...daemon.Job) *rig {
	t.Helper()
	return startWatched(t, spec, stream, nil, jobs...)
}

// startWatched is start with obs told of the daemon's and the engine's
// work (when not nil).
func startWatched(t *testing.T, spec string, stream bool, obs *recorder, jobs ...daemon.Job) *rig {
	t.Helper()
	// Ahead of the real clock: the store stamps "due now" with the real
	// time, which must not be in the fake clock's future.
	clk := clockwork.NewFakeClockAt(time.Now().Add(time.Minute))
	st := state.TestStore(t)
	g := &rig{t: t, clk: clk, st: st, src: memsource.New(), sink: memsink.New(), reload: make(chan struct{}), done: make(chan error, 1)}
	g.route = &bridge.Route{Name: "blog", Kind: bridge.KindFeed, Source: g.src,
		Sinks: []bridge.Target{{Account: "me@sink.example", Sink: g.sink}}}
	sched, err := schedule.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	bo := bridge.Options{Clock: clk, Retry: bridge.Retry{Total: time.Nanosecond}}
	var observer daemon.Observer
	if obs != nil {
		bo.Applied, observer = obs.Applied, obs
	}
	eng := bridge.New(bridgestore.New(st), bo)
	ctx, cancel := context.WithCancel(context.Background())
	g.stop = cancel
	go func() {
		g.done <- daemon.Run(ctx, daemon.Options{
			Store: st, Engine: eng, Clock: clk, Tick: tick, Grace: time.Minute, Observer: observer,
			Jitter: func() float64 { return 0 },
			Reload: g.reload,
			Load: func(ctx context.Context) (daemon.Config, error) {
				g.loads.Add(1)
				return daemon.Config{Jobs: jobs,
					Routes: []daemon.Route{{Route: g.route, Schedule: sched, Spec: spec, Stream: stream}}}, nil
			},
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-g.done; err != nil {
			t.Errorf("daemon.Run: %v", err)
		}
	})
	// Ready when its two tickers (runs, maintenance) wait on the clock.
	g.waitClock(2)
	return g
}

// waitClock waits (in real time) until n timers or tickers wait on the clock.
func (g *rig) waitClock(n int) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.clk.BlockUntilContext(ctx, n); err != nil {
		g.t.Fatalf("waiting for %d clock waiters: %v", n, err)
	}
}

// eventually waits (in real time) for cond.
func (g *rig) eventually(what string, cond func() bool) {
	g.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			g.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// advance moves the fake clock past d in tick-sized steps, letting each
// tick's claims land.
func (g *rig) advance(d time.Duration) {
	g.t.Helper()
	for d > 0 {
		step := min(d, tick)
		g.clk.Advance(step)
		d -= step
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *rig) state() state.BridgeRoute {
	g.t.Helper()
	r, err := g.st.BridgeRoute(context.Background(), g.route.Name)
	if err != nil {
		g.t.Fatal(err)
	}
	return r
}

func (g *rig) item(id string) post.Post {
	return post.Post{OriginID: id, Title: "Item " + id, Text: "body " + id, URL: "https://blog.example/" + id, CreatedAt: g.clk.Now()}
}

func bad502() error {
	return &fedi.APIError{Method: "POST", URL: "https://sink.example/api/v1/statuses", Status: 502, Message: "Bad Gateway"}
}

// after the route's first run (which records existing posts as seen).
func (g *rig) started() {
	g.t.Helper()
	g.eventually("the first run", func() bool { s := g.state(); return s.Started && !s.LastRunAt.IsZero() })
}

// toNextRun moves the clock to the route's recorded next run, and a tick
// past it.
func (g *rig) toNextRun() {
	g.t.Helper()
	g.advance(g.state().NextRunAt.Sub(g.clk.Now()) + tick)
}

func TestDaemonRunsRoutesOnTheirSchedule(t *testing.T) {
	g := start(t, "15m", false)
	g.started()
	g.src.Add(g.item("a"))
	// After the first run (at once), the route's own point of the 15
	// minutes (schedule.Run.Key): half an interval to one and a half on.
	s := g.state()
	if gap := s.NextRunAt.Sub(s.LastRunAt); gap < 15*time.Minute/2 || gap >= 3*15*time.Minute/2 {
		t.Fatalf("second run %v after the first, want within [7m30s, 22m30s)", gap)
	}
	g.advance(s.NextRunAt.Sub(g.clk.Now()) - time.Minute)
	if g.sink.Count() != 0 {
		t.Fatal("the route ran before its schedule")
	}
	g.advance(time.Minute + tick)
	g.eventually("the new item posted", func() bool { return g.sink.Count() == 1 })
	// From then on, every 15 minutes.
	if s2 := g.state(); s2.FailCount != 0 || !s2.NextRunAt.Equal(s.NextRunAt.Add(15*time.Minute)) {
		t.Errorf("after the run: next %s, want %s (%+v)", s2.NextRunAt, s.NextRunAt.Add(15*time.Minute), s2)
	}
}

// A source asking to be left alone (a feed's ttl) is polled no sooner.
func TestDaemonHonoursTheSourcesWait(t *testing.T) {
	g := start(t, "15m", false)
	g.src.SetWait(time.Hour)
	g.started()
	// The first run may have fetched before the wait was set; the run
	// after it cannot have.
	if s := g.state(); s.NextRunAt.Sub(s.LastRunAt) < time.Hour {
		g.toNextRun()
		g.eventually("a run that honours the source's hour", func() bool {
			s := g.state()
			return s.LastRunAt.After(g.clk.Now().Add(-time.Minute)) && s.NextRunAt.Sub(s.LastRunAt) >= time.Hour
		})
	}
}

// Issue: a transient failure must not park a route for its interval
// doubled; it is tried again within seconds, backing off while the
// failures continue, and a success resets the back-off.
func TestDaemonTransientFailureBacksOffInSeconds(t *testing.T) {
	g := start(t, "15m", false)
	g.started()
	g.src.Add(g.item("a"))
	g.sink.Fail(memsink.OpPublish, memsink.Fault{Err: bad502()}, memsink.Fault{Err: bad502(), Done: true})

	g.toNextRun()
	g.eventually("the first failure", func() bool { return g.state().FailCount == 1 })
	s := g.state()
	if !s.Transient || s.LastError == "" {
		t.Fatalf("not recorded as transient: %+v", s)
	}
	if d := s.NextRunAt.Sub(g.clk.Now()); d < 20*time.Second || d > 30*time.Second {
		t.Fatalf("next try in %v, want about 30s", d)
	}
	// The second attempt makes the post but loses the answer: 60s more.
	g.advance(30 * time.Second)
	g.eventually("the second failure", func() bool { return g.state().FailCount == 2 })
	if d := g.state().NextRunAt.Sub(g.clk.Now()); d < 50*time.Second || d > 60*time.Second {
		t.Fatalf("next try in %v, want about 60s", d)
	}
	// The third finds the post the second made, and posts nothing again.
	g.advance(time.Minute)
	g.eventually("the recovery", func() bool { return g.state().FailCount == 0 })
	if g.sink.Count() != 1 || g.sink.Calls(memsink.OpPublish) != 2 {
		t.Fatalf("%d posts after %d publishes", g.sink.Count(), g.sink.Calls(memsink.OpPublish))
	}
	// Back on the schedule: the route's point of the 15 minutes, at least
	// half of them away.
	if s := g.state(); s.Transient || s.LastError != "" || s.NextRunAt.Sub(s.LastRunAt) < 15*time.Minute/2 {
		t.Errorf("after the recovery: %+v", s)
	}
}

// A permanent failure keeps the interval back-off.
func TestDaemonPermanentFailureBacksOffByTheInterval(t *testing.T) {
	g := start(t, "15m", false)
	g.started()
	g.src.FailFetch(&fedi.APIError{Method: "GET", Status: 401, Message: "token revoked"})
	g.toNextRun()
	g.eventually("the failure", func() bool { return g.state().FailCount == 1 })
	s := g.state()
	if s.Transient {
		t.Error("a 401 recorded as transient")
	}
	if d := s.NextRunAt.Sub(g.clk.Now()); d < 14*time.Minute {
		t.Errorf("next try in %v after a permanent failure", d)
	}
}

func TestDaemonStreamsAndReconnects(t *testing.T) {
	g := start(t, "1h", true)
	g.started()
	g.eventually("the stream", func() bool { return g.src.Streams() == 1 })
	if err := g.src.Push(t.Context(), sources.Event{Kind: sources.Created, Post: g.item("s1")}); err != nil {
		t.Fatal(err)
	}
	g.eventually("the streamed post", func() bool { return g.sink.Count() == 1 })

	// The stream drops: reconnect after a second, and poll to catch up.
	g.src.EndStream()
	g.waitClock(3) // two tickers and the reconnect wait
	lastRun := g.state().LastRunAt
	g.clk.Advance(time.Second)
	g.eventually("the reconnect", func() bool { return g.src.Streams() == 2 })
	g.advance(tick)
	g.eventually("the catch-up poll", func() bool { return g.state().LastRunAt.After(lastRun) })

	// A streamed post that fails for now is recorded as a transient
	// failure: the route is polled again within seconds.
	g.sink.Fail(memsink.OpPublish, memsink.Fault{Err: bad502()})
	if err := g.src.Push(t.Context(), sources.Event{Kind: sources.Created, Post: g.item("s2")}); err != nil {
		t.Fatal(err)
	}
	g.eventually("the failure", func() bool { return g.state().FailCount == 1 })
	if s := g.state(); !s.Transient || s.NextRunAt.Sub(g.clk.Now()) > 30*time.Second {
		t.Fatalf("after a failed streamed post: %+v", s)
	}
	g.advance(30*time.Second + tick)
	g.eventually("the journaled step applied by the poll", func() bool { return g.sink.Count() == 2 })
}

func TestDaemonReloads(t *testing.T) {
	g := start(t, "15m", false)
	g.reload <- struct{}{}
	g.eventually("the reload", func() bool { return g.loads.Load() == 2 })
}

func TestDaemonRunsJobs(t *testing.T) {
	var runs atomic.Int32
	sched, _ := schedule.Parse("1h")
	job := daemon.Job{Name: "backup/daily", Schedule: sched, Spec: "1h", Run: func(ctx context.Context) error {
		if runs.Add(1) == 1 {
			return errors.New("export exited 1")
		}
		return nil
	}}
	g := start(t, "15m", false, job)
	g.eventually("the job", func() bool { return runs.Load() == 1 })
	var st state.BridgeRoute
	g.eventually("its record", func() bool {
		st, _ = g.st.BridgeRoute(context.Background(), "backup/daily")
		return st.FailCount == 1
	})
	// An untyped error is transient: tried again within seconds.
	if d := st.NextRunAt.Sub(g.clk.Now()); d > 30*time.Second {
		t.Errorf("job retried in %v", d)
	}
	g.advance(30*time.Second + tick)
	g.eventually("the retry", func() bool { return runs.Load() == 2 })
}

// Shutdown lets a run in progress finish.
func TestDaemonDrainsOnShutdown(t *testing.T) {
	release := make(chan struct{})
	var finished atomic.Bool
	sched, _ := schedule.Parse("1h")
	job := daemon.Job{Name: "slow", Schedule: sched, Spec: "1h", Run: func(ctx context.Context) error {
		<-release
		finished.Store(true)
		return ctx.Err()
	}}
	g := start(t, "15m", false, job)
	g.started()
	g.stop()
	time.Sleep(50 * time.Millisecond)
	select {
	case <-g.done:
		t.Fatal("Run returned with a job in progress")
	default:
	}
	close(release)
	err := <-g.done
	g.done <- err // for the cleanup
	if !finished.Load() {
		t.Error("the job did not finish")
	}
}

// `ferry mirror` runs a route once: a route backing off after a transient
// failure is left alone until its retry time (seconds later), not for its
// interval; --route forces it.
func TestOnceBacksOffLikeTheDaemon(t *testing.T) {
	ctx := context.Background()
	clk := clockwork.NewFakeClockAt(time.Now())
	st := state.TestStore(t)
	eng := bridge.New(bridgestore.New(st), bridge.Options{Clock: clk, Retry: bridge.Retry{Total: time.Nanosecond}})
	src, sink := memsource.New(), memsink.New()
	sched, _ := schedule.Parse("15m")
	r := daemon.Route{Schedule: sched, Route: &bridge.Route{Name: "blog", Kind: bridge.KindFeed, Source: src,
		Sinks: []bridge.Target{{Account: "me@sink.example", Sink: sink}}}}
	if p, err := daemon.Once(ctx, st, eng, r, false, clk); err != nil || p.Err != nil || !p.Result.Baseline {
		t.Fatalf("first run: %+v, %v", p, err)
	}
	src.Add(post.Post{OriginID: "a", Title: "A", Text: "a", URL: "https://blog.example/a", CreatedAt: clk.Now()})
	sink.Fail(memsink.OpPublish, memsink.Fault{Err: bad502()})
	p, err := daemon.Once(ctx, st, eng, r, false, clk)
	if err != nil || p.Err == nil || p.Outcome != schedule.Transient {
		t.Fatalf("the 502: %+v, %v", p, err)
	}
	if d := p.Next.Sub(clk.Now()); d < 20*time.Second || d > 40*time.Second {
		t.Fatalf("retry in %v", d)
	}
	if p, _ := daemon.Once(ctx, st, eng, r, false, clk); p.BackingOff.IsZero() || sink.Calls(memsink.OpPublish) != 1 {
		t.Fatalf("ran again at once: %+v", p)
	}
	clk.Advance(time.Minute)
	if p, err := daemon.Once(ctx, st, eng, r, false, clk); err != nil || p.Err != nil || sink.Count() != 1 {
		t.Fatalf("a minute later: %+v, %v, %d posts", p, err, sink.Count())
	}
	sink.Fail(memsink.OpPublish, memsink.Fault{Err: bad502()})
	src.Add(post.Post{OriginID: "b", Title: "B", Text: "b", URL: "https://blog.example/b", CreatedAt: clk.Now()})
	daemon.Once(ctx, st, eng, r, false, clk)
	if p, _ := daemon.Once(ctx, st, eng, r, true, clk); !p.BackingOff.IsZero() || p.Err != nil || sink.Count() != 2 {
		t.Fatalf("forced: %+v, %d posts", p, sink.Count())
	}
}
