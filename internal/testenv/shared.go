package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// StartTimeout bounds starting an Env from Shared and StartT, including a build of the
// binary when the cache is empty (about 7 minutes on 2 cores) and the first WebAssembly
// compilation (about 1.5 minutes).
var StartTimeout = 15 * time.Minute

// shared holds the environments handed out by Shared, keyed by instance count.
var shared struct {
	mu   sync.Mutex
	envs map[int]*Env
	errs map[int]error
}

// mandatory reports whether a missing or broken GoToSocial must fail tests rather than skip
// them: when CI=true or FERRY_E2E=1.
func mandatory() bool {
	return os.Getenv("CI") == "true" || os.Getenv("FERRY_E2E") == "1"
}

// unavailable fails t when end-to-end tests are mandatory, else skips it.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if mandatory() {
		t.Fatalf("end-to-end environment unavailable (CI=true or FERRY_E2E=1): %v", err)
	}
	t.Skipf("skipping end-to-end test (set FERRY_E2E=1 to make this a failure): %v", err)
}

// Require skips t under `go test -short`, and otherwise makes sure the GoToSocial binary is
// available (building it if needed). If it cannot be found or built, t fails when CI=true or
// FERRY_E2E=1 and is skipped (with the reason) otherwise.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping end-to-end test in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	if _, err := Binary(ctx); err != nil {
		unavailable(t, err)
	}
}

// Shared returns a running Env of n instances (RateLimitRequests 0) that is started on
// first use and reused by every test of the test binary asking for the same n; tests must
// therefore not stop its instances for good nor depend on fresh state (use unique
// usernames, see CreateUser). It calls Require first; when the servers cannot start, t
// fails or skips by the same rule, and later calls report the same error without retrying.
// Shared environments are closed by Main.
func Shared(t testing.TB, n int) *Env {
	t.Helper()
	Require(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if e := shared.envs[n]; e != nil {
		return e
	}
	if err := shared.errs[n]; err != nil {
		unavailable(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	e, err := Start(ctx, n, Options{})
	if err != nil {
		if shared.errs == nil {
			shared.errs = map[int]error{}
		}
		shared.errs[n] = err
		unavailable(t, err)
	}
	if shared.envs == nil {
		shared.envs = map[int]*Env{}
	}
	shared.envs[n] = e
	return e
}

// StartT starts a private Env for t (after Require) and closes it when t ends. When the
// servers cannot start, t fails or skips by the same rule as Require.
func StartT(t testing.TB, n int, opts Options) *Env {
	t.Helper()
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	e, err := Start(ctx, n, opts)
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close test environment: %v", err)
		}
	})
	return e
}

// Main runs the tests of m, then closes every Env handed out by Shared, and exits with the
// tests' exit code (1 if they passed but closing failed). Call it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if err := closeShared(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func closeShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	var errs []error
	for n, e := range shared.envs {
		errs = append(errs, e.Close())
		delete(shared.envs, n)
	}
	errs = append(errs, closeSharedPDS(), closeSharedPG())
	return errors.Join(errs...)
}
