// Package daemon runs ferry's recurring work: the routes of ferry.toml on
// their schedules (and, for streaming sources, as their posts arrive) and
// the scheduled jobs (backups). It owns the claim loop, the worker limit,
// back-off after failures, stream supervision, reloading the
// configuration and the graceful drain on shutdown. When a route or job
// runs next is schedule.Next, the rule `ferry mirror` follows too.
//
// The schedule itself lives in the Store (next run, failure count), so a
// restarted daemon loses nothing and `ferry status` can show it. Time comes
// from an injected clock, so the package is tested on a fake one.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/schedule"
	"github.com/fedi-ferry/ferry/sources"
)

// Store keeps the schedule of routes and jobs, by name. state.Store
// implements it.
type Store interface {
	// BridgeSchedule records each name's schedule as written; a name whose
	// schedule changed or that has no next run yet becomes due now, and
	// every name does when dueNow is set.
	BridgeSchedule(ctx context.Context, schedules map[string]string, dueNow bool) error
	// BridgeClaimDue returns the names among candidates due at now and
	// pushes their next run to now+lease, so none is claimed twice.
	BridgeClaimDue(ctx context.Context, candidates []string, now time.Time, lease time.Duration) ([]string, error)
	// BridgeFailures returns how many runs of name failed in a row.
	BridgeFailures(ctx context.Context, name string) (int, error)
	// BridgeRetryAt returns, if the last run of name failed, when it is
	// tried again; zero otherwise.
	BridgeRetryAt(ctx context.Context, name string) (time.Time, error)
	// BridgeSetWait records until when name's source asked not to be
	// read again (zero: no such request); BridgeWaitUntil returns it.
	BridgeSetWait(ctx context.Context, name string, until time.Time) error
	BridgeWaitUntil(ctx context.Context, name string) (time.Time, error)
	// BridgeRecordRun records the end of a run: its start, its error (""
	// for success), whether the error is transient, and the next run.
	BridgeRecordRun(ctx context.Context, name string, start time.Time, runErr string, transient bool, next time.Time) error
	// BridgeRunSoon makes name due now.
	BridgeRunSoon(ctx context.Context, name string) error
	// BridgeSetPaused records that a route is paused (or not).
	BridgeSetPaused(ctx context.Context, route string, paused bool) error
	// BridgePrune forgets what a route no longer needs, older than keep.
	BridgePrune(ctx context.Context, route string, keep time.Duration) error
}

// Engine runs routes: *bridge.Engine.
type Engine interface {
	Run(ctx context.Context, r *bridge.Route) (bridge.Result, error)
	Handle(ctx context.Context, r *bridge.Route, ev sources.Event) (bridge.Result, error)
}

// Route is a route as the daemon runs it.
type Route struct {
	Route    *bridge.Route
	Schedule schedule.Schedule
	// Spec is the schedule as written, recorded in the Store (a changed
	// schedule makes the route due now).
	Spec string
	// Stream follows the source's stream as well, when it is a
	// sources.Streamer; polling continues as the fallback.
	Stream bool
}

// Job is scheduled work other than a route: a backup.
type Job struct {
	Name     string
	Schedule schedule.Schedule
	Spec     string // the schedule as written
	// Run does the work. Its error is classified like a route's
	// (bridge.Outcome) for the back-off.
	Run func(ctx context.Context) error
}

// Config is what the daemon runs: built from ferry.toml by Options.Load.
type Config struct {
	Routes []Route
	Paused []string // routes configured but paused
	Jobs   []Job
	// AfterRun, if not nil, is called after runs of routes: when a run
	// ends, unless a call started within the last afterGap (then at the
	// first tick after it), one call for all the runs that ended
	// meanwhile, never two at once, and once more at shutdown if runs
	// ended since. ferry records the accounts' rate-limit budgets there,
	// which describe the accounts as they stand, not a run: a call per run
	// said nothing more, for a write per run to the same row from every
	// daemon.
	AfterRun func(ctx context.Context)
}

// Options configure Run. Store, Engine and Load are required.
type Options struct {
	Store  Store
	Engine Engine
	// Load builds the configuration: at start and on every reload. An
	// error at start stops Run; on reload, the running configuration
	// stays.
	Load func(ctx context.Context) (Config, error)
	// Reload, when it receives, makes the daemon call Load again (SIGHUP).
	Reload <-chan struct{}

	Tick    time.Duration // how often due work is looked for; default 10s
	Workers int           // runs at the same time; default 4
	Grace   time.Duration // how long shutdown waits for runs in progress; default 1m
	Timeout time.Duration // the longest one run may take; default 10m
	// PruneEvery and PruneKeep: how often, and how long finished journal
	// steps and vanished feed items are kept; defaults 6h and 30 days.
	PruneEvery, PruneKeep time.Duration

	Clock  clockwork.Clock // nil = the real clock
	Logger *slog.Logger    // nil discards
	// Observer, if not nil, is told of heartbeats, runs and stream
	// connections (the health check and metrics of `ferry daemon
	// --listen`).
	Observer Observer
	// Jitter returns a number in [-1, 1] that spreads back-offs
	// (schedule.Run.Jitter); nil = random.
	Jitter func() float64

	// Holder, when set, names this daemon among several sharing the
	// Store (which must then be a Leaser, see lease.go): routes, jobs and
	// streams run only under a lease in the database, renewed every
	// LeaseTTL/3; a daemon that dies loses them after LeaseTTL (default
	// DefaultLeaseTTL) and another takes them over. Empty: the only
	// daemon of the Store, under the caller's lock.
	Holder   string
	LeaseTTL time.Duration
}

func (o *Options) defaults() {
	if o.Tick <= 0 {
		o.Tick = 10 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Grace <= 0 {
		o.Grace = time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.PruneEvery <= 0 {
		o.PruneEvery = 6 * time.Hour
	}
	if o.PruneKeep <= 0 {
		o.PruneKeep = 30 * 24 * time.Hour
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Jitter == nil {
		o.Jitter = func() float64 { return 2*rand.Float64() - 1 }
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
}

// daemon is the running state of Run.
type daemon struct {
	o   Options
	log *slog.Logger
	clk clockwork.Clock
	// work is the context of runs: not cancelled when Run's context is,
	// so that runs in progress finish; cancelled after the grace period.
	work context.Context

	mu       sync.Mutex
	cfg      Config
	routes   map[string]*Route
	jobs     map[string]Job
	stopping bool
	streams  context.CancelFunc // cancels the streams of the current config
	slots    chan struct{}
	wg       sync.WaitGroup // runs and event handlers in progress
	swg      sync.WaitGroup // stream supervisors
	// leases is set when Options.Holder is: the daemon shares the Store.
	leases *leases
	// inflight counts the runs claimed and not yet ended (with leases).
	inflight atomic.Int64
	// afterDue is set when a route's run ended since AfterRun was last
	// called; afterBusy while a call runs (awg waits for it).
	afterDue, afterBusy atomic.Bool
	awg                 sync.WaitGroup
	// lastAfter is when the last AfterRun call started (Unix nanoseconds).
	lastAfter atomic.Int64
	// saturated is set when the last claim (with leases) took as many runs
	// as it had free workers: more may be due, and a run's end kicks a claim
	// (kicks) instead of leaving its worker idle until the next tick.
	saturated atomic.Bool
	kicks     chan struct{}
}

// claimGap is how long after a run's end (while routes are left due) the
// daemon claims again: runs ending meanwhile share one claim. Without it a
// daemon's workers were refilled once per tick, so it ran at most Workers
// routes a tick however short the runs (found by the PostgreSQL benchmark:
// 3 daemons × 32 workers made exactly 96 runs a second).
func claimGap(tick time.Duration) time.Duration { return min(tick/4, 250*time.Millisecond) }

// tickShift is how long after its tick a daemon sharing the database
// claims: a random part of half a tick, drawn again every tick. Routes
// on their own grid come due one by one, and the daemon whose ticks fell
// first in the second took nearly all of them (96 % in the two-daemon
// test); drawn anew each tick, the daemons take turns.
func tickShift(tick time.Duration) time.Duration {
	return time.Duration(rand.Int64N(int64(tick/2) + 1))
}

// claimBatch is how many free workers make a claim at once rather than
// claimGap after the first of them was freed: a quarter of them. Waiting
// out the gap with every worker but one idle capped a daemon of 32
// workers at about 110 runs a second when runs took 150 ms (the 10 s
// benchmark's posting bursts); a claim per freed worker would cost a
// claim per run.
func claimBatch(workers int) int { return max(1, workers/4) }

// kick asks the loop for a claim soon, if the last one left routes due.
func (d *daemon) kick() {
	if !d.saturated.Load() {
		return
	}
	select {
	case d.kicks <- struct{}{}:
	default:
	}
}

// Run runs the daemon until ctx ends, then lets the runs in progress
// finish (up to Grace; then they are interrupted) and returns. It returns
// an error only when the first Load fails.
func Run(ctx context.Context, o Options) error {
	if o.Store == nil || o.Engine == nil || o.Load == nil {
		return errors.New("daemon: Store, Engine and Load are required")
	}
	o.defaults()
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	d := &daemon{o: o, log: o.Logger, clk: o.Clock, work: work, slots: make(chan struct{}, o.Workers), kicks: make(chan struct{}, 1)}
	if o.Holder != "" {
		if err := d.startLeases(work); err != nil {
			return err
		}
		defer d.stopLeases()
	}
	if err := d.load(ctx, true); err != nil {
		return err
	}
	d.log.Info("daemon started", "routes", len(d.routes), "jobs", len(d.jobs))

	tick := d.clk.NewTicker(o.Tick)
	defer tick.Stop()
	prune := d.clk.NewTicker(o.PruneEvery)
	defer prune.Stop()
	d.tick() // at once, then every Tick
	// soon fires a claim claimGap after a run ended while routes were left
	// due (see kick); shifted, a tick's claim with leases (see tickShift).
	var soon, shifted <-chan time.Time
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-d.kicks:
			if o.Workers-int(d.inflight.Load()) >= claimBatch(o.Workers) {
				soon = nil
				d.tick()
			} else if soon == nil {
				soon = d.clk.After(claimGap(o.Tick))
			}
		case <-soon:
			soon = nil
			d.tick()
		case <-o.Reload:
			d.log.Info("reloading the configuration")
			if err := d.load(ctx, false); err != nil {
				d.log.Error("the new configuration is not valid; keeping the old one", "err", err)
			}
		case <-tick.Chan():
			if d.leases == nil {
				d.tick()
			} else if shifted == nil {
				shifted = d.clk.After(tickShift(o.Tick))
			}
		case <-shifted:
			shifted = nil
			d.tick()
		case <-prune.Chan():
			d.prune()
		}
	}

	d.log.Info("stopping: letting runs in progress finish", "grace", o.Grace)
	d.mu.Lock()
	d.stopping = true
	if d.streams != nil {
		d.streams()
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); d.swg.Wait(); d.awg.Wait(); close(done) }()
	select {
	case <-done:
	case <-d.clk.After(o.Grace):
		d.log.Warn("runs still in progress after the grace period; interrupting them")
		cancelWork()
		<-done
	}
	if d.afterDue.Load() && d.cfg.AfterRun != nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		d.cfg.AfterRun(actx)
		cancel()
	}
	d.log.Info("daemon stopped")
	return nil
}

// load (re)builds the configuration and (re)starts the streams. On error
// the running configuration stays as it was.
func (d *daemon) load(ctx context.Context, starting bool) error {
	cfg, err := d.o.Load(ctx)
	if err != nil {
		return err
	}
	routes := map[string]*Route{}
	jobs := map[string]Job{}
	specs := map[string]string{}
	for _, j := range cfg.Jobs {
		jobs[j.Name] = j
		specs[j.Name] = j.Spec
	}
	for _, name := range cfg.Paused {
		if err := d.o.Store.BridgeSetPaused(ctx, name, true); err != nil {
			return err
		}
	}
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		routes[r.Route.Name] = r
		specs[r.Route.Name] = r.Spec
	}
	// With leases, a run a dead daemon had claimed is taken over when its
	// lease expires; making every route due at each start would only
	// repeat the runs of the daemons still alive.
	if err := d.o.Store.BridgeSchedule(ctx, specs, starting && d.leases == nil); err != nil {
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
	d.cfg, d.routes, d.jobs = cfg, routes, jobs
	for _, r := range routes {
		if s, ok := r.Route.Source.(sources.Streamer); ok && r.Stream {
			d.swg.Add(1)
			go d.stream(sctx, r, s)
		}
	}
	return nil
}

// tick claims the due routes and jobs and starts their runs.
func (d *daemon) tick() {
	d.mu.Lock()
	if d.stopping {
		d.mu.Unlock()
		return
	}
	names := make([]string, 0, len(d.routes)+len(d.jobs))
	for n := range d.routes {
		names = append(names, n)
	}
	for n := range d.jobs {
		names = append(names, n)
	}
	after := d.cfg.AfterRun
	d.mu.Unlock()
	d.afterRuns(after, false)
	// The lease outlasts the longest run, so a claimed route is not
	// claimed again while it runs; a restarted daemon resets it.
	var due []string
	var err error
	if d.leases != nil {
		// Claim only what a free worker can start now: the other daemons
		// take the rest, and a claimed run never waits here while its
		// lease keeps another daemon from it.
		free := d.o.Workers - int(d.inflight.Load())
		if free <= 0 {
			d.o.Observer.Heartbeat(d.clk.Now())
			return
		}
		due, err = d.leases.st.BridgeClaimLeases(d.work, d.o.Holder, names, d.clk.Now(), d.o.LeaseTTL, d.o.Timeout+time.Minute, free)
		d.inflight.Add(int64(len(due)))
		d.saturated.Store(err == nil && len(due) == free)
	} else {
		due, err = d.o.Store.BridgeClaimDue(d.work, names, d.clk.Now(), d.o.Timeout+time.Minute)
	}
	// The loop is alive whether or not the store answered: the health
	// check tests the store on its own.
	d.o.Observer.Heartbeat(d.clk.Now())
	if err != nil {
		d.log.Error("could not pick due routes", "err", err)
		return
	}
	if len(due) > 0 {
		d.log.Debug("claimed due routes", "routes", due, "in_flight", d.inflight.Load())
	}
	for _, name := range due {
		d.mu.Lock()
		r := d.routes[name]
		j, isJob := d.jobs[name]
		start := !d.stopping && (r != nil || isJob)
		if start {
			d.wg.Add(1)
		}
		d.mu.Unlock()
		switch {
		case !start:
			if d.leases != nil {
				// Stopping: hand the run back at once.
				d.inflight.Add(-1)
				_ = d.leases.release(d.work, leaseRun+name)
				_ = d.o.Store.BridgeRunSoon(d.work, name)
			}
		case r != nil:
			go d.runRoute(r)
		default:
			go d.runJob(j)
		}
	}
}

// acquire waits for a worker slot; it reports false if the daemon's work
// was interrupted meanwhile.
func (d *daemon) acquire() bool {
	select {
	case d.slots <- struct{}{}:
		return true
	case <-d.work.Done():
		return false
	}
}

// afterGap is the least time between two AfterRun calls started by runs'
// ends; the tick starts one whenever runs ended since the last.
const afterGap = time.Second

// afterRuns calls after (Config.AfterRun) in the background if runs ended
// since its last call and no call is running; atRunEnd: only if the last
// call started afterGap ago or more.
func (d *daemon) afterRuns(after func(context.Context), atRunEnd bool) {
	if after == nil || !d.afterDue.Load() {
		return
	}
	if atRunEnd && d.clk.Since(time.Unix(0, d.lastAfter.Load())) < afterGap {
		return
	}
	if !d.afterBusy.CompareAndSwap(false, true) {
		return
	}
	d.lastAfter.Store(d.clk.Now().UnixNano())
	d.afterDue.Store(false)
	d.awg.Add(1)
	go func() {
		defer d.awg.Done()
		defer d.afterBusy.Store(false)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(d.work), d.o.Timeout)
		defer cancel()
		after(ctx)
	}()
}

func (d *daemon) runRoute(r *Route) {
	defer d.wg.Done()
	// released is set when the run's record released its lease too.
	var released atomic.Bool
	base, done := d.guard(r.Route.Name, &released)
	defer done()
	if !d.acquire() {
		return
	}
	defer func() { <-d.slots }()
	ctx, cancel := context.WithTimeout(base, d.o.Timeout)
	defer cancel()
	start := d.clk.Now()
	var st Store = d.o.Store
	if d.leases != nil {
		st = lostLease{Store: st, lost: func() bool { return base.Err() != nil && d.work.Err() == nil },
			lease: leaseRun + r.Route.Name, holder: d.o.Holder, released: &released}
	}
	p, err := once(ctx, st, d.o.Engine, *r, d.clk, d.o.Jitter())
	d.o.Observer.Ran(r.Route.Name, p.Outcome)
	log := d.log.With("route", r.Route.Name)
	if err != nil {
		log.Error("could not record the run", "err", err)
	}
	if res := p.Result; p.Err != nil {
		log.Error("route failed", "err", p.Err, "outcome", p.Outcome, "next_run", p.Next.Format(time.RFC3339))
	} else if res.Published+res.Edited+res.Deleted+res.Failed > 0 || res.Baseline {
		log.Info("route ran", "new", res.New, "published", res.Published, "edited", res.Edited,
			"deleted", res.Deleted, "failed", res.Failed, "retried", res.Retried, "first_run", res.Baseline,
			"took", d.clk.Since(start).Round(time.Millisecond))
	}
	d.afterDue.Store(true)
	d.mu.Lock()
	after := d.cfg.AfterRun
	d.mu.Unlock()
	d.afterRuns(after, true)
}

func (d *daemon) runJob(j Job) {
	defer d.wg.Done()
	base, done := d.guard(j.Name, nil)
	defer done()
	if !d.acquire() {
		return
	}
	defer func() { <-d.slots }()
	start := d.clk.Now()
	err := j.Run(base)
	next := d.record(d.work, j.Name, j.Schedule, Ended{Start: start, End: d.clk.Now(), Err: err, Jitter: d.o.Jitter()})
	outcome, _ := bridge.Outcome(err)
	d.o.Observer.Ran(j.Name, outcome)
	if err != nil {
		d.log.Error("job failed", "job", j.Name, "err", err, "next_run", next.Format(time.RFC3339))
	} else {
		d.log.Info("job done", "job", j.Name, "took", d.clk.Since(start).Round(time.Second))
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
		if err := d.o.Store.BridgePrune(d.work, n, d.o.PruneKeep); err != nil {
			d.log.Warn("maintenance failed", "route", n, "err", err)
		}
	}
}

// Ended describes a finished run for Record.
type Ended struct {
	Start, End time.Time
	// Wait is the source's earliest next poll (bridge.Result.Wait).
	Wait time.Duration
	Err  error
	// Jitter spreads back-offs: schedule.Run.Jitter.
	Jitter float64
}

// Record computes when the route or job name on schedule s runs next
// after the run e (schedule.Next, the error classified by
// bridge.Outcome), records the run in st and returns the next run. It is
// the one bookkeeping of a run, for the daemon and `ferry mirror` alike.
// A store that can (a runEnder) records the run and the source's wait in
// one write.
func Record(ctx context.Context, st Store, name string, s schedule.Schedule, e Ended) (time.Time, error) {
	// The run happened; a shutdown must not lose its record.
	ctx = context.WithoutCancel(ctx)
	outcome, retryAfter := bridge.Outcome(e.Err)
	run := schedule.Run{Start: e.Start, End: e.End, Outcome: outcome, RetryAfter: retryAfter, Wait: e.Wait, Jitter: e.Jitter, Key: name}
	msg := ""
	if e.Err != nil {
		msg = e.Err.Error()
		prev, _ := st.BridgeFailures(ctx, name)
		run.Failures = prev + 1
	}
	next := schedule.Next(s, run)
	// The source's wait is kept apart from the next run: `ferry mirror`
	// runs a healthy route whenever cron calls it, except while its source
	// asked to be left alone.
	var until time.Time
	if e.Wait > 0 {
		until = e.End.Add(e.Wait)
	}
	if re, ok := st.(runEnder); ok {
		if err := re.BridgeEndRun(ctx, name, e.Start, msg, outcome == schedule.Transient, next, until, "", ""); err != nil {
			return next, fmt.Errorf("record the run of %s: %w", name, err)
		}
		return next, nil
	}
	if err := st.BridgeRecordRun(ctx, name, e.Start, msg, outcome == schedule.Transient, next); err != nil {
		return next, fmt.Errorf("record the run of %s: %w", name, err)
	}
	if err := st.BridgeSetWait(ctx, name, until); err != nil {
		return next, fmt.Errorf("record the run of %s: %w", name, err)
	}
	return next, nil
}

// runEnder is a Store that records the end of a run in one write
// (state.Store): the run as BridgeRecordRun, the source's wait as
// BridgeSetWait and, when lease is not "", the release of the run's lease
// if holder has it.
type runEnder interface {
	BridgeEndRun(ctx context.Context, name string, start time.Time, runErr string, transient bool, next, waitUntil time.Time, lease, holder string) error
}

// record is Record, logging a failure to record.
func (d *daemon) record(ctx context.Context, name string, s schedule.Schedule, e Ended) time.Time {
	next, err := Record(ctx, d.o.Store, name, s, e)
	if err != nil {
		d.log.Error("could not record the run", "name", name, "err", err)
	}
	return next
}

// Stream reconnection: the first wait, its cap, and how long a connection
// must have lasted for the next reconnect to be prompt again.
const (
	streamFirstWait = time.Second
	streamMaxWait   = 5 * time.Minute
	streamHealthy   = time.Minute
)

// stream follows a streaming source until ctx ends, reconnecting with
// back-off (reset after a connection that lasted or delivered a post);
// after each reconnect the route is polled, to catch what the stream
// missed while it was down.
func (d *daemon) stream(ctx context.Context, r *Route, s sources.Streamer) {
	defer d.swg.Done()
	if d.leases != nil {
		d.streamLeased(ctx, r, func(ctx context.Context) { d.follow(ctx, r, s) })
		return
	}
	d.follow(ctx, r, s)
}

// follow is stream's loop, on this daemon.
func (d *daemon) follow(ctx context.Context, r *Route, s sources.Streamer) {
	log := d.log.With("route", r.Route.Name)
	wait := streamFirstWait
	for reconnect := false; ctx.Err() == nil; reconnect = true {
		events := make(chan sources.Event, 64)
		errc := make(chan error, 1)
		sctx, cancel := context.WithCancel(ctx)
		d.o.Observer.StreamOpened(r.Route.Name, reconnect)
		go func() { errc <- s.Stream(sctx, events) }()
		connected := d.clk.Now()
		healthy := false
	loop:
		for {
			select {
			case ev := <-events:
				if d.handle(ctx, r, ev) {
					healthy = true
				}
			case err := <-errc:
				if errors.Is(err, sources.ErrNoStreaming) {
					// Advertised but absent: reconnecting (and the
					// catch-up poll after each try) would only load the
					// server. The route's schedule does the work.
					cancel()
					d.o.Observer.StreamClosed(r.Route.Name)
					log.Info(noStreamingMessage(r.Spec), "err", err)
					return
				}
				if ctx.Err() == nil {
					log.Warn("stream ended; polling continues", "err", err)
				}
				break loop
			}
		}
		cancel()
		d.o.Observer.StreamClosed(r.Route.Name)
		if healthy || d.clk.Since(connected) > streamHealthy {
			wait = streamFirstWait
		}
		select {
		case <-ctx.Done():
			return
		case <-d.clk.After(wait):
		}
		wait = min(wait*2, streamMaxWait)
		if err := d.o.Store.BridgeRunSoon(ctx, r.Route.Name); err != nil {
			log.Warn("could not schedule a catch-up poll", "err", err)
		}
	}
}

// noStreamingMessage says, once, that a route is polled only: "no
// streaming API; polling every 15m" for an interval schedule.
func noStreamingMessage(spec string) string {
	if _, err := time.ParseDuration(spec); err == nil {
		return "no streaming API; polling every " + spec
	}
	return "no streaming API; polling on the schedule " + spec
}

// handle mirrors one streamed event and reports whether it succeeded. The
// engine retries transient failures itself; a failure that outlasts them
// is recorded as a failed run of the route, so the next poll comes after
// the same back-off as a failed poll's (seconds for a transient one), and
// finishes the steps the event left journaled.
func (d *daemon) handle(ctx context.Context, r *Route, ev sources.Event) bool {
	d.mu.Lock()
	if d.stopping {
		d.mu.Unlock()
		return false
	}
	d.wg.Add(1)
	d.mu.Unlock()
	defer d.wg.Done()
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.o.Timeout)
	defer cancel()
	start := d.clk.Now()
	res, err := d.o.Engine.Handle(hctx, r.Route, ev)
	if err != nil {
		outcome, _ := bridge.Outcome(err)
		d.o.Observer.EventFailed(r.Route.Name, outcome)
		next := d.record(hctx, r.Route.Name, r.Schedule, Ended{Start: start, End: d.clk.Now(), Err: err, Jitter: d.o.Jitter()})
		d.log.Error("could not mirror a streamed post; a poll retries", "route", r.Route.Name, "origin", ev.Post.OriginID,
			"err", err, "next_run", next.Format(time.RFC3339))
		return false
	}
	if res.Published+res.Edited+res.Deleted > 0 {
		d.log.Info("mirrored from the stream", "route", r.Route.Name, "origin", ev.Post.OriginID,
			"published", res.Published, "edited", res.Edited, "deleted", res.Deleted)
	}
	return true
}

// guard returns the context of a run of name and the function to call when
// it ended: with leases, the context ends if the run's lease is lost, and
// the lease is released after the run was recorded, unless released (when
// not nil) says the record released it already.
func (d *daemon) guard(name string, released *atomic.Bool) (context.Context, func()) {
	if d.leases == nil {
		return d.work, func() {}
	}
	ctx, stop := d.leases.guard(d.work, leaseRun+name)
	return ctx, func() {
		defer func() {
			d.inflight.Add(-1)
			d.kick() // its worker is free
		}()
		stop()
		if released != nil && released.Load() {
			return
		}
		if err := d.leases.release(d.work, leaseRun+name); err != nil {
			d.log.Warn("could not release the lease of a run; it expires by itself", "name", name, "err", err)
		}
	}
}
