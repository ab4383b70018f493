package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/testenv"
)

// End-to-end tests of every write path through a FaultProxy in front of a
// real GoToSocial: answers lost after the server acted, resets, 429s,
// 502s, slow answers. After the runs a person would make, every item must
// be on the server exactly once (counted through the API, behind the
// proxy's back), and no write may have been repeated without a read in
// between (the proxy's BlindResends).

// faultMix is the acceptance mix of issue 13: lost 20 %, 429 10 %, 502
// 10 %, reset 5 %, slow 3 %. One 429 in five is bare (no Retry-After, no
// X-RateLimit-*), which the transport answers with a 5 s pause.
func faultMix(seed uint64) testenv.FaultOptions {
	return testenv.FaultOptions{Seed: seed, Lost: 0.20, RateLimit: 0.10, BadGateway: 0.10, Reset: 0.05, Slow: 0.03,
		BareRateLimit: 0.2, SlowDelay: 2 * time.Second}
}

// faultSetup is one account logged in to ferry through a fault proxy.
type faultSetup struct {
	in     *testenv.Instance
	proxy  *testenv.FaultProxy
	cli    *ferryCLI
	user   *testenv.User
	handle string // the account's handle in ferry (at the proxy's address)
}

// newFaultSetup creates a user on in and logs it in to a new ferry data
// directory through a proxy that injects nothing yet.
func newFaultSetup(t *testing.T, env *testenv.Env, in *testenv.Instance) *faultSetup {
	t.Helper()
	u, err := in.CreateUser(t.Context(), "", true)
	if err != nil {
		t.Fatal(err)
	}
	p := in.FaultProxy(t, testenv.FaultOptions{})
	c := newCLI(t, env.CAFile)
	c.run("login", p.BaseURL, "--token-file", writeTokenFile(t, u.Token)).mustSucceed(t)
	// The handle carries the server's own domain, not the proxy's address
	// ferry reaches it at.
	return &faultSetup{in: in, proxy: p, cli: c, user: u, handle: u.Username + "@" + in.Host}
}

// statusPattern matches the creation of posts, the write that must never
// be repeated blind on GoToSocial.
var statusPattern = regexp.MustCompile(`^POST /api/v1/statuses$`)

// checkNoBlindResend fails t if the proxy saw a write matching pat applied
// twice with no read in between.
func checkNoBlindResend(t *testing.T, p *testenv.FaultProxy, pat *regexp.Regexp) {
	t.Helper()
	for _, b := range p.BlindResends() {
		if pat.MatchString(b) {
			t.Errorf("a write was repeated without checking the server first: %s", b)
		}
	}
}

// countTexts counts u's posts by the first match of key in their text.
func countTexts(t *testing.T, u *testenv.User, key *regexp.Regexp) (map[string]int, []arcStatus) {
	t.Helper()
	sts := arcStatuses(t, t.Context(), u)
	seen := map[string]int{}
	for _, s := range sts {
		seen[key.FindString(s.Text+" "+s.Content)]++
	}
	return seen, sts
}

// figures logs one FIGURES line for the report.
func figures(t *testing.T, name string, p *testenv.FaultProxy, runs, want, got, dups int, took time.Duration) {
	t.Helper()
	inj := p.Injected()
	t.Logf("FIGURES %s: runs=%d items=%d on_server=%d duplicates=%d lost=%d requests=%d injected=%v wall=%s",
		name, runs, want, got, dups, max(want-(got-dups), 0), p.Requests(), inj, took.Round(time.Second))
	t.Logf("proxy counts:\n%s", p.Summary())
}

func TestE2EFaultsArchivePublish(t *testing.T) {
	testenv.Require(t)
	t.Parallel() // most of the time is spent waiting out faults
	env := testenv.Shared(t, 1)
	for i, mode := range []string{"backdate", "repost"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := newFaultSetup(t, env, env.Instances[0])
			dir := filepath.Join(t.TempDir(), "archive")
			const n = 40
			writeSyntheticArchive(t, dir, n)
			s.proxy.SetFaults(faultMix(uint64(13 + i)))
			start := time.Now()
			runs := 0
			for runs < 3 {
				runs++
				r := s.cli.run("archive", "publish", dir, "--to", s.handle, "--mode", mode)
				t.Logf("run %d: exit %d\n%s", runs, r.code, lastLines(r.stdout+r.stderr, 4))
				if r.code == 0 {
					break
				}
			}
			took := time.Since(start)
			seen, sts := countTexts(t, s.user, regexp.MustCompile(`synthetic post \d+ `))
			dups := 0
			for txt, k := range seen {
				if k > 1 {
					dups += k - 1
					t.Errorf("%q published %d times", txt, k)
				}
			}
			figures(t, "publish-"+mode, s.proxy, runs, n, len(sts), dups, took)
			if len(seen) != n {
				t.Errorf("%d distinct posts on the server after %d runs, want %d", len(seen), runs, n)
			}
			byID := map[string]bool{}
			replies := 0
			for _, st := range sts {
				byID[st.ID] = true
			}
			for _, st := range sts {
				if st.InReplyToID != "" {
					replies++
					if !byID[st.InReplyToID] {
						t.Errorf("reply %s points at %s, not one of the published posts", st.ID, st.InReplyToID)
					}
				}
			}
			if replies != n/5 {
				t.Errorf("%d replies, want %d", replies, n/5)
			}
			checkNoBlindResend(t, s.proxy, statusPattern)
		})
	}
}

func TestE2EFaultsMirrorFeed(t *testing.T) {
	testenv.Require(t)
	t.Parallel()
	env := testenv.Shared(t, 1)
	s := newFaultSetup(t, env, env.Instances[0])
	f := newMirFeed(t)
	const n = 30
	t0 := time.Now().Add(-3 * time.Hour)
	items := make([]mirRSSItem, n)
	for i := range items {
		items[i] = mirRSSItem{GUID: fmt.Sprintf("faults-%d", i), Title: fmt.Sprintf("Faulty item %d", i),
			Link: fmt.Sprintf("%s/item-%d", f.srv.URL, i), HTML: fmt.Sprintf("<p>body of item %d</p>", i), At: t0.Add(time.Duration(i) * time.Minute)}
	}
	f.set(f.rssDoc(items...))
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "feed"
source = { type = "feed", url = "%s/feed.xml" }
first_run = "last:%d"
template = "{{.Title}}\n\n{{.Link}}"

[[route.sink]]
account = "%s"
default_visibility = "unlisted"
`, f.srv.URL, n, s.handle))
	s.proxy.SetFaults(faultMix(30))
	start := time.Now()
	key := regexp.MustCompile(`Faulty item \d+\b`)
	complete := func() bool { seen, _ := countTexts(t, s.user, key); return len(seen) == n }
	runs := 0
	for runs < 3 && !complete() {
		runs++
		r := s.cli.run("--config", cfg, "mirror", "--route", "feed")
		t.Logf("run %d: exit %d\n%s", runs, r.code, lastLines(r.stdout+r.stderr, 4))
	}
	inThree := complete()
	// Go on as a person would, to tell "late" from "lost".
	for runs < 8 && !complete() {
		runs++
		r := s.cli.run("--config", cfg, "mirror", "--route", "feed")
		t.Logf("run %d: exit %d\n%s", runs, r.code, lastLines(r.stdout+r.stderr, 4))
	}
	took := time.Since(start)
	seen, sts := countTexts(t, s.user, key)
	dups := 0
	for txt, k := range seen {
		if k > 1 {
			dups += k - 1
			t.Errorf("%q mirrored %d times", txt, k)
		}
	}
	figures(t, "mirror-feed", s.proxy, runs, n, len(sts), dups, took)
	if !inThree {
		t.Errorf("the feed was not mirrored completely within three runs (%d distinct posts after %d runs); "+
			"a transient failure ends the route's pass until within-pass retries land in the bridge", len(seen), runs)
	}
	if len(seen) != n {
		t.Errorf("%d distinct posts after %d runs, want %d", len(seen), runs, n)
	}
	checkNoBlindResend(t, s.proxy, statusPattern)
}

func TestE2EFaultsGraphImport(t *testing.T) {
	testenv.Require(t)
	t.Parallel()
	// The accounts to follow live on a second server: through the proxy,
	// the first one's own accounts would carry another host than ferry's.
	env := testenv.Shared(t, 2)
	in := env.Instances[0]
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	s := newFaultSetup(t, env, in)
	const nFollow, nBlock, nBookmark = 6, 3, 4
	others := createUsers(t, ctx, repeatInstance(env.Instances[1], nFollow+nBlock)...)
	dir := t.TempDir()
	var follows, lists, blocks, bookmarks strings.Builder
	follows.WriteString("Account address,Show boosts,Notify on new posts,Languages\n")
	for _, o := range others[:nFollow] {
		fmt.Fprintf(&follows, "%s,true,false,\n", o.Acct)
	}
	for _, o := range others[:3] {
		fmt.Fprintf(&lists, "Close friends,%s\n", o.Acct)
	}
	fmt.Fprintf(&lists, "Others,%s\n", others[3].Acct)
	for _, o := range others[nFollow:] {
		fmt.Fprintf(&blocks, "%s\n", o.Acct)
	}
	var bookmarkURIs []string
	for i := range nBookmark {
		_, uri := postStatus(t, ctx, others[i%nFollow], fmt.Sprintf("bookmark me %d", i))
		bookmarkURIs = append(bookmarkURIs, uri)
		fmt.Fprintf(&bookmarks, "%s\n", uri)
	}
	for name, body := range map[string]string{"following_accounts.csv": follows.String(), "lists.csv": lists.String(),
		"blocked_accounts.csv": blocks.String(), "bookmarks.csv": bookmarks.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.proxy.SetFaults(faultMix(9))
	start := time.Now()
	runs := 0
	for runs < 3 {
		runs++
		fdir := t.TempDir()
		r := s.cli.run("import", s.handle, dir, "--failures-dir", fdir)
		t.Logf("run %d: exit %d\n%s", runs, r.code, lastLines(r.stdout+r.stderr, 6))
		fs, _ := filepath.Glob(filepath.Join(fdir, "*.csv"))
		for _, f := range fs {
			t.Logf("%s:\n%s", filepath.Base(f), readFile(t, f))
		}
		if r.code == 0 {
			break
		}
	}
	took := time.Since(start)
	s.proxy.SetFaults(testenv.FaultOptions{})

	u := s.user
	for _, o := range others[:nFollow] {
		if rel := relationTo(t, ctx, u, o.Acct); !rel.Following {
			t.Errorf("%s not followed", o.Acct)
		}
	}
	for _, o := range others[nFollow:] {
		if rel := relationTo(t, ctx, u, o.Acct); !rel.Blocking {
			t.Errorf("%s not blocked", o.Acct)
		}
	}
	var ls []struct{ ID, Title string }
	mustAPI(t, ctx, u, http.MethodGet, "/api/v1/lists", nil, &ls)
	titles := map[string]int{}
	members := map[string]int{}
	for _, l := range ls {
		titles[l.Title]++
		var accs []struct{ Acct string }
		mustAPI(t, ctx, u, http.MethodGet, "/api/v1/lists/"+l.ID+"/accounts", url.Values{"limit": {"0"}}, &accs)
		members[l.Title] += len(accs)
	}
	if titles["Close friends"] != 1 || titles["Others"] != 1 || len(ls) != 2 {
		t.Errorf("lists %v, want each of the two once", titles)
	}
	if members["Close friends"] != 3 || members["Others"] != 1 {
		t.Errorf("list members %v, want 3 and 1", members)
	}
	var bms []struct{ URI string }
	mustAPI(t, ctx, u, http.MethodGet, "/api/v1/bookmarks", url.Values{"limit": {"40"}}, &bms)
	got := map[string]int{}
	for _, b := range bms {
		got[b.URI]++
	}
	dups := 0
	for _, uri := range bookmarkURIs {
		if got[uri] != 1 {
			t.Errorf("status %s bookmarked %d times, want once", uri, got[uri])
		}
		dups += max(got[uri]-1, 0)
	}
	if len(bms) != nBookmark {
		t.Errorf("%d bookmarks, want %d", len(bms), nBookmark)
	}
	total := nFollow + nBlock + nBookmark + 2 + 4
	figures(t, "graph-import", s.proxy, runs, total, total-missingOf(t, ctx, u, others, nFollow), dups, took)
	checkNoBlindResend(t, s.proxy, regexp.MustCompile(`^POST /api/v1/(statuses/:id/bookmark|lists)$`))
}

// missingOf counts follows and blocks that did not land, for the figures.
func missingOf(t *testing.T, ctx context.Context, u *testenv.User, others []*testenv.User, nFollow int) int {
	n := 0
	for i, o := range others {
		rel := relationTo(t, ctx, u, o.Acct)
		if i < nFollow && !rel.Following || i >= nFollow && !rel.Blocking {
			n++
		}
	}
	return n
}

func repeatInstance(in *testenv.Instance, n int) []*testenv.Instance {
	out := make([]*testenv.Instance, n)
	for i := range out {
		out[i] = in
	}
	return out
}

// lastLines returns the last n lines of s, for logs.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestE2EFaultsNoWriteResent loses the answer to every post ferry creates
// (after the server made it), on connections ferry reuses: the case in
// which net/http resends a request carrying Idempotency-Key, and in which
// any layer that retries blind makes a duplicate. The proxy must see each
// post created exactly once: the earlier attempt is found, never repeated.
func TestE2EFaultsNoWriteResent(t *testing.T) {
	testenv.Require(t)
	t.Parallel()
	env := testenv.Shared(t, 1)
	s := newFaultSetup(t, env, env.Instances[0])
	dir := filepath.Join(t.TempDir(), "archive")
	const n = 5
	writeSyntheticArchive(t, dir, n)
	s.proxy.SetFaults(testenv.FaultOptions{Lost: 1, Methods: []string{http.MethodPost},
		Paths: regexp.MustCompile(`^/api/v1/statuses$`), MaxFaults: n})
	start := time.Now()
	r := s.cli.run("archive", "publish", dir, "--to", s.handle, "--mode", "repost")
	t.Logf("exit %d\n%s", r.code, lastLines(r.stdout+r.stderr, 4))
	c := s.proxy.Counts()["POST /api/v1/statuses"]
	seen, sts := countTexts(t, s.user, regexp.MustCompile(`synthetic post \d+ `))
	figures(t, "no-resend", s.proxy, 1, n, len(sts), len(sts)-len(seen), time.Since(start))
	if c.Forwarded != len(seen) {
		t.Errorf("the server received %d post creations for %d distinct posts: a lost answer was followed by a resend", c.Forwarded, len(seen))
	}
	if len(sts) != n || len(seen) != n {
		t.Errorf("%d posts (%d distinct) on the server, want %d", len(sts), len(seen), n)
	}
	if c.Injected[testenv.FaultLost] != n {
		t.Errorf("%d answers lost, want %d (one per post)", c.Injected[testenv.FaultLost], n)
	}
	if r.code != 0 {
		t.Errorf("publish exit %d; every lost answer should be reconciled within the run", r.code)
	}
	checkNoBlindResend(t, s.proxy, statusPattern)
}
