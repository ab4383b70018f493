package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/post"
)

// TestE2EDaemonWatch runs `ferry daemon --listen` against real GoToSocial
// servers and a failing feed, and reads what it serves: /healthz, the
// Prometheus metrics and the status page; then it takes the database's
// write lock from another connection and watches /healthz turn 503.
func TestE2EDaemonWatch(t *testing.T) {
	env := testenv.Shared(t, 2)
	bin := ferryBinary(t)
	a, b := mirUser(t, env.Instances[0]), mirUser(t, env.Instances[1])
	c := newCLI(t, env.CAFile)
	ha, hb := mirLogin(t, c, env.Instances[0], a), mirLogin(t, c, env.Instances[1], b)
	// A feed whose server is down: its route's last error is a transient one.
	feed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer feed.Close()
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "a-to-b"
source = { type = "account", account = "%s", stream = true }
schedule = "10s"
[[route.sink]]
account = "%s"

[[route]]
name = "feed-to-b"
source = { type = "feed", url = "%s/feed.xml" }
schedule = "10s"
[[route.sink]]
account = "%s"
`, ha, hb, feed.URL, hb))

	d := startMirDaemon(t, bin, c, cfg, "--listen", "127.0.0.1:0")
	base := "http://" + watchAddr(t, d)
	watchUntil(t, base+"/healthz", 60*time.Second, func(code int, body string) bool { return code == http.StatusOK && body == "ok\n" })

	// The first run of a-to-b records A's posts as seen; a new one is mirrored.
	watchUntil(t, base+"/metrics", 60*time.Second, func(_ int, body string) bool {
		return strings.Contains(body, `ferry_runs_total{outcome="ok",route="a-to-b"}`) &&
			strings.Contains(body, `ferry_stream_connections{route="a-to-b"} 1`)
	})
	mirPublish(t, mirSinkFor(t, env, env.Instances[0], a), post.Post{Text: "watched post", Visibility: post.Public}, "")
	mirWaitPosts(t, b, 1, 60*time.Second)

	var fams map[string]*dto.MetricFamily
	watchUntil(t, base+"/metrics", 30*time.Second, func(_ int, body string) bool {
		var p expfmt.TextParser
		var err error
		if fams, err = p.TextToMetricFamilies(strings.NewReader(body)); err != nil {
			t.Fatalf("/metrics is not Prometheus text: %v\n%s", err, body)
		}
		return watchValue(fams, "ferry_posts_mirrored_total", "route", "a-to-b", "sink", hb) >= 1 &&
			watchValue(fams, "ferry_runs_total", "route", "feed-to-b", "outcome", "transient") >= 1
	})
	for _, name := range []string{"ferry_runs_total", "ferry_failures_total", "ferry_posts_mirrored_total",
		"ferry_copy_lag_seconds", "ferry_stream_connections", "ferry_journal_items_pending",
		"ferry_rate_limited_responses", "ferry_scheduler_heartbeat_timestamp_seconds", "go_goroutines"} {
		if fams[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if n := watchValue(fams, "ferry_failures_total", "route", "feed-to-b", "kind", "transient"); n < 1 {
		t.Errorf("feed-to-b's failures: %v", n)
	}
	if h := fams["ferry_copy_lag_seconds"]; h == nil || h.GetMetric()[0].GetHistogram().GetSampleCount() < 1 {
		t.Errorf("no lag observed: %v", h)
	}
	// The test servers send no rate-limit headers: the accounts are
	// listed, their budgets unknown (the unit tests cover the budgets).
	if watchValue(fams, "ferry_rate_limited_responses", "account", hb) < 0 {
		t.Errorf("no rate-limit series for %s", hb)
	}

	// The status page lists both routes with feed-to-b's last error, as
	// `ferry status` reports it.
	var rep struct {
		Routes []struct {
			Route     string `json:"route"`
			LastError string `json:"last_error"`
		} `json:"routes"`
	}
	st := c.run("--config", cfg, "--json", "status").mustSucceed(t)
	if err := json.Unmarshal([]byte(st.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	lastErr := ""
	for _, r := range rep.Routes {
		if r.Route == "feed-to-b" {
			lastErr = r.LastError
		}
	}
	if !strings.Contains(lastErr, "503") {
		t.Fatalf("ferry status shows feed-to-b's last error as %q", lastErr)
	}
	code, page := watchGet(t, base+"/")
	text := html.UnescapeString(page)
	for _, want := range []string{"a-to-b", "feed-to-b", lastErr, "transient", hb, "unknown (the server sends no rate-limit headers)",
		`http-equiv="refresh"`} {
		if !strings.Contains(text, want) {
			t.Errorf("the status page lacks %q", want)
		}
	}
	if code != http.StatusOK || t.Failed() {
		t.Fatalf("status page (%d):\n%s", code, page)
	}
	for _, path := range []string{"/", "/metrics", "/healthz"} {
		_, body := watchGet(t, base+path)
		for _, tok := range []string{a.Token, b.Token} {
			if strings.Contains(body, tok) {
				t.Errorf("%s shows an account token", path)
			}
		}
	}

	// Unwritable database. chmod cannot make it so: the tests run as root,
	// which writes through any mode. Another connection holding SQLite's
	// write lock (an open BEGIN IMMEDIATE, as a stuck sqlite3 shell or a
	// second program would) makes every write wait and then fail with
	// SQLITE_BUSY, for root too; reads still work, so this tests that the
	// health check writes.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(c.dataDir, "ferry.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var body string
	watchUntil(t, base+"/healthz", 30*time.Second, func(code int, b string) bool {
		body = b
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(body, "did not answer a write") {
		t.Errorf("/healthz with the database locked says %q", body)
	}
	t.Logf("/healthz with the database locked: %q", body)
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	watchUntil(t, base+"/healthz", 60*time.Second, func(code int, _ string) bool { return code == http.StatusOK })
}

// watchAddr reads the address the daemon's --listen bound from its log.
func watchAddr(t *testing.T, d *mirDaemon) string {
	t.Helper()
	re := regexp.MustCompile(`serving the health check.* addr=(127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := re.FindStringSubmatch(d.logText()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon did not log its --listen address")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// watchGet returns the status and body of a GET of u.
func watchGet(t *testing.T, u string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// watchUntil GETs u until ok accepts the answer, or fails after within.
func watchUntil(t *testing.T, u string, within time.Duration, ok func(code int, body string) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body := watchGet(t, u)
		if ok(code, body) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s after %s: %d\n%s", u, within, code, body[:min(len(body), 4000)])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// watchValue returns the value of the series name with the label pairs
// given (name, value, …); -1 if there is none.
func watchValue(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
next:
	for _, m := range fams[name].GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		}
	}
	return -1
}
