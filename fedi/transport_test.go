package fedi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// mastodonRateLimiter imitates Mastodon's Rack::Attack throttle as its
// documentation and source describe it (docs: api/rate-limits.md; source:
// config/initializers/rack_attack.rb, app/controllers/concerns/
// rate_limit_headers.rb): a fixed window, X-RateLimit-Limit/Remaining/Reset
// (ISO 8601 with fractional seconds) on every answer, and 429 with the same
// headers once the window's budget is spent. The window here is short so the
// test is quick; the real-server version of this test (transport_e2e_test.go)
// runs against GoToSocial's limiter.
type mastodonRateLimiter struct {
	limit  int
	window time.Duration

	mu       sync.Mutex
	start    time.Time
	used     int
	rejected atomic.Int64
	served   atomic.Int64
}

func (m *mastodonRateLimiter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	now := time.Now()
	if m.start.IsZero() || now.Sub(m.start) >= m.window {
		m.start, m.used = now, 0
	}
	m.used++
	remaining := m.limit - m.used
	reset := m.start.Add(m.window)
	m.mu.Unlock()

	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(m.limit))
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(max(remaining, 0)))
	w.Header().Set("X-RateLimit-Reset", reset.UTC().Format("2006-01-02T15:04:05.000000Z"))
	if remaining < 0 {
		m.rejected.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"error":"Too many requests"}`)
		return
	}
	m.served.Add(1)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":"1","username":"me","ua":%q}`, r.UserAgent())
}

func TestTransportPacesInsideTheBudget(t *testing.T) {
	lim := &mastodonRateLimiter{limit: 5, window: 600 * time.Millisecond}
	srv := httptest.NewServer(lim)
	defer srv.Close()
	hc, tr := NewHTTPClient(HTTPOptions{Transport: TransportOptions{UserAgent: "ferry/test"}})
	base, _ := url.Parse(srv.URL)
	c := NewClient(base, "tok", hc)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n = 14
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out struct{ UA string }
			if _, err := c.Do(ctx, http.MethodGet, "/api/v1/accounts/verify_credentials", nil, nil, &out); err != nil {
				errs <- err
			} else if out.UA != "ferry/test" {
				errs <- fmt.Errorf("user agent %q", out.UA)
			}
		}()
		if i == 0 {
			wg.Wait() // the first answer teaches the transport the budget
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := tr.Stats()
	t.Logf("requests=%d 429s=%d retries=%d waited=%s", st.Requests, st.RateLimited, st.Retries, st.Waited)
	if got := lim.served.Load(); got != n {
		t.Errorf("server served %d requests, want %d", got, n)
	}
	// Concurrent requests may race one window's last slot; one 429 per
	// window is the most that is acceptable.
	if windows := int64(n/(lim.limit-1) + 1); lim.rejected.Load() > windows {
		t.Errorf("server rejected %d requests, want at most %d (one per window)", lim.rejected.Load(), windows)
	}
}

func TestTransportNeverHands429ToCaller(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	hc, _ := NewHTTPClient(HTTPOptions{Transport: TransportOptions{MaxWait: time.Second}})
	base, _ := url.Parse(srv.URL)
	c := NewClient(base, "tok", hc)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	// A client library's own retry loop (go-mastodon's slept for hours)
	// never sees a 429: through the transport it fails at once with a
	// RateLimitError.
	_, err := VerifyCredentials(ctx, c)
	if !IsRateLimited(err) {
		t.Fatalf("got %v, want a RateLimitError", err)
	}
	if time.Since(start) > 5*time.Second || calls.Load() != 1 {
		t.Fatalf("took %s and %d calls; want one call and an immediate error", time.Since(start), calls.Load())
	}
}

func TestTransportResendsAfter429(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%2 == 1 { // every first attempt is refused
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_ = r.ParseForm()
		fmt.Fprintf(w, `{"status":%q}`, r.PostForm.Get("status"))
	}))
	defer srv.Close()
	hc, tr := NewHTTPClient(HTTPOptions{})
	base, _ := url.Parse(srv.URL)
	c := NewClient(base, "tok", hc)
	ctx := context.Background()

	// GET: retried.
	if _, err := c.Do(ctx, http.MethodGet, "/x", nil, nil, nil); err != nil {
		t.Fatalf("GET: %v", err)
	}
	// POST without an idempotency key: a 429 is answered before the
	// server acts, so it is sent again, body intact.
	calls.Store(0)
	var out struct{ Status string }
	_, err := c.DoForm(ctx, http.MethodPost, "/api/v1/statuses", url.Values{"status": {"hi"}}, &out)
	if err != nil || out.Status != "hi" || calls.Load() != 2 {
		t.Fatalf("unkeyed POST: err=%v status=%q calls=%d", err, out.Status, calls.Load())
	}
	// POST marked retry-safe: retried.
	calls.Store(0)
	if _, err := c.DoForm(WithRetrySafe(ctx), http.MethodPost, "/api/v1/accounts/1/follow", url.Values{}, nil); err != nil {
		t.Fatalf("retry-safe POST: %v", err)
	}
	if st := tr.Stats(); st.RateLimited != 3 || st.Retries != 3 {
		t.Fatalf("stats %+v; want 3 rate-limited answers and 3 retries", st)
	}
}

func TestTransport503WithoutRetryAfterIsReturned(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	hc, _ := NewHTTPClient(HTTPOptions{})
	base, _ := url.Parse(srv.URL)
	_, err := NewClient(base, "", hc).Do(context.Background(), http.MethodGet, "/x", nil, nil, nil)
	if StatusCode(err) != http.StatusServiceUnavailable {
		t.Fatalf("got %v, want the 503 as an APIError", err)
	}
}

func TestTransportRefusesPlainHTTPOffLoopback(t *testing.T) {
	hc, tr := NewHTTPClient(HTTPOptions{})
	_, err := hc.Get("http://example.invalid/api/v1/instance")
	if !errors.Is(err, ErrInsecureURL) {
		t.Fatalf("got %v, want ErrInsecureURL", err)
	}
	if tr.Stats().Requests != 0 {
		t.Fatal("a request was sent")
	}
}

func TestParseReset(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]time.Time{
		"2026-01-01T00:05:00.000000Z": now.Add(5 * time.Minute),
		"2026-01-01T00:05:00Z":        now.Add(5 * time.Minute),
		"30":                          now.Add(30 * time.Second),
		"1767225900":                  time.Unix(1767225900, 0),
	}
	for in, want := range cases {
		got, ok := parseReset(in, now)
		if !ok || !got.Equal(want) {
			t.Errorf("parseReset(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	if _, ok := parseReset("soon", now); ok {
		t.Error("parseReset accepted garbage")
	}
}

func TestNextLink(t *testing.T) {
	h := http.Header{}
	h.Set("Link", `<https://x.example/api/v1/blocks?max_id=5>; rel="next", <https://x.example/api/v1/blocks?min_id=9>; rel="prev"`)
	if got := NextLink(h); got != "https://x.example/api/v1/blocks?max_id=5" {
		t.Fatalf("NextLink = %q", got)
	}
	if NextLink(http.Header{}) != "" {
		t.Fatal("NextLink of no header is not empty")
	}
}

// BenchmarkTransportRoundTrip measures what the pacing layer adds to a
// request against a loopback server that sends rate-limit headers.
func BenchmarkTransportRoundTrip(b *testing.B) {
	lim := &mastodonRateLimiter{limit: 1 << 30, window: time.Hour}
	srv := httptest.NewServer(lim)
	defer srv.Close()
	hc, tr := NewHTTPClient(HTTPOptions{})
	base, _ := url.Parse(srv.URL)
	c := NewClient(base, "tok", hc)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Do(ctx, http.MethodGet, "/api/v1/accounts/verify_credentials", nil, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(tr.Stats().Requests)/float64(b.N), "requests/op")
}

func TestBudgetGroupNamesMastodonFamilies(t *testing.T) {
	cases := map[string]string{
		"GET https://m.example/api/v1/accounts/1/following":   "m.example/api",
		"POST https://m.example/api/v1/accounts/1/follow":     "m.example/api follows",
		"POST https://m.example/api/v1/accounts/1/unfollow":   "m.example/api",
		"POST https://m.example/api/v1/statuses":              "m.example/api statuses",
		"PUT https://m.example/api/v1/statuses/5":             "m.example/api statuses",
		"POST https://m.example/api/v1/statuses/5/reblog":     "m.example/api statuses",
		"DELETE https://m.example/api/v1/statuses/5":          "m.example/api deletes",
		"POST https://m.example/api/v2/media":                 "m.example/api media",
		"GET https://m.example/fileserver/a/b/original/c.png": "m.example/fileserver",
	}
	for in, want := range cases {
		method, raw, _ := strings.Cut(in, " ")
		req, _ := http.NewRequest(method, raw, nil)
		base, family := budgetGroup(req)
		if got := strings.TrimSpace(base + " " + family); got != want {
			t.Errorf("budgetGroup(%s) = %s, want %s", in, got, want)
		}
	}
}

// A server whose follow answers carry the general budget's headers
// (GoToSocial) keeps one budget; one whose follow answers report another
// limit (Mastodon's 400 follows a day) gets a follow budget of its own, so
// spending it does not hold back other requests.
func TestTransportLearnsSeparateFamilies(t *testing.T) {
	for _, tc := range []struct {
		name        string
		followLimit int
		wantSplit   bool
	}{{"shared like GoToSocial", 300, false}, {"separate like Mastodon", 400, true}} {
		t.Run(tc.name, func(t *testing.T) {
			reset := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				limit, remaining := 300, 250
				if strings.HasSuffix(r.URL.Path, "/follow") {
					limit, remaining = tc.followLimit, 1 // nearly spent
				}
				w.Header().Set("X-RateLimit-Limit", strconv.Itoa(limit))
				w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
				w.Header().Set("X-RateLimit-Reset", reset)
				fmt.Fprint(w, `{}`)
			}))
			defer srv.Close()
			hc, tr := NewHTTPClient(HTTPOptions{Transport: TransportOptions{MaxWait: time.Second}})
			base, _ := url.Parse(srv.URL)
			c := NewClient(base, "tok", hc)
			ctx := context.Background()
			if _, err := c.Do(ctx, http.MethodGet, "/api/v1/accounts/verify_credentials", nil, nil, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := c.DoForm(ctx, http.MethodPost, "/api/v1/accounts/1/follow", url.Values{}, nil); err != nil {
				t.Fatal(err)
			}
			// The follow answer said "1 left". Where that was the shared
			// budget, the next request must wait (and fail fast here, the
			// reset being beyond MaxWait); where it was the follow family's,
			// other requests go on.
			_, err := c.Do(ctx, http.MethodGet, "/api/v1/accounts/verify_credentials", nil, nil, nil)
			if tc.wantSplit && err != nil {
				t.Fatalf("a spent follow budget held back another request: %v", err)
			}
			if !tc.wantSplit && !IsRateLimited(err) {
				t.Fatalf("a shared budget at its reserve did not hold: %v", err)
			}
			if got := tr.split[base.Host+"/api#follows"]; got != tc.wantSplit {
				t.Fatalf("split = %v, want %v", got, tc.wantSplit)
			}
		})
	}
}
