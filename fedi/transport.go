package fedi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedi-ferry/ferry/httpsonly"
)

// Transport is the http.RoundTripper every request to a fediverse server goes
// through. It
//
//   - sets ferry's User-Agent;
//   - refuses plain http except to loopback addresses;
//   - reads X-RateLimit-Limit/Remaining/Reset and, when the budget of a route
//     group is spent, waits for the reset before sending more;
//   - on 429 waits for Retry-After or the reset (up to MaxWait) and sends
//     the request again (a 429 is answered before the server acts); on 503
//     with Retry-After it does so only for requests that may be resent
//     (resend.go states the rule, the one place it is decided);
//   - marks the failure of a write whose outcome is unknown (sent, then the
//     connection died; 503) as ambiguous (IsAmbiguous);
//   - sends an idempotency key only to servers that honour it;
//   - never returns a 429 response: a request it cannot retry fails with a
//     *RateLimitError instead, so no retry loop above it (client
//     libraries such as go-mastodon retry every 429 for hours, ignoring
//     the reset header) ever sees one.
//
// One Transport serves one account, so the budgets it tracks are that
// account's. It is safe for concurrent use.
type Transport struct {
	base      http.RoundTripper
	userAgent string
	maxWait   time.Duration
	reserve   int
	log       *slog.Logger
	now       func() time.Time

	mu      sync.Mutex
	budgets map[string]*budget
	// split records the rate-limit families a server counts on their own
	// (Mastodon's follows, statuses …), learnt from the headers of their
	// answers; until then they share the general budget (GoToSocial).
	split map[string]bool

	requests    atomic.Int64
	rateLimited atomic.Int64
	unavailable atomic.Int64
	retries     atomic.Int64
	waitedNanos atomic.Int64

	keys keyPolicy
}

// budget is what the server last told us about one route group's limit.
type budget struct {
	limit     int
	remaining int // as of the last response, minus requests sent since
	reset     time.Time
	inflight  int
	probed    bool // an answer has arrived
	known     bool // the server sends rate-limit headers
}

// TransportOptions configure a Transport. The zero value is usable.
type TransportOptions struct {
	// Base performs the requests; nil means a transport with ferry's
	// connection timeouts (see NewBaseTransport).
	Base http.RoundTripper
	// UserAgent is sent with every request; "" means "ferry".
	UserAgent string
	// MaxWait bounds one wait for a rate-limit reset or Retry-After. A longer
	// wait fails the request with a *RateLimitError so the caller can resume
	// later instead of hanging. 0 means 10 minutes.
	MaxWait time.Duration
	// Reserve is how many requests of each budget are left unused, so that
	// other clients of the same account (a browser, a phone) are not starved.
	// 0 means 1.
	Reserve int
	// Logger receives a debug line per wait; nil discards.
	Logger *slog.Logger
}

// NewTransport returns a Transport configured by o.
func NewTransport(o TransportOptions) *Transport {
	t := &Transport{
		base:      o.Base,
		userAgent: o.UserAgent,
		maxWait:   o.MaxWait,
		reserve:   o.Reserve,
		log:       o.Logger,
		now:       time.Now,
		budgets:   map[string]*budget{},
		split:     map[string]bool{},
	}
	if t.base == nil {
		t.base = NewBaseTransport(nil)
	}
	if t.userAgent == "" {
		t.userAgent = "ferry"
	}
	if t.maxWait <= 0 {
		t.maxWait = 10 * time.Minute
	}
	if t.reserve <= 0 {
		t.reserve = 1
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	return t
}

// TransportStats are counters since the Transport was made; benchmarks and
// tests read them to prove the transport does not hammer a server.
type TransportStats struct {
	Requests    int64         // requests sent to the server, retries included
	RateLimited int64         // 429 responses received
	Unavailable int64         // 503 responses received
	Retries     int64         // requests sent again (after a 429, 503, 502/504 or reset)
	Waited      time.Duration // total time spent waiting for budgets
}

// Stats returns the counters so far.
func (t *Transport) Stats() TransportStats {
	return TransportStats{
		Requests:    t.requests.Load(),
		RateLimited: t.rateLimited.Load(),
		Unavailable: t.unavailable.Load(),
		Retries:     t.retries.Load(),
		Waited:      time.Duration(t.waitedNanos.Load()),
	}
}

// RateLimitError reports that a server refused a request for its rate limit
// and the request was not retried (it was not safe to repeat, or the reset
// was further away than the transport may wait).
type RateLimitError struct {
	Host  string
	Reset time.Time // when the server said the budget refills; zero if unknown
}

func (e *RateLimitError) Error() string {
	if e.Reset.IsZero() {
		return fmt.Sprintf("rate limited by %s", e.Host)
	}
	return fmt.Sprintf("rate limited by %s until %s (in %s)", e.Host,
		e.Reset.Local().Format(time.TimeOnly), time.Until(e.Reset).Round(time.Second))
}

type retrySafeKey struct{}

// WithRetrySafe marks the requests made with ctx as safe to send again even
// though their method is not idempotent: calls the server treats
// idempotently (following an account already followed changes nothing).
// See resend.go for the whole rule.
func WithRetrySafe(ctx context.Context) context.Context {
	return context.WithValue(ctx, retrySafeKey{}, true)
}

// maxAttempts bounds how often one request is sent; each retry has already
// waited for the server's own reset, so more attempts would mean the server
// is misreporting its budget.
const maxAttempts = 4

// blipPause is the pause, times the attempt, before a request that may be
// resent is sent again after a reset or a 502/504 without Retry-After.
const blipPause = 500 * time.Millisecond

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := httpsonly.Check(req.URL); err != nil {
		return nil, err
	}
	ctx := req.Context()
	if k := idempotencyKey(ctx); k != "" && t.HonoursIdempotencyKeys() && req.Header.Get("Idempotency-Key") == "" {
		// Set here rather than by each caller so that every call carries
		// the key, and only to servers that honour it.
		req = req.Clone(ctx)
		req.Header.Set("Idempotency-Key", k)
	} else if !t.HonoursIdempotencyKeys() {
		// net/http resends a request carrying the header when a reused
		// connection dies before the answer; the server would not notice.
		req = stripKeyHeaders(req)
	}
	base, family := budgetGroup(req)
	canResend := t.mayResend(req)
	write := isWrite(req.Method)

	for attempt := 1; ; attempt++ {
		key := t.keyFor(base, family)
		if err := t.acquire(ctx, key, req.URL.Host); err != nil {
			return nil, err
		}
		r := req.Clone(ctx)
		if attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				t.release(key, base, family, nil)
				return nil, fmt.Errorf("replay request body: %w", err)
			}
			r.Body = body
		}
		r.Header.Set("User-Agent", t.userAgent)
		var sent sentTracker
		if write && !canResend {
			r = r.WithContext(sent.trace(r.Context()))
		}
		t.requests.Add(1)
		resp, err := t.base.RoundTrip(r)
		key = t.release(key, base, family, resp)
		if err != nil {
			if sent.wrote.Load() {
				return nil, &AmbiguousError{Method: req.Method, URL: redactURL(req.URL), Err: err}
			}
			if canResend && attempt < maxAttempts && ctx.Err() == nil && IsTransient(err) {
				// A reset or a dropped answer: a request that may be
				// resent is, after a short pause.
				t.log.Debug("connection failed; sending again", "host", req.URL.Host, "err", err)
				if err := t.sleep(ctx, time.Duration(attempt)*blipPause); err != nil {
					return nil, err
				}
				t.retries.Add(1)
				continue
			}
			return nil, err
		}
		if (resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout) &&
			canResend && attempt < maxAttempts {
			// A gateway's blip; a request that may be resent is, after
			// Retry-After or a short pause.
			wait, _, known := t.retryAfter(resp)
			if !known {
				wait = time.Duration(attempt) * blipPause
			}
			if wait <= t.maxWait {
				drain(resp)
				if err := t.sleep(ctx, wait); err != nil {
					return nil, err
				}
				t.retries.Add(1)
				continue
			}
		}
		if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
			return resp, nil
		}

		wait, reset, known := t.retryAfter(resp)
		if resp.StatusCode == http.StatusTooManyRequests {
			t.rateLimited.Add(1)
			if known {
				// Hold every request of this budget until then, not just
				// this one: the others would only collect 429s too.
				t.hold(key, t.now().Add(wait))
			}
		} else {
			t.unavailable.Add(1)
			if !known {
				// A 503 without Retry-After is an outage, not throttling:
				// hand it to the caller as it is.
				return resp, nil
			}
		}
		if !known {
			wait = time.Duration(attempt) * 5 * time.Second
		}
		mayRetry := canResend
		if resp.StatusCode == http.StatusTooManyRequests {
			mayRetry = mayResendAfter429(req)
		}
		if !mayRetry || attempt >= maxAttempts || wait > t.maxWait {
			drain(resp)
			if resp.StatusCode == http.StatusTooManyRequests {
				return nil, &RateLimitError{Host: req.URL.Host, Reset: reset}
			}
			err := fmt.Errorf("%s is overloaded (503) and asks to retry in %s", req.URL.Host, wait.Round(time.Second))
			if write && !canResend {
				// A 503 can come from a gateway after the server acted.
				return nil, &AmbiguousError{Method: req.Method, URL: redactURL(req.URL), Err: err}
			}
			return nil, err
		}
		drain(resp)
		t.log.Debug("server asked to slow down; waiting", "host", req.URL.Host,
			"status_code", resp.StatusCode, "wait", wait.Round(time.Millisecond))
		if err := t.sleep(ctx, wait); err != nil {
			return nil, err
		}
		t.retries.Add(1)
	}
}

// acquire blocks until the budget for key has room for one more request.
func (t *Transport) acquire(ctx context.Context, key, host string) error {
	for {
		t.mu.Lock()
		b := t.budgets[key]
		if b == nil {
			b = &budget{}
			t.budgets[key] = b
		}
		now := t.now()
		wait := time.Duration(0)
		switch {
		case !b.probed:
			// Until the first answer tells us the budget, send one request
			// at a time: a burst could spend a budget we know nothing of.
			wait = probeIfBusy(b)
		case !b.known:
			// The server sends no rate-limit headers: nothing to pace by.
		default:
			if !b.reset.IsZero() && !now.Before(b.reset) {
				// The window has rolled over. Assume the full limit until an
				// answer reports the new window; reset stays zero meanwhile.
				b.remaining, b.reset = b.limit, time.Time{}
				if b.limit <= 0 {
					// A hold from a 429 without headers: nothing known
					// about the new window, so probe it one request first.
					b.probed, b.known = false, false
					wait = probeIfBusy(b)
					break
				}
			}
			if b.remaining-b.inflight <= t.reserve {
				if b.reset.IsZero() {
					wait = probeInterval // spent the assumed budget: wait for an answer
				} else {
					wait = b.reset.Sub(now) + resetSlack
				}
			}
		}
		if wait == 0 {
			b.inflight++
			t.mu.Unlock()
			return nil
		}
		reset := b.reset
		t.mu.Unlock()
		if wait > t.maxWait {
			return &RateLimitError{Host: host, Reset: reset}
		}
		if wait > probeInterval {
			t.log.Debug("rate-limit budget spent; waiting for reset", "host", host, "wait", wait.Round(time.Millisecond))
		}
		if err := t.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// probeIfBusy returns the wait for a request that must not run beside
// another: none when b has nothing in flight.
func probeIfBusy(b *budget) time.Duration {
	if b.inflight > 0 {
		return probeInterval
	}
	return 0
}

// probeInterval is how often a request waiting for another's answer checks
// again.
const probeInterval = 50 * time.Millisecond

// release records the response's rate-limit headers and returns the key
// of the budget they were filed under. A family request sent on the general
// budget whose answer reports a different limit teaches that the server
// counts the family on its own: its headers go to the family's budget from
// then on.
func (t *Transport) release(key, base, family string, resp *http.Response) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.budgets[key]
	if b.inflight > 0 {
		b.inflight--
	}
	if resp == nil {
		return key // a failed connection teaches nothing; another request probes
	}
	b.probed = true
	limit, errL := strconv.Atoi(resp.Header.Get("X-RateLimit-Limit"))
	remaining, errR := strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining"))
	reset, okReset := parseReset(resp.Header.Get("X-RateLimit-Reset"), t.now())
	if errL != nil || errR != nil || !okReset {
		return key
	}
	if family != "" && key == base && b.known && limit != b.limit {
		key = base + "#" + family
		t.split[key] = true
		if t.budgets[key] == nil {
			t.budgets[key] = &budget{probed: true}
		}
		b = t.budgets[key]
	}
	b.known = true
	// Responses overtake each other: within one window keep the lowest count
	// seen; a later reset time means a new window.
	if b.reset.IsZero() || reset.After(b.reset.Add(time.Second)) || remaining < b.remaining {
		b.remaining = remaining
	}
	if b.reset.IsZero() || reset.After(b.reset) {
		b.reset = reset
	}
	b.limit = limit
	return key
}

// keyFor returns the budget a request of family on base draws from.
func (t *Transport) keyFor(base, family string) string {
	if family == "" {
		return base
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if k := base + "#" + family; t.split[k] {
		return k
	}
	return base
}

// hold marks key's budget as spent until until.
func (t *Transport) hold(key string, until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.budgets[key]
	if b == nil {
		b = &budget{}
		t.budgets[key] = b
	}
	b.probed, b.known = true, true
	b.remaining = 0
	if until.After(b.reset) {
		b.reset = until
	}
}

// resetSlack is added to every reset time a server announces: the headers
// carry whole seconds while the server's window ends somewhere inside the
// following second, and a request sent in between is refused.
const resetSlack = time.Second

// retryAfter works out how long to wait after a 429/503: Retry-After first,
// then X-RateLimit-Reset. known is false when the server said neither.
func (t *Transport) retryAfter(resp *http.Response) (wait time.Duration, reset time.Time, known bool) {
	now := t.now()
	if ra := strings.TrimSpace(resp.Header.Get("Retry-After")); ra != "" {
		if secs, err := strconv.Atoi(ra); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second, now.Add(time.Duration(secs) * time.Second), true
		}
		if at, err := http.ParseTime(ra); err == nil {
			return max(at.Sub(now), 0), at, true
		}
	}
	if at, ok := parseReset(resp.Header.Get("X-RateLimit-Reset"), now); ok {
		// A reset already past means the window is about to roll over.
		return max(at.Sub(now), 0) + resetSlack, at, true
	}
	return 0, time.Time{}, false
}

// parseReset reads X-RateLimit-Reset, which Mastodon and GoToSocial send as
// an ISO 8601 time and some other servers as seconds (delta or epoch).
func parseReset(v string, now time.Time) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, false
	}
	if at, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return at, true
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		if n > 1e9 {
			return time.Unix(int64(n), 0), true
		}
		return now.Add(time.Duration(n * float64(time.Second))), true
	}
	return time.Time{}, false
}

// budgetGroup groups requests the way servers count them: per host and
// first path segment (GoToSocial keeps separate budgets for /api,
// /fileserver, /users …), plus the Mastodon rate-limit family of the
// request, if any. Mastodon answers the calls of its families with that
// family's headers instead of the general ones (follows 400/24 h, statuses
// 300/3 h, media 30/30 min, deletes 30/30 min): a spent follow budget must
// hold back follows, not every request for a day. Whether a server counts
// a family apart is learnt from its answers (see release).
func budgetGroup(req *http.Request) (base, family string) {
	p := strings.TrimPrefix(req.URL.Path, "/")
	first := p
	if i := strings.IndexByte(p, '/'); i >= 0 {
		first = p[:i]
	}
	return req.URL.Host + "/" + first, rateFamily(req.Method, p)
}

// rateFamily names the Mastodon rate-limit family of a request, if any
// (source: app/lib/rate_limiter.rb, config/initializers/rack_attack.rb).
func rateFamily(method, path string) string {
	switch {
	case method == http.MethodPost && strings.HasPrefix(path, "api/v1/accounts/") &&
		strings.HasSuffix(path, "/follow"):
		return "follows"
	case method == http.MethodPost && (path == "api/v1/statuses" || strings.HasSuffix(path, "/reblog")),
		method == http.MethodPut && strings.HasPrefix(path, "api/v1/statuses/"):
		return "statuses"
	case method == http.MethodPost && (path == "api/v2/media" || path == "api/v1/media"):
		return "media"
	case method == http.MethodDelete && strings.HasPrefix(path, "api/v1/statuses/"),
		method == http.MethodPost && strings.HasSuffix(path, "/unreblog"):
		return "deletes"
	}
	return ""
}

func (t *Transport) sleep(ctx context.Context, d time.Duration) error {
	t.waitedNanos.Add(int64(d))
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain discards a response so its connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// IsRateLimited reports whether err is (or wraps) a *RateLimitError.
func IsRateLimited(err error) bool {
	var rl *RateLimitError
	return errors.As(err, &rl)
}

// Transient reports that a rate limit passes: the request may be made again
// once the budget refills.
func (e *RateLimitError) Transient() bool { return true }

// RetryAfter is how long until the budget refills, or 0 if unknown.
func (e *RateLimitError) RetryAfter() time.Duration {
	if e.Reset.IsZero() {
		return 0
	}
	return max(time.Until(e.Reset), 0)
}
