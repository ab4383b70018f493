package daemon_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/config"
	"github.com/fedi-ferry/ferry/daemon"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks/memsink"
	"github.com/fedi-ferry/ferry/sources/memsource"
	"github.com/fedi-ferry/ferry/state"
	"github.com/fedi-ferry/ferry/state/bridgestore"
)

// Three feed routes: blog and news run, old is paused. One in-memory
// source and sink per route, on a real SQLite store.
const mirrorConfig = `
[[route]]
name = "blog"
source = { type = "feed", url = "https://blog.example/feed.xml" }
[[route.sink]]
account = "me@social.example"

[[route]]
name = "news"
source = { type = "feed", url = "https://news.example/feed.xml" }
schedule = "1h"
[[route.sink]]
account = "me@social.example"

[[route]]
name = "old"
paused = true
source = { type = "feed", url = "https://old.example/feed.xml" }
[[route.sink]]
account = "me@social.example"
`

type mirrorRig struct {
	cfg   *config.Config
	st    *state.Store
	srcs  map[string]*memsource.Source
	sinks map[string]*memsink.Sink
	built []string
}

func newMirrorRig(t *testing.T) *mirrorRig {
	t.Helper()
	cfg, err := config.Parse("ferry.toml", mirrorConfig)
	if err != nil {
		t.Fatal(err)
	}
	return &mirrorRig{cfg: cfg, st: state.TestStore(t), srcs: map[string]*memsource.Source{}, sinks: map[string]*memsink.Sink{}}
}

// build is what platform.Routes.Route is to ferry: the route spec
// configures, on in-memory plugins kept across passes.
func (m *mirrorRig) build(spec config.RouteSpec) (*bridge.Route, bool, error) {
	m.built = append(m.built, spec.Route.Name)
	n := spec.Route.Name
	if m.srcs[n] == nil {
		m.srcs[n], m.sinks[n] = memsource.New(), memsink.New()
	}
	r := spec.Route
	r.Kind, r.Source = bridge.KindFeed, m.srcs[n]
	r.Sinks = []bridge.Target{{Account: "me@social.example", Sink: m.sinks[n]}}
	return &r, false, nil
}

func (m *mirrorRig) pass(t *testing.T, o daemon.MirrorOptions) map[string]daemon.RouteReport {
	t.Helper()
	eng := bridge.New(bridgestore.New(m.st), bridge.Options{DryRun: o.DryRun, Retry: bridge.Retry{Total: time.Nanosecond}})
	reps, err := daemon.Mirror(context.Background(), m.st, eng, m.cfg, m.build, o)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]daemon.RouteReport{}
	for _, r := range reps {
		out[r.Route] = r
	}
	return out
}

func TestMirrorPass(t *testing.T) {
	ctx := context.Background()
	m := newMirrorRig(t)
	reps := m.pass(t, daemon.MirrorOptions{})
	if len(reps) != 3 || !reps["blog"].FirstRun || !reps["news"].FirstRun || !reps["old"].Paused {
		t.Fatalf("first pass: %+v", reps)
	}
	if len(m.built) != 2 {
		t.Fatalf("built %v: a paused route is not built", m.built)
	}
	if r, err := m.st.BridgeRoute(ctx, "old"); err != nil || !r.Paused {
		t.Fatalf("the paused route is not recorded as paused: %+v, %v", r, err)
	}

	// A dry run plans the new post and publishes nothing.
	m.srcs["blog"].Add(post.Post{OriginID: "a", Title: "A", Text: "a", URL: "https://blog.example/a", CreatedAt: time.Now()})
	reps = m.pass(t, daemon.MirrorOptions{DryRun: true, Routes: []string{"blog"}})
	if len(reps) != 1 || len(reps["blog"].Planned) != 1 || reps["blog"].Planned[0].Action == "" || m.sinks["blog"].Count() != 0 {
		t.Fatalf("dry run: %+v, %d posts", reps, m.sinks["blog"].Count())
	}

	// A transient failure is reported with its retry, and the next pass
	// leaves the route alone until then, unless it is named.
	m.sinks["blog"].Fail(memsink.OpPublish, memsink.Fault{Err: bad502()})
	reps = m.pass(t, daemon.MirrorOptions{})
	if b := reps["blog"]; b.Error == "" || !b.Transient || b.RetryAt.IsZero() {
		t.Fatalf("the failure: %+v", b)
	}
	if b := m.pass(t, daemon.MirrorOptions{})["blog"]; b.BackingOff.IsZero() || b.Error != "" {
		t.Fatalf("ran again during the back-off: %+v", b)
	}
	if b := m.pass(t, daemon.MirrorOptions{Routes: []string{"blog"}})["blog"]; b.Published != 1 || m.sinks["blog"].Count() != 1 {
		t.Fatalf("named, it runs: %+v", b)
	}

	// A source that asks to be left alone (a feed's ttl) is not read by
	// the next passes until then, unless the route is named; the others
	// run.
	m.srcs["news"].SetWait(time.Hour)
	if n := m.pass(t, daemon.MirrorOptions{})["news"]; !n.Waiting.IsZero() {
		t.Fatalf("the pass that learnt of the wait was not run: %+v", n)
	}
	fetches := m.srcs["news"].Fetches()
	reps = m.pass(t, daemon.MirrorOptions{})
	if n := reps["news"]; n.Waiting.Before(time.Now().Add(50*time.Minute)) || m.srcs["news"].Fetches() != fetches {
		t.Fatalf("read during the source's wait: %+v, %d fetches after %d", n, m.srcs["news"].Fetches(), fetches)
	}
	if b := reps["blog"]; !b.Waiting.IsZero() || !b.BackingOff.IsZero() {
		t.Fatalf("another route was held back: %+v", b)
	}
	if n := m.pass(t, daemon.MirrorOptions{Routes: []string{"news"}})["news"]; !n.Waiting.IsZero() || m.srcs["news"].Fetches() == fetches {
		t.Fatalf("named, it runs: %+v", n)
	}
}

func TestMirrorStopsOnABuildError(t *testing.T) {
	m := newMirrorRig(t)
	eng := bridge.New(bridgestore.New(m.st), bridge.Options{})
	boom := errors.New("account x: ferry cannot publish posts on y accounts")
	_, err := daemon.Mirror(context.Background(), m.st, eng, m.cfg,
		func(config.RouteSpec) (*bridge.Route, bool, error) { return nil, false, boom }, daemon.MirrorOptions{})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

func TestStatus(t *testing.T) {
	ctx := context.Background()
	m := newMirrorRig(t)
	m.pass(t, daemon.MirrorOptions{Routes: []string{"blog"}})
	now := time.Now()
	m.srcs["blog"].Add(post.Post{OriginID: "a", Title: "A", Text: "a", URL: "https://blog.example/a", CreatedAt: now.Add(-time.Hour)})
	m.pass(t, daemon.MirrorOptions{Routes: []string{"blog"}})

	got, err := daemon.Status(ctx, bridgestore.New(m.st), m.cfg, now)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]daemon.RouteStatus{}
	for _, r := range got {
		byName[r.Route] = r
	}
	blog := byName["blog"]
	if len(got) != 3 || !blog.Configured || blog.Mirrored != 1 || blog.LastOK == nil || blog.NextRun == nil ||
		blog.Schedule != "15m" || blog.LagSeconds == nil || *blog.LagSeconds < 3599 || *blog.LagSeconds > 3601 {
		t.Fatalf("blog: %+v (of %d)", blog, len(got))
	}
	if n := byName["news"]; !n.Configured || n.LastRun != nil || n.Schedule != "1h" {
		t.Fatalf("a configured route that never ran: %+v", n)
	}
	if o := byName["old"]; !o.Paused || !o.Configured {
		t.Fatalf("the paused route: %+v", o)
	}

	// Without the config file every stored route is "not configured".
	got, err = daemon.Status(ctx, bridgestore.New(m.st), nil, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if r.Configured || r.Route == "news" {
			t.Fatalf("without a config: %+v", r)
		}
	}
}

func TestFromConfig(t *testing.T) {
	cfg, err := config.Parse("ferry.toml", mirrorConfig+`
[[backup]]
account = "me@social.example"
graph = "/tmp/graph"
schedule = "6h"
`)
	if err != nil {
		t.Fatal(err)
	}
	m := newMirrorRig(t)
	var ran []string
	dc, err := daemon.FromConfig(cfg, m.build, func(_ context.Context, b config.BackupSpec) error {
		ran = append(ran, b.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dc.Routes) != 2 || dc.Routes[1].Spec != "1h" || len(dc.Paused) != 1 || dc.Paused[0] != "old" || len(dc.Jobs) != 1 {
		t.Fatalf("config: %+v", dc)
	}
	if err := dc.Jobs[0].Run(context.Background()); err != nil || len(ran) != 1 || ran[0] != dc.Jobs[0].Name || dc.Jobs[0].Spec != "6h" {
		t.Fatalf("the backup job ran %v, %v", ran, err)
	}
}
