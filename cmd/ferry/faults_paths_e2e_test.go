package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/post"
)

// More write paths through the fault proxy: an account→account mirror,
// the daemon, and the migrate replay of a lifeboat.

// mirrorUntil runs `ferry mirror --route route` until want distinct posts
// match key on s.user or maxRuns runs were made; it returns the runs made and
// whether want was reached within three (going on to maxRuns).
func mirrorUntil(t *testing.T, s *faultSetup, cfg, route string, key *regexp.Regexp, want, maxRuns int) (runs int, inThree bool) {
	t.Helper()
	complete := func() bool { seen, _ := countTexts(t, s.user, key); return len(seen) >= want }
	run := func() {
		runs++
		r := s.cli.run("--config", cfg, "mirror", "--route", route)
		t.Logf("run %d: exit %d\n%s", runs, r.code, lastLines(r.stdout+r.stderr, 3))
	}
	for runs < 3 && !complete() {
		run()
	}
	inThree = complete()
	// Go on as a person would, to tell "late" from "lost".
	for runs < maxRuns && !complete() {
		run()
	}
	return runs, inThree
}

// checkOnce fails t for every key matched more than once and returns the
// distinct keys and the duplicates.
func checkOnce(t *testing.T, u *testenv.User, key *regexp.Regexp) (distinct, total, dups int) {
	t.Helper()
	seen, sts := countTexts(t, u, key)
	delete(seen, "")
	for k, n := range seen {
		if n > 1 {
			dups += n - 1
			t.Errorf("%q is there %d times", k, n)
		}
	}
	return len(seen), len(sts), dups
}

func TestE2EFaultsMirrorAccountToAccount(t *testing.T) {
	testenv.Require(t)
	t.Parallel()
	env := testenv.Shared(t, 2)
	s := newFaultSetup(t, env, env.Instances[1]) // the sink, behind the proxy
	a := mirUser(t, env.Instances[0])
	ha := mirLogin(t, s.cli, env.Instances[0], a)
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "a-to-b"
source = { type = "account", account = "%s" }

[[route.sink]]
account = "%s"
`, ha, s.handle))
	s.cli.run("--config", cfg, "mirror").mustSucceed(t) // first run: nothing yet to post
	origin := mirSinkFor(t, env, env.Instances[0], a)
	const n = 12
	for i := range n {
		mirPublish(t, origin, post.Post{Text: fmt.Sprintf("account mirror item %d", i), Visibility: post.Public}, "")
	}
	s.proxy.SetFaults(faultMix(21))
	start := time.Now()
	key := regexp.MustCompile(`account mirror item \d+\b`)
	runs, inThree := mirrorUntil(t, s, cfg, "a-to-b", key, n, 8)
	distinct, total, dups := checkOnce(t, s.user, key)
	figures(t, "mirror-account", s.proxy, runs, n, total, dups, time.Since(start))
	if distinct != n {
		t.Errorf("%d of %d posts mirrored after %d runs", distinct, n, runs)
	}
	if !inThree {
		t.Errorf("not complete within three runs (%d runs needed); a transient failure ends the route's pass until within-pass retries land in the bridge", runs)
	}
	checkNoBlindResend(t, s.proxy, statusPattern)
}

func TestE2EFaultsDaemon(t *testing.T) {
	testenv.Require(t)
	t.Parallel()
	env := testenv.Shared(t, 1)
	s := newFaultSetup(t, env, env.Instances[0])
	f := newMirFeed(t)
	const n = 10
	items := make([]mirRSSItem, n)
	t0 := time.Now().Add(-time.Hour)
	for i := range items {
		items[i] = mirRSSItem{GUID: fmt.Sprintf("daemon-%d", i), Title: fmt.Sprintf("Daemon item %d", i),
			Link: fmt.Sprintf("%s/daemon-%d", f.srv.URL, i), HTML: "<p>d</p>", At: t0.Add(time.Duration(i) * time.Minute)}
	}
	f.set(f.rssDoc(items...))
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "daemon"
source = { type = "feed", url = "%s/feed.xml" }
first_run = "last:%d"
template = "{{.Title}}"

[[route.sink]]
account = "%s"
`, f.srv.URL, n, s.handle))
	s.proxy.SetFaults(faultMix(44))
	start := time.Now()
	d := startMirDaemon(t, ferryBinary(t), s.cli, cfg)
	key := regexp.MustCompile(`Daemon item \d+\b`)
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if seen, _ := countTexts(t, s.user, key); len(seen) >= n {
			break
		}
		time.Sleep(time.Second)
	}
	took := time.Since(start)
	_ = d.cmd.Process.Kill()
	<-d.done
	distinct, total, dups := checkOnce(t, s.user, key)
	figures(t, "daemon", s.proxy, 1, n, total, dups, took)
	if distinct != n {
		t.Errorf("the daemon mirrored %d of %d items within 2 minutes through faults", distinct, n)
	}
	checkNoBlindResend(t, s.proxy, statusPattern)
}

func TestE2EFaultsMigrateReplay(t *testing.T) {
	testenv.Require(t)
	t.Parallel()
	env := testenv.Shared(t, 2)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	// The old account (on the second server) follows five and blocks two
	// accounts of its server; its lifeboat is replayed on the new account
	// behind the proxy.
	us := createUsers(t, ctx, repeatInstance(env.Instances[1], 8)...)
	old, follow, block := us[0], us[1:6], us[6:]
	for _, o := range follow {
		if _, err := old.Follow(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range block {
		id, err := old.Resolve(ctx, o.Acct)
		if err != nil {
			t.Fatal(err)
		}
		mustAPI(t, ctx, old, "POST", "/api/v1/accounts/"+id+"/block", nil, nil)
	}
	s := newFaultSetup(t, env, env.Instances[0])
	loginCLI(t, s.cli, old)
	dir := filepath.Join(t.TempDir(), "lifeboat")
	s.cli.run("export", old.Acct, "--out", filepath.Join(dir, "graph")).mustSucceed(t)

	s.proxy.SetFaults(faultMix(77))
	start := time.Now()
	runs := 0
	for runs < 3 {
		runs++
		r := s.cli.run("migrate", "run", "--from-archive", dir, "--to", s.handle, "--verify-window", "1s")
		t.Logf("run %d: exit %d\n%s", runs, r.code, lastLines(r.stdout+r.stderr, 4))
		if r.code == 0 {
			break
		}
	}
	took := time.Since(start)
	s.proxy.SetFaults(testenv.FaultOptions{})
	missing := 0
	for _, o := range follow {
		if !relationTo(t, ctx, s.user, o.Acct).Following {
			missing++
			t.Errorf("%s not followed after the replay", o.Acct)
		}
	}
	for _, o := range block {
		if !relationTo(t, ctx, s.user, o.Acct).Blocking {
			missing++
			t.Errorf("%s not blocked after the replay", o.Acct)
		}
	}
	n := len(follow) + len(block)
	figures(t, "migrate-replay", s.proxy, runs, n, n-missing, 0, took)
	if got := s.proxy.BlindResends(); len(got) > 0 {
		// Follows and blocks may be repeated (they are idempotent); say so.
		t.Logf("repeated idempotent writes: %s", strings.Join(got, ", "))
	}
}
