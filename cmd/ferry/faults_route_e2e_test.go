package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/daemon"
	"github.com/fedi-ferry/ferry/internal/testenv"
)

// TestE2EFaultsTransientDoesNotParkRoute: a route whose pass ends on a
// transient failure (the server answers 502 to every post for a while) is
// tried again soon, not after its interval doubled. `ferry status` shows
// the error and when the route will be tried again, and the next plain
// `ferry mirror` (no --route) a minute later finishes it, each item once.
func TestE2EFaultsTransientDoesNotParkRoute(t *testing.T) {
	testenv.Require(t)
	t.Parallel() // it mostly waits for its minute
	env := testenv.Shared(t, 1)
	s := newFaultSetup(t, env, env.Instances[0])
	f := newMirFeed(t)
	const n = 5
	t0 := time.Now().Add(-time.Hour)
	items := make([]mirRSSItem, n)
	for i := range items {
		items[i] = mirRSSItem{GUID: fmt.Sprintf("blip-%d", i), Title: fmt.Sprintf("Blip item %d", i),
			Link: fmt.Sprintf("%s/blip-%d", f.srv.URL, i), HTML: "<p>x</p>", At: t0.Add(time.Duration(i) * time.Minute)}
	}
	f.set(f.rssDoc(items...))
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "blip"
source = { type = "feed", url = "%s/feed.xml" }
first_run = "last:%d"
template = "{{.Title}}"

[[route.sink]]
account = "%s"
`, f.srv.URL, n, s.handle))

	// The gateway fails every post during the first run.
	s.proxy.SetFaults(testenv.FaultOptions{BadGateway: 1, Methods: []string{http.MethodPost},
		Paths: regexp.MustCompile(`^/api/v1/statuses$`)})
	first := s.cli.run("--config", cfg, "mirror")
	failedAt := time.Now()
	t.Logf("first run: exit %d\n%s", first.code, lastLines(first.stdout+first.stderr, 6))
	s.proxy.SetFaults(testenv.FaultOptions{})

	st := s.cli.run("--config", cfg, "--json", "status").mustSucceed(t)
	var rep struct {
		Routes []daemon.RouteStatus `json:"routes"`
	}
	if err := json.Unmarshal([]byte(st.stdout), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, st.stdout)
	}
	var rs *daemon.RouteStatus
	for i := range rep.Routes {
		if rep.Routes[i].Route == "blip" {
			rs = &rep.Routes[i]
		}
	}
	if rs == nil {
		t.Fatalf("status lists no route blip:\n%s", st.stdout)
	}
	if rs.LastError == "" || !regexp.MustCompile(`502|Bad Gateway`).MatchString(rs.LastError) {
		t.Errorf("status shows last error %q; want the 502", rs.LastError)
	}
	if rs.NextRun == nil || rs.NextRun.After(failedAt.Add(time.Minute+5*time.Second)) {
		t.Errorf("status says the route is tried again at %v; want within a minute of the failure (%s)", rs.NextRun, failedAt.Format(time.TimeOnly))
	}

	// A minute later, cron runs plain `ferry mirror`.
	time.Sleep(time.Until(failedAt.Add(time.Minute)))
	second := s.cli.run("--config", cfg, "mirror")
	t.Logf("second run: exit %d\n%s", second.code, lastLines(second.stdout+second.stderr, 6))
	seen, sts := countTexts(t, s.user, regexp.MustCompile(`Blip item \d+`))
	for txt, k := range seen {
		if k > 1 {
			t.Errorf("%q mirrored %d times", txt, k)
		}
	}
	if len(seen) != n || len(sts) != n {
		t.Errorf("%d posts (%d distinct) after the second run, want %d", len(sts), len(seen), n)
	}
	checkNoBlindResend(t, s.proxy, statusPattern)
}
