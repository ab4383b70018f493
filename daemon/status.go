package daemon

import (
	"context"
	"time"

	"github.com/fedi-ferry/ferry/config"
)

// RouteState is what the store keeps of a route (or job) by name: its
// schedule, its last runs and their outcome, and what it mirrored.
type RouteState struct {
	Name                           string
	Paused                         bool
	Schedule                       string // as last given
	NextRunAt, LastRunAt, LastOKAt time.Time
	LastError                      string
	Transient                      bool      // LastError may pass by itself
	FailCount                      int       // runs failed in a row
	NewestAt                       time.Time // creation time of the newest origin post handled
	Posted                         int
	Failed                         int
	// Holder is the daemon holding the route's run lease, and
	// LeaseExpires when that lease ends unless renewed ("" and zero when
	// no daemon runs the route now, and always on SQLite).
	Holder       string
	LeaseExpires time.Time
}

// StatusStore reads the stored state of every route and job, by name
// (bridgestore implements it on ferry's store).
type StatusStore interface {
	RouteStates(ctx context.Context) ([]RouteState, error)
}

// RouteStatus is one route's (or job's) state as `ferry status` shows it.
type RouteStatus struct {
	Route      string     `json:"route"`
	Configured bool       `json:"configured"`
	Paused     bool       `json:"paused,omitempty"`
	Schedule   string     `json:"schedule,omitempty"`
	LastRun    *time.Time `json:"last_run,omitempty"`
	LastOK     *time.Time `json:"last_ok,omitempty"`
	NextRun    *time.Time `json:"next_run,omitempty"`
	// LagSeconds is how long ago the newest origin post handled was made:
	// with a busy source, how far behind the mirror is.
	LagSeconds *int64 `json:"lag_seconds,omitempty"`
	Mirrored   int    `json:"mirrored"`
	Failed     int    `json:"failed"`
	Failures   int    `json:"consecutive_failures"`
	LastError  string `json:"last_error,omitempty"`
	// Transient reports that LastError may pass by itself (a server
	// error, a rate limit, a network failure): NextRun is then a retry
	// within seconds or minutes, not the schedule.
	Transient bool `json:"last_error_transient,omitempty"`
	// Holder is the daemon running the route now (PostgreSQL, where many
	// daemons share the routes), and LeaseExpires when its lease ends
	// unless renewed.
	Holder       string     `json:"holder,omitempty"`
	LeaseExpires *time.Time `json:"lease_expires,omitempty"`
}

// Status returns the state of every stored route and job, by name, then
// of the routes cfg configures that have not run yet. cfg may be nil (the
// file could not be read): every stored route is then reported as not
// configured. now is the time lags are measured to.
func Status(ctx context.Context, st StatusStore, cfg *config.Config, now time.Time) ([]RouteStatus, error) {
	configured := map[string]config.RouteSpec{}
	if cfg != nil {
		for _, r := range cfg.Routes {
			configured[r.Route.Name] = r
		}
	}
	stored, err := st.RouteStates(ctx)
	if err != nil {
		return nil, err
	}
	out := []RouteStatus{}
	have := map[string]bool{}
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	for _, r := range stored {
		spec, ok := configured[r.Name]
		rs := RouteStatus{Route: r.Name, Configured: ok, Paused: spec.Paused || r.Paused, Schedule: r.Schedule,
			LastRun: opt(r.LastRunAt), LastOK: opt(r.LastOKAt), NextRun: opt(r.NextRunAt), Mirrored: r.Posted,
			Failed: r.Failed, Failures: r.FailCount, LastError: r.LastError, Transient: r.Transient,
			Holder: r.Holder, LeaseExpires: opt(r.LeaseExpires)}
		if ok && spec.Schedule != "" {
			rs.Schedule = spec.Schedule
		}
		if !r.NewestAt.IsZero() {
			lag := int64(now.Sub(r.NewestAt).Seconds())
			rs.LagSeconds = &lag
		}
		have[r.Name] = true
		out = append(out, rs)
	}
	if cfg != nil {
		for _, spec := range cfg.Routes {
			if !have[spec.Route.Name] {
				out = append(out, RouteStatus{Route: spec.Route.Name, Configured: true, Paused: spec.Paused, Schedule: spec.Schedule})
			}
		}
	}
	return out, nil
}
