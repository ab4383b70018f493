package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/testenv"
)

// Daemons sharing one PostgreSQL database (issue 15), run as real ferry
// processes against a real PostgreSQL server, real feeds on loopback and a
// real GoToSocial as the sink.

// pgFeeds serves n RSS feeds, /feed/<i>.xml, each a list of items the
// test extends, and records when each feed was fetched.
type pgFeeds struct {
	mu      sync.Mutex
	items   [][]mirRSSItem
	fetches [][]time.Time
	srv     *httptest.Server
	doc     *mirFeed     // only for rssDoc
	delay   atomic.Int64 // nanoseconds each answer waits: runs that last
}

func newPGFeeds(t testing.TB, n int) *pgFeeds {
	f := &pgFeeds{items: make([][]mirRSSItem, n), fetches: make([][]time.Time, n)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var i int
		if _, err := fmt.Sscanf(r.URL.Path, "/feed/%d.xml", &i); err != nil || i < 0 || i >= n {
			http.NotFound(w, r)
			return
		}
		time.Sleep(time.Duration(f.delay.Load()))
		f.mu.Lock()
		f.fetches[i] = append(f.fetches[i], time.Now())
		items := append([]mirRSSItem(nil), f.items[i]...)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
		_, _ = w.Write([]byte(f.doc.rssDoc(items...)))
	}))
	f.doc = &mirFeed{srv: f.srv}
	t.Cleanup(f.srv.Close)
	return f
}

// add appends item number k to every feed: "pg r<i> item <k>".
func (f *pgFeeds) add(k int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.items {
		f.items[i] = append(f.items[i], mirRSSItem{GUID: fmt.Sprintf("r%d-%d", i, k), Title: pgItemTitle(i, k),
			Link: fmt.Sprintf("%s/r%d/%d", f.srv.URL, i, k), HTML: fmt.Sprintf("<p>route %d item %d</p>", i, k),
			At: time.Now().Add(-time.Duration(100-k) * time.Minute)})
	}
}

func pgItemTitle(route, k int) string { return fmt.Sprintf("pg r%02d item %d", route, k) }

func (f *pgFeeds) url(i int) string { return fmt.Sprintf("%s/feed/%d.xml", f.srv.URL, i) }

// pgConfig writes a config of n feed routes on schedule to sink.
func pgConfig(t testing.TB, f *pgFeeds, n int, schedule, sink string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "[[route]]\nname = \"feed-%02d\"\nsource = { type = \"feed\", url = %q }\nschedule = %q\n[[route.sink]]\naccount = %q\n\n",
			i, f.url(i), schedule, sink)
	}
	p := filepath.Join(t.TempDir(), "ferry.toml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pgDaemon is a ferry daemon process on PostgreSQL.
type pgDaemon struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startPGDaemon(t testing.TB, bin string, global []string, cfg string, extra ...string) *pgDaemon {
	t.Helper()
	dir := t.TempDir()
	if keep := os.Getenv("FERRY_KEEP_LOGS"); keep != "" {
		dir = keep // to read the daemons' logs after a failure
	}
	f, err := os.CreateTemp(dir, "daemon-*.log")
	logf := f.Name()
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string(nil), global...), "--config", cfg)
	if !slices.Contains(global, "--log-level") {
		args = append(args, "--log-level", "debug")
	}
	args = append(append(args, "daemon"), extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &pgDaemon{cmd: cmd, log: logf, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(d.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			l := d.logText()
			var bad []string
			for _, line := range strings.Split(l, "\n") {
				if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
					bad = append(bad, line)
				}
			}
			t.Logf("daemon %d warnings and errors (%d):\n%s", cmd.Process.Pid, len(bad), strings.Join(bad[:min(len(bad), 60)], "\n"))
			t.Logf("daemon %d log (last 3000 bytes):\n%s", cmd.Process.Pid, l[max(0, len(l)-3000):])
		}
	})
	return d
}

func (d *pgDaemon) logText() string { b, _ := os.ReadFile(d.log); return string(b) }

// pgAllStatuses pages through all of u's statuses.
func pgAllStatuses(t *testing.T, u *testenv.User) []fedi.Status {
	t.Helper()
	var all []fedi.Status
	maxID := ""
	for {
		q := url.Values{"limit": {"40"}}
		if maxID != "" {
			q.Set("max_id", maxID)
		}
		var page []fedi.Status
		if err := u.API(t.Context(), http.MethodGet, "/api/v1/accounts/"+u.ID+"/statuses", q, &page); err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		maxID = page[len(page)-1].ID
	}
}

// pgDebug, when set, prints the database's leases and routes after a failed wait.
var pgDebug func()

var pgTitleRE = regexp.MustCompile(`pg r\d+ item \d+`)

// pgCount counts u's posts by item title.
func pgCount(t *testing.T, u *testenv.User) (map[string]int, int) {
	t.Helper()
	counts := map[string]int{}
	sts := pgAllStatuses(t, u)
	for _, s := range sts {
		counts[pgTitleRE.FindString(mirText(s))]++
	}
	return counts, len(sts)
}

// pgWaitPosts waits until u has at least n posts.
func pgWaitPosts(t *testing.T, u *testenv.User, n int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, got := pgCount(t, u)
		if got >= n {
			return time.Since(start)
		}
		if time.Since(start) > within {
			counts, _ := pgCount(t, u)
			var have []string
			for k := range counts {
				have = append(have, k)
			}
			slices.Sort(have)
			if pgDebug != nil {
				pgDebug()
			}
			t.Fatalf("%d posts after %s, want %d; posted: %v", got, within, n, have)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// pgStatus runs `ferry status --json` as a separate process.
func pgStatus(t *testing.T, bin string, global []string, cfg string) statusReport {
	t.Helper()
	out, err := exec.Command(bin, append(append([]string(nil), global...), "--config", cfg, "--json", "status")...).Output()
	if err != nil {
		t.Fatalf("ferry status: %v\n%s", err, out)
	}
	var rep statusReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("ferry status --json: %v\n%s", err, out)
	}
	return rep
}

// pgSetup makes a PostgreSQL database and its secret key, and returns the
// global flags that select them.
func pgSetup(t *testing.T, pg *testenv.Postgres) []string {
	t.Helper()
	dbURL, err := pg.NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "ferry.key")
	c := newCLI(t, "")
	c.run("secret-key", "generate", key).mustSucceed(t)
	return []string{"--database", dbURL, "--secret-key-file", key}
}

// TestE2EPostgresDaemons is issue 15's acceptance: two daemons on one
// PostgreSQL with 20 feed routes on a 10 s schedule post every new item
// exactly once; one is SIGKILLed mid-way and the other takes its routes
// within the lease time, still exactly once; `ferry status` from a third
// process shows the routes and their holders; the database lost while
// running pauses the daemon, which resumes when it is back, posting
// nothing twice.
func TestE2EPostgresDaemons(t *testing.T) {
	testenv.RequirePostgres(t)
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	bin := ferryBinary(t)
	// A server of its own: the test stops and restarts it.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	pg, err := testenv.StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	global := pgSetup(t, pg)
	global = append(global, "--ca-file", env.CAFile, "--data-dir", t.TempDir())

	pgDebug = func() {
		out, _ := exec.Command(filepath.Join(pg.BinDir, "psql"), global[1], "-c", "SELECT now(), * FROM leases ORDER BY name",
			"-c", "SELECT name, next_run_at, last_run_at, fail_count, last_error FROM bridge_routes ORDER BY name",
			"-c", "SELECT j.key, i.step, i.key, i.status, i.attempts, i.updated_at FROM job_items i JOIN jobs j ON j.id = i.job_id WHERE i.status = 'pending'").CombinedOutput()
		t.Logf("database:\n%s", out)
	}
	defer func() { pgDebug = nil }()
	u := mirUser(t, in)
	c := newCLI(t, env.CAFile)
	c.run(append(append([]string(nil), global...), "login", in.BaseURL, "--token-file", writeTokenFile(t, u.Token))...).mustSucceed(t)
	sink := u.Username + "@" + in.Host

	const routes = 20
	const lease = 6 * time.Second
	f := newPGFeeds(t, routes)
	f.add(0) // the baseline: seen on the first run, never posted
	cfg := pgConfig(t, f, routes, "10s", sink)
	// `ferry mirror` works on PostgreSQL too: the first run of every route,
	// under run leases it releases.
	c.run(append(append([]string(nil), global...), "--config", cfg, "mirror")...).mustSucceed(t)
	dflags := []string{"--tick", "1s", "--lease", lease.String(), "--workers", "4"}
	d1 := startPGDaemon(t, bin, global, cfg, dflags...)
	d2 := startPGDaemon(t, bin, global, cfg, dflags...)

	// Every route has had its first run.
	deadline := time.Now().Add(60 * time.Second)
	for {
		rep := pgStatus(t, bin, global, cfg)
		ran := 0
		for _, r := range rep.Routes {
			if r.LastRun != nil {
				ran++
			}
		}
		if ran == routes && len(rep.Daemons) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %d of %d routes ran, daemons %v", ran, routes, rep.Daemons)
		}
		time.Sleep(time.Second)
	}
	if _, n := pgCount(t, u); n != 0 {
		t.Fatalf("the first runs posted %d items; they should only record them", n)
	}

	// Phase 1: one new item per route, both daemons alive.
	f.add(1)
	took := pgWaitPosts(t, u, routes, 60*time.Second)
	t.Logf("phase 1: %d items posted in %s", routes, took.Round(time.Second))
	// Both daemons ran routes: the work is shared.
	for i, d := range []*pgDaemon{d1, d2} {
		if n := strings.Count(d.logText(), `msg="route ran"`); n == 0 {
			t.Errorf("daemon %d ran no route that posted", i+1)
		}
	}

	// `ferry status` from a third process shows who holds what while runs
	// are in progress (slow feeds make runs that last).
	f.delay.Store(int64(3 * time.Second))
	holders := map[string]bool{}
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end) && len(holders) < 2; {
		for _, r := range pgStatus(t, bin, global, cfg).Routes {
			if r.Holder != "" {
				holders[r.Holder] = true
				if r.LeaseExpires == nil {
					t.Errorf("route %s held by %s without a lease expiry", r.Route, r.Holder)
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(holders) == 0 {
		t.Error("ferry status never showed a route's holder")
	}
	// The table for people says it too; and `ferry mirror` refuses a
	// route a daemon is running.
	for end := time.Now().Add(15 * time.Second); ; {
		out, err := exec.Command(bin, append(append([]string(nil), global...), "--config", cfg, "status")...).Output()
		if err != nil {
			t.Fatalf("ferry status: %v", err)
		}
		if strings.Contains(string(out), "HELD BY") && strings.Contains(string(out), "daemons: ") &&
			regexp.MustCompile(`feed-\d\d .*-\d+-[0-9a-f]{8} +in \d+s`).Match(out) {
			break
		}
		if time.Now().After(end) {
			t.Errorf("ferry status never showed a holder in its table:\n%s", out)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	refused := false
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end) && !refused; {
		for _, r := range pgStatus(t, bin, global, cfg).Routes {
			if r.Holder == "" {
				continue
			}
			res := c.run(append(append([]string(nil), global...), "--config", cfg, "mirror", "--route", r.Route)...)
			if res.code != 0 && strings.Contains(res.stderr, "is being run by a ferry daemon") {
				refused = true
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !refused {
		t.Error("ferry mirror never refused a route a daemon was running")
	}
	t.Logf("holders seen by ferry status: %v", holders)

	// Phase 2: a second item per route; SIGKILL daemon 1 as soon as the
	// first is posted, with runs of both in progress.
	f.add(2)
	pgWaitPosts(t, u, routes+1, 60*time.Second)
	if err := d1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d1.done
	killed := time.Now()
	_, atKill := pgCount(t, u)
	took = pgWaitPosts(t, u, 2*routes, 60*time.Second)
	t.Logf("phase 2: daemon 1 killed with %d of %d posted; the rest took %s (lease %s, schedule 10s)",
		atKill, 2*routes, took.Round(time.Second), lease)
	// Within the lease time: the survivor's next tick after the lease
	// expired, plus the schedule of the routes the dead daemon had run.
	if took > lease+10*time.Second+20*time.Second {
		t.Errorf("the surviving daemon took %s to finish the dead one's routes", took)
	}
	rep := pgStatus(t, bin, global, cfg)
	if time.Since(killed) > lease+2*time.Second && (len(rep.Daemons) != 1 || !strings.Contains(rep.Daemons[0], strconv.Itoa(d2.cmd.Process.Pid))) {
		t.Errorf("after the kill, ferry status lists daemons %v; want only daemon 2 (pid %d)", rep.Daemons, d2.cmd.Process.Pid)
	}
	if len(rep.Routes) != routes {
		t.Errorf("ferry status lists %d routes, want %d", len(rep.Routes), routes)
	}

	// Phase 3: the database goes away while daemon 2 runs; new items wait
	// for it; when it is back everything is posted, once.
	f.delay.Store(0)
	pg.Stop()
	f.add(3)
	time.Sleep(2*lease + 2*time.Second)
	select {
	case <-d2.done:
		t.Fatalf("daemon 2 exited when the database went away:\n%s", d2.logText())
	default:
	}
	if _, n := pgCount(t, u); n != 2*routes {
		t.Errorf("%d posts while the database was away, want %d: nothing can be journaled", n, 2*routes)
	}
	if err := pg.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	took = pgWaitPosts(t, u, 3*routes, 90*time.Second)
	t.Logf("phase 3: the database was away %s; the new items were posted %s after it came back",
		2*lease+2*time.Second, took.Round(time.Second))
	time.Sleep(12 * time.Second) // room for a duplicate to show up

	counts, total := pgCount(t, u)
	for i := range routes {
		for k := 1; k <= 3; k++ {
			if n := counts[pgItemTitle(i, k)]; n != 1 {
				t.Errorf("%s posted %d times, want once", pgItemTitle(i, k), n)
			}
		}
	}
	if total != 3*routes {
		t.Errorf("%d posts, want %d", total, 3*routes)
	}
	if !strings.Contains(d2.logText(), "could not") {
		t.Errorf("daemon 2 did not report the lost database")
	}
}

// TestE2EPostgresBadInput: an unreachable database at start is a clear
// error with exit code 1; a key file others can read is refused (exit 2);
// a schema newer than the binary is refused with its version.
func TestE2EPostgresBadInput(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	global := pgSetup(t, pg)
	c := newCLI(t, "")

	r := c.run("--database", "postgres://ferry@127.0.0.1:1/ferry?sslmode=disable", "--secret-key-file", global[3], "accounts")
	if r.code != exitError || !strings.Contains(r.stderr, "cannot reach PostgreSQL") {
		t.Errorf("unreachable database: exit %d, stderr %q", r.code, r.stderr)
	}
	r = c.run("--database", global[1], "accounts")
	if r.code == 0 || !strings.Contains(r.stderr, "--secret-key-file") {
		t.Errorf("no key: exit %d, stderr %q", r.code, r.stderr)
	}
	loose := filepath.Join(t.TempDir(), "loose.key")
	c.run("secret-key", "generate", loose).mustSucceed(t)
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	r = c.run("--database", global[1], "--secret-key-file", loose, "accounts")
	if r.code != exitUsage || !strings.Contains(r.stderr, "0644") {
		t.Errorf("a 0644 key file: exit %d, stderr %q", r.code, r.stderr)
	}
	c.run(append(append([]string(nil), global...), "accounts")...).mustSucceed(t)
	// Rotation: the new key opens the database, the old one no longer does.
	newKey := filepath.Join(t.TempDir(), "new.key")
	c.run("secret-key", "generate", newKey).mustSucceed(t)
	r = c.run(append(append([]string(nil), global...), "--json", "secret-key", "rotate", "--new-key-file", newKey)...)
	if r.code != 0 || !strings.Contains(r.stdout, `"resealed"`) {
		t.Fatalf("rotate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r = c.run(append(append([]string(nil), global...), "accounts")...); r.code == 0 || !strings.Contains(r.stderr, "not the key") {
		t.Errorf("the old key after rotation: exit %d, stderr %q", r.code, r.stderr)
	}
	global[3] = newKey
	c.run(append(append([]string(nil), global...), "accounts")...).mustSucceed(t)
	db, err := exec.Command(filepath.Join(pg.BinDir, "psql"), global[1], "-c", "UPDATE ferry_schema SET version = 99").CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, db)
	}
	r = c.run(append(append([]string(nil), global...), "accounts")...)
	if r.code != exitError || !strings.Contains(r.stderr, "schema version 99") {
		t.Errorf("newer schema: exit %d, stderr %q", r.code, r.stderr)
	}
}

func decodeJSON(resp *http.Response, v any) error {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Request.URL, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
