package fakemisskey

import (
	"fmt"
	"net/http"
	"time"
)

// RateLimit is one endpoint's meta.limit in Misskey: at most Max calls per
// Duration for one account (ApiCallService keys the limiter by user ID,
// by IP when anonymous), and at least MinInterval between two calls.
type RateLimit struct {
	Max         int
	Duration    time.Duration
	MinInterval time.Duration
}

// DefaultRateLimits are the meta.limit of the endpoints the fake serves,
// as Misskey's endpoint definitions (packages/backend/src/server/api/
// endpoints/…) declare them; checked against Misskey 2025.4.x (MisskeyIO
// fork) on loopback, whose 429s came exactly at these counts.
func DefaultRateLimits() map[string]RateLimit {
	hour := time.Hour
	return map[string]RateLimit{
		"mute/create":            {Max: 20, Duration: hour},
		"blocking/create":        {Max: 20, Duration: hour},
		"renote-mute/create":     {Max: 20, Duration: hour},
		"notes/favorites/create": {Max: 20, Duration: hour},
		"i/update":               {Max: 20, Duration: hour},
		"ap/show":                {Max: 30, Duration: hour},
		"users/lists/push":       {Max: 30, Duration: hour},
		"following/create":       {Max: 100, Duration: hour},
		"following/update":       {Max: 100, Duration: hour},
		"following/delete":       {Max: 100, Duration: hour},
		"notes/create":           {Max: 300, Duration: hour},
		"notes/delete":           {Max: 300, Duration: hour, MinInterval: time.Second},
		"drive/files/create":     {Max: 120, Duration: hour},
		"i/move":                 {Max: 5, Duration: 24 * hour},
		// Not an endpoint: SigninApiService's own limit on sign-in
		// attempts, "not more than 1 attempt per second and not more than
		// 10 attempts per hour", per IP, every attempt counted.
		"signin": {Max: 10, Duration: hour, MinInterval: time.Second},
	}
}

// rateLimit applies the endpoint's limit to the caller, recording the
// call when it is allowed. It answers 429 as the real server does:
// RATE_LIMIT_EXCEEDED with Retry-After (whole seconds, rounded up) and, in
// the MisskeyIO fork checked, info {remaining, reset (epoch seconds),
// resetMs (epoch milliseconds), total}. Called with s.mu held.
func (s *Server) rateLimit(w http.ResponseWriter, r *http.Request, name string, u *user) bool {
	lim, ok := s.limits[name]
	if !ok || (lim.Max <= 0 && lim.MinInterval <= 0) {
		return true
	}
	actor := r.RemoteAddr
	if u != nil {
		actor = u.ID
	}
	key := name + "\x00" + actor
	now := time.Now()
	past := s.hits[key]
	// Keep only the calls inside the window.
	kept := past[:0]
	for _, t := range past {
		if lim.Duration > 0 && now.Sub(t) < lim.Duration {
			kept = append(kept, t)
		}
	}
	if lim.Duration <= 0 && len(past) > 0 {
		kept = append(kept, past[len(past)-1])
	}
	s.hits[key] = kept
	var reset time.Time
	if lim.MinInterval > 0 && len(kept) > 0 && now.Sub(kept[len(kept)-1]) < lim.MinInterval {
		reset = kept[len(kept)-1].Add(lim.MinInterval)
	}
	if lim.Max > 0 && lim.Duration > 0 && len(kept) >= lim.Max {
		if r := kept[len(kept)-lim.Max].Add(lim.Duration); r.After(reset) {
			reset = r
		}
	}
	if reset.IsZero() {
		s.hits[key] = append(kept, now)
		return true
	}
	e := errRateLimit
	e.Info = map[string]any{"remaining": 0, "reset": reset.Unix(), "resetMs": reset.UnixMilli(), "total": lim.Max}
	w.Header().Set("Retry-After", fmt.Sprint(int((reset.Sub(now)+time.Second-1)/time.Second)))
	writeError(w, e)
	return false
}

// ClearRateLimits forgets every call counted against the rate limits, as
// if their windows had passed.
func (s *Server) ClearRateLimits() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits = map[string][]time.Time{}
}
