package daemon

import (
	"context"
	"errors"
	"testing"
	"time"
)

// failingLeaser answers renewals with err, or with the names in held.
type failingLeaser struct {
	Leaser
	err  error
	held []string
}

func (f *failingLeaser) RenewLeases(context.Context, string, time.Time, time.Duration) ([]string, error) {
	return f.held, f.err
}

// TestRenewStopsWorkBeforeExpiry: while the database does not answer, the
// work under the leases goes on until 2/3 of the lease has passed since
// the last renewal, then stops, before the leases can expire and another
// daemon take them; a lease missing from a renewal's answer stops its
// work at once.
func TestRenewStopsWorkBeforeExpiry(t *testing.T) {
	f := &failingLeaser{err: errors.New("connection refused")}
	t0 := time.Now()
	l := &leases{st: f, holder: "A", ttl: 30 * time.Second, held: map[string]heldLease{}, lastRenew: t0}
	run, stopRun := l.guard(context.Background(), "run/x")
	defer stopRun()
	if err := l.renew(context.Background(), t0.Add(10*time.Second)); err == nil {
		t.Fatal("renew succeeded without a database")
	}
	if run.Err() != nil {
		t.Fatal("the run stopped one renewal after the database went away; its lease has 20s left")
	}
	_ = l.renew(context.Background(), t0.Add(20*time.Second))
	if run.Err() == nil {
		t.Fatal("the run goes on 20s into a 30s lease that could not be renewed")
	}

	f.err, f.held = nil, []string{"run/y"}
	y, stopY := l.guard(context.Background(), "run/y")
	defer stopY()
	z, stopZ := l.guard(context.Background(), "run/z")
	defer stopZ()
	if err := l.renew(context.Background(), t0.Add(25*time.Second)); err != nil {
		t.Fatal(err)
	}
	if y.Err() != nil || z.Err() == nil {
		t.Fatalf("after a renewal that kept only y: y stopped %v, z stopped %v", y.Err() != nil, z.Err() != nil)
	}
}

// claimingLeaser answers a renewal with the names it held when asked,
// after a run was claimed (its guard registered) while the renewal was on
// its way.
type claimingLeaser struct {
	Leaser
	claim func()
}

func (c *claimingLeaser) RenewLeases(context.Context, string, time.Time, time.Duration) ([]string, error) {
	c.claim()
	return []string{"run/a"}, nil
}

// A run claimed while a renewal was on its way is not stopped by its
// answer, which could not name its lease; leases registered before it
// that the answer misses still are.
func TestRenewSparesRunsClaimedMeanwhile(t *testing.T) {
	t0 := time.Now()
	c := &claimingLeaser{}
	l := &leases{st: c, holder: "A", ttl: 30 * time.Second, held: map[string]heldLease{}, lastRenew: t0}
	a, stopA := l.guard(context.Background(), "run/a")
	defer stopA()
	gone, stopGone := l.guard(context.Background(), "run/gone")
	defer stopGone()
	var fresh context.Context
	c.claim = func() {
		var stop context.CancelFunc
		fresh, stop = l.guard(context.Background(), "run/b")
		t.Cleanup(stop)
	}
	if err := l.renew(context.Background(), t0.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if a.Err() != nil || gone.Err() == nil || fresh.Err() != nil {
		t.Fatalf("after the renewal: a stopped %v (want false), gone stopped %v (want true), the run claimed meanwhile stopped %v (want false)",
			a.Err() != nil, gone.Err() != nil, fresh.Err() != nil)
	}
	// The next renewal judges it as any other.
	c.claim = func() {}
	if err := l.renew(context.Background(), t0.Add(20*time.Second)); err != nil {
		t.Fatal(err)
	}
	if fresh.Err() == nil {
		t.Fatal("a lease missing from a later renewal's answer did not stop its run")
	}
}
