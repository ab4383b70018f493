package testenv

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// launcher is the script that starts the PLC directory and the PDSes (pds/run.mjs). It is
// written next to a link to the installed node_modules for each start, because Node
// resolves packages from the script's own directory.
//
//go:embed pds/run.mjs
var launcher []byte

// pdsInstallState caches the result of install-pds.sh, so that it runs at most once per
// test binary.
var pdsInstallState onceResult

// sharedPDS holds the environments handed out by SharedPDS, keyed by PDS count.
var sharedPDS struct {
	mu   sync.Mutex
	envs map[int]*PDSEnv
	errs map[int]error
}

// PDSEnv is an in-memory PLC directory and one or more Bluesky PDSes that share it, run by
// one Node process on loopback. Create it with StartPDS (or SharedPDS) and release it with
// Close.
type PDSEnv struct {
	// PLCURL is the PLC directory, "http://127.0.0.1:PORT"; the PDSes register their
	// accounts' did:plc identities there, and clients resolve them from it.
	PLCURL string
	// PDSes are the running servers, in order.
	PDSes []*PDS
	// JWTSecret is the secret the PDSes sign session tokens with, so that a test can
	// make a token the PDS will find expired.
	JWTSecret string
	// AdminPassword is the PDSes' admin password (HTTP basic auth, user "admin").
	AdminPassword string
	// Dir holds the launcher, the PDS data and the log. Close removes it.
	Dir string
	// LogFile receives the Node process's stderr.
	LogFile string
	// StartTime is how long the start took, from launching Node to every PDS answering.
	StartTime time.Duration

	proc  *process
	stdin io.Closer // the launcher's standard input; it exits when this closes

	closeOnce sync.Once
	closeErr  error
}

// PDS is one Bluesky PDS of a PDSEnv.
type PDS struct {
	// URL is its public URL, "http://localhost:PORT" (the PDS's "localhost" hostname
	// gives plain http on loopback).
	URL string
	// DID is its service DID, "did:web:localhost%3APORT".
	DID string
	// Port is the TCP port it listens on (127.0.0.1 only).
	Port int
	// DataDir holds its SQLite databases (account.sqlite …) and blobs.
	DataDir string

	env *PDSEnv
}

// PDSAccount is an account created on a test PDS.
type PDSAccount struct {
	// Handle is "NAME.test".
	Handle string
	// DID is the account's did:plc, registered in the env's PLC directory.
	DID string
	// Password is the account's password.
	Password string
	// PDS is the server the account lives on.
	PDS *PDS
	// AccessJWT and RefreshJWT are the session createAccount returned.
	AccessJWT, RefreshJWT string
}

// PDSInstallDir returns the directory of the installed PDS (Node in bin/node, the packages
// in node_modules/): $FERRY_PDS_DIR if set, else the cached install, running
// install-pds.sh first when the cache is empty (about 3 minutes; ctx bounds it).
func PDSInstallDir(ctx context.Context) (string, error) {
	return pdsInstallState.get(ctx, installPDS)
}

func installPDS(ctx context.Context) (string, error) {
	dir := os.Getenv("FERRY_PDS_DIR")
	if dir == "" {
		script, err := findScript("install-pds.sh", "FERRY_PDS_DIR")
		if err != nil {
			return "", err
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "bash", script, CacheDir())
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("testenv: install the Bluesky PDS with %s: %w\n%s", script, err, tail(stderr.Bytes(), 30))
		}
		dir = strings.TrimSpace(lastLine(stdout.String()))
	}
	for _, p := range []string{"bin/node", "node_modules/@atproto/pds", "node_modules/@did-plc/server"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			return "", fmt.Errorf("testenv: PDS install %s is incomplete: %w", dir, err)
		}
	}
	return dir, nil
}

// RequirePDS skips t under `go test -short`, and otherwise makes sure the PDS is installed
// (installing it if needed, which needs npm). If it cannot be, t fails when CI=true or
// FERRY_E2E=1 and is skipped (with the reason) otherwise.
func RequirePDS(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping end-to-end test in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	if _, err := PDSInstallDir(ctx); err != nil {
		unavailable(t, err)
	}
}

// SharedPDS returns a running PDSEnv of n PDSes that is started on first use and reused by
// every test of the test binary asking for the same n; tests must therefore create their
// own accounts (CreateAccount picks unique handles). It calls RequirePDS first; when the
// servers cannot start, t fails or skips by the same rule, and later calls report the
// same error without retrying. Main closes shared environments.
func SharedPDS(t testing.TB, n int) *PDSEnv {
	t.Helper()
	RequirePDS(t)
	sharedPDS.mu.Lock()
	defer sharedPDS.mu.Unlock()
	if e := sharedPDS.envs[n]; e != nil {
		return e
	}
	if err := sharedPDS.errs[n]; err != nil {
		unavailable(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	e, err := StartPDS(ctx, n)
	if err != nil {
		if sharedPDS.errs == nil {
			sharedPDS.errs = map[int]error{}
		}
		sharedPDS.errs[n] = err
		unavailable(t, err)
	}
	if sharedPDS.envs == nil {
		sharedPDS.envs = map[int]*PDSEnv{}
	}
	sharedPDS.envs[n] = e
	t.Logf("testenv: started %d PDS(es) and a PLC directory in %s", n, e.StartTime.Round(time.Millisecond))
	return e
}

func closeSharedPDS() error {
	sharedPDS.mu.Lock()
	defer sharedPDS.mu.Unlock()
	var errs []error
	for n, e := range sharedPDS.envs {
		errs = append(errs, e.Close())
		delete(sharedPDS.envs, n)
	}
	return errors.Join(errs...)
}

// launchAnswer is the line of JSON run.mjs prints once every server listens.
type launchAnswer struct {
	PLC           string `json:"plc"`
	JWTSecret     string `json:"jwtSecret"`
	AdminPassword string `json:"adminPassword"`
	PDS           []struct {
		URL  string `json:"url"`
		DID  string `json:"did"`
		Port int    `json:"port"`
	} `json:"pds"`
}

// StartPDS starts a PLC directory and n PDSes in one Node process, each on a free loopback
// port, and returns once every PDS answers its health check. A cold start takes a few
// seconds. If the start fails, everything is stopped and removed, and the error carries
// the tail of the log.
func StartPDS(ctx context.Context, n int) (*PDSEnv, error) {
	if n < 1 {
		return nil, fmt.Errorf("testenv: start %d PDSes: need at least one", n)
	}
	install, err := PDSInstallDir(ctx)
	if err != nil {
		return nil, err
	}
	removeStaleDirs()
	dir, err := os.MkdirTemp("", tempPattern)
	if err != nil {
		return nil, fmt.Errorf("testenv: create temp dir: %w", err)
	}
	e := &PDSEnv{Dir: dir, LogFile: filepath.Join(dir, "pds.log")}
	if err := e.start(ctx, install, n); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *PDSEnv) start(ctx context.Context, install string, n int) error {
	began := time.Now()
	if err := os.WriteFile(filepath.Join(e.Dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("testenv: write owner file: %w", err)
	}
	script := filepath.Join(e.Dir, "run.mjs")
	if err := os.WriteFile(script, launcher, 0o644); err != nil {
		return fmt.Errorf("testenv: write PDS launcher: %w", err)
	}
	if err := os.Symlink(filepath.Join(install, "node_modules"), filepath.Join(e.Dir, "node_modules")); err != nil {
		return fmt.Errorf("testenv: link PDS packages: %w", err)
	}
	data := filepath.Join(e.Dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return fmt.Errorf("testenv: create PDS data dir: %w", err)
	}
	logf, err := os.OpenFile(e.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("testenv: open PDS log: %w", err)
	}
	defer logf.Close() // the child has its own descriptor

	cmd := exec.Command(filepath.Join(install, "bin", "node"), script, data, strconv.Itoa(n))
	cmd.Dir = e.Dir
	cmd.Env = append(os.Environ(), "LOG_ENABLED=false", "NODE_ENV=development")
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("testenv: PDS stdout: %w", err)
	}
	// The launcher exits when its standard input ends: the pipe's write end stays open in
	// this process until Close (or until the test binary dies).
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("testenv: PDS stdin: %w", err)
	}
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testenv: start %s: %w", cmd.Path, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	e.proc, e.stdin = p, stdin

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "{") {
				lines <- line
				break
			}
		}
		// Keep draining, so that stray output never blocks the launcher.
		io.Copy(io.Discard, stdout)
		p.err = cmd.Wait()
		close(p.done)
	}()

	var line string
	select {
	case line = <-lines:
	case <-p.done:
		return fmt.Errorf("testenv: PDS launcher exited before it was ready: %v\n--- log (tail) ---\n%s", p.err, e.logTail(40))
	case <-ctx.Done():
		return fmt.Errorf("testenv: waiting for the PDS launcher: %w\n--- log (tail) ---\n%s", ctx.Err(), e.logTail(40))
	}
	var ans launchAnswer
	if err := json.Unmarshal([]byte(line), &ans); err != nil {
		return fmt.Errorf("testenv: PDS launcher answer %q: %w", line, err)
	}
	if len(ans.PDS) != n {
		return fmt.Errorf("testenv: PDS launcher started %d PDSes, want %d", len(ans.PDS), n)
	}
	e.PLCURL, e.JWTSecret, e.AdminPassword = ans.PLC, ans.JWTSecret, ans.AdminPassword
	for i, s := range ans.PDS {
		e.PDSes = append(e.PDSes, &PDS{URL: s.URL, DID: s.DID, Port: s.Port, env: e,
			DataDir: filepath.Join(data, fmt.Sprintf("pds%d", i+1))})
	}
	for _, s := range e.PDSes {
		if err := waitHTTP(ctx, p, &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}},
			s.URL+"/xrpc/_health", 100*time.Millisecond); err != nil {
			return fmt.Errorf("testenv: PDS %s: %w\n--- log (tail) ---\n%s", s.URL, err, e.logTail(40))
		}
	}
	e.StartTime = time.Since(began)
	return nil
}

// logTail returns the last lines of the launcher's log.
func (e *PDSEnv) logTail(lines int) string {
	b, err := os.ReadFile(e.LogFile)
	if err != nil {
		return "(log unreadable: " + err.Error() + ")"
	}
	return tail(b, lines)
}

// Close stops the PLC and the PDSes (SIGTERM, SIGKILL after 10 s) and removes Dir. It is
// safe to call more than once.
func (e *PDSEnv) Close() error {
	e.closeOnce.Do(func() {
		var errs []error
		if p := e.proc; p != nil {
			e.stdin.Close()
			termGroup(p)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				killGroup(p)
				select {
				case <-p.done:
				case <-time.After(10 * time.Second):
					errs = append(errs, fmt.Errorf("testenv: PDS launcher %d did not exit after SIGKILL", p.cmd.Process.Pid))
				}
			}
		}
		if err := os.RemoveAll(e.Dir); err != nil {
			errs = append(errs, fmt.Errorf("testenv: remove %s: %w", e.Dir, err))
		}
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}
