package daemon

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/schedule"
)

// Pass is what one run of a route came to.
type Pass struct {
	Result bridge.Result
	// Err is the run's error, classified by Outcome.
	Err     error
	Outcome schedule.Outcome
	// Next is when the route runs next, as recorded.
	Next time.Time
	// BackingOff, when not zero, is when a route still backing off after
	// failures will be tried again; it was not run.
	BackingOff time.Time
	// Waiting, when not zero, is until when the route's source asked to be
	// left alone (a feed's ttl); it was not run.
	Waiting time.Time
}

// Once runs the route r once outside the daemon's loop, as `ferry mirror`
// does, and records the run exactly as the daemon would (Record). Unless
// force is set, a route whose last run failed and whose retry time has
// not come is left alone (Pass.BackingOff): cron users get the same
// back-off as the daemon, seconds after a transient failure; so is a route
// whose source asked to be left alone for a while (Pass.Waiting: a feed's
// ttl, Cache-Control or Retry-After), as the daemon honours it. clk nil is
// the real clock. The error is the store's; the run's is Pass.Err.
func Once(ctx context.Context, st Store, eng Engine, r Route, force bool, clk clockwork.Clock) (Pass, error) {
	if clk == nil {
		clk = clockwork.NewRealClock()
	}
	if !force {
		at, err := st.BridgeRetryAt(ctx, r.Route.Name)
		if err != nil {
			return Pass{}, err
		}
		if at.After(clk.Now()) {
			return Pass{BackingOff: at}, nil
		}
		until, err := st.BridgeWaitUntil(ctx, r.Route.Name)
		if err != nil {
			return Pass{}, err
		}
		if until.After(clk.Now()) {
			return Pass{Waiting: until}, nil
		}
	}
	return once(ctx, st, eng, r, clk, 2*rand.Float64()-1)
}

// once runs r and records the run.
func once(ctx context.Context, st Store, eng Engine, r Route, clk clockwork.Clock, jitter float64) (Pass, error) {
	start := clk.Now()
	res, runErr := eng.Run(ctx, r.Route)
	p := Pass{Result: res, Err: runErr}
	p.Outcome, _ = bridge.Outcome(runErr)
	var err error
	p.Next, err = Record(ctx, st, r.Route.Name, r.Schedule, Ended{Start: start, End: clk.Now(), Wait: res.Wait, Err: runErr, Jitter: jitter})
	return p, err
}
