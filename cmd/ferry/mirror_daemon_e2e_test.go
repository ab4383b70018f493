package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/post"
)

// mirDaemon is a ferry daemon running as a child process.
type mirDaemon struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done
}

func startMirDaemon(t *testing.T, bin string, c *ferryCLI, cfg string, extra ...string) *mirDaemon {
	t.Helper()
	logf := filepath.Join(t.TempDir(), "daemon.log")
	f, err := os.Create(logf)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--data-dir", c.dataDir, "--ca-file", c.caFile, "--config", cfg, "--log-level", "debug",
		"daemon", "--tick", "200ms"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &mirDaemon{cmd: cmd, log: logf, done: make(chan struct{})}
	go func() { d.err = cmd.Wait(); f.Close(); close(d.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			l := d.logText()
			t.Logf("daemon log (last 6000 bytes):\n%s", l[max(0, len(l)-6000):])
		}
	})
	return d
}

func (d *mirDaemon) logText() string { b, _ := os.ReadFile(d.log); return string(b) }

// mirWaitPosts polls u's statuses until there are at least n, or fails.
func mirWaitPosts(t *testing.T, u *testenv.User, n int, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := len(mirStatuses(t, u))
		if got >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d posts after %s, want %d", u.Username, got, within, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestE2EMirrorDaemonKill(t *testing.T) {
	env := testenv.Shared(t, 2)
	bin := ferryBinary(t)
	a, b := mirUser(t, env.Instances[0]), mirUser(t, env.Instances[1])
	c := newCLI(t, env.CAFile)
	ha, hb := mirLogin(t, c, env.Instances[0], a), mirLogin(t, c, env.Instances[1], b)
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "a-to-b"
source = { type = "account", account = "%s", stream = true }
schedule = "10s"
[[route.sink]]
account = "%s"
`, ha, hb))
	c.run("--config", cfg, "mirror").mustSucceed(t) // the first run
	origin := mirSinkFor(t, env, env.Instances[0], a)

	d1 := startMirDaemon(t, bin, c, cfg)
	const total = 8
	posted := make(chan struct{})
	go func() {
		defer close(posted)
		for i := range total {
			mirPublish(t, origin, post.Post{Text: fmt.Sprintf("kill test post %d", i), Visibility: post.Public}, "")
			time.Sleep(150 * time.Millisecond)
		}
	}()
	// Kill the daemon in the middle of mirroring.
	mirWaitPosts(t, b, 2, 60*time.Second)
	if err := d1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d1.done
	<-posted
	killedAt := len(mirStatuses(t, b))
	t.Logf("killed with %d of %d mirrored", killedAt, total)

	d2 := startMirDaemon(t, bin, c, cfg)
	mirWaitPosts(t, b, total, 60*time.Second)
	// SIGHUP with a broken config keeps the running one.
	good, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, append(append([]byte(nil), good...), "oops = 1\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d2.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(d2.logText(), "keeping the old one"); {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP with a broken config was not reported")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := os.WriteFile(cfg, good, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // room for a duplicate to show up
	if err := d2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d2.done:
		if d2.err != nil {
			t.Errorf("daemon exit after SIGTERM: %v", d2.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the daemon did not stop on SIGTERM\n%s", d2.logText())
	}
	if !strings.Contains(d2.logText(), "daemon stopped") {
		t.Errorf("no clean stop in the log")
	}
	sts := mirStatuses(t, b)
	texts := map[string]int{}
	for _, s := range sts {
		texts[mirText(s)]++
	}
	for i := range total {
		if n := texts[fmt.Sprintf("kill test post %d", i)]; n != 1 {
			t.Errorf("post %d arrived %d times", i, n)
		}
	}
	if len(sts) != total {
		t.Errorf("B has %d posts, want %d", len(sts), total)
	}
	st := c.run("--config", cfg, "status").mustSucceed(t)
	if !strings.Contains(st.stdout, "a-to-b") || !strings.Contains(st.stdout, "not running") {
		t.Errorf("status:\n%s", st.stdout)
	}
}

// TestE2EMirrorLatencyBench measures how long a post on A takes to appear
// on B with the daemon streaming, and with polling only. FERRY_BENCH=1.
func TestE2EMirrorLatencyBench(t *testing.T) {
	if os.Getenv("FERRY_BENCH") != "1" {
		t.Skip("set FERRY_BENCH=1 to run the latency benchmark")
	}
	env := testenv.Shared(t, 2)
	for _, mode := range []struct {
		name   string
		stream bool
	}{{"streaming", true}, {"polling every 10s", false}} {
		a, b := mirUser(t, env.Instances[0]), mirUser(t, env.Instances[1])
		c := newCLI(t, env.CAFile)
		ha, hb := mirLogin(t, c, env.Instances[0], a), mirLogin(t, c, env.Instances[1], b)
		cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "a-to-b"
source = { type = "account", account = "%s", stream = %v }
schedule = "10s"
[[route.sink]]
account = "%s"
`, ha, mode.stream, hb))
		c.run("--config", cfg, "mirror").mustSucceed(t)
		ctx, cancel := context.WithCancel(context.Background())
		_, wait := c.start(ctx, strings.NewReader(""), "--log-level", "warn", "--config", cfg, "daemon", "--tick", "200ms")
		time.Sleep(2 * time.Second) // the stream connects
		origin := mirSinkFor(t, env, env.Instances[0], a)
		var lat []time.Duration
		for i := range 10 {
			start := time.Now()
			mirPublish(t, origin, post.Post{Text: fmt.Sprintf("latency %d", i), Visibility: post.Public}, "")
			for len(mirStatuses(t, b)) < i+1 {
				if time.Since(start) > 60*time.Second {
					t.Fatalf("%s: post %d not mirrored within a minute", mode.name, i)
				}
				time.Sleep(20 * time.Millisecond)
			}
			lat = append(lat, time.Since(start))
		}
		cancel()
		wait()
		slices.Sort(lat)
		t.Logf("BENCH latency A→B, %s: median %v, min %v, max %v (n=%d, loopback GoToSocial)",
			mode.name, lat[len(lat)/2].Round(time.Millisecond), lat[0].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), len(lat))
	}
}

// TestE2EMirrorIdleBench runs a daemon with 50 feed routes and reports its
// resident memory and CPU while idle. FERRY_BENCH=1.
func TestE2EMirrorIdleBench(t *testing.T) {
	if os.Getenv("FERRY_BENCH") != "1" {
		t.Skip("set FERRY_BENCH=1 to run the idle benchmark")
	}
	env := testenv.Shared(t, 1)
	bin := ferryBinary(t)
	u := mirUser(t, env.Instances[0])
	c := newCLI(t, env.CAFile)
	h := mirLogin(t, c, env.Instances[0], u)
	var reqs, notMod atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			notMod.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fmt.Fprintf(w, `<?xml version="1.0"?><rss version="2.0"><channel><title>%s</title><link>http://x/</link><description>d</description>`, r.URL.Path)
		for i := range 20 {
			fmt.Fprintf(w, `<item><title>Item %d</title><link>http://x%s/%d</link><guid>%s-%d</guid><pubDate>Sat, 21 Nov 2026 10:%02d:00 +0000</pubDate></item>`, i, r.URL.Path, i, r.URL.Path, i, i)
		}
		fmt.Fprint(w, `</channel></rss>`)
	}))
	defer srv.Close()
	var cfg strings.Builder
	for i := range 50 {
		fmt.Fprintf(&cfg, "[[route]]\nname = \"feed-%02d\"\nsource = { type = \"feed\", url = \"%s/feed/%d\" }\nschedule = \"30s\"\n[[route.sink]]\naccount = \"%s\"\n\n", i, srv.URL, i, h)
	}
	path := mirWriteConfig(t, cfg.String())
	d := startMirDaemon(t, bin, c, path, "--tick", "10s")
	time.Sleep(15 * time.Second) // start-up and the 50 first runs
	cpu0, req0 := mirCPU(t, d.cmd.Process.Pid), reqs.Load()
	const idle = 60 * time.Second
	time.Sleep(idle)
	cpu1, req1 := mirCPU(t, d.cmd.Process.Pid), reqs.Load()
	rss := mirRSS(t, d.cmd.Process.Pid)
	t.Logf("BENCH idle daemon, 50 feed routes (30 s schedule): RSS %.1f MB, CPU %.2f%% of one core over %s (%v CPU); "+
		"%d feed requests in that minute, %d of all %d answered 304",
		float64(rss)/1024, 100*float64(cpu1-cpu0)/float64(idle), idle, cpu1-cpu0, req1-req0, notMod.Load(), req1)
	if req1-req0 < 50 {
		t.Errorf("only %d feed requests in a minute: the routes are not running", req1-req0)
	}
	st := c.run("--config", path, "status").mustSucceed(t)
	if strings.Count(st.stdout, "feed-") != 50 {
		t.Errorf("status lists %d routes", strings.Count(st.stdout, "feed-"))
	}
}

// mirRSS reads VmRSS (kB) of pid from /proc.
func mirRSS(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			n, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return n
		}
	}
	return 0
}

// mirCPU reads user+system CPU time of pid from /proc (clock ticks of 10 ms).
func mirCPU(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// TestE2EMirrorDaemonBackup runs a [[backup]] job from the daemon: the
// graph export and the archive land in their directories and the run is
// recorded for `ferry status`.
func TestE2EMirrorDaemonBackup(t *testing.T) {
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	u := mirUser(t, in)
	c := newCLI(t, env.CAFile)
	h := mirLogin(t, c, in, u)
	mirPublish(t, mirSinkFor(t, env, in, u), post.Post{Text: "to be archived", Visibility: post.Public}, "")
	dir := t.TempDir()
	graph, archive := filepath.Join(dir, "graph"), filepath.Join(dir, "archive")
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[backup]]
name = "lifeboat"
account = "%s"
graph = "%s"
archive = "%s"
schedule = "1h"
`, h, graph, archive))
	c.run("--config", cfg, "config", "check").mustSucceed(t)
	ctx, cancel := context.WithCancel(context.Background())
	_, wait := c.start(ctx, strings.NewReader(""), "--config", cfg, "daemon", "--tick", "200ms")
	deadline := time.Now().Add(90 * time.Second)
	for {
		st := c.run("--config", cfg, "--json", "status")
		if strings.Contains(st.stdout, `"backup/lifeboat"`) && strings.Contains(st.stdout, `"last_ok"`) {
			break
		}
		if strings.Contains(st.stdout, `"last_error"`) || time.Now().After(deadline) {
			cancel()
			r := wait()
			t.Fatalf("backup did not complete:\n%s\n%s", st.stdout, r.stderr[max(0, len(r.stderr)-3000):])
		}
		time.Sleep(300 * time.Millisecond)
	}
	cancel()
	if r := wait(); r.code != 0 {
		t.Errorf("daemon exited %d", r.code)
	}
	for _, d := range []string{graph, archive} {
		entries, err := os.ReadDir(d)
		if err != nil || len(entries) == 0 {
			t.Errorf("%s: %d entries, %v", d, len(entries), err)
		}
	}
}
