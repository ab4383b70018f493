// Package schedule says when recurring work runs: it reads the schedules
// written in ferry.toml (Parse) and computes the next run after a run
// ended, whatever its outcome (Next). `ferry mirror`, the daemon's routes
// and its backups all use it, so they agree.
package schedule

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is when work recurs.
type Schedule interface {
	// Next returns the first run time strictly after after.
	Next(after time.Time) time.Time
}

// MinInterval is the shortest interval Parse accepts: shorter ones would
// hammer servers for no gain.
const MinInterval = 10 * time.Second

type every time.Duration

func (e every) Next(t time.Time) time.Time { return t.Add(time.Duration(e)) }

// Parse reads an interval ("5m", "1h", at least MinInterval) or a
// five-field cron expression ("*/10 * * * *", "@hourly").
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
