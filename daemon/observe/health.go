package observe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// healthKey is the kv key the health check writes: a write that does not
// commit means the daemon could not record its runs either.
const healthKey = "observe/healthz"

// dbCheck runs the health check's write, one at a time: while the
// database hangs, probes wait for the write in progress instead of piling
// up new ones behind the lock.
type dbCheck struct {
	st Store

	mu  sync.Mutex
	cur *writeProbe // the write in progress, if any
}

// writeProbe is one write of the check; err is set before done closes.
type writeProbe struct {
	done chan struct{}
	err  error
}

// errNoAnswer is the check's error when the write did not end in time.
var errNoAnswer = errors.New("the database did not answer a write in time (locked by another process, or the disk hangs)")

// check writes at (the time of the check) under healthKey and reports
// whether the write committed within timeout. The timeout is wall time:
// it bounds I/O, not the daemon's schedule.
func (c *dbCheck) check(ctx context.Context, at time.Time, timeout time.Duration) error {
	c.mu.Lock()
	p := c.cur
	if p == nil {
		p = &writeProbe{done: make(chan struct{})}
		c.cur = p
		go func() {
			// Not the request's context: a probe that gave up must not
			// leave the write half-waited; the store bounds it itself.
			err := c.st.Set(context.WithoutCancel(ctx), healthKey, at.UTC().Format(time.RFC3339Nano))
			c.mu.Lock()
			p.err, c.cur = err, nil
			c.mu.Unlock()
			close(p.done)
		}()
	}
	c.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("the database refused a write: %w", p.err)
		}
		return nil
	case <-t.C:
		return errNoAnswer
	case <-ctx.Done():
		return ctx.Err()
	}
}
