package migrate

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fedi-ferry/ferry/state"
)

func TestForEach(t *testing.T) {
	items := make([]int, 100)
	for i := range items {
		items[i] = i
	}
	var sum atomic.Int64
	if err := forEach(t.Context(), 4, items, func(_ context.Context, i int) error { sum.Add(int64(i)); return nil }); err != nil {
		t.Fatal(err)
	}
	if sum.Load() != 4950 {
		t.Errorf("sum = %d, want 4950: not every item was handled once", sum.Load())
	}

	// The first error stops the rest and is returned.
	boom := errors.New("boom")
	var calls atomic.Int64
	err := forEach(t.Context(), 2, items, func(ctx context.Context, i int) error {
		calls.Add(1)
		if i == 0 {
			return boom
		}
		<-ctx.Done() // the others wait until the error cancels them
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
	if n := calls.Load(); n > 6 {
		t.Errorf("%d items handled after the error; want the rest skipped", n)
	}

	// A cancelled context is reported.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := forEach(ctx, 2, items, func(context.Context, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestMeter(t *testing.T) {
	var mu sync.Mutex
	var last Progress
	m := newMeter(func(p Progress) { mu.Lock(); last = p; mu.Unlock() }, "applying")
	m.grow(10, notPending([]state.Item{{Status: state.ItemDone}, {Status: state.ItemSkipped}, {Status: state.ItemPending}}))
	m.step()
	if last.Phase != "applying" || last.Done != 3 || last.Total != 10 || last.ETA <= 0 {
		t.Errorf("progress = %+v, want applying 3/10 with an ETA", last)
	}
	// Items added later (a server import's rows) count towards both totals.
	m.grow(5, 5)
	m.report("waiting", 0)
	if last.Done != 8 || last.Total != 15 || last.Waiting != "waiting" {
		t.Errorf("progress = %+v, want 8/15 waiting", last)
	}
}
