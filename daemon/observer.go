package daemon

import (
	"time"

	"github.com/fedi-ferry/ferry/schedule"
)

// Observer is told what the daemon does, for monitoring: a health check,
// metrics. observe.Metrics implements it. Its methods are called from the
// loop and from workers at the same time, so they must be safe for
// concurrent use, and quick: the daemon waits for them.
type Observer interface {
	// Heartbeat is called by the loop each time it looks for due work
	// (every Options.Tick), after the look; at is the daemon clock's
	// time. A heartbeat that stops coming means the loop is stuck.
	Heartbeat(at time.Time)
	// Ran is called after each run of a route or job, with how it ended.
	Ran(name string, outcome schedule.Outcome)
	// EventFailed is called when mirroring a streamed post failed (a
	// poll retries it); successful events are counted by the engine.
	EventFailed(route string, outcome schedule.Outcome)
	// StreamOpened is called when the daemon connects a route's stream;
	// reconnect is set for every connection after the route's first.
	StreamOpened(route string, reconnect bool)
	// StreamClosed is called when that connection ends.
	StreamClosed(route string)
}

// nopObserver is the Observer of a daemon nobody watches.
type nopObserver struct{}

func (nopObserver) Heartbeat(time.Time)                  {}
func (nopObserver) Ran(string, schedule.Outcome)         {}
func (nopObserver) EventFailed(string, schedule.Outcome) {}
func (nopObserver) StreamOpened(string, bool)            {}
func (nopObserver) StreamClosed(string)                  {}
