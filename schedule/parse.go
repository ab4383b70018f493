// Package schedule says when something runs next: an interval ("15m") or a
// five-field cron expression, read from the config file.
package schedule

import (
	"fmt"
	"hash/fnv"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule says when something runs next.
type Schedule interface {
	Next(after time.Time) time.Time
}

// MinInterval is the shortest interval a schedule may have. Shorter ones
// would poll servers and feeds harder than any of them welcomes.
const MinInterval = 10 * time.Second

// every is a fixed interval between runs.
type every time.Duration

// Next returns after plus the interval.
func (e every) Next(after time.Time) time.Time { return after.Add(time.Duration(e)) }

// onGrid returns the first time at or after t on key's grid: the times
// one interval apart whose offset from the Unix epoch, modulo the
// interval, is key's FNV-1a hash modulo the interval. The hash is the same
// in every process, so daemons sharing a database agree on the grid.
func (e every) onGrid(key string, t time.Time) time.Time {
	d := int64(e)
	h := fnv.New64a()
	h.Write([]byte(key))
	off := int64(h.Sum64() % uint64(d))
	// The grid point at or before t, then one interval on if it is
	// before t. Times before 1970 do not occur here; the floor keeps
	// them right anyway.
	n := t.UnixNano() - off
	k := n / d
	if n%d < 0 {
		k--
	}
	g := time.Unix(0, k*d+off).In(t.Location())
	if g.Before(t) {
		g = g.Add(time.Duration(d))
	}
	return g
}

// Parse reads an interval ("15m", "1h") or a five-field cron expression ("*/10 * * * *", "@hourly").
// An interval shorter than MinInterval is refused; cron expressions are
// taken as they are (their finest step is a minute).
func Parse(s string) (Schedule, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < MinInterval {
			return nil, fmt.Errorf("%q: at least %s between runs", s, MinInterval)
		}
		return every(d), nil
	}
	c, err := cron.ParseStandard(s)
	if err != nil {
		return nil, fmt.Errorf("%q: neither an interval (\"15m\") nor a cron expression (\"*/15 * * * *\"): %w", s, err)
	}
	return c, nil
}
