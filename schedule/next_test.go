package schedule

import (
	"fmt"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	every15, _ := Parse("15m")
	hourly, _ := Parse("@hourly") // next at 13:00 after 12:00
	for _, tc := range []struct {
		name string
		s    Schedule
		r    Run
		want time.Duration // after end
	}{
		{"ok: the schedule", every15, Run{}, 15 * time.Minute},
		{"ok: the source asks for longer", every15, Run{Wait: time.Hour}, time.Hour},
		{"ok: the source asks for less", every15, Run{Wait: time.Minute}, 15 * time.Minute},
		{"ok: cron", hourly, Run{}, time.Hour},
		{"permanent: interval", every15, Run{Outcome: Permanent, Failures: 1}, 15 * time.Minute},
		{"permanent: doubled", every15, Run{Outcome: Permanent, Failures: 3}, time.Hour},
		{"permanent: capped", every15, Run{Outcome: Permanent, Failures: 30}, MaxBackoff},
		{"permanent: Retry-After longer", every15, Run{Outcome: Permanent, Failures: 1, RetryAfter: 2 * time.Hour}, 2 * time.Hour},
		{"transient: seconds", every15, Run{Outcome: Transient, Failures: 1}, 30 * time.Second},
		{"transient: grows", every15, Run{Outcome: Transient, Failures: 3}, 2 * time.Minute},
		{"transient: keeps growing", every15, Run{Outcome: Transient, Failures: 8}, 64 * time.Minute},
		{"transient: capped", every15, Run{Outcome: Transient, Failures: 40}, MaxBackoff},
		{"transient: zero failures counts as one", every15, Run{Outcome: Transient}, 30 * time.Second},
		{"transient: Retry-After", every15, Run{Outcome: Transient, Failures: 1, RetryAfter: 5 * time.Minute}, 5 * time.Minute},
		{"transient: Retry-After shorter", every15, Run{Outcome: Transient, Failures: 3, RetryAfter: time.Second}, 2 * time.Minute},
		{"transient: the source's wait", every15, Run{Outcome: Transient, Failures: 1, Wait: 10 * time.Minute}, 10 * time.Minute},
		{"transient: jitter up", every15, Run{Outcome: Transient, Failures: 1, Jitter: 1}, 36 * time.Second},
		{"transient: jitter down", every15, Run{Outcome: Transient, Failures: 1, Jitter: -1}, 24 * time.Second},
		{"transient: jitter out of range", every15, Run{Outcome: Transient, Failures: 1, Jitter: 7}, 36 * time.Second},
		{"permanent: short interval waits a minute", mustParse(t, "10s"), Run{Outcome: Permanent, Failures: 1}, time.Minute},
		{"transient on a 10s schedule", mustParse(t, "10s"), Run{Outcome: Transient, Failures: 1}, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.End = end
			if got := Next(tc.s, tc.r).Sub(end); got != tc.want {
				t.Errorf("Next = end + %v, want end + %v", got, tc.want)
			}
		})
	}
}

// A success counts the schedule from the run's start: a run of 20 s on
// "every 1m" is followed 40 s after it ended; a run longer than the
// interval is followed a whole interval after its end, not at once.
func TestNextCountsFromStart(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	every, _ := Parse("1m")
	hourly, _ := Parse("@hourly")
	for _, tc := range []struct {
		name string
		s    Schedule
		r    Run
		want time.Time
	}{
		{"short run", every, Run{Start: start, End: start.Add(20 * time.Second)}, start.Add(time.Minute)},
		{"overrun", every, Run{Start: start, End: start.Add(90 * time.Second)}, start.Add(150 * time.Second)},
		{"start unknown", every, Run{End: start.Add(20 * time.Second)}, start.Add(80 * time.Second)},
		{"the source's wait still counts from the end", every, Run{Start: start, End: start.Add(20 * time.Second), Wait: 5 * time.Minute}, start.Add(320 * time.Second)},
		{"cron", hourly, Run{Start: start.Add(-time.Second), End: start.Add(5 * time.Second)}, start.Add(time.Hour)},
		{"failures count from the end", every, Run{Start: start, End: start.Add(20 * time.Second), Outcome: Transient, Failures: 1}, start.Add(50 * time.Second)},
	} {
		if got := Next(tc.s, tc.r); !got.Equal(tc.want) {
			t.Errorf("%s: Next = %s, want %s", tc.name, got.Format(time.TimeOnly), tc.want.Format(time.TimeOnly))
		}
	}
}

// The back-off grows while transient failures continue and starts over
// after a success.
func TestNextTransientProgression(t *testing.T) {
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := mustParse(t, "15m")
	var got []time.Duration
	for n := 1; n <= 7; n++ {
		got = append(got, Next(s, Run{End: end, Outcome: Transient, Failures: n}).Sub(end))
	}
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("progression %v, want %v", got, want)
		}
	}
	if d := Next(s, Run{End: end}).Sub(end); d != 15*time.Minute {
		t.Errorf("after a success: %v", d)
	}
}

func mustParse(t *testing.T, s string) Schedule {
	t.Helper()
	sc, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// Runs with a Key fall on the key's grid: one interval apart once there,
// spread over the interval across keys, never twice within half an
// interval, and late starts do not shift the runs after them.
func TestNextOnTheKeysGrid(t *testing.T) {
	every := mustParse(t, "1m")
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	next := func(key string, start, end time.Time) time.Time {
		return Next(every, Run{Start: start, End: end, Key: key})
	}
	// All keys started together: their next runs spread over the minute.
	var buckets [6]int // by ten seconds
	for i := range 6000 {
		n := next(fmt.Sprintf("feed-%d", i), t0, t0.Add(time.Second))
		if d := n.Sub(t0); d < 30*time.Second || d >= 90*time.Second {
			t.Fatalf("feed-%d: next run %v after the start, want within [30s, 90s)", i, d)
		}
		buckets[(n.Second())/10]++
	}
	for b, k := range buckets {
		if k < 900 || k > 1100 {
			t.Errorf("%d of 6000 next runs in seconds %d–%d of the minute, want about 1000: %v", k, 10*b, 10*b+9, buckets)
		}
	}
	// On the grid: one minute apart, whatever each run's lateness.
	g := next("feed-1", t0, t0.Add(time.Second))
	for _, late := range []time.Duration{0, 3 * time.Second, 29 * time.Second, -2 * time.Second} {
		if n := next("feed-1", g.Add(late), g.Add(late+time.Second)); !n.Equal(g.Add(time.Minute)) {
			t.Errorf("a run %v late: next %s, want %s", late, n.Format(time.TimeOnly), g.Add(time.Minute).Format(time.TimeOnly))
		}
	}
	// A run that overran its point: the grid point at least half an
	// interval after its end, never at once.
	if n := next("feed-1", g, g.Add(70*time.Second)); n.Sub(g.Add(70*time.Second)) < 30*time.Second || !n.Equal(next("feed-1", g.Add(time.Minute), g.Add(70*time.Second))) {
		t.Errorf("overrun: next %s", n.Format(time.TimeOnly))
	}
	// The source's wait still wins; failures still back off from the end;
	// no key, no grid.
	if n := Next(every, Run{Start: g, End: g, Key: "feed-1", Wait: 5 * time.Minute}); !n.Equal(g.Add(5 * time.Minute)) {
		t.Errorf("wait: next %s", n.Format(time.TimeOnly))
	}
	if n := Next(every, Run{Start: g, End: g, Key: "feed-1", Outcome: Transient, Failures: 1}); !n.Equal(g.Add(30 * time.Second)) {
		t.Errorf("transient: next %s", n.Format(time.TimeOnly))
	}
	if n := next("", t0.Add(7*time.Second), t0.Add(8*time.Second)); !n.Equal(t0.Add(67 * time.Second)) {
		t.Errorf("no key: next %s", n.Format(time.TimeOnly))
	}
	// Cron is its own grid.
	hourly := mustParse(t, "@hourly")
	if n := Next(hourly, Run{Start: t0, End: t0.Add(time.Second), Key: "feed-1"}); !n.Equal(t0.Add(time.Hour)) {
		t.Errorf("cron: next %s", n.Format(time.TimeOnly))
	}
}
