package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/config"
	"github.com/fedi-ferry/ferry/daemon"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/state"
	"github.com/fedi-ferry/ferry/state/bridgestore"
)

func newStatusCommand(g *globalOptions) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show each route's last run, lag, posts mirrored, last error and next run",
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("status takes no arguments")
			}
			return runStatus(c.Context, g)
		},
	}
}

// statusReport is the whole output of `ferry status`.
type statusReport struct {
	Daemon string `json:"daemon"` // "running" or "not running"
	// Daemons are the daemons alive on a PostgreSQL database, by id.
	Daemons  []string                 `json:"daemons,omitempty"`
	Routes   []daemon.RouteStatus     `json:"routes"`
	Accounts []platform.AccountBudget `json:"accounts"`
}

func runStatus(ctx context.Context, g *globalOptions) error {
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	rep := statusReport{Daemon: "not running"}
	if st.Shared() {
		// PostgreSQL: each daemon alive holds a lease of its own.
		ls, err := st.Leases(ctx, time.Now())
		if err != nil {
			return err
		}
		for _, l := range ls {
			if id, ok := strings.CutPrefix(l.Name, state.LeaseDaemon); ok {
				rep.Daemons = append(rep.Daemons, id)
			}
		}
		if len(rep.Daemons) > 0 {
			rep.Daemon = "running"
		}
	} else if running, err := st.DaemonRunning(); err == nil && running {
		rep.Daemon = "running"
	}
	cfg, cfgErr := config.Load(g.Config)
	if rep.Routes, err = daemon.Status(ctx, bridgestore.New(st), cfg, time.Now()); err != nil {
		return err
	}
	accts, err := st.Accounts(ctx)
	if err != nil {
		return fmt.Errorf("list accounts: %w", err)
	}
	rep.Accounts = platform.Budgets(ctx, st, accts)
	if g.JSON {
		return printJSON(g.stdout, rep)
	}
	fmt.Fprintf(g.stdout, "daemon: %s\n", rep.Daemon)
	if len(rep.Daemons) > 0 {
		fmt.Fprintf(g.stdout, "daemons: %s\n", strings.Join(rep.Daemons, ", "))
	}
	if cfgErr != nil {
		fmt.Fprintf(g.stdout, "config: %v\n", cfgErr)
	}
	if len(rep.Routes) == 0 {
		_, err := fmt.Fprintln(g.stdout, "no routes yet: declare them in the config file (see examples/) and run `ferry mirror` or `ferry daemon`")
		return err
	}
	fmt.Fprintln(g.stdout)
	cols := []string{"ROUTE", "SCHEDULE", "LAST RUN", "NEXT RUN", "NEWEST POST", "MIRRORED", "FAILED", "LAST ERROR"}
	if st.Shared() {
		cols = append(cols, "HELD BY", "LEASE UNTIL")
	}
	t := newTable(g.stdout, cols...)
	for _, r := range rep.Routes {
		sched := dash(r.Schedule)
		if r.Paused {
			sched += " (paused)"
		}
		if !r.Configured {
			sched += " (not in config)"
		}
		lag := "-"
		if r.LagSeconds != nil {
			lag = ago(time.Duration(*r.LagSeconds) * time.Second)
		}
		errText := dash(r.LastError)
		if r.Failures > 1 {
			errText = fmt.Sprintf("(%d× in a row) %s", r.Failures, r.LastError)
		}
		if r.Transient && r.LastError != "" {
			again := "at the next run"
			if r.NextRun != nil && time.Until(*r.NextRun) > 0 {
				again = when(r.NextRun)
			}
			errText = fmt.Sprintf("transient, tries again %s: %s", again, errText)
		}
		cells := []any{r.Route, sched, when(r.LastRun), when(r.NextRun), lag, r.Mirrored, r.Failed, errText}
		if st.Shared() {
			cells = append(cells, dash(r.Holder), when(r.LeaseExpires))
		}
		t.row(cells...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(rep.Accounts) == 0 {
		return nil
	}
	fmt.Fprintln(g.stdout)
	t = newTable(g.stdout, "ACCOUNT", "RATE BUDGET LEFT", "429s", "AS OF")
	for _, a := range rep.Accounts {
		left := "unknown (the server sends no rate-limit headers)"
		if len(a.Budgets) > 0 {
			var parts []string
			for _, b := range a.Left(time.Now()) {
				parts = append(parts, fmt.Sprintf("%s %d/%d", b.Name, b.Remaining, b.Limit))
			}
			left = strings.Join(parts, ", ")
		}
		upd := a.Updated
		t.row(a.Account, left, a.RateLimited, when(&upd))
	}
	return t.flush()
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	d := time.Until(*t)
	if d > 0 {
		return "in " + d.Round(time.Second).String()
	}
	return ago(-d)
}

func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
