package fedi_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// A burst of more requests than a real GoToSocial server's rate limit
// allows must complete without a failure and without hammering: the
// transport learns the budget from X-RateLimit-* and waits for the reset
// instead of running into 429s. GoToSocial's window is a fixed 5 minutes,
// so this test waits out one window (it runs in parallel with the rest).
func TestE2ETransportBurstAgainstRateLimit(t *testing.T) {
	testenv.Require(t)
	t.Parallel()
	// The window starts with the server, and the harness spends part of
	// the first window starting it and creating the user; a burst of one
	// window's worth (less the reserve) therefore needs exactly one wait.
	const limit, burst = 40, 39
	env := testenv.StartT(t, 1, testenv.Options{RateLimitRequests: limit})
	in := env.Instances[0]
	ctx, cancel := context.WithTimeout(t.Context(), 12*time.Minute)
	defer cancel()
	u, err := in.CreateUser(ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := fedi.LoadRoots(env.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	hc, tr := fedi.NewHTTPClient(fedi.HTTPOptions{Roots: roots})
	base, err := fedi.ParseServer(in.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	c := fedi.NewClient(base, u.Token, hc)

	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, burst)
	next := make(chan int)
	for w := 0; w < 4; w++ { // a small worker pool, as ferry's commands use
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if _, err := fedi.VerifyCredentials(ctx, c); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := 0; i < burst; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("request failed: %v", err)
	}
	st := tr.Stats()
	elapsed := time.Since(start)
	// The windows the burst touched: the one it started in and every one
	// it crossed into.
	windows := int64((elapsed+5*time.Minute-1)/(5*time.Minute)) + 1
	t.Logf("FIGURES burst=%d limit=%d/5min requests=%d 429s=%d retries=%d wall=%s windows=%d",
		burst, limit, st.Requests, st.RateLimited, st.Retries, elapsed.Round(time.Second), windows)
	if st.RateLimited > windows {
		t.Errorf("received %d 429s over %d windows; want at most one per window", st.RateLimited, windows)
	}
	if st.Requests > burst+st.RateLimited {
		t.Errorf("sent %d requests for %d calls", st.Requests, burst)
	}
	// Requests beyond the budget had to wait for the next window.
	if elapsed < time.Minute {
		t.Errorf("a burst of %d against a limit of %d finished in %s: the limiter was not reached", burst, limit, elapsed)
	}
}

// A server that stops answering mid-call must not hang ferry: the call's
// deadline ends it with a clear error.
func TestE2EStoppedServer(t *testing.T) {
	testenv.Require(t)
	env := testenv.StartT(t, 1, testenv.Options{})
	in := env.Instances[0]
	roots, _ := fedi.LoadRoots(env.CAFile)
	hc, _ := fedi.NewHTTPClient(fedi.HTTPOptions{Roots: roots})
	base, _ := fedi.ParseServer(in.BaseURL)
	c := fedi.NewClient(base, "", hc)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv, err := fedi.Detect(ctx, c)
	if err != nil || srv.Software.Name != "gotosocial" {
		t.Fatalf("Detect = %+v, %v", srv, err)
	}
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err = fedi.Detect(ctx, c)
	if err == nil || fedi.StatusCode(err) != 0 && fedi.StatusCode(err) != http.StatusBadGateway {
		t.Fatalf("Detect on a stopped server: %v", err)
	}
	t.Logf("stopped server: %v", err)
}
