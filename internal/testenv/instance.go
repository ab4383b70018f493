package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Instance is one running GoToSocial server of an Env.
type Instance struct {
	// Name is a short label ("gts1", "gts2", …), also the name of its data directory.
	Name string
	// Host is "localhost:PORT": GoToSocial's host setting, the domain part of accts.
	Host string
	// BaseURL is "https://localhost:PORT".
	BaseURL string
	// Port is the TCP port the server listens on (127.0.0.1 only).
	Port int
	// LogFile receives the server's (and the admin CLI's) stdout and stderr.
	LogFile string

	env      *Env
	bin      string
	dir      string
	certFile string
	keyFile  string
	opts     Options

	mu   sync.Mutex // guards proc
	proc *process

	appMu        sync.Mutex // guards the OAuth app used by CreateUser
	clientID     string
	clientSecret string

	cliMu sync.Mutex // serialises admin CLI runs
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

// configFile is the path of the instance's GoToSocial configuration.
func (in *Instance) configFile() string { return filepath.Join(in.dir, "config.yaml") }

// startFresh picks a port, writes the configuration and starts the server, retrying with
// another port (and an empty data directory) when the chosen port was taken meanwhile.
func (in *Instance) startFresh(ctx context.Context) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = os.RemoveAll(in.dir); err != nil {
			return fmt.Errorf("testenv: %s: clean data dir: %w", in.Name, err)
		}
		if err = os.MkdirAll(filepath.Join(in.dir, "storage"), 0o755); err != nil {
			return fmt.Errorf("testenv: %s: create data dir: %w", in.Name, err)
		}
		if in.Port, err = freePort(); err != nil {
			return err
		}
		in.Host = "localhost:" + strconv.Itoa(in.Port)
		in.BaseURL = "https://" + in.Host
		in.LogFile = filepath.Join(in.dir, "gotosocial.log")
		if err = os.WriteFile(in.configFile(), in.config(), 0o600); err != nil {
			return fmt.Errorf("testenv: %s: write config: %w", in.Name, err)
		}
		err = in.start(ctx)
		if err == nil || !strings.Contains(err.Error(), "address already in use") || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// config renders the GoToSocial YAML configuration. Strings are written as JSON strings,
// which are valid YAML double-quoted scalars.
func (in *Instance) config() []byte {
	q := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	web := webDir(in.bin)
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# Written by ferry's internal/testenv.")
	line("host: %s", q(in.Host))
	line("protocol: \"https\"")
	line("bind-address: \"127.0.0.1\"")
	line("port: %d", in.Port)
	line("trusted-proxies: [\"127.0.0.1/32\", \"::1/128\"]")
	line("log-level: \"warn\"")
	line("log-db-queries: false")
	line("log-client-ip: true")
	line("application-name: %s", q("ferry-e2e-"+in.Name))
	line("db-type: \"sqlite\"")
	line("db-address: %s", q(filepath.Join(in.dir, "sqlite.db")))
	line("db-sqlite-journal-mode: \"WAL\"")
	line("db-sqlite-synchronous: \"NORMAL\"")
	line("db-sqlite-busy-timeout: \"5m\"")
	line("web-template-base-dir: %s", q(filepath.Join(web, "template")+"/"))
	line("web-asset-base-dir: %s", q(filepath.Join(web, "assets")+"/"))
	line("instance-federation-mode: \"blocklist\"")
	line("instance-expose-peers: true")
	line("instance-expose-suspended: true")
	line("instance-expose-suspended-web: true")
	line("instance-expose-public-timeline: true")
	line("instance-deliver-to-shared-inboxes: true")
	line("accounts-registration-open: false")
	line("accounts-allow-custom-css: false")
	line("media-ffmpeg-pool-size: 1")
	line("storage-backend: \"local\"")
	line("storage-local-base-path: %s", q(filepath.Join(in.dir, "storage")))
	line("letsencrypt-enabled: false")
	line("tls-certificate-chain: %s", q(in.certFile))
	line("tls-certificate-key: %s", q(in.keyFile))
	line("metrics-enabled: false")
	line("tracing-enabled: false")
	line("syslog-enabled: false")
	line("http-client:")
	line("  allow-ips: [\"127.0.0.1/32\", \"::1/128\"]")
	line("  timeout: \"30s\"")
	line("  tls-insecure-skip-verify: true")
	line("cache:")
	line("  memory-target: \"64MiB\"")
	line("advanced-rate-limit-requests: %d", in.opts.RateLimitRequests)
	line("advanced-rate-limit-exceptions: []")
	return []byte(b.String())
}

// commandEnv is the environment for the server and the admin CLI: the caller's
// environment minus GTS_* variables (GoToSocial reads its settings from them, which would
// silently override the config file), plus the shared WebAssembly compilation cache.
func commandEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GTS_") {
			env = append(env, kv)
		}
	}
	return append(env, "GTS_WAZERO_COMPILATION_CACHE="+filepath.Join(CacheDir(), "wazero"))
}

// start launches the server process and waits until it is ready.
func (in *Instance) start(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.proc != nil {
		select {
		case <-in.proc.done:
		default:
			return fmt.Errorf("testenv: %s: start: already running", in.Name)
		}
	}
	if err := os.MkdirAll(filepath.Join(CacheDir(), "wazero"), 0o755); err != nil {
		return fmt.Errorf("testenv: %s: create wazero cache dir: %w", in.Name, err)
	}
	logf, err := os.OpenFile(in.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("testenv: %s: open log: %w", in.Name, err)
	}
	defer logf.Close() // the child has its own descriptor
	fmt.Fprintf(logf, "=== testenv: server start on %s at %s\n", in.Host, time.Now().Format(time.RFC3339))
	offset, _ := logf.Seek(0, io.SeekCurrent)

	cmd := exec.Command(in.bin, "--config-path", in.configFile(), "server", "start")
	cmd.Dir = in.dir
	cmd.Env = commandEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testenv: %s: start %s: %w", in.Name, in.bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	in.proc = p

	client := in.env.HTTPClient()
	client.Timeout = 5 * time.Second
	if err := waitHTTP(ctx, p, client, in.BaseURL+"/api/v1/instance", 200*time.Millisecond); err != nil {
		killGroup(p)
		<-p.done
		return fmt.Errorf("testenv: %s: start server on %s: %w\n--- server log (tail) ---\n%s",
			in.Name, in.Host, err, in.logTail(offset, 40))
	}
	return nil
}

// waitHTTP polls url until it answers 200, the process p exits, or ctx
// ends: how the harness knows a server it started is ready.
func waitHTTP(ctx context.Context, p *process, client *http.Client, url string, every time.Duration) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("build readiness request: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("server exited before it was ready: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", url, ctx.Err())
		case <-tick.C:
		}
	}
}

// logTail returns the last lines of the log written after offset.
func (in *Instance) logTail(offset int64, lines int) string {
	b, err := os.ReadFile(in.LogFile)
	if err != nil {
		return "(log unreadable: " + err.Error() + ")"
	}
	if offset > 0 && offset <= int64(len(b)) {
		b = b[offset:]
	}
	return tail(b, lines)
}

// Running reports whether the server process is alive.
func (in *Instance) Running() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.proc == nil {
		return false
	}
	select {
	case <-in.proc.done:
		return false
	default:
		return true
	}
}

// Stop stops the server: SIGTERM to its process group, SIGKILL after 10 s. Its data stays,
// so Restart can bring it back on the same port. Stopping a stopped instance is a no-op.
func (in *Instance) Stop() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	p := in.proc
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	termGroup(p)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		killGroup(p)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("testenv: %s: stop: process %d did not exit after SIGKILL", in.Name, p.cmd.Process.Pid)
		}
	}
	return nil
}

// Restart starts a stopped instance again with the same port, configuration and data, and
// waits until it is ready. It fails if the instance is running or the port has been taken.
func (in *Instance) Restart(ctx context.Context) error {
	if err := in.start(ctx); err != nil {
		return fmt.Errorf("testenv: %s: restart: %w", in.Name, err)
	}
	return nil
}

// HTTPClient returns a new client that trusts the Env's certificate. Each call returns a
// distinct *http.Client (sharing one transport), so callers may set Jar or CheckRedirect.
func (in *Instance) HTTPClient() *http.Client { return in.env.HTTPClient() }

// HTTPClient returns a new client that trusts CAFile and never uses a proxy. Each call
// returns a distinct *http.Client sharing one transport.
func (e *Env) HTTPClient() *http.Client {
	e.transportOnce.Do(func() {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(e.caPEM)
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		e.transport = t
	})
	return &http.Client{Transport: e.transport, Timeout: 2 * time.Minute}
}

// runCLI runs the GoToSocial CLI against this instance's configuration (admin commands),
// appending its output to the log; the error includes that output.
func (in *Instance) runCLI(ctx context.Context, args ...string) error {
	in.cliMu.Lock()
	defer in.cliMu.Unlock()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, in.bin, append([]string{"--config-path", in.configFile()}, args...)...)
	cmd.Dir = in.dir
	cmd.Env = commandEnv()
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return killPID(cmd.Process.Pid) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if f, ferr := os.OpenFile(in.LogFile, os.O_WRONLY|os.O_APPEND, 0o644); ferr == nil {
		fmt.Fprintf(f, "=== testenv: gotosocial %s\n%s", strings.Join(redact(args), " "), out.Bytes())
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("gotosocial %s: %w\n%s", strings.Join(redact(args), " "), err, tail(out.Bytes(), 20))
	}
	return nil
}

// redact hides the value following --password.
func redact(args []string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == "--password" {
			out[i+1] = "***"
		}
	}
	return out
}
