package schedule

import "time"

// Outcome is how a run ended, as far as scheduling cares.
type Outcome int

// The outcomes of a run.
const (
	// OK: the run succeeded.
	OK Outcome = iota
	// Transient: it failed for a reason that may pass by itself (a 5xx,
	// a 429, a reset connection, a timeout); try again soon.
	Transient
	// Permanent: it failed for a reason that repeating will not fix
	// (a revoked token, a refused request); back off hard.
	Permanent
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Transient:
		return "transient"
	}
	return "permanent"
}

// Back-off bounds.
const (
	// TransientBase is the wait after a first transient failure; it
	// doubles with each further one.
	TransientBase = 30 * time.Second
	// MaxBackoff caps the wait after repeated failures of any kind.
	MaxBackoff = 6 * time.Hour
)

// Run is what the next-run rule needs to know about the run that ended.
type Run struct {
	// Start and End are when the run began and ended. Start may be zero
	// (unknown): the schedule then counts from End.
	Start, End time.Time
	Outcome    Outcome
	// RetryAfter is how long the server asked to be left alone
	// (Retry-After, a rate-limit reset); 0 = it did not say.
	RetryAfter time.Duration
	// Failures counts consecutive failed runs, this one included; 0 after
	// a success.
	Failures int
	// Wait is the source's earliest next poll (sources.Page.Wait); 0 =
	// the schedule's.
	Wait time.Duration
	// Jitter, in [-1, 1], spreads back-offs by up to ±20 % so that many
	// failing routes do not retry in step; 0 = exact.
	Jitter float64
	// Key names what ran (a route, a job). On an interval schedule the
	// successful runs of a key fall on a grid of its own: one run per
	// interval, at an offset within it drawn from a hash of the key. Many
	// routes on one interval so spread evenly over it instead of running
	// in step (all started together when the daemon started), as
	// Prometheus spreads its scrapes; and a run that started late does not
	// push the runs after it later. "" = no grid: the interval counts from
	// the run's start.
	Key string
}

// Next returns when work on schedule s runs again after r:
//
//   - after a success, at the schedule's next time counted from the run's
//     start, so "every 15m" starts a run every 15 minutes however long
//     each takes (as cron and systemd timers do); on an interval with a
//     Key, at the key's grid point nearest to that time (at least half an
//     interval after the start); a run that lasted past that time is
//     followed after the schedule's time counted from its end (its grid
//     point at least half an interval after the end), never at once; and
//     no sooner than the source asked (Wait);
//   - after a permanent failure, the schedule's interval (at least a
//     minute) doubled per consecutive failure;
//   - after a transient failure, TransientBase doubled per consecutive
//     failure, never longer than a permanent failure would wait;
//
// failures capped at MaxBackoff, jittered, and never sooner than the
// server's RetryAfter nor than the source's Wait.
func Next(s Schedule, r Run) time.Time {
	next := s.Next(r.End)
	if r.Outcome == OK {
		if e, ok := s.(every); ok && r.Key != "" {
			from := r.Start
			if from.IsZero() {
				from = r.End
			}
			next = e.onGrid(r.Key, from.Add(time.Duration(e)/2))
			if !next.After(r.End) {
				next = e.onGrid(r.Key, r.End.Add(time.Duration(e)/2))
			}
		} else if !r.Start.IsZero() {
			if n := s.Next(r.Start); n.After(r.End) {
				next = n
			}
		}
		return later(next, r.End.Add(r.Wait))
	}
	n := max(r.Failures, 1)
	perm := doubled(max(next.Sub(r.End), time.Minute), n)
	back := perm
	if r.Outcome == Transient {
		back = min(doubled(TransientBase, n), perm)
	}
	back = time.Duration(float64(back) * (1 + 0.2*max(-1, min(r.Jitter, 1))))
	return later(r.End.Add(back), r.End.Add(max(r.RetryAfter, r.Wait)))
}

// doubled is d doubled n-1 times, capped at MaxBackoff.
func doubled(d time.Duration, n int) time.Duration {
	for i := 1; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
