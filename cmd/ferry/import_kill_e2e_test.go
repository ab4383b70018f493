package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/testenv"
)

// appliedLine matches the debug line ferry logs once a remote write of an
// import item has completed.
var appliedLine = regexp.MustCompile(`msg=applied step=(\S+) key=("(?:[^"\\]|\\.)*"|\S+)`)

// An import of a few hundred rows, killed with SIGKILL several times at
// random points, ends complete, and no write that creates something was
// completed twice (each item's "applied" line appears at most once over all
// runs: a rerun checks the server before repeating an interrupted write).
func TestE2EImportKillResume(t *testing.T) {
	testenv.Require(t)
	env := testenv.Shared(t, 3)
	A, B, C := env.Instances[0], env.Instances[1], env.Instances[2]
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	bin := ferryBinary(t)

	var ins []*testenv.Instance
	for range 6 {
		ins = append(ins, A, C, B)
	}
	us := createUsers(t, ctx, append([]*testenv.Instance{B, B}, ins...)...)
	dst, poster, others := us[0], us[1], us[2:]
	follows, blocks := others[:12], others[12:]

	dir := t.TempDir()
	var bm, fl, ls, bl strings.Builder
	const posts = 300
	for i := range posts {
		_, uri := postStatus(t, ctx, poster, fmt.Sprintf("post %d", i))
		fmt.Fprintln(&bm, uri)
	}
	fl.WriteString("Account address,Show boosts,Notify on new posts,Languages\n")
	for i, u := range follows {
		fmt.Fprintf(&fl, "%s,%t,false,\n", u.Acct, i%2 == 0)
	}
	for l := range 8 {
		for m := range 3 {
			fmt.Fprintf(&ls, "List %d,%s\n", l, follows[(l+m)%len(follows)].Acct)
		}
	}
	for _, u := range blocks {
		fmt.Fprintln(&bl, u.Acct)
	}
	for name, s := range map[string]string{"bookmarks.csv": bm.String(), "following_accounts.csv": fl.String(),
		"lists.csv": ls.String(), "blocked_accounts.csv": bl.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	cli := newCLI(t, env.CAFile)
	loginCLI(t, cli, dst)
	logs := t.TempDir()
	failures := t.TempDir()
	// runFerry runs one import; it is killed once its log shows killAt
	// completed writes (killAt > 0), or after killAfter (killAfter > 0).
	runFerry := func(n, killAt int, killAfter time.Duration) (killed bool, code int) {
		logPath := filepath.Join(logs, fmt.Sprintf("run%d.log", n))
		logf, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		cmd := exec.CommandContext(ctx, bin, "--data-dir", cli.dataDir, "--ca-file", env.CAFile, "--log-level", "debug",
			"import", dst.Acct, dir, "--failures-dir", failures)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if killAt == 0 && killAfter == 0 {
			return false, exitCode(<-done)
		}
		start := time.Now()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case err := <-done:
				return false, exitCode(err)
			case <-tick.C:
			}
			b, _ := os.ReadFile(logPath)
			if (killAt > 0 && len(appliedLine.FindAll(b, -1)) >= killAt) || (killAfter > 0 && time.Since(start) > killAfter) {
				_ = cmd.Process.Kill() // SIGKILL: no chance to clean up
				<-done
				return true, -1
			}
		}
	}
	kills := 0
	// The first kill lands while planning (resolving); the others at
	// random points of the apply.
	for n, killAt := range []int{0, 1 + rand.IntN(40), 1 + rand.IntN(80), 1 + rand.IntN(80), 1 + rand.IntN(80)} {
		var after time.Duration
		if killAt == 0 {
			after = time.Duration(50+rand.IntN(150)) * time.Millisecond
		}
		killed, code := runFerry(n, killAt, after)
		if killed {
			kills++
		} else if code != 0 {
			t.Fatalf("run %d exited %d:\n%s", n, code, readFile(t, filepath.Join(logs, fmt.Sprintf("run%d.log", n))))
		}
	}
	if _, code := runFerry(99, 0, 0); code != 0 {
		t.Fatalf("final run exited %d:\n%s", code, readFile(t, filepath.Join(logs, "run99.log")))
	}
	t.Logf("killed %d times", kills)

	// Nothing completed twice.
	applied := map[string]int{}
	resumedChecks := 0
	ents, _ := os.ReadDir(logs)
	for _, e := range ents {
		s := readFile(t, filepath.Join(logs, e.Name()))
		for _, m := range appliedLine.FindAllStringSubmatch(s, -1) {
			applied[m[1]+" "+m[2]]++
		}
		resumedChecks += strings.Count(s, "found applied on resume")
	}
	for k, n := range applied {
		if n > 1 {
			t.Errorf("%s applied %d times", k, n)
		}
	}
	t.Logf("%d items applied, %d interrupted items found already applied on resume", len(applied), resumedChecks)

	// Everything is there, once.
	nb := 0
	seen := map[string]int{}
	next := "/api/v1/bookmarks?limit=40"
	for next != "" {
		var page []struct{ ID, URI string }
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, B.BaseURL+next, nil)
		req.Header.Set("Authorization", "Bearer "+dst.Token)
		resp, err := B.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if err := jsonDecode(resp, &page); err != nil {
			t.Fatal(err)
		}
		nb += len(page)
		for _, p := range page {
			seen[p.URI]++
			if seen[p.URI] > 1 {
				t.Logf("bookmark listed twice: %s (status %s), page %s", p.URI, p.ID, next)
			}
		}
		next = ""
		if l := linkNext(resp.Header); l != "" && len(page) > 0 {
			u, _ := url.Parse(l)
			next = u.RequestURI()
		}
	}
	if nb != posts {
		t.Errorf("%d bookmarks, want %d", nb, posts)
	}
	var lists []struct{ ID, Title string }
	mustAPI(t, ctx, dst, http.MethodGet, "/api/v1/lists", nil, &lists)
	if len(lists) != 8 {
		t.Errorf("%d lists, want 8 (a list created twice?): %+v", len(lists), lists)
	}
	for _, l := range lists {
		var members []struct{ Acct string }
		mustAPI(t, ctx, dst, http.MethodGet, "/api/v1/lists/"+l.ID+"/accounts", nil, &members)
		if len(members) != 3 {
			t.Errorf("list %s has %d members, want 3", l.Title, len(members))
		}
	}
	for i, u := range follows {
		r := relationTo(t, ctx, dst, u.Acct)
		if !r.Following && !r.Requested {
			t.Errorf("%s not followed", u.Acct)
		} else if r.ShowingReblogs != (i%2 == 0) {
			t.Errorf("%s: showing_reblogs %v", u.Acct, r.ShowingReblogs)
		}
	}
	for _, u := range blocks {
		if !relationTo(t, ctx, dst, u.Acct).Blocking {
			t.Errorf("%s not blocked", u.Acct)
		}
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -2
}

func jsonDecode(resp *http.Response, out any) error {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Request.URL.Path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// linkNext returns the rel="next" target of a Link header.
func linkNext(h http.Header) string { return fedi.NextLink(h) }
