package fedi

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// loseAnswerServer imitates a server behind a flaky network: it answers
// GETs, and applies every POST (counting it and the Idempotency-Key it
// carried) but then drops the connection instead of answering, the first
// `lose` times.
type loseAnswerServer struct {
	srv     *httptest.Server
	posts   atomic.Int64
	lose    atomic.Int64
	mu      sync.Mutex
	keys    []string
	status  int // answer to POSTs that are not lost; 0 = 200
	retryIn string
}

func newLoseAnswerServer(t *testing.T, lose int64) *loseAnswerServer {
	s := &loseAnswerServer{}
	s.lose.Store(lose)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			fmt.Fprint(w, `{}`)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		s.posts.Add(1)
		s.mu.Lock()
		s.keys = append(s.keys, r.Header.Get("Idempotency-Key"))
		s.mu.Unlock()
		if s.lose.Add(-1) >= 0 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.(*net.TCPConn).SetLinger(0)
				_ = conn.Close()
			}
			return
		}
		if s.status != 0 {
			if s.retryIn != "" {
				w.Header().Set("Retry-After", s.retryIn)
			}
			w.WriteHeader(s.status)
			return
		}
		fmt.Fprint(w, `{"id":"1"}`)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *loseAnswerServer) sentKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.keys...)
}

func (s *loseAnswerServer) client(t *testing.T) (*Client, *Transport) {
	hc, tr := NewHTTPClient(HTTPOptions{})
	base, _ := url.Parse(s.srv.URL)
	return NewClient(base, "tok", hc), tr
}

// warm makes one GET so that the next request goes over a reused
// connection: the case in which net/http replays "idempotent" requests.
func warm(t *testing.T, c *Client) {
	t.Helper()
	if _, err := c.Do(t.Context(), http.MethodGet, "/x", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestKeyedPostToServerIgnoringKeysIsNotResent(t *testing.T) {
	s := newLoseAnswerServer(t, 1)
	c, _ := s.client(t)
	warm(t, c)
	ctx := WithIdempotencyKey(t.Context(), "k1")
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/statuses", nil, map[string]string{"status": "hi"}, nil)
	if !IsAmbiguous(err) {
		t.Fatalf("err = %v; want an ambiguous failure", err)
	}
	if n := s.posts.Load(); n != 1 {
		t.Fatalf("the server received the write %d times; want once", n)
	}
	if k := s.sentKeys(); k[0] != "" {
		t.Fatalf("Idempotency-Key %q sent to a server not known to honour it", k[0])
	}
}

func TestHandSetKeyHeaderIsStrippedForServerIgnoringKeys(t *testing.T) {
	s := newLoseAnswerServer(t, 1)
	c, _ := s.client(t)
	warm(t, c)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.srv.URL+"/api/v1/statuses", nil)
	req.Header.Set("X-Idempotency-Key", "k1")
	_, err := c.HTTP().Do(req)
	if !IsAmbiguous(err) {
		t.Fatalf("err = %v; want an ambiguous failure", err)
	}
	if n := s.posts.Load(); n != 1 {
		t.Fatalf("the server received the write %d times; want once (net/http replays requests with the header)", n)
	}
}

func TestKeyedPostToMastodonIsResentWithKey(t *testing.T) {
	s := newLoseAnswerServer(t, 1)
	c, tr := s.client(t)
	tr.learnSoftware(Software{Name: "mastodon", Version: "4.3.0"})
	warm(t, c)
	ctx := WithIdempotencyKey(t.Context(), "k1")
	if _, err := c.Do(ctx, http.MethodPost, "/api/v1/statuses", nil, map[string]string{"status": "hi"}, nil); err != nil {
		t.Fatalf("keyed POST to Mastodon: %v", err)
	}
	if n, k := s.posts.Load(), s.sentKeys(); n != 2 || k[0] != "k1" || k[1] != "k1" {
		t.Fatalf("posts=%d keys=%q; want the write sent twice with its key", n, k)
	}
}

func TestAmbiguousStatusesOfWrites(t *testing.T) {
	for _, tc := range []struct {
		status  int
		retryIn string
	}{{http.StatusBadGateway, ""}, {http.StatusServiceUnavailable, "0"}, {http.StatusServiceUnavailable, ""}, {http.StatusGatewayTimeout, ""}} {
		t.Run(fmt.Sprint(tc.status, tc.retryIn), func(t *testing.T) {
			s := newLoseAnswerServer(t, 0)
			s.status, s.retryIn = tc.status, tc.retryIn
			c, _ := s.client(t)
			_, err := c.Do(t.Context(), http.MethodPost, "/api/v1/statuses", nil, map[string]string{"status": "hi"}, nil)
			if !IsAmbiguous(err) || !IsTransient(err) {
				t.Fatalf("err = %v; want ambiguous and transient", err)
			}
			if n := s.posts.Load(); n != 1 {
				t.Fatalf("sent %d times; want once", n)
			}
		})
	}
}

func TestRetrySafeWriteIsResentAfter503(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{}`)
	}))
	defer srv.Close()
	hc, _ := NewHTTPClient(HTTPOptions{})
	base, _ := url.Parse(srv.URL)
	c := NewClient(base, "tok", hc)
	if _, err := c.Do(WithRetrySafe(context.Background()), http.MethodPost, "/api/v1/accounts/1/follow", nil, nil, nil); err != nil {
		t.Fatalf("follow: %v", err)
	}
	if calls.Load() != 2 {
		t.Fatalf("calls = %d; want 2", calls.Load())
	}
}

func TestFailureBeforeSendingIsNotAmbiguous(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: the dial fails, nothing was sent
	hc, _ := NewHTTPClient(HTTPOptions{})
	c := NewClient(&url.URL{Scheme: "http", Host: addr}, "tok", hc)
	_, err = c.Do(t.Context(), http.MethodPost, "/api/v1/statuses", nil, map[string]string{"status": "hi"}, nil)
	if err == nil || IsAmbiguous(err) || !IsTransient(err) {
		t.Fatalf("err = %v; want a transient, unambiguous failure", err)
	}
}

func TestTruncatedAnswerToWriteIsAmbiguous(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		fmt.Fprint(w, `{"id":"1","con`)
	}))
	defer srv.Close()
	hc, _ := NewHTTPClient(HTTPOptions{})
	base, _ := url.Parse(srv.URL)
	var out Status
	_, err := NewClient(base, "tok", hc).Do(t.Context(), http.MethodPost, "/api/v1/statuses", nil, map[string]string{"status": "hi"}, &out)
	if !IsAmbiguous(err) {
		t.Fatalf("err = %v; want ambiguous", err)
	}
}
