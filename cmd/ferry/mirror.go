package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/config"
	"github.com/fedi-ferry/ferry/daemon"
	"github.com/fedi-ferry/ferry/platform"
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
		if st.Shared() {
			// PostgreSQL: no lock; the runs are leased as daemons lease them.
			run, done, err := leaseMirrorRuns(ctx, st, cfg, names)
			if err != nil {
				return err
			}
			defer done()
			ctx = run
		}
	}
	accts, err := platform.ConfigAccounts(ctx, st, cfg)
	if err != nil {
		return err
	}
	reg, err := g.registry()
	if err != nil {
		return err
	}
	routes := reg.Routes(accts, o.DryRun)
	eng := bridge.New(bridgestore.New(st), bridge.Options{Logger: g.log, DryRun: o.DryRun})
	reports, err := daemon.Mirror(ctx, st, eng, cfg, routes.Route, daemon.MirrorOptions{Routes: names, DryRun: o.DryRun, Logger: g.log})
	if err != nil {
		if cause := context.Cause(ctx); ctx.Err() != nil && cause != nil {
			// A lost route lease says why the pass stopped.
			return errors.Join(err, cause)
		}
		return err
	}
	if !o.DryRun {
		routes.RecordBudgets(ctx, st)
	}
	failed := 0
	for _, r := range reports {
		if r.Error != "" {
			failed++
		}
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

func printMirror(g *globalOptions, reports []daemon.RouteReport, dry bool) error {
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
		if !r.Waiting.IsZero() {
			note = append(note, "the source asked to be left alone until "+r.Waiting.Local().Format("15:04")+" (run it now with --route)")
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
