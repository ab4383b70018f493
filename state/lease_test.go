package state

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/testenv"
)

// TestLeases: a due route is claimed by one holder only; while that
// holder renews, nobody else gets it; when its lease expires mid-run,
// another holder takes it over at once, even though its next run is far.
func TestLeases(t *testing.T) {
	s := testPG(t)
	ctx := t.Context()
	if err := s.BridgeSchedule(ctx, map[string]string{"a": "10s", "b": "10s"}, true); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ttl, hold := 30*time.Second, 10*time.Minute
	got, err := s.BridgeClaimLeases(ctx, "A", []string{"a"}, now, ttl, hold, 0)
	if err != nil || !slices.Equal(got, []string{"a"}) {
		t.Fatalf("A claims = %v, %v; want [a]", got, err)
	}
	got, err = s.BridgeClaimLeases(ctx, "B", []string{"a", "b"}, now, ttl, hold, 0)
	if err != nil || !slices.Equal(got, []string{"b"}) {
		t.Fatalf("B claims = %v, %v; want [b] (a is A's)", got, err)
	}
	// A renews at +20s: its lease now runs to +50s; B finds nothing at +40s.
	held, err := s.RenewLeases(ctx, "A", now.Add(20*time.Second), ttl)
	if err != nil || !slices.Equal(held, []string{"run/a"}) {
		t.Fatalf("A renews = %v, %v", held, err)
	}
	if got, _ := s.BridgeClaimLeases(ctx, "B", []string{"a"}, now.Add(40*time.Second), ttl, hold, 0); len(got) != 0 {
		t.Fatalf("B took a live lease: %v", got)
	}
	ls, err := s.Leases(ctx, now.Add(25*time.Second))
	if err != nil || len(ls) != 2 || ls[0].Holder != "A" || ls[1].Holder != "B" {
		t.Fatalf("Leases = %+v, %v", ls, err)
	}
	// A dies: at +51s its lease has expired and B resumes the run at once.
	got, err = s.BridgeClaimLeases(ctx, "B", []string{"a"}, now.Add(51*time.Second), ttl, hold, 0)
	if err != nil || !slices.Equal(got, []string{"a"}) {
		t.Fatalf("B takes over = %v, %v; want [a]", got, err)
	}
	// An abandoned run comes before due ones even under a limit: its next
	// run was pushed far ahead when it was claimed.
	if err := s.BridgeSchedule(ctx, map[string]string{"c": "10s", "d": "10s"}, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.BridgeClaimLeases(ctx, "A", []string{"c"}, now.Add(2*time.Second), ttl, hold, 0); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("A claims c = %v", got)
	}
	got, err = s.BridgeClaimLeases(ctx, "B", []string{"a", "c", "d"}, now.Add(45*time.Second), ttl, hold, 1)
	if err != nil || !slices.Equal(got, []string{"c"}) {
		t.Fatalf("B claims with limit 1 = %v, %v; want the abandoned [c] before the due d", got, err)
	}
	// A comes back: its renewal no longer covers run/a.
	if held, _ := s.RenewLeases(ctx, "A", now.Add(52*time.Second), ttl); len(held) != 0 {
		t.Fatalf("A still holds %v after the takeover", held)
	}
	if err := s.ReleaseLease(ctx, "run/a", "B"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.AcquireLease(ctx, "stream/a", "A", now.Add(53*time.Second), ttl); err != nil || !ok {
		t.Fatalf("A acquires a free stream lease: %v, %v", ok, err)
	}
	if ok, _ := s.AcquireLease(ctx, "stream/a", "B", now.Add(54*time.Second), ttl); ok {
		t.Fatal("B acquired A's live stream lease")
	}
	// The released run is not due again before its next run.
	if got, _ := s.BridgeClaimLeases(ctx, "A", []string{"a"}, now.Add(55*time.Second), ttl, hold, 0); len(got) != 0 {
		t.Fatalf("a released run was claimed again before its next run: %v", got)
	}
	if _, err := TestStore(t).BridgeClaimLeases(ctx, "A", []string{"a"}, now, ttl, hold, 0); !errors.Is(err, ErrNotShared) {
		t.Fatalf("SQLite leases: %v, want ErrNotShared", err)
	}
}

// TestClaimsConcurrent: daemons claiming at the same time from their own
// connections (claims no longer take the store's lock) never get one run
// twice, and a run's end releases its lease in the same write as its
// record, after which the route is not due before its next run.
func TestClaimsConcurrent(t *testing.T) {
	url := testenv.PostgresDB(t)
	stores := []*Store{TestStoreAt(t, url), TestStoreAt(t, url), TestStoreAt(t, url)}
	ctx := t.Context()
	const n = 300
	names := make([]string, n)
	sched := map[string]string{}
	for i := range names {
		names[i] = fmt.Sprintf("r%03d", i)
		sched[names[i]] = "10s"
	}
	if err := stores[0].BridgeSchedule(ctx, sched, true); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(time.Second)
	var mu sync.Mutex
	owner := map[string]string{}
	var wg sync.WaitGroup
	for d, s := range stores {
		for w := range 4 {
			holder := fmt.Sprintf("D%d", d)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 40 {
					got, err := s.BridgeClaimLeases(ctx, holder, names, now, 30*time.Second, time.Hour, 5+w)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					for _, g := range got {
						if prev, dup := owner[g]; dup {
							t.Errorf("%s claimed by %s and again by %s", g, prev, holder)
						}
						owner[g] = holder
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(owner) != n {
		t.Fatalf("%d of %d due routes claimed", len(owner), n)
	}
	// Ending a run records it and releases its lease, in one statement.
	s := stores[1]
	end := now.Add(2 * time.Second)
	if err := s.BridgeEndRun(ctx, "r000", end, "", false, end.Add(10*time.Second), end.Add(time.Minute), "run/r000", owner["r000"]); err != nil {
		t.Fatal(err)
	}
	ls, _ := s.Leases(ctx, end)
	for _, l := range ls {
		if l.Name == "run/r000" {
			t.Fatalf("the run's lease outlived its record: %+v", l)
		}
	}
	r, _ := s.BridgeRoute(ctx, "r000")
	if !r.LastRunAt.Equal(end.UTC().Round(0)) || !r.NextRunAt.Equal(end.Add(10*time.Second).UTC().Round(0)) || r.FailCount != 0 || r.LastOKAt.IsZero() {
		t.Errorf("recorded route: %+v", r)
	}
	if until, _ := s.BridgeWaitUntil(ctx, "r000"); !until.Equal(end.Add(time.Minute).UTC().Round(0)) {
		t.Errorf("wait = %v, want %v", until, end.Add(time.Minute))
	}
	if got, _ := stores[2].BridgeClaimLeases(ctx, "D2", []string{"r000"}, end.Add(time.Second), 30*time.Second, time.Hour, 0); len(got) != 0 {
		t.Errorf("claimed before its next run: %v", got)
	}
	if got, _ := stores[2].BridgeClaimLeases(ctx, "D2", []string{"r000"}, end.Add(11*time.Second), 30*time.Second, time.Hour, 0); !slices.Equal(got, []string{"r000"}) {
		t.Errorf("at its next run: %v, want [r000]", got)
	}
	// Another holder's end of run does not release the lease.
	if err := s.BridgeEndRun(ctx, "r001", end, "boom", true, end, time.Time{}, "run/r001", "nobody"); err != nil {
		t.Fatal(err)
	}
	if held, _ := s.RenewLeases(ctx, owner["r001"], end, 30*time.Second); !slices.Contains(held, "run/r001") {
		t.Errorf("r001's lease was released by another holder's record: %v", held)
	}
	if r, _ := s.BridgeRoute(ctx, "r001"); r.FailCount != 1 || !r.Transient || r.LastError != "boom" {
		t.Errorf("failed run recorded as %+v", r)
	}
}

// TestEndRun: BridgeEndRun without a lease is BridgeRecordRun then
// BridgeSetWait, on both databases; SQLite has no lease to release.
func TestEndRun(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		at := time.Now().UTC().Round(time.Millisecond)
		for i, e := range []string{"x", "y", ""} {
			var wait time.Time // none after the first run, then an hour, then two
			if i > 0 {
				wait = at.Add(time.Duration(i) * time.Hour)
			}
			if err := s.BridgeEndRun(ctx, "a", at, e, true, at.Add(time.Minute), wait, "", ""); err != nil {
				t.Fatal(err)
			}
			r, _ := s.BridgeRoute(ctx, "a")
			wantFails := []int{1, 2, 0}[i]
			if r.FailCount != wantFails || r.LastError != e || r.Transient != (e != "") || r.LastOKAt.IsZero() != (e != "") {
				t.Errorf("after run %d (%q): %+v", i, e, r)
			}
			until, _ := s.BridgeWaitUntil(ctx, "a")
			if !until.Equal(wait) {
				t.Errorf("after run %d: wait %v", i, until)
			}
		}
		if !s.Shared() {
			if err := s.BridgeEndRun(ctx, "a", at, "", false, at, time.Time{}, "run/a", "A"); !errors.Is(err, ErrNotShared) {
				t.Errorf("SQLite release: %v, want ErrNotShared", err)
			}
		}
	})
}
