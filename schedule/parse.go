// Package schedule says when something runs next: an interval ("15m") or a
// five-field cron expression, read from the config file.
package schedule

import (
	"fmt"
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
