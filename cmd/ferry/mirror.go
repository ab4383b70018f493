package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/config"
	"github.com/fedi-ferry/ferry/daemon"
	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/schedule"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/state"
	"github.com/fedi-ferry/ferry/state/bridgestore"
)

// mirrorOptions are the flags of `ferry mirror`.
type mirrorOptions struct {
	Once   bool
	Routes cli.StringSlice
	DryRun bool
}

func newMirrorCommand(g *globalOptions) *cli.Command {
	o := &mirrorOptions{}
	return &cli.Command{
		Name:  "mirror",
		Usage: "make one pass over the routes of the config file (for cron; `ferry daemon` runs them continuously)",
		Description: "Each route reads its source (a feed or an account) and mirrors what is new, edited or deleted\n" +
			"to its sink accounts. The first run of a route records existing posts as seen and posts nothing\n" +
			"(or the last N, with first_run = \"last:N\").",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "once", Usage: "one pass, then exit (the default; accepted for clarity in crontabs)", Destination: &o.Once},
			&cli.StringSliceFlag{Name: "route", Usage: "run only the route `NAME` (repeatable)", Destination: &o.Routes},
			&cli.BoolFlag{Name: "dry-run", Usage: "show what would be posted, edited or deleted; change nothing", Destination: &o.DryRun},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("mirror takes no arguments; choose routes with --route NAME")
			}
			return runMirror(c.Context, g, o)
		},
	}
}

// routeReport is one route's outcome, as printed.
type routeReport struct {
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
	Error      string    `json:"error,omitempty"`
	// Transient reports that Error may pass by itself; RetryAt is when
	// the route is tried again (by the next `ferry mirror` from then on).
	Transient bool          `json:"transient,omitempty"`
	RetryAt   time.Time     `json:"retry_at,omitzero"`
	Planned   []plannedStep `json:"planned,omitempty"`
}

// plannedStep is one step of a dry run.
type plannedStep struct {
	Action     string `json:"action"`
	Sink       string `json:"sink"`
	Origin     string `json:"origin"`
	Part       int    `json:"part"`
	Visibility string `json:"visibility,omitempty"`
	CW         string `json:"cw,omitempty"`
	Text       string `json:"text,omitempty"`
	Media      int    `json:"media,omitempty"`
}

func runMirror(ctx context.Context, g *globalOptions, o *mirrorOptions) error {
	cfg, err := config.Load(g.Config)
	if err != nil {
		return err
	}
	names := o.Routes.Value()
	for _, n := range names {
		if !slices.ContainsFunc(cfg.Routes, func(r config.RouteSpec) bool { return r.Route.Name == n }) {
			return usagef("no route %q in %s", n, cfg.Path)
		}
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if !o.DryRun {
		// A daemon runs the same routes: two processes applying the same
		// journal at once could both post a step before either records it.
		release, err := st.LockDaemon()
		if errors.Is(err, state.ErrLocked) {
			return fmt.Errorf("a ferry daemon is running and mirrors these routes itself (see `ferry status`); stop it to run `ferry mirror`, or use --dry-run: %w", err)
		}
		if err != nil {
			return err
		}
		defer release()
	}
	w, err := newWiring(ctx, g, st, cfg, o.DryRun)
	if err != nil {
		return err
	}
	eng := bridge.New(bridgestore.New(st), bridge.Options{Logger: g.log, DryRun: o.DryRun})
	var reports []routeReport
	failed := 0
	for _, spec := range cfg.Routes {
		if len(names) > 0 && !slices.Contains(names, spec.Route.Name) {
			continue
		}
		rep := routeReport{Route: spec.Route.Name}
		if spec.Paused {
			rep.Paused = true
			if !o.DryRun {
				if err := st.BridgeSetPaused(ctx, spec.Route.Name, true); err != nil {
					return err
				}
			}
			reports = append(reports, rep)
			continue
		}
		r, _, err := w.route(ctx, spec)
		if err != nil {
			return err
		}
		var p daemon.Pass
		if o.DryRun {
			p.Result, p.Err = eng.Run(ctx, r)
		} else {
			sched, err := schedule.Parse(spec.Schedule)
			if err != nil {
				return err
			}
			// A failing route backs off for cron users too; naming it
			// with --route runs it anyway.
			if p, err = daemon.Once(ctx, st, eng, daemon.Route{Route: r, Schedule: sched}, len(names) > 0, nil); err != nil {
				g.log.Warn("could not record the run", "route", spec.Route.Name, "err", err)
			}
		}
		fillReport(&rep, p)
		if p.Err != nil {
			failed++
		}
		reports = append(reports, rep)
	}
	if !o.DryRun {
		w.recordBudgets(ctx)
	}
	if err := printMirror(g, reports, o.DryRun); err != nil {
		return err
	}
	switch {
	case failed == 0:
		return nil
	case failed == len(reports):
		return fmt.Errorf("every route failed; see the errors above")
	}
	return partialError{fmt.Sprintf("%d of %d routes failed", failed, len(reports))}
}

func fillReport(rep *routeReport, p daemon.Pass) {
	res := p.Result
	rep.BackingOff = p.BackingOff
	if p.Err != nil {
		rep.Error, rep.Transient, rep.RetryAt = p.Err.Error(), p.Outcome == schedule.Transient, p.Next
	}
	rep.New, rep.Published, rep.Edited, rep.Deleted = res.New, res.Published, res.Edited, res.Deleted
	rep.Skipped, rep.Failed, rep.FirstRun, rep.Capped = res.Skipped, res.Failed, res.Baseline, res.Capped
	for _, s := range res.Planned {
		rep.Planned = append(rep.Planned, plannedStep{Action: s.Kind, Sink: s.Sink, Origin: s.Item, Part: s.Part,
			Visibility: string(s.Draft.Post.Visibility), CW: s.Draft.Post.Summary, Text: s.Draft.Post.Text,
			Media: len(s.Draft.Post.Media)})
	}
}

func printMirror(g *globalOptions, reports []routeReport, dry bool) error {
	if g.JSON {
		return printJSON(g.stdout, reports)
	}
	t := newTable(g.stdout, "ROUTE", "NEW", "POSTED", "EDITED", "DELETED", "SKIPPED", "FAILED", "NOTE")
	for _, r := range reports {
		var note []string
		if r.Paused {
			note = append(note, "paused")
		}
		if r.FirstRun {
			note = append(note, "first run: existing posts recorded as seen")
		}
		if r.Capped {
			note = append(note, "hourly cap reached")
		}
		if !r.BackingOff.IsZero() {
			note = append(note, "failing; backing off until "+r.BackingOff.Local().Format("15:04")+" (run it now with --route)")
		}
		if r.Error != "" {
			kind := ""
			if r.Transient {
				kind = "transient "
			}
			note = append(note, kind+"error: "+r.Error)
			if !r.RetryAt.IsZero() {
				note = append(note, "tries again from "+r.RetryAt.Local().Format("15:04:05"))
			}
		}
		t.row(r.Route, r.New, r.Published, r.Edited, r.Deleted, r.Skipped, r.Failed, dash(strings.Join(note, "; ")))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if !dry {
		return nil
	}
	for _, r := range reports {
		for _, p := range r.Planned {
			fmt.Fprintf(g.stdout, "\n[dry run] %s: would %s on %s (origin %s, part %d, %s", r.Route, p.Action, p.Sink, p.Origin, p.Part+1, p.Visibility)
			if p.CW != "" {
				fmt.Fprintf(g.stdout, ", CW %q", p.CW)
			}
			if p.Media > 0 {
				fmt.Fprintf(g.stdout, ", %d media", p.Media)
			}
			fmt.Fprintln(g.stdout, "):")
			for _, l := range strings.Split(p.Text, "\n") {
				fmt.Fprintln(g.stdout, "    "+l)
			}
		}
	}
	return nil
}

// wiring builds routes from the config: a session per account (one paced
// connection, shared by a route's source and sinks and by every route),
// sources and sinks, all through the platform registry, which knows the
// source types and what each account's platform can do.
type wiring struct {
	g        *globalOptions
	st       *state.Store
	reg      *platform.Registry
	accts    map[string]state.Account
	dry      bool
	sessions map[string]platform.Session // by handle
	sinks    map[string]sinks.Sink
}

func newWiring(ctx context.Context, g *globalOptions, st *state.Store, cfg *config.Config, dry bool) (*wiring, error) {
	accts, err := checkAccounts(ctx, st, cfg)
	if err != nil {
		return nil, err
	}
	reg, err := g.registry()
	if err != nil {
		return nil, err
	}
	return &wiring{g: g, st: st, reg: reg, accts: accts, dry: dry,
		sessions: map[string]platform.Session{}, sinks: map[string]sinks.Sink{}}, nil
}

func (w *wiring) session(a state.Account) (platform.Session, error) {
	if s, ok := w.sessions[a.Handle]; ok {
		return s, nil
	}
	s, err := w.reg.Open(a)
	if err != nil {
		return nil, err
	}
	w.sessions[a.Handle] = s
	return s, nil
}

// sourceSpec is the route's source as the registry takes it.
func (w *wiring) sourceSpec(spec config.RouteSpec) (platform.SourceSpec, error) {
	switch {
	case spec.Feed != nil:
		return platform.SourceSpec{Type: platform.SourceFeed, URL: spec.Feed.URL, UserAgent: spec.Feed.UserAgent}, nil
	case spec.Account != nil:
		s, err := w.session(w.accts[spec.Account.Account])
		if err != nil {
			return platform.SourceSpec{}, err
		}
		return platform.SourceSpec{Type: platform.SourceAccount, Session: s,
			Stream: spec.Account.Stream == nil || *spec.Account.Stream}, nil
	case spec.Archive != nil:
		return platform.SourceSpec{Type: platform.SourceArchive, Path: spec.Archive.Path}, nil
	}
	return platform.SourceSpec{}, fmt.Errorf("route %s: no source", spec.Route.Name)
}

// route builds the bridge route for spec; streams reports whether its
// source should also be streamed (account sources, unless stream = false).
func (w *wiring) route(ctx context.Context, spec config.RouteSpec) (*bridge.Route, bool, error) {
	r := spec.Route // a copy; Sinks is copied below before it is changed
	r.Sinks = append([]bridge.Target(nil), spec.Route.Sinks...)
	ss, err := w.sourceSpec(spec)
	if err != nil {
		return nil, false, err
	}
	src, err := w.reg.Source(ss)
	if err != nil {
		return nil, false, fmt.Errorf("route %s: %w", r.Name, err)
	}
	r.Source, r.Kind, r.SourceAccount = src.Source, src.Kind, src.Account
	for i := range r.Sinks {
		a := w.accts[r.Sinks[i].Account]
		s, ok := w.sinks[a.Handle]
		if !ok {
			sess, err := w.session(a)
			if err != nil {
				return nil, false, err
			}
			so, can := sess.(platform.SinkOpener)
			if !can {
				return nil, false, fmt.Errorf("route %s: %w", r.Name, noRole(a, "publish posts"))
			}
			s = so.Sink()
			if w.dry {
				s = sinks.DryRun(s, w.g.log)
			}
			w.sinks[a.Handle] = s
		}
		r.Sinks[i].Account, r.Sinks[i].Sink = a.Handle, s
	}
	if err := r.Validate(); err != nil {
		return nil, false, err
	}
	return &r, src.Stream, nil
}

// accountBudget is what `ferry status` shows about an account's API use:
// recorded by mirror and the daemon after their runs.
type accountBudget struct {
	Account     string        `json:"account"`
	Updated     time.Time     `json:"updated"`
	Requests    int64         `json:"requests"`     // by the recording process
	RateLimited int64         `json:"rate_limited"` // 429 answers it received
	Budgets     []fedi.Budget `json:"budgets"`      // as the server last announced them
}

// budgetKey is the kv key of an account's recorded budget.
func budgetKey(handle string) string { return "ratebudget/" + strings.ToLower(handle) }

// recordBudgets stores each account's rate-limit budgets as its server
// last announced them, for `ferry status`.
func (w *wiring) recordBudgets(ctx context.Context) {
	for handle, sess := range w.sessions {
		m, ok := sess.(platform.Metered)
		if !ok {
			continue
		}
		u := m.Usage()
		b, err := json.Marshal(accountBudget{Account: handle, Updated: time.Now().UTC(), Requests: u.Requests,
			RateLimited: u.RateLimited, Budgets: u.Budgets})
		if err == nil {
			err = w.st.Set(ctx, budgetKey(handle), string(b))
		}
		if err != nil {
			w.g.log.Warn("could not record the rate-limit budget", "account", handle, "err", err)
		}
	}
}
