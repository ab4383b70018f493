package state

import (
	"errors"
	"slices"
	"testing"
	"time"
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
