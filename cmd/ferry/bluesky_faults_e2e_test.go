package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/testenv"
)

// End-to-end tests of Bluesky routes when things go wrong: ferry killed
// mid-route and answers lost after the PDS stored the record (exactly once,
// counted on the PDS), the PDS down (the route backs off, the others run),
// and an image that cannot be made small enough (the post goes on with a
// link).

// mirroredLine is the line ferry logs once a copy is made.
var mirroredLine = regexp.MustCompile(`msg=mirrored `)

// bskyFeed serves an RSS document whose items ferry mirrors, and an image
// that cannot be made small enough for Bluesky: over the PDS's blob limit,
// and not decodable though its first bytes say PNG.
type bskyFeed struct {
	srv   *httptest.Server
	mu    sync.Mutex
	items []string // item GUIDs, oldest first
}

func newBskyFeed(t *testing.T) *bskyFeed {
	t.Helper()
	huge := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0xA5, 0x5A, 0x00, 0xFF}, 700_000)...)
	f := &bskyFeed{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/huge.png":
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(huge)
		case "/feed.xml":
			w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
			_, _ = w.Write([]byte(f.doc()))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// add appends items; a GUID starting with "img-" carries the huge image.
func (f *bskyFeed) add(guids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.items = append(f.items, guids...)
}

func (f *bskyFeed) doc() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Faults</title><link>` + f.srv.URL + `/</link><description>test</description>
`)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := len(f.items) - 1; i >= 0; i-- {
		g := f.items[i]
		fmt.Fprintf(&b, "<item><title>%s</title><guid isPermaLink=\"false\">%s</guid><pubDate>%s</pubDate><description>item %s</description>",
			g, g, t0.Add(time.Duration(i)*time.Minute).Format(time.RFC1123Z), g)
		if strings.HasPrefix(g, "img-") {
			fmt.Fprintf(&b, `<enclosure url="%s/huge.png" length="2800008" type="image/png"/>`, f.srv.URL)
		}
		b.WriteString("</item>\n")
	}
	b.WriteString("</channel></rss>\n")
	return b.String()
}

// runKilled runs the ferry binary with args; with killAt > 0 it is killed
// with SIGKILL once its log shows killAt copies made. It returns whether
// it was killed, its exit code and its log.
func runKilled(t *testing.T, ctx context.Context, logPath string, killAt int, args ...string) (bool, int, string) {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, ferryBinary(t), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	read := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	if killAt == 0 {
		return false, exitCode(<-done), read()
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return false, exitCode(err), read()
		case <-tick.C:
		}
		if len(mirroredLine.FindAllStringIndex(read(), -1)) >= killAt {
			_ = cmd.Process.Kill() // SIGKILL: no chance to clean up
			<-done
			return true, -1, read()
		}
	}
}

// A feed mirrored to Bluesky through a connection that loses the answer to
// a third of the creates after the PDS stored the record, with ferry killed
// with SIGKILL twice mid-route: every item is on the PDS exactly once,
// counted with listRecords.
func TestE2EBlueskyExactlyOnceUnderFaults(t *testing.T) {
	testenv.RequirePDS(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	u, pwFile := bskyAccount(t, "faults")
	proxy, err := testenv.NewFaultProxyTo(u.PDS.URL, testenv.FaultOptions{Seed: rand.Uint64(),
		Methods: []string{http.MethodPost}, Paths: regexp.MustCompile(`/xrpc/com\.atproto\.repo\.createRecord$`)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	c := newCLI(t, "")
	bskyLoginCLI(t, c, proxy.BaseURL, u, pwFile, "sky")
	f := newBskyFeed(t)
	f.add("old")
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "feed-to-bluesky"
source = { type = "feed", url = "%s/feed.xml" }
template = "{{.Content}}"

[[route.sink]]
account = "sky"
`, f.srv.URL))
	c.run("--config", cfg, "mirror").mustSucceed(t) // the first run: nothing posted
	const n = 16
	var want []string
	for i := range n {
		g := fmt.Sprintf("once-%02d", i)
		f.add(g)
		want = append(want, "item "+g)
	}
	proxy.SetFaults(testenv.FaultOptions{Seed: rand.Uint64(), Lost: 0.35,
		Methods: []string{http.MethodPost}, Paths: regexp.MustCompile(`/xrpc/com\.atproto\.repo\.createRecord$`)})

	args := []string{"--data-dir", c.dataDir, "--config", cfg, "--log-level", "debug", "mirror"}
	start := time.Now()
	runs, kills := 0, 0
	logs := t.TempDir()
	for _, killAt := range []int{1 + rand.IntN(5), 6 + rand.IntN(5), 0, 0, 0, 0} {
		runs++
		killed, code, log := runKilled(t, ctx, filepath.Join(logs, fmt.Sprintf("run%d.log", runs)), killAt, args...)
		if killed {
			kills++
			continue
		}
		if code == 0 && len(bskyPosts(t, u)) >= n {
			break
		}
		t.Logf("run %d exited %d:\n%s", runs, code, lastLines(log, 8))
	}
	texts := bskyTexts(t, u)
	dups, total := 0, 0
	for text, k := range texts {
		total += k
		if k > 1 {
			dups += k - 1
			t.Errorf("%q is on the PDS %d times", text, k)
		}
	}
	for _, w := range want {
		if texts[w] == 0 {
			t.Errorf("%q is not on the PDS", w)
		}
	}
	if total != n {
		t.Errorf("the PDS has %d records, want %d", total, n)
	}
	lost := proxy.Injected()[testenv.FaultLost]
	if lost == 0 || kills < 2 {
		t.Errorf("the test did not test: %d answers lost, %d kills", lost, kills)
	}
	t.Logf("FIGURES bluesky exactly-once: runs=%d kills=%d items=%d on_pds=%d duplicates=%d lost_answers=%d requests=%d wall=%s",
		runs, kills, n, total, dups, lost, proxy.Requests(), time.Since(start).Round(time.Millisecond))
	t.Logf("proxy counts:\n%s", proxy.Summary())
}

// With one account's PDS down (connection refused), its route fails with a
// clear, transient error and backs off while the other route runs; an image
// that cannot be made small enough goes as a link and its post goes on.
func TestE2EBlueskyPDSDownAndHugeImage(t *testing.T) {
	testenv.RequirePDS(t)
	down, downPw := bskyAccount(t, "downpds")
	up, upPw := bskyAccount(t, "uppds")
	proxy, err := testenv.NewFaultProxyTo(down.PDS.URL, testenv.FaultOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	c := newCLI(t, "")
	bskyLoginCLI(t, c, proxy.BaseURL, down, downPw, "down")
	bskyLoginCLI(t, c, up.PDS.URL, up, upPw, "up")
	f := newBskyFeed(t)
	f.add("old")
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "to-down"
source = { type = "feed", url = "%[1]s/feed.xml" }
schedule = "10s"
template = "{{.Content}}"

[[route.sink]]
account = "down"

[[route]]
name = "to-up"
source = { type = "feed", url = "%[1]s/feed.xml" }
schedule = "10s"
template = "{{.Content}}"

[[route.sink]]
account = "up"
`, f.srv.URL))
	c.run("--config", cfg, "mirror").mustSucceed(t) // the first run
	if err := proxy.Close(); err != nil {           // the PDS of "down" is gone
		t.Fatal(err)
	}

	f.add("img-1")
	r := c.run("--config", cfg, "mirror")
	if r.code == 0 || !strings.Contains(r.stderr, "to-down") || !strings.Contains(r.stderr, "connection refused") {
		t.Errorf("mirror with a PDS down: exit %d\n%s", r.code, lastLines(r.stderr, 10))
	}
	ps := bskyPosts(t, up)
	if len(ps) != 1 {
		t.Fatalf("the other route posted %d records, want 1", len(ps))
	}
	hugeURL := f.srv.URL + "/huge.png"
	if p := ps[0]; !strings.Contains(p.Text, "item img-1") || !strings.Contains(p.Text, hugeURL) ||
		(p.Embed != nil && p.Embed.EmbedImages != nil) {
		t.Errorf("the post with an image too large: %q, embed %+v", p.Text, p.Embed)
	}
	if !strings.Contains(r.stderr, "posting an image as a link") {
		t.Errorf("no word of the image posted as a link:\n%s", lastLines(r.stderr, 10))
	}
	st := c.run("--config", cfg, "status").mustSucceed(t)
	for _, line := range strings.Split(st.stdout, "\n") {
		if strings.HasPrefix(line, "to-down ") && (!strings.Contains(line, "transient, tries again in") || !strings.Contains(line, "connection refused")) {
			t.Errorf("status of the route whose PDS is down: %q", line)
		}
	}

	// The daemon keeps the other route running and backs off on this one.
	d := startMirDaemon(t, ferryBinary(t), c, cfg)
	f.add("later")
	until(t, "the later item on the PDS that is up", 60*time.Second, func() bool { return bskyTexts(t, up)["item later"] == 1 })
	time.Sleep(3 * time.Second)
	l := d.logText()
	fails := 0
	for _, line := range strings.Split(l, "\n") {
		if strings.Contains(line, "route=to-down") && strings.Contains(line, "connection refused") {
			fails++
		}
	}
	if fails == 0 {
		t.Errorf("the daemon log has no failure of to-down:\n%s", lastLines(l, 20))
	}
	if n := len(bskyPosts(t, up)); n != 2 {
		t.Errorf("the PDS that is up has %d records, want 2", n)
	}
	t.Logf("to-down failed %d times in the daemon's first seconds", fails)
}
