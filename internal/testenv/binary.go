package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// binaryState caches the result of locating (and possibly building) the binary, so that the
// build script runs at most once per test binary.
var binaryState onceResult

// onceResult keeps the outcome of an expensive step of the harness (a build, an install)
// for the whole test binary: a success, or a failure that its context did not cut short,
// is not repeated.
type onceResult struct {
	mu  sync.Mutex
	val string
	err error
}

// get returns the kept outcome, running f first if there is none.
func (o *onceResult) get(ctx context.Context, f func(context.Context) (string, error)) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.val != "" || o.err != nil {
		return o.val, o.err
	}
	val, err := f(ctx)
	switch {
	case err == nil:
		o.val = val
	case ctx.Err() == nil:
		o.err = err
	}
	return o.val, err
}

// CacheDir returns the directory that holds the built GoToSocial binary and the WebAssembly
// compilation cache: $FERRY_E2E_CACHE if set, else $HOME/.cache/ferry-e2e (the same rule
// build-gotosocial.sh uses).
func CacheDir() string {
	if d := os.Getenv("FERRY_E2E_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return filepath.Join(os.TempDir(), "ferry-e2e")
	}
	return filepath.Join(home, ".cache", "ferry-e2e")
}

// Binary returns the path of the GoToSocial binary: $FERRY_GTS_BIN if set, else the cached
// build, running build-gotosocial.sh first when the cache is empty (which takes several
// minutes; ctx bounds it). The web templates and assets are expected in "web/" next to the
// binary unless $FERRY_GTS_WEB names another directory.
func Binary(ctx context.Context) (string, error) { return binaryState.get(ctx, locateBinary) }

func locateBinary(ctx context.Context) (string, error) {
	var bin string
	if env := os.Getenv("FERRY_GTS_BIN"); env != "" {
		bin = env
	} else {
		script, err := findScript("build-gotosocial.sh", "FERRY_GTS_BIN")
		if err != nil {
			return "", err
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "bash", script, CacheDir())
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("testenv: build GoToSocial with %s: %w\n%s", script, err, tail(stderr.Bytes(), 30))
		}
		bin = strings.TrimSpace(lastLine(stdout.String()))
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return "", fmt.Errorf("testenv: GoToSocial binary: %w", err)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("testenv: GoToSocial binary %s is not an executable file", bin)
	}
	for _, sub := range []string{"template", "assets"} {
		if _, err := os.Stat(filepath.Join(webDir(bin), sub)); err != nil {
			return "", fmt.Errorf("testenv: GoToSocial web files (set FERRY_GTS_WEB): %w", err)
		}
	}
	return bin, nil
}

// webDir returns the directory holding GoToSocial's template/ and assets/ directories.
func webDir(bin string) string {
	if d := os.Getenv("FERRY_GTS_WEB"); d != "" {
		return d
	}
	return filepath.Join(filepath.Dir(bin), "web")
}

// findScript finds one of this package's scripts: next to this source file
// when the source tree is available at the path compiled into the test
// binary, else by walking up from the working directory (go test runs in the
// package directory) to the module root. hint says which variable skips it.
func findScript(name, hint string) (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok {
		p := filepath.Join(filepath.Dir(file), name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testenv: locate %s: %w", name, err)
	}
	for {
		p := filepath.Join(dir, "internal", "testenv", name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: locate " + name + ": not found next to the source nor above the working directory; set " + hint)
		}
		dir = parent
	}
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
