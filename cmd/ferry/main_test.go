package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ferryCLI runs ferry in-process against one data directory.
type ferryCLI struct {
	t       *testing.T
	dataDir string
	caFile  string
}

func newCLI(t *testing.T, caFile string) *ferryCLI {
	return &ferryCLI{t: t, dataDir: t.TempDir(), caFile: caFile}
}

// result is one finished ferry invocation.
type result struct {
	code           int
	stdout, stderr string
}

func (c *ferryCLI) args(args ...string) []string {
	base := []string{"ferry", "--data-dir", c.dataDir, "--log-level", "debug"}
	if c.caFile != "" {
		base = append(base, "--ca-file", c.caFile)
	}
	return append(base, args...)
}

// run runs ferry with args and empty stdin.
func (c *ferryCLI) run(args ...string) result {
	return c.runIn(strings.NewReader(""), args...)
}

func (c *ferryCLI) runIn(stdin io.Reader, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errb syncBuffer
	code := run(ctx, c.args(args...), stdin, &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// start runs ferry in the background; wait returns its result.
func (c *ferryCLI) start(ctx context.Context, stdin io.Reader, args ...string) (stderr *syncBuffer, wait func() result) {
	var out syncBuffer
	stderr = &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, c.args(args...), stdin, &out, stderr) }()
	return stderr, func() result {
		code := <-done
		return result{code: code, stdout: out.String(), stderr: stderr.String()}
	}
}

func (r result) mustSucceed(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("ferry exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	return r
}

// ferryBuild is the binary ferryBinary built, shared by the tests.
var ferryBuild struct {
	once sync.Once
	path string
	err  error
}

// ferryBinary builds the ferry binary once per test binary, for tests that
// run it as a child process (to kill it, or to measure its memory).
func ferryBinary(t *testing.T) string {
	t.Helper()
	ferryBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-test-bin-")
		if err != nil {
			ferryBuild.err = err
			return
		}
		ferryBuild.path = filepath.Join(dir, "ferry")
		out, err := exec.Command("go", "build", "-o", ferryBuild.path, ".").CombinedOutput()
		if err != nil {
			ferryBuild.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if ferryBuild.err != nil {
		t.Fatal(ferryBuild.err)
	}
	return ferryBuild.path
}
