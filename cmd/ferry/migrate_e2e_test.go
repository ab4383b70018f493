package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/migrate/move"
	"github.com/fedi-ferry/ferry/state"
)

// End-to-end tests of `ferry migrate` against three federating GoToSocial
// servers: A (old), B (new) and C (others).

func writePassword(t *testing.T, u *testenv.User) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte(u.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// followedBy reports whether follower follows target, as follower's server
// sees it.
func follows(t *testing.T, ctx context.Context, follower *testenv.User, target string) bool {
	t.Helper()
	return relationTo(t, ctx, follower, target).Following
}

// migrationItem reads one step of the migration's journal.
func migrationItem(t *testing.T, dataDir, step string) state.Item {
	t.Helper()
	st, err := state.Open(t.Context(), filepath.Join(dataDir, "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	jobs, err := st.Jobs(t.Context(), move.JobKind)
	if err != nil || len(jobs) == 0 {
		t.Fatalf("no migration in the journal: %v", err)
	}
	it, err := st.Item(t.Context(), jobs[0].ID, step, step)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func TestE2EMigrateMoveReplayVerify(t *testing.T) {
	testenv.Require(t)
	env := testenv.Shared(t, 3)
	A, B, C := env.Instances[0], env.Instances[1], env.Instances[2]
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()

	us := createUsers(t, ctx, A, B, A, B, C, C, B, C, C, C)
	old, neu, fA, fB, fC, followC, followB, blockC, muteC, revived := us[0], us[1], us[2], us[3], us[4], us[5], us[6], us[7], us[8], us[9]

	// The old account's social graph: followers on all three servers,
	// follows, a block, a mute, a list, a bookmark.
	for _, f := range []*testenv.User{fA, fB, fC} {
		if _, err := f.Follow(ctx, old); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []*testenv.User{followC, followB} {
		if _, err := old.Follow(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the old account's follows", func() bool {
		return follows(t, ctx, old, followC.Acct) && follows(t, ctx, old, followB.Acct) &&
			follows(t, ctx, fB, old.Acct) && follows(t, ctx, fC, old.Acct)
	})
	blockID, _ := old.Resolve(ctx, blockC.Acct)
	mustAPI(t, ctx, old, http.MethodPost, "/api/v1/accounts/"+blockID+"/block", nil, nil)
	muteID, _ := old.Resolve(ctx, muteC.Acct)
	mustAPI(t, ctx, old, http.MethodPost, "/api/v1/accounts/"+muteID+"/mute", nil, nil)
	var list struct{ ID string }
	mustAPI(t, ctx, old, http.MethodPost, "/api/v1/lists", url.Values{"title": {"Neighbours"}}, &list)
	memberID, _ := old.Resolve(ctx, followC.Acct)
	mustAPI(t, ctx, old, http.MethodPost, "/api/v1/lists/"+list.ID+"/accounts", url.Values{"account_ids[]": {memberID}}, nil)
	_, postURI := postStatus(t, ctx, followC, "worth keeping")
	var found struct{ Statuses []struct{ ID string } }
	mustAPI(t, ctx, old, http.MethodGet, "/api/v2/search", url.Values{"q": {postURI}, "resolve": {"true"}, "type": {"statuses"}}, &found)
	if len(found.Statuses) != 1 {
		t.Fatalf("the old account cannot see the post to bookmark")
	}
	mustAPI(t, ctx, old, http.MethodPost, "/api/v1/statuses/"+found.Statuses[0].ID+"/bookmark", nil, nil)

	c := newCLI(t, env.CAFile)
	loginCLI(t, c, old)
	loginCLI(t, c, neu)

	plan := c.run("migrate", "plan", "--from", old.Acct, "--to", neu.Acct).mustSucceed(t)
	for _, want := range []string{"does not list " + old.Acct + " as an alias yet", "ferry adds it through the API", "7 days", "cannot be undone"} {
		if !strings.Contains(plan.stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan.stdout)
		}
	}

	// The first run is the real binary, killed right after the Move; the
	// second run (in-process) must finish without sending the Move again.
	bin := ferryBinary(t)
	dir := filepath.Join(t.TempDir(), "migration")
	pw := writePassword(t, old)
	args := []string{"migrate", "run", "--from", old.Acct, "--to", neu.Acct, "--yes", "--password-file", pw, "--dir", dir, "--verify-window", "90s"}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append([]string{"--data-dir", c.dataDir, "--ca-file", env.CAFile}, args...)...)
	w := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = &out, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the migration to reach the replay", func() bool { return strings.Contains(w.String(), "== replay") })
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if it := migrationItem(t, c.dataDir, move.StepMove); it.Status != state.ItemDone || it.Attempts != 1 {
		t.Fatalf("after the kill the move step is %+v; want done after one attempt", it)
	}

	run := c.run(append([]string{"--json"}, args...)...).mustSucceed(t)
	migrateJSON(t, run.stdout, "replay")
	if strings.Contains(run.stderr, "== move") || strings.Contains(run.stderr, "== alias") {
		t.Errorf("the second run repeated earlier steps:\n%s", run.stderr)
	}
	if it := migrationItem(t, c.dataDir, move.StepMove); it.Attempts != 1 {
		t.Errorf("the Move was attempted %d times", it.Attempts)
	}
	t.Logf("run output:\n%s\n%s", run.stdout, run.stderr)

	// A points to B.
	var me struct{ Moved *struct{ Acct string } }
	mustAPI(t, ctx, old, http.MethodGet, "/api/v1/accounts/verify_credentials", nil, &me)
	if me.Moved == nil || !strings.Contains(neu.Acct, me.Moved.Acct) {
		t.Fatalf("old account moved = %+v, want %s", me.Moved, neu.Acct)
	}
	// Followers on the other servers now follow B.
	for _, f := range []*testenv.User{fB, fC} {
		waitFor(t, f.Acct+" to follow the new account", func() bool { return follows(t, ctx, f, neu.Acct) })
	}
	// B has A's follows, block, mute, list and bookmark.
	for _, u := range []*testenv.User{followC, followB} {
		if !follows(t, ctx, neu, u.Acct) {
			t.Errorf("the new account does not follow %s", u.Acct)
		}
	}
	if r := relationTo(t, ctx, neu, blockC.Acct); !r.Blocking {
		t.Errorf("block not replayed")
	}
	if r := relationTo(t, ctx, neu, muteC.Acct); !r.Muting {
		t.Errorf("mute not replayed")
	}
	var lists []struct{ ID, Title string }
	mustAPI(t, ctx, neu, http.MethodGet, "/api/v1/lists", nil, &lists)
	if len(lists) != 1 || lists[0].Title != "Neighbours" {
		t.Errorf("lists = %+v", lists)
	}
	var bms []struct{ URI string }
	mustAPI(t, ctx, neu, http.MethodGet, "/api/v1/bookmarks", nil, &bms)
	if len(bms) != 1 || bms[0].URI != postURI {
		t.Errorf("bookmarks = %+v", bms)
	}
	// The report matches what the servers show: everyone in not_moved.csv
	// really does not follow B, everyone else does.
	notMoved := readFile(t, filepath.Join(dir, move.NotMovedFile))
	for _, f := range []*testenv.User{fA, fB, fC} {
		listed := strings.Contains(notMoved, f.Acct)
		if following := follows(t, ctx, f, neu.Acct); following == listed {
			t.Errorf("%s: follows the new account=%v but listed in not_moved.csv=%v\n%s", f.Acct, following, listed, notMoved)
		}
	}

	// The old account cannot move again: plan says why.
	loginCLI(t, c, revived)
	again := c.run("migrate", "plan", "--from", old.Acct, "--to", revived.Acct)
	if again.code == 0 || !strings.Contains(again.stdout+again.stderr, "has already moved to") {
		t.Errorf("plan for an already-moved account: exit %d\n%s\n%s", again.code, again.stdout, again.stderr)
	}

	status := c.run("migrate", "status").mustSucceed(t)
	if !strings.Contains(status.stdout, "verify") || !strings.Contains(status.stdout, "done") {
		t.Errorf("status:\n%s", status.stdout)
	}

	// Dead-instance path: A's server is gone; the lifeboat alone rebuilds
	// the graph on another account.
	if err := A.Stop(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := A.Restart(context.Background()); err != nil {
			t.Errorf("restart A: %v", err)
		}
	}()
	dead := c.run("--json", "migrate", "run", "--from-archive", dir, "--to", revived.Acct, "--verify-window", "1s")
	if dead.code != 0 {
		t.Fatalf("dead-instance migration: exit %d\n%s\n%s", dead.code, dead.stdout, dead.stderr)
	}
	migrateJSON(t, dead.stdout, "replay")
	if !follows(t, ctx, revived, followB.Acct) || !relationTo(t, ctx, revived, blockC.Acct).Blocking {
		t.Errorf("the dead-instance replay did not rebuild the graph on %s", revived.Acct)
	}
}

// With the alias left to the person, ferry must wait for it to become
// visible instead of sending a Move the server would refuse.
func TestE2EMigrateWaitsForAlias(t *testing.T) {
	testenv.Require(t)
	env := testenv.Shared(t, 3)
	A, C := env.Instances[0], env.Instances[2]
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	us := createUsers(t, ctx, A, C)
	old, neu := us[0], us[1]
	c := newCLI(t, env.CAFile)
	loginCLI(t, c, old)
	loginCLI(t, c, neu)

	stderr, wait := c.start(ctx, strings.NewReader(""), "--json", "migrate", "run", "--from", old.Acct, "--to", neu.Acct, "--yes",
		"--password-file", writePassword(t, old), "--alias-manual", "--verify-window", "1s", "--dir", t.TempDir())
	waitFor(t, "ferry to ask for the alias", func() bool { return strings.Contains(stderr.String(), "Set the alias yourself") })
	time.Sleep(6 * time.Second) // ferry polls meanwhile
	var me struct{ Moved *struct{ Acct string } }
	mustAPI(t, ctx, old, http.MethodGet, "/api/v1/accounts/verify_credentials", nil, &me)
	if me.Moved != nil || strings.Contains(stderr.String(), "== move") {
		t.Fatalf("ferry went on to the Move before the alias existed:\n%s", stderr.String())
	}
	body := fmt.Sprintf(`{"also_known_as_uris":[%q]}`, old.URI)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, neu.Instance.BaseURL+"/api/v1/accounts/alias", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+neu.Token)
	resp, err := neu.Instance.HTTPClient().Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("set alias: %v %v", err, resp)
	}
	resp.Body.Close()
	r := wait().mustSucceed(t)
	migrateJSON(t, r.stdout, "lifeboat", "replay")
	if strings.Contains(r.stderr, "does not see the alias yet") {
		t.Logf("the old server needed time to see the alias:\n%s", r.stderr)
	}
	mustAPI(t, ctx, old, http.MethodGet, "/api/v1/accounts/verify_credentials", nil, &me)
	if me.Moved == nil {
		t.Fatalf("not moved after the alias was set:\n%s", r.stderr)
	}
}
