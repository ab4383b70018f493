package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/daemon"
	"github.com/fedi-ferry/ferry/schedule"
	"github.com/fedi-ferry/ferry/sinks/memsink"
	"github.com/fedi-ferry/ferry/sources"
)

// recorder is a daemon.Observer (and engine Applied hook) that writes
// down what it is told, in order.
type recorder struct {
	mu     sync.Mutex
	beats  []time.Time
	events []string
}

func (r *recorder) add(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, a...))
}

func (r *recorder) Heartbeat(at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.beats = append(r.beats, at)
}
func (r *recorder) Ran(name string, o schedule.Outcome) { r.add("ran %s %s", name, o) }
func (r *recorder) EventFailed(route string, o schedule.Outcome) {
	r.add("event failed %s %s", route, o)
}
func (r *recorder) StreamOpened(route string, reconnect bool) {
	r.add("stream opened %s reconnect=%v", route, reconnect)
}
func (r *recorder) StreamClosed(route string) { r.add("stream closed %s", route) }
func (r *recorder) Applied(a bridge.Applied) {
	r.add("applied %s %s %s refused=%v lag=%s", a.Route, a.Sink, a.Kind, a.Refused, a.At.Sub(a.OriginAt))
}

// count returns how many events equal e.
func (r *recorder) count(e string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, have := range r.events {
		if have == e {
			n++
		}
	}
	return n
}

func (r *recorder) lastBeat() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.beats) == 0 {
		return time.Time{}
	}
	return r.beats[len(r.beats)-1]
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprint(slices.Clone(r.events))
}

func TestDaemonTellsItsObserver(t *testing.T) {
	obs := &recorder{}
	g := startWatched(t, "1h", true, obs)
	g.started()
	if b := obs.lastBeat(); !b.Equal(g.clk.Now()) {
		t.Errorf("heartbeat at %v, want the fake clock's %v", b, g.clk.Now())
	}
	g.eventually("the stream", func() bool { return obs.count("stream opened blog reconnect=false") == 1 })
	g.eventually("the first run", func() bool { return obs.count("ran blog ok") == 1 })

	// A streamed post is applied, two seconds after it was made.
	p := g.item("s1")
	g.clk.Advance(2 * time.Second)
	if err := g.src.Push(t.Context(), sources.Event{Kind: sources.Created, Post: p}); err != nil {
		t.Fatal(err)
	}
	g.eventually("the streamed post", func() bool {
		return obs.count("applied blog me@sink.example publish refused=false lag=2s") == 1
	})

	// The stream drops and reconnects.
	g.src.EndStream()
	g.eventually("the stream's end", func() bool { return obs.count("stream closed blog") == 1 })
	g.waitClock(3)
	g.clk.Advance(time.Second)
	g.eventually("the reconnect", func() bool { return obs.count("stream opened blog reconnect=true") == 1 })

	// A streamed post that fails for now.
	g.sink.Fail(memsink.OpPublish, memsink.Fault{Err: bad502()})
	if err := g.src.Push(t.Context(), sources.Event{Kind: sources.Created, Post: g.item("s2")}); err != nil {
		t.Fatal(err)
	}
	g.eventually("the failed event", func() bool { return obs.count("event failed blog transient") == 1 })

	// The loop keeps beating as the clock moves.
	before := obs.lastBeat()
	g.advance(tick)
	g.eventually("a later heartbeat", func() bool { return obs.lastBeat().After(before) })
	t.Log(obs)
}

func TestDaemonTellsItsObserverOfJobs(t *testing.T) {
	obs := &recorder{}
	sched, _ := schedule.Parse("1h")
	job := daemon.Job{Name: "backup/daily", Schedule: sched, Spec: "1h",
		Run: func(ctx context.Context) error { return errors.New("export exited 1") }}
	startWatched(t, "15m", false, obs, job).eventually("the failed job", func() bool {
		return obs.count("ran backup/daily transient") == 1
	})
}
