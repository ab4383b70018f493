package observe

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/config"
	"github.com/fedi-ferry/ferry/daemon"
	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/journal"
	"github.com/fedi-ferry/ferry/schedule"
	"github.com/fedi-ferry/ferry/state"
	"github.com/fedi-ferry/ferry/state/bridgestore"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a handler on a real store with a fake clock.
type fixture struct {
	st  *state.Store
	clk *clockwork.FakeClock
	m   *Metrics
	h   http.Handler
}

// watchedConfig is the config file of the fixture's daemon: a-to-b is
// configured, anything else stored is not.
const watchedConfig = `
[[route]]
name = "a-to-b"
source = { type = "account", account = "a@one.example" }
schedule = "5m"
[[route.sink]]
account = "b@two.example"
`

// routes reports st's routes as ferry status does.
func routes(t *testing.T, st *state.Store) func(ctx context.Context, now time.Time) ([]daemon.RouteStatus, error) {
	cfg, err := config.Parse("ferry.toml", watchedConfig)
	if err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context, now time.Time) ([]daemon.RouteStatus, error) {
		return daemon.Status(ctx, bridgestore.New(st), cfg, now)
	}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{st: state.TestStore(t), clk: clockwork.NewFakeClockAt(t0)}
	reg := prometheus.NewRegistry()
	var err error
	if f.m, err = NewMetrics(reg, f.st, f.clk); err != nil {
		t.Fatal(err)
	}
	f.h, err = Handler(Options{Store: f.st, Routes: routes(t, f.st), Metrics: f.m, Gatherer: reg, Clock: f.clk,
		Stale: 30 * time.Second, CheckTimeout: 500 * time.Millisecond, Refresh: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// get requests path and returns the status and body.
func (f *fixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// lockDatabase holds the database's write lock from another connection,
// as another process stuck in a write transaction would, until the test
// ends or the returned function is called.
func lockDatabase(t *testing.T, path string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(1000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
		db.Close()
	}
	t.Cleanup(release)
	return release
}

func TestHealthz(t *testing.T) {
	f := newFixture(t)
	code, body := f.get(t, "/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "not ticked yet") {
		t.Fatalf("before the first tick: %d %q", code, body)
	}
	f.m.Heartbeat(f.clk.Now())
	if code, body = f.get(t, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("after a tick: %d %q", code, body)
	}
	got, err := f.st.Get(t.Context(), healthKey)
	if err != nil || got != t0.Format(time.RFC3339Nano) {
		t.Errorf("the check's write: %q, %v", got, err)
	}

	// The loop stops ticking.
	f.clk.Advance(31 * time.Second)
	if code, body = f.get(t, "/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "last ticked 31s ago") {
		t.Fatalf("with a stale heartbeat: %d %q", code, body)
	}
	f.m.Heartbeat(f.clk.Now())
	if code, _ = f.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("after the loop ticked again: %d", code)
	}

	// Another connection holds the write lock: reads still work, writes
	// wait, and the check says so within its timeout.
	release := lockDatabase(t, f.st.Path())
	start := time.Now()
	code, body = f.get(t, "/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "did not answer a write") {
		t.Fatalf("with the database locked: %d %q", code, body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the check took %s with a 500ms timeout", d)
	}
	// A second probe joins the write in progress rather than queueing another.
	if code, _ = f.get(t, "/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("second probe with the database locked: %d", code)
	}
	release()
	deadline := time.Now().Add(15 * time.Second)
	for code, body = f.get(t, "/healthz"); code != http.StatusOK; code, body = f.get(t, "/healthz") {
		if time.Now().After(deadline) {
			t.Fatalf("still unhealthy after the lock was released: %d %q", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// brokenStore is a Store whose writes fail, as a read-only or full disk
// makes them fail.
type brokenStore struct{ Store }

func (brokenStore) Set(context.Context, string, string) error {
	return errors.New("attempt to write a readonly database")
}

func TestHealthzWriteRefused(t *testing.T) {
	st := state.TestStore(t)
	clk := clockwork.NewFakeClockAt(t0)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, st, clk)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Handler(Options{Store: brokenStore{st}, Routes: routes(t, st), Metrics: m, Gatherer: reg, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	m.Heartbeat(clk.Now())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "refused a write: attempt to write a readonly database") {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
}

// parseMetrics parses a /metrics answer as Prometheus text.
func parseMetrics(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the series name{labels}; ok false if absent.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	fam := fams[name]
	if fam == nil {
		return 0, false
	}
next:
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	m := f.m
	m.Heartbeat(t0)
	m.Ran("a-to-b", schedule.OK)
	m.Ran("a-to-b", schedule.OK)
	m.Ran("a-to-b", schedule.Transient)
	m.Ran("backup", schedule.Permanent)
	m.EventFailed("a-to-b", schedule.Transient)
	m.StreamOpened("a-to-b", false)
	m.StreamClosed("a-to-b")
	m.StreamOpened("a-to-b", true)
	at := t0.Add(time.Minute)
	m.Applied(bridge.Applied{Route: "a-to-b", Sink: "b@two.example", Kind: bridge.StepPublish, OriginAt: at.Add(-4 * time.Second), At: at})
	m.Applied(bridge.Applied{Route: "a-to-b", Sink: "b@two.example", Kind: bridge.StepPublish, OriginAt: at.Add(-10 * time.Minute), At: at})
	m.Applied(bridge.Applied{Route: "a-to-b", Sink: "c@three.example", Kind: bridge.StepEdit, At: at})
	m.Applied(bridge.Applied{Route: "a-to-b", Sink: "c@three.example", Kind: bridge.StepDelete, At: at})
	m.Applied(bridge.Applied{Route: "a-to-b", Sink: "c@three.example", Kind: bridge.StepPublish, Refused: true, At: at})
	m.SetBudgets("b@two.example", []fedi.Budget{
		{Key: "two.example/api", Limit: 300, Remaining: 120, Reset: t0.Add(5 * time.Minute)},
		{Key: "two.example/api#statuses", Limit: 30, Remaining: 2, Reset: t0.Add(-time.Minute)}, // reset since
	}, 3)

	// Two journal items pending, one done.
	job, _, err := f.st.CreateJob(ctx, journal.Job{Kind: state.BridgeJobKind, Key: "a-to-b"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.FreezePlan(ctx, job.ID, []journal.Item{{Step: "publish", Key: "1"}, {Step: "publish", Key: "2"},
		{Step: "publish", Key: "3", Status: journal.ItemSkipped}}); err != nil {
		t.Fatal(err)
	}

	code, body := f.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	fams := parseMetrics(t, body)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ferry_runs_total", map[string]string{"route": "a-to-b", "outcome": "ok"}, 2},
		{"ferry_runs_total", map[string]string{"route": "a-to-b", "outcome": "transient"}, 1},
		{"ferry_runs_total", map[string]string{"route": "backup", "outcome": "permanent"}, 1},
		{"ferry_failures_total", map[string]string{"route": "a-to-b", "kind": "transient"}, 2},
		{"ferry_failures_total", map[string]string{"route": "a-to-b", "kind": "permanent"}, 1},
		{"ferry_failures_total", map[string]string{"route": "backup", "kind": "permanent"}, 1},
		{"ferry_posts_mirrored_total", map[string]string{"route": "a-to-b", "sink": "b@two.example"}, 2},
		{"ferry_edits_total", map[string]string{"route": "a-to-b", "sink": "c@three.example"}, 1},
		{"ferry_deletes_total", map[string]string{"route": "a-to-b", "sink": "c@three.example"}, 1},
		{"ferry_copy_lag_seconds", map[string]string{"route": "a-to-b"}, 2},
		{"ferry_stream_connections", map[string]string{"route": "a-to-b"}, 1},
		{"ferry_stream_reconnects_total", map[string]string{"route": "a-to-b"}, 1},
		{"ferry_rate_budget_remaining", map[string]string{"account": "b@two.example", "budget": "api"}, 120},
		{"ferry_rate_budget_remaining", map[string]string{"account": "b@two.example", "budget": "api statuses"}, 30},
		{"ferry_rate_budget_limit", map[string]string{"account": "b@two.example", "budget": "api"}, 300},
		{"ferry_rate_limited_responses", map[string]string{"account": "b@two.example"}, 3},
		{"ferry_journal_items_pending", nil, 2},
		{"ferry_scheduler_heartbeat_timestamp_seconds", nil, float64(t0.Unix())},
	} {
		got, ok := value(fams, c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := value(fams, "ferry_posts_mirrored_total", map[string]string{"sink": "c@three.example"}); ok {
		t.Error("a refused publish counted as mirrored")
	}
	h := fams["ferry_copy_lag_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleSum() != 604 {
		t.Errorf("lag sum %v, want 604 (4s + 10m)", h.GetSampleSum())
	}
}

// token is the account token the pages must never show.
const token = "tok-9f8e7d6c5b4a-SECRET"

func TestPage(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if err := f.st.PutAccount(ctx, state.Account{Handle: "b@two.example", Server: "https://two.example",
		AccountID: "1", Username: "b", Token: token, Scopes: "read write"}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.BridgeSchedule(ctx, map[string]string{"a-to-b": "5m", "feed-to-b": "1h"}, true); err != nil {
		t.Fatal(err)
	}
	if err := f.st.BridgeSaveCursor(ctx, "a-to-b", "c1", t0.Add(-90*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := f.st.BridgeRecordRun(ctx, "a-to-b", t0.Add(-2*time.Minute),
		"publish: POST https://two.example/api/v1/statuses?access_token="+token+": 503 Service Unavailable (Authorization: Bearer "+token+")",
		true, t0.Add(40*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := f.st.BridgeRecordRun(ctx, "feed-to-b", t0.Add(-time.Hour), "", false, t0.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	f.m.Heartbeat(t0)
	f.m.SetBudgets("b@two.example", []fedi.Budget{{Key: "two.example/api", Limit: 300, Remaining: 120, Reset: t0.Add(time.Minute)}}, 0)

	code, body := f.get(t, "/")
	if code != http.StatusOK {
		t.Fatalf("/: %d\n%s", code, body)
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="15">`,
		`<th scope="row">a-to-b</th>`, `<th scope="row">feed-to-b</th>`,
		"<td>1h (not in config)</td>", "<td>5m</td>",
		"2m ago", "in 40s", // a-to-b's last and next run
		"1m ago",    // its newest post
		"transient", // the kind of its last error
		"statuses?access_token=[redacted]: 503 Service Unavailable (Authorization: Bearer [redacted])",
		"b@two.example", "api 120/300",
		"Health: <strong class=\"ok\">ok</strong>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script") || strings.Contains(body, "src=") || strings.Contains(body, "<link") {
		t.Errorf("the page loads or links something:\n%s", body)
	}
	for _, path := range []string{"/", "/metrics", "/healthz"} {
		if _, body := f.get(t, path); strings.Contains(body, token) || strings.Contains(body, "9f8e7d6c5b4a") {
			t.Errorf("%s shows the account's token:\n%s", path, body)
		}
	}

	// With the loop stuck, the page says so.
	f.clk.Advance(time.Minute)
	if _, body = f.get(t, "/"); !strings.Contains(body, "the scheduler last ticked 1m0s ago") {
		t.Errorf("the page does not show the failed health check:\n%s", body)
	}
	if code, _ := f.get(t, "/nothing-here"); code != http.StatusNotFound {
		t.Errorf("an unknown path: %d", code)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"Authorization: Bearer abc.def-123 refused":    "Authorization: Bearer [redacted] refused",
		"GET /x?access_token=abc123&max_id=5: 401":     "GET /x?access_token=[redacted]&max_id=5: 401",
		`{"error":"bad","client_secret":"s3cr3t"}`:     `{"error":"bad","client_secret":"[redacted]"}`,
		"POST /oauth/token: code=xyz grant_type=authz": "POST /oauth/token: code=[redacted] grant_type=authz",
		"server answered 502 (status code: 502)":       "server answered 502 (status code: 502)",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestServe(t *testing.T) {
	f := newFixture(t)
	f.m.Heartbeat(t0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, f.h) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "ok\n" {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("still serving after Serve returned")
	}
}
