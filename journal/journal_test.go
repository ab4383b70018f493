package journal

import (
	"testing"
	"time"
)

func TestSettleWait(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		it   Item
		want time.Duration
	}{
		{"never attempted", Item{UpdatedAt: now}, 0},
		{"attempted just now", Item{Attempts: 1, UpdatedAt: now}, InFlightGrace},
		{"attempted a second ago", Item{Attempts: 2, UpdatedAt: now.Add(-time.Second)}, InFlightGrace - time.Second},
		{"attempted long ago", Item{Attempts: 1, UpdatedAt: now.Add(-time.Hour)}, 0},
	} {
		if got := tc.it.SettleWait(now); got != tc.want {
			t.Errorf("%s: SettleWait = %s, want %s", tc.name, got, tc.want)
		}
	}
}
