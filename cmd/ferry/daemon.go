package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/state"
)

// daemonOptions are the flags of `ferry daemon`.
type daemonOptions struct {
	Tick    time.Duration
	Workers int
	Grace   time.Duration
	Timeout time.Duration
}

func newDaemonCommand(g *globalOptions) *cli.Command {
	o := &daemonOptions{}
	return &cli.Command{
		Name:  "daemon",
		Usage: "run the routes of the config file on their schedules, streaming account sources",
		Description: "The daemon keeps each route's schedule, failure count and last error in the database\n" +
			"(see `ferry status`). Account sources are also streamed, so a new post is mirrored within\n" +
			"seconds; polling continues as the fallback. SIGHUP reloads the config; SIGTERM lets the\n" +
			"runs in progress finish (up to --grace) and exits. One daemon per database.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "tick", Usage: "how often to look for due routes", Value: 10 * time.Second, Destination: &o.Tick},
			&cli.IntFlag{Name: "workers", Usage: "routes run at the same time", Value: 4, Destination: &o.Workers},
			&cli.DurationFlag{Name: "grace", Usage: "how long SIGTERM waits for runs in progress", Value: time.Minute, Destination: &o.Grace},
			&cli.DurationFlag{Name: "run-timeout", Usage: "the longest one run of a route may take", Value: 10 * time.Minute, Destination: &o.Timeout},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("daemon takes no arguments")
			}
			if o.Tick < 100*time.Millisecond || o.Workers < 1 {
				return usagef("--tick must be at least 100ms and --workers at least 1")
			}
			return runDaemon(c.Context, g, o)
		},
	}
}

// maxBackoff caps the wait after repeated failures of a route.
const maxBackoff = 6 * time.Hour

// Maintenance: how often, and how long finished steps and vanished feed
// items are kept.
const (
	pruneEvery = 6 * time.Hour
	pruneKeep  = 30 * 24 * time.Hour
)

// daemonRoute is one route as the daemon runs it.
type daemonRoute struct {
	spec    RouteSpec
	route   *bridge.Route
	sched   schedule
	streams bool
}

// daemon holds the running state of `ferry daemon`.
type daemon struct {
	g   *globalOptions
	o   *daemonOptions
	st  *state.Store
	eng *bridge.Engine
	// work is the context of runs: not cancelled by SIGTERM, so that runs
	// in progress finish; cancelled after the grace period.
	work context.Context

	mu       sync.Mutex
	routes   map[string]*daemonRoute
	backups  map[string]BackupSpec
	wiring   *wiring
	stopping bool
	streams  context.CancelFunc // cancels the streams of the current config
	slots    chan struct{}
	wg       sync.WaitGroup // runs and event handlers in progress
	swg      sync.WaitGroup // stream goroutines
}

func runDaemon(ctx context.Context, g *globalOptions, o *daemonOptions) error {
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	release, err := st.LockDaemon()
	if err != nil {
		return err
	}
	defer release()

	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	d := &daemon{g: g, o: o, st: st, work: work, routes: map[string]*daemonRoute{}, slots: make(chan struct{}, o.Workers),
		eng: bridge.New(newBridgeStore(st), bridge.Options{Logger: g.log})}
	if err := d.load(ctx, true); err != nil {
		return err
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	s, err := gocron.NewScheduler(gocron.WithStopTimeout(o.Grace))
	if err != nil {
		return fmt.Errorf("start the scheduler: %w", err)
	}
	// One tick job picks the due routes from the database; the schedule
	// itself lives there (next_run_at), so a restart loses nothing.
	_, err = s.NewJob(gocron.DurationJob(o.Tick), gocron.NewTask(d.tick),
		gocron.WithName("ferry-tick"),
		gocron.WithSingletonMode(gocron.LimitModeReschedule),
		gocron.WithStartAt(gocron.WithStartImmediately()))
	if err != nil {
		return fmt.Errorf("start the scheduler: %w", err)
	}
	// Coarse maintenance: forget finished journal steps and feed items
	// long gone from their feed. Copies are kept (edits, deletes, loops).
	_, err = s.NewJob(gocron.DurationJob(pruneEvery), gocron.NewTask(d.prune),
		gocron.WithName("ferry-prune"), gocron.WithSingletonMode(gocron.LimitModeReschedule))
	if err != nil {
		return fmt.Errorf("start the scheduler: %w", err)
	}
	s.Start()
	g.log.Info("daemon started", "routes", len(d.routes), "backups", len(d.backups), "pid", os.Getpid())

	for {
		select {
		case <-hup:
			g.log.Info("SIGHUP: reloading the config", "config", g.Config)
			if err := d.load(ctx, false); err != nil {
				g.log.Error("the new config is not valid; keeping the old one", "err", err)
			}
			continue
		case <-ctx.Done():
		}
		break
	}

	g.log.Info("stopping: letting runs in progress finish", "grace", o.Grace)
	d.mu.Lock()
	d.stopping = true
	if d.streams != nil {
		d.streams()
	}
	d.mu.Unlock()
	if err := s.Shutdown(); err != nil {
		g.log.Warn("scheduler shutdown", "err", err)
	}
	done := make(chan struct{})
	go func() { d.wg.Wait(); d.swg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(o.Grace):
		g.log.Warn("runs still in progress after the grace period; interrupting them")
		cancelWork()
		<-done
	}
	g.log.Info("daemon stopped")
	return nil
}

// load (re)reads the config, builds the routes and (re)starts the streams.
// On error the running configuration stays as it was.
func (d *daemon) load(ctx context.Context, starting bool) error {
	cfg, err := loadConfig(d.g.Config)
	if err != nil {
		return err
	}
	w, err := newWiring(ctx, d.g, d.st, cfg, false)
	if err != nil {
		return err
	}
	routes := map[string]*daemonRoute{}
	backups := map[string]BackupSpec{}
	scheds := map[string]string{}
	for _, b := range cfg.Backups {
		backups[b.Name] = b
		scheds[b.Name] = b.Schedule
	}
	for _, spec := range cfg.Routes {
		if spec.Paused {
			if err := d.st.BridgeSetPaused(ctx, spec.Route.Name, true); err != nil {
				return err
			}
			continue
		}
		r, streams, err := w.route(ctx, spec)
		if err != nil {
			return err
		}
		sched, _ := parseSchedule(spec.Schedule) // validated by loadConfig
		routes[spec.Route.Name] = &daemonRoute{spec: spec, route: r, sched: sched, streams: streams}
		scheds[spec.Route.Name] = spec.Schedule
	}
	if err := d.st.BridgeSchedule(ctx, scheds, starting); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopping {
		return nil
	}
	if d.streams != nil {
		d.streams()
	}
	sctx, cancel := context.WithCancel(d.work)
	d.streams = cancel
	d.routes, d.backups, d.wiring = routes, backups, w
	for _, dr := range routes {
		if _, ok := dr.route.Source.(sources.Streamer); ok && dr.streams {
			d.swg.Add(1)
			go d.stream(sctx, dr)
		}
	}
	return nil
}

// tick claims the due routes and starts their runs.
func (d *daemon) tick() {
	d.mu.Lock()
	if d.stopping {
		d.mu.Unlock()
		return
	}
	names := make([]string, 0, len(d.routes)+len(d.backups))
	for n := range d.routes {
		names = append(names, n)
	}
	for n := range d.backups {
		names = append(names, n)
	}
	d.mu.Unlock()
	// The lease outlasts the longest run, so a claimed route is not
	// claimed again while it runs; a restarted daemon resets it.
	due, err := d.st.BridgeClaimDue(d.work, names, time.Now(), d.o.Timeout+time.Minute)
	if err != nil {
		d.g.log.Error("could not pick due routes", "err", err)
		return
	}
	for _, name := range due {
		d.mu.Lock()
		dr := d.routes[name]
		b, isBackup := d.backups[name]
		stopping := d.stopping
		if (dr != nil || isBackup) && !stopping {
			d.wg.Add(1)
		}
		d.mu.Unlock()
		switch {
		case stopping:
		case dr != nil:
			go d.run(dr)
		case isBackup:
			go d.runBackup(b)
		}
	}
}

// prune runs the store's maintenance for every configured route.
func (d *daemon) prune() {
	d.mu.Lock()
	names := make([]string, 0, len(d.routes))
	for n := range d.routes {
		names = append(names, n)
	}
	d.mu.Unlock()
	for _, n := range names {
		if err := d.st.BridgePrune(d.work, n, pruneKeep); err != nil {
			d.g.log.Warn("maintenance failed", "route", n, "err", err)
		}
	}
}

// run runs one route once and schedules its next run: on its schedule
// after a success (no sooner than the source asked), with exponential
// back-off and jitter after failures (no sooner than Retry-After).
func (d *daemon) run(dr *daemonRoute) {
	defer d.wg.Done()
	d.slots <- struct{}{}
	defer func() { <-d.slots }()
	name := dr.route.Name
	ctx, cancel := context.WithTimeout(d.work, d.o.Timeout)
	defer cancel()
	start := time.Now()
	res, err := d.eng.Run(ctx, dr.route)
	now := time.Now()
	next := dr.sched.Next(now)
	if res.Wait > 0 && now.Add(res.Wait).After(next) {
		next = now.Add(res.Wait)
	}
	msg := ""
	if err != nil {
		msg = err.Error()
		prev, _ := d.st.BridgeRoute(ctx, name)
		back := backoff(prev.FailCount+1, next.Sub(now))
		if ra := retryAfter(err); ra > back {
			back = ra
		}
		next = now.Add(back)
		d.g.log.Error("route failed", "route", name, "err", err, "failures", prev.FailCount+1, "next_run", next.Format(time.RFC3339))
	} else if res.Published+res.Edited+res.Deleted+res.Failed > 0 || res.Baseline {
		d.g.log.Info("route ran", "route", name, "new", res.New, "published", res.Published, "edited", res.Edited,
			"deleted", res.Deleted, "failed", res.Failed, "first_run", res.Baseline, "took", now.Sub(start).Round(time.Millisecond))
	}
	if err := d.st.BridgeRecordRun(ctx, name, start, msg, next); err != nil {
		d.g.log.Error("could not record the run", "route", name, "err", err)
	}
	d.mu.Lock()
	w := d.wiring
	d.mu.Unlock()
	w.recordBudgets(context.WithoutCancel(ctx))
}

// runBackup runs a [[backup]] job (runBackupJob) and schedules its next
// run.
func (d *daemon) runBackup(b BackupSpec) {
	defer d.wg.Done()
	d.slots <- struct{}{}
	defer func() { <-d.slots }()
	start := time.Now()
	msg := ""
	if _, err := runBackupJob(d.work, d.g, d.st, b); err != nil {
		msg = err.Error()
	}
	now := time.Now()
	sched, _ := parseSchedule(b.Schedule)
	next := sched.Next(now)
	if msg != "" {
		prev, _ := d.st.BridgeRoute(d.work, b.Name)
		next = now.Add(backoff(prev.FailCount+1, next.Sub(now)))
		d.g.log.Error("backup failed", "job", b.Name, "err", msg, "next_run", next.Format(time.RFC3339))
	} else {
		d.g.log.Info("backup done", "job", b.Name, "took", now.Sub(start).Round(time.Second))
	}
	if err := d.st.BridgeRecordRun(d.work, b.Name, start, msg, next); err != nil {
		d.g.log.Error("could not record the run", "job", b.Name, "err", err)
	}
}

// backoff is the wait after the n-th consecutive failure: the route's
// interval (at least a minute) doubled per failure, with ±20 % jitter,
// capped at maxBackoff.
func backoff(n int, interval time.Duration) time.Duration {
	base := max(interval, time.Minute)
	d := base
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// stream follows a streaming source until ctx ends, reconnecting with
// back-off; after each reconnect the route is polled, to catch what the
// stream missed while it was down.
func (d *daemon) stream(ctx context.Context, dr *daemonRoute) {
	defer d.swg.Done()
	s := dr.route.Source.(sources.Streamer)
	log := d.g.log.With("route", dr.route.Name)
	wait := time.Second
	for ctx.Err() == nil {
		events := make(chan sources.Event, 64)
		errc := make(chan error, 1)
		sctx, cancel := context.WithCancel(ctx)
		go func() { errc <- s.Stream(sctx, events) }()
		connected := time.Now()
	loop:
		for {
			select {
			case ev := <-events:
				d.handle(ctx, dr, ev)
			case err := <-errc:
				if ctx.Err() == nil {
					log.Warn("stream ended; polling continues", "err", err)
				}
				break loop
			}
		}
		cancel()
		if time.Since(connected) > time.Minute {
			wait = time.Second // it worked for a while: reconnect promptly
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Minute)
		if err := d.st.BridgeRunSoon(ctx, dr.route.Name); err != nil {
			log.Warn("could not schedule a catch-up poll", "err", err)
		}
	}
}

func (d *daemon) handle(ctx context.Context, dr *daemonRoute, ev sources.Event) {
	d.mu.Lock()
	if d.stopping {
		d.mu.Unlock()
		return
	}
	d.wg.Add(1)
	d.mu.Unlock()
	defer d.wg.Done()
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.o.Timeout)
	defer cancel()
	res, err := d.eng.Handle(hctx, dr.route, ev)
	if err != nil {
		d.g.log.Error("could not mirror a streamed post; the next poll retries", "route", dr.route.Name, "origin", ev.Post.OriginID, "err", err)
		_ = d.st.BridgeRunSoon(hctx, dr.route.Name)
		return
	}
	if res.Published+res.Edited+res.Deleted > 0 {
		d.g.log.Info("mirrored from the stream", "route", dr.route.Name, "origin", ev.Post.OriginID,
			"published", res.Published, "edited", res.Edited, "deleted", res.Deleted)
	}
}
