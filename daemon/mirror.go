package daemon

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/config"
	"github.com/fedi-ferry/ferry/schedule"
)

// RouteReport is one route's outcome of a pass of Mirror, as `ferry
// mirror` prints it.
type RouteReport struct {
	Route     string `json:"route"`
	New       int    `json:"new"`
	Published int    `json:"published"`
	Edited    int    `json:"edited"`
	Deleted   int    `json:"deleted"`
	Skipped   int    `json:"skipped"`
	Failed    int    `json:"failed"`
	FirstRun  bool   `json:"first_run,omitempty"`
	Capped    bool   `json:"capped,omitempty"`
	Paused    bool   `json:"paused,omitempty"`
	// BackingOff, when set, is when a failing route will be tried again.
	BackingOff time.Time `json:"backing_off_until,omitzero"`
	// Waiting, when set, is until when the route's source asked to be left
	// alone; the route was not run.
	Waiting time.Time `json:"waiting_until,omitzero"`
	Error   string    `json:"error,omitempty"`
	// Transient reports that Error may pass by itself; RetryAt is when
	// the route is tried again (by the next `ferry mirror` from then on).
	Transient bool          `json:"transient,omitempty"`
	RetryAt   time.Time     `json:"retry_at,omitzero"`
	Planned   []PlannedStep `json:"planned,omitempty"`
}

// PlannedStep is one step of a dry run.
type PlannedStep struct {
	Action     string `json:"action"`
	Sink       string `json:"sink"`
	Origin     string `json:"origin"`
	Part       int    `json:"part"`
	Visibility string `json:"visibility,omitempty"`
	CW         string `json:"cw,omitempty"`
	Text       string `json:"text,omitempty"`
	Media      int    `json:"media,omitempty"`
}

// MirrorOptions configure Mirror.
type MirrorOptions struct {
	// Routes, when not empty, names the only routes to run; they run even
	// while backing off after failures or while their source asked to
	// wait.
	Routes []string
	// DryRun runs the routes without recording anything: eng and the
	// routes' sinks must be dry-run ones (bridge.Options.DryRun,
	// sinks.DryRun).
	DryRun bool
	// Logger receives what could not be recorded; nil discards.
	Logger *slog.Logger
}

// Mirror makes one pass over cfg's routes outside the daemon's loop, as
// `ferry mirror` does: paused routes are recorded as paused, the others
// built by build and run once (Once, or the engine alone for a dry run),
// in the file's order. The error is one that stops the pass (a route that
// cannot be built, the store); a route's failure is in its report.
func Mirror(ctx context.Context, st Store, eng Engine, cfg *config.Config,
	build func(config.RouteSpec) (*bridge.Route, bool, error), o MirrorOptions) ([]RouteReport, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var reports []RouteReport
	for _, spec := range cfg.Routes {
		if len(o.Routes) > 0 && !slices.Contains(o.Routes, spec.Route.Name) {
			continue
		}
		rep := RouteReport{Route: spec.Route.Name}
		if spec.Paused {
			rep.Paused = true
			if !o.DryRun {
				if err := st.BridgeSetPaused(ctx, spec.Route.Name, true); err != nil {
					return nil, err
				}
			}
			reports = append(reports, rep)
			continue
		}
		r, _, err := build(spec)
		if err != nil {
			return nil, err
		}
		var p Pass
		if o.DryRun {
			p.Result, p.Err = eng.Run(ctx, r)
		} else {
			sched, err := schedule.Parse(spec.Schedule)
			if err != nil {
				return nil, err
			}
			// A failing route backs off for cron users too; naming it
			// runs it anyway.
			if p, err = Once(ctx, st, eng, Route{Route: r, Schedule: sched}, len(o.Routes) > 0, nil); err != nil {
				o.Logger.Warn("could not record the run", "route", spec.Route.Name, "err", err)
			}
		}
		rep.fill(p)
		reports = append(reports, rep)
	}
	return reports, nil
}

// fill copies what a pass came to into the report.
func (rep *RouteReport) fill(p Pass) {
	res := p.Result
	rep.BackingOff, rep.Waiting = p.BackingOff, p.Waiting
	if p.Err != nil {
		rep.Error, rep.Transient, rep.RetryAt = p.Err.Error(), p.Outcome == schedule.Transient, p.Next
	}
	rep.New, rep.Published, rep.Edited, rep.Deleted = res.New, res.Published, res.Edited, res.Deleted
	rep.Skipped, rep.Failed, rep.FirstRun, rep.Capped = res.Skipped, res.Failed, res.Baseline, res.Capped
	for _, s := range res.Planned {
		rep.Planned = append(rep.Planned, PlannedStep{Action: s.Kind, Sink: s.Sink, Origin: s.Item, Part: s.Part,
			Visibility: string(s.Draft.Post.Visibility), CW: s.Draft.Post.Summary, Text: s.Draft.Post.Text,
			Media: len(s.Draft.Post.Media)})
	}
}

// FromConfig builds what the daemon runs from cfg: its routes, built by
// build (the route, and whether to stream its source), the paused ones by
// name, and its backup jobs, run by backup.
func FromConfig(cfg *config.Config, build func(config.RouteSpec) (*bridge.Route, bool, error),
	backup func(context.Context, config.BackupSpec) error) (Config, error) {
	var dc Config
	for _, b := range cfg.Backups {
		sched, err := schedule.Parse(b.Schedule)
		if err != nil {
			return Config{}, err
		}
		dc.Jobs = append(dc.Jobs, Job{Name: b.Name, Schedule: sched, Spec: b.Schedule,
			Run: func(ctx context.Context) error { return backup(ctx, b) }})
	}
	for _, spec := range cfg.Routes {
		if spec.Paused {
			dc.Paused = append(dc.Paused, spec.Route.Name)
			continue
		}
		r, streams, err := build(spec)
		if err != nil {
			return Config{}, err
		}
		sched, err := schedule.Parse(spec.Schedule)
		if err != nil {
			return Config{}, err
		}
		dc.Routes = append(dc.Routes, Route{Route: r, Schedule: sched, Spec: spec.Schedule, Stream: streams})
	}
	return dc, nil
}
