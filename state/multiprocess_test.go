package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The helper-process pattern: the test binary re-executes itself with
// -test.run=TestHelperProcess and these variables set, so the children
// run real ferry store code in separate processes.
const (
	envHelper = "FERRY_STATE_TEST_HELPER" // "write" or "lock"
	envDB     = "FERRY_STATE_TEST_DB"
	envWorker = "FERRY_STATE_TEST_WORKER"
	envStart  = "FERRY_STATE_TEST_START" // unix nanoseconds to start at

	helperLocked = 3 // exit code: LockDaemon returned ErrLocked

	writesPerProcess = 300
	writeDelay       = 300 * time.Millisecond // after the start, for Open to finish
)

// TestHelperProcess is not a test: it is the body of the child processes
// started by runHelper, and does nothing in a normal test run.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(envHelper)
	if mode == "" {
		t.Skip("helper process only")
	}
	path := os.Getenv(envDB)
	switch mode {
	case "lock":
		s, err := Open(context.Background(), path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		release, err := s.LockDaemon()
		if errors.Is(err, ErrLocked) {
			os.Exit(helperLocked)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		release()
		os.Exit(0)
	case "write":
		start, _ := strconv.ParseInt(os.Getenv(envStart), 10, 64)
		span, err := writeLoad(context.Background(), path, os.Getenv(envWorker), time.Unix(0, start))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(span)
		os.Exit(0)
	}
	t.Fatalf("unknown helper mode %q", mode)
}

// runHelper runs the test binary as a helper process and returns its exit
// code. Output goes to the test log.
func runHelper(t *testing.T, mode, path string, worker int) int {
	t.Helper()
	cmd := helperCmd(t, mode, path, worker, time.Now())
	out, err := cmd.CombinedOutput()
	if len(out) > 0 {
		t.Logf("helper %s output:\n%s", mode, out)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		t.Fatalf("run helper: %v", err)
	}
	return 0
}

func helperCmd(t *testing.T, mode, path string, worker int, start time.Time) *exec.Cmd {
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		envHelper+"="+mode, envDB+"="+path, envWorker+"="+strconv.Itoa(worker),
		envStart+"="+strconv.FormatInt(start.UnixNano(), 10))
	return cmd
}

// writeLoad opens the store (racing the other processes through Open and
// the migrations) and does writesPerProcess small write transactions:
// a third PutAccount, a third Set, a third a read-modify-write of a shared
// counter, which loses updates or fails with SQLITE_BUSY unless writes are
// BEGIN IMMEDIATE.
// It returns when its writes ran, relative to start, to show the overlap.
func writeLoad(ctx context.Context, path, worker string, start time.Time) (span string, err error) {
	time.Sleep(time.Until(start))
	s, err := Open(ctx, path)
	if err != nil {
		return "", fmt.Errorf("worker %s: %w", worker, err)
	}
	defer s.Close()
	// A second barrier lines up the write phases, which would otherwise
	// be staggered by how long each Open waited for the migration lock.
	time.Sleep(time.Until(start.Add(writeDelay)))
	first := time.Since(start)
	for i := range writesPerProcess {
		var err error
		switch i % 3 {
		case 0:
			err = s.PutAccount(ctx, testAccount(fmt.Sprintf("u%d@w%s.example", i, worker), ""))
		case 1:
			err = s.Set(ctx, fmt.Sprintf("w%s/k%d", worker, i), strconv.Itoa(i))
		case 2:
			err = s.Write(ctx, func(tx *sql.Tx) error {
				var n int
				err := tx.QueryRowContext(ctx, `SELECT CAST(value AS INTEGER) FROM kv WHERE key = 'counter'`).Scan(&n)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return err
				}
				_, err = tx.ExecContext(ctx, `
INSERT INTO kv (key, value, updated_at) VALUES ('counter', ?, 'x')
ON CONFLICT (key) DO UPDATE SET value = excluded.value`, strconv.Itoa(n+1))
				return err
			})
		}
		if err != nil {
			return "", fmt.Errorf("worker %s write %d: %w", worker, i, err)
		}
	}
	return fmt.Sprintf("process %s wrote from +%v to +%v", worker,
		first.Round(time.Millisecond), time.Since(start).Round(time.Millisecond)), nil
}

func TestConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "ferry.db")
	const children = 2
	// Everyone, the parent included, starts at the same instant on a
	// database that does not exist yet.
	start := time.Now().Add(500 * time.Millisecond)

	var wg sync.WaitGroup
	errs := make([]error, children+1)
	spans := make([]string, children+1)
	for c := range children {
		cmd := helperCmd(t, "write", path, c+1, start)
		wg.Go(func() {
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				errs[c] = fmt.Errorf("child %d: %v\n%s", c+1, err, stderr.String())
				return
			}
			spans[c] = strings.TrimSpace(string(out))
		})
	}
	spans[children], errs[children] = writeLoad(t.Context(), path, "0", start)
	wg.Wait()
	for _, span := range spans {
		t.Log(span)
	}
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		return
	}

	s := openAt(t, path)
	procs := children + 1
	accts, err := s.Accounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := procs * writesPerProcess / 3; len(accts) != want {
		t.Errorf("accounts = %d, want %d", len(accts), want)
	}
	var kv int
	if err := s.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM kv WHERE key <> 'counter'`).Scan(&kv); err != nil {
		t.Fatal(err)
	}
	if want := procs * writesPerProcess / 3; kv != want {
		t.Errorf("kv rows = %d, want %d", kv, want)
	}
	counter, err := s.Get(t.Context(), "counter")
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(procs * writesPerProcess / 3); counter != want {
		t.Errorf("counter = %s, want %s (lost updates)", counter, want)
	}
	if got := userVersion(t, s.DB()); got != len(migrations) {
		t.Errorf("user_version = %d, want %d", got, len(migrations))
	}
}
