package fedi

import (
	"sort"
	"time"
)

// Budget is what a server last said about one of its rate limits, as the
// Transport tracks it (see Transport.Budgets).
type Budget struct {
	// Key names the limit: host, first path segment, and "#family" for a
	// Mastodon rate-limit family ("statuses", "follows" …).
	Key       string    `json:"key"`
	Limit     int       `json:"limit"`
	Remaining int       `json:"remaining"` // as of the last answer, minus requests sent since
	Reset     time.Time `json:"reset"`
}

// Budgets returns the rate-limit budgets the server has announced through
// X-RateLimit-* headers, sorted by key. A server that sends no such
// headers has none.
func (t *Transport) Budgets() []Budget {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Budget, 0, len(t.budgets))
	for k, b := range t.budgets {
		if !b.known {
			continue
		}
		out = append(out, Budget{Key: k, Limit: b.limit, Remaining: b.remaining, Reset: b.reset})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
