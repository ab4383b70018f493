package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Leaser is the store of a database several daemons share (PostgreSQL):
// a route's run, a route's stream and each daemon are leases a holder
// claims, renews and releases (state.Store implements it; see its
// lease.go). With Options.Holder set the daemon runs only what it holds
// a lease for, and needs no global lock.
type Leaser interface {
	// BridgeClaimLeases returns the names among candidates due at now (or
	// whose holder's lease expired mid-run), leased to holder until
	// now+ttl, with their next run pushed to now+hold; at most limit
	// of them, the longest due first.
	BridgeClaimLeases(ctx context.Context, holder string, candidates []string, now time.Time, ttl, hold time.Duration, limit int) ([]string, error)
	// AcquireLease gives the lease name to holder until now+ttl if it is
	// free, expired or holder's already; it reports whether it did.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	// RenewLeases extends holder's unexpired leases and returns their names.
	RenewLeases(ctx context.Context, holder string, now time.Time, ttl time.Duration) ([]string, error)
	// ReleaseLease drops the lease name if holder has it.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Lease name prefixes, as the store keeps them.
const (
	leaseRun    = "run/"
	leaseStream = "stream/"
	leaseDaemon = "daemon/"
)

// DefaultLeaseTTL is how long a lease lasts unless renewed: how long the
// routes of a daemon that died wait before another daemon takes them.
const DefaultLeaseTTL = 30 * time.Second

// leases is the daemon's side of its leases: the work each one guards, to
// stop it when the lease is lost.
type leases struct {
	st     Leaser
	holder string
	ttl    time.Duration

	mu   sync.Mutex
	held map[string]heldLease // lease name → its work
	// gen numbers the guards, so a renewal judges only the leases
	// registered before it asked the store.
	gen uint64
	// lastRenew is when the leases were last renewed (or claimed).
	lastRenew time.Time
	// stop ends the renewals; done is closed when they ended.
	stop context.CancelFunc
	done chan struct{}
}

// guard registers the work of lease name, returning a context that ends
// when the lease is lost (or parent ends) and a function that ends it.
func (l *leases) guard(parent context.Context, name string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	l.mu.Lock()
	l.gen++
	l.held[name] = heldLease{stop: cancel, gen: l.gen}
	l.mu.Unlock()
	return ctx, func() {
		l.mu.Lock()
		delete(l.held, name)
		l.mu.Unlock()
		cancel()
	}
}

// release drops lease name in the store after its work ended.
func (l *leases) release(ctx context.Context, name string) error {
	return l.st.ReleaseLease(context.WithoutCancel(ctx), name, l.holder)
}

// renew extends every lease and stops the work of those lost: missing from
// the store's answer (taken over after expiring), or, while the database
// does not answer, all of them before they can expire, so that a daemon
// cut off from the database never runs a route that another daemon may
// have taken.
//
// Only the work registered before the store was asked is judged: a run
// claimed while the renewal was on its way holds a lease the answer could
// not name (found by the 10 s benchmark once claims came often: runs
// stopped a moment after their claim, their record skipped as if their
// lease were lost, their routes left until the lease expired).
func (l *leases) renew(ctx context.Context, now time.Time) error {
	l.mu.Lock()
	asked := l.gen
	l.mu.Unlock()
	// Bounded, so that a database that does not answer is noticed at the
	// next renewal, before the leases expire.
	rctx, cancel := context.WithTimeout(ctx, l.ttl/3)
	names, err := l.st.RenewLeases(rctx, l.holder, now, l.ttl)
	cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if now.Sub(l.lastRenew) >= l.ttl*2/3 {
			for n, h := range l.held {
				if h.gen <= asked {
					h.stop()
					delete(l.held, n)
				}
			}
		}
		return err
	}
	l.lastRenew = now
	for n, h := range l.held {
		if h.gen <= asked && !slices.Contains(names, n) {
			h.stop()
			delete(l.held, n)
		}
	}
	return nil
}

// heldLease is the work under one lease: stop ends it; gen is when its
// guard was registered (leases.gen).
type heldLease struct {
	stop context.CancelFunc
	gen  uint64
}

// startLeases takes the daemon's own lease and starts renewing every lease
// every ttl/3 until ctx ends.
func (d *daemon) startLeases(ctx context.Context) error {
	lr, ok := d.o.Store.(Leaser)
	if !ok {
		return fmt.Errorf("daemon: Holder is set but the store does not implement leases")
	}
	ttl := d.o.LeaseTTL
	d.leases = &leases{st: lr, holder: d.o.Holder, ttl: ttl, held: map[string]heldLease{}, lastRenew: d.clk.Now()}
	if _, err := lr.AcquireLease(ctx, leaseDaemon+d.o.Holder, d.o.Holder, d.clk.Now(), ttl); err != nil {
		return err
	}
	ctx, d.leases.stop = context.WithCancel(ctx)
	d.leases.done = make(chan struct{})
	go func() {
		defer close(d.leases.done)
		t := d.clk.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.Chan():
				if err := d.leases.renew(ctx, d.clk.Now()); err != nil {
					d.log.Warn("could not renew the leases; the database may be unreachable", "err", err)
				} else {
					// The daemon's own lease lapses while the database is
					// away; take it again when it is back.
					_, _ = lr.AcquireLease(ctx, leaseDaemon+d.o.Holder, d.o.Holder, d.clk.Now(), ttl)
				}
			}
		}
	}()
	return nil
}

// stopLeases releases the daemon's own lease at shutdown (its runs
// released theirs as they ended).
func (d *daemon) stopLeases() {
	if d.leases == nil {
		return
	}
	// Renewals end first, so that none takes the daemon's lease again.
	d.leases.stop()
	<-d.leases.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.leases.release(ctx, leaseDaemon+d.o.Holder)
}

// streamLeased follows r's stream while this daemon holds its stream
// lease: one daemon streams each route, and when it dies another takes
// the stream over once the lease expires.
func (d *daemon) streamLeased(ctx context.Context, r *Route, follow func(ctx context.Context)) {
	name := leaseStream + r.Route.Name
	for ctx.Err() == nil {
		ok, err := d.leases.st.AcquireLease(ctx, name, d.o.Holder, d.clk.Now(), d.o.LeaseTTL)
		if err != nil {
			d.log.Warn("could not take the stream lease", "route", r.Route.Name, "err", err)
		}
		if ok {
			sctx, stop := d.leases.guard(ctx, name)
			follow(sctx)
			stop()
			_ = d.leases.release(ctx, name)
		}
		select {
		case <-ctx.Done():
			return
		case <-d.clk.After(d.o.LeaseTTL / 3):
		}
	}
}

// lostLease is the Store of a leased run: once the run's lease was lost
// (another daemon may hold the route now and keeps its schedule), the
// interrupted run's outcome is not recorded over the new holder's.
type lostLease struct {
	Store
	lost func() bool
	// lease and holder name the run's lease, which the run's record
	// releases when the store can do both in one write; released is then
	// set, and the run's end does not release it again.
	lease, holder string
	released      *atomic.Bool
}

// BridgeEndRun records the end of the run and releases its lease in one
// write when the store can (runEnder), else as Record does without one.
func (s lostLease) BridgeEndRun(ctx context.Context, name string, start time.Time, runErr string, transient bool, next, until time.Time, _, _ string) error {
	if s.lost() {
		return nil
	}
	if re, ok := s.Store.(runEnder); ok {
		if err := re.BridgeEndRun(ctx, name, start, runErr, transient, next, until, s.lease, s.holder); err != nil {
			return err
		}
		s.released.Store(true)
		return nil
	}
	if err := s.Store.BridgeRecordRun(ctx, name, start, runErr, transient, next); err != nil {
		return err
	}
	return s.Store.BridgeSetWait(ctx, name, until)
}

func (s lostLease) BridgeRecordRun(ctx context.Context, name string, start time.Time, runErr string, transient bool, next time.Time) error {
	if s.lost() {
		return nil
	}
	return s.Store.BridgeRecordRun(ctx, name, start, runErr, transient, next)
}

func (s lostLease) BridgeSetWait(ctx context.Context, name string, until time.Time) error {
	if s.lost() {
		return nil
	}
	return s.Store.BridgeSetWait(ctx, name, until)
}

// errRunLeaseLost is why a leased pass (LeaseRuns) stopped.
var errRunLeaseLost = errors.New("ferry mirror lost the lease of a route (taken over by another process, or the database did not answer in time); stopped so that no route runs twice")

// LeaseRuns takes the run lease of each route in names for holder, as a
// daemon's runs are leased, for a pass outside the daemon (`ferry mirror`
// on a shared database). A route another process holds is an error naming
// it, and nothing stays taken. The leases are renewed every ttl/3 by the
// daemon's rule (leases.renew) for as long as the pass runs; the returned
// context ends, with its cause, when one is lost, so the pass stops before
// another process may run the same route. done stops the renewals and
// releases the leases.
func LeaseRuns(ctx context.Context, lr Leaser, holder string, names []string, ttl time.Duration) (run context.Context, done func(), err error) {
	l := &leases{st: lr, holder: holder, ttl: ttl, held: map[string]heldLease{}, lastRenew: time.Now()}
	run, cancel := context.WithCancelCause(ctx)
	lost := func() { cancel(errRunLeaseLost) }
	var taken []string
	release := func() {
		for _, n := range taken {
			_ = l.release(ctx, n)
		}
	}
	for _, n := range names {
		ok, err := lr.AcquireLease(ctx, leaseRun+n, holder, time.Now(), ttl)
		if err == nil && !ok {
			err = fmt.Errorf("route %s is being run by a ferry daemon right now (see `ferry status`); try again later, or use --dry-run", n)
		}
		if err != nil {
			cancel(nil)
			release()
			return nil, nil, err
		}
		taken = append(taken, leaseRun+n)
		l.held[leaseRun+n] = heldLease{stop: lost}
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-run.Done():
				return
			case <-t.C:
				_ = l.renew(run, time.Now())
			}
		}
	}()
	return run, func() {
		cancel(nil)
		<-stopped
		release()
	}, nil
}
