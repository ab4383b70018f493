package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/testenv"
)

// End-to-end tests of `ferry export` and `ferry import` against three
// federating GoToSocial servers.

// createUsers creates one unlocked user per instance in ins, in parallel
// (the harness serialises user creation per instance only).
func createUsers(t *testing.T, ctx context.Context, ins ...*testenv.Instance) []*testenv.User {
	t.Helper()
	out := make([]*testenv.User, len(ins))
	errs := make([]error, len(ins))
	var wg sync.WaitGroup
	for i, in := range ins {
		wg.Go(func() { out[i], errs[i] = in.CreateUser(ctx, "", true) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func mustAPI(t *testing.T, ctx context.Context, u *testenv.User, method, path string, params url.Values, out any) {
	t.Helper()
	if err := u.API(ctx, method, path, params, out); err != nil {
		t.Fatalf("%s: %v", u.Acct, err)
	}
}

type relation struct {
	ID                  string   `json:"id"`
	Following           bool     `json:"following"`
	Requested           bool     `json:"requested"`
	ShowingReblogs      bool     `json:"showing_reblogs"`
	Notifying           bool     `json:"notifying"`
	Blocking            bool     `json:"blocking"`
	Muting              bool     `json:"muting"`
	MutingNotifications bool     `json:"muting_notifications"`
	Languages           []string `json:"languages"`
}

// relationTo resolves other's address at u's server and returns u's
// relationship to it.
func relationTo(t *testing.T, ctx context.Context, u *testenv.User, acct string) relation {
	t.Helper()
	id, err := u.Resolve(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	var rels []relation
	mustAPI(t, ctx, u, http.MethodGet, "/api/v1/accounts/relationships", url.Values{"id[]": {id}}, &rels)
	if len(rels) != 1 {
		t.Fatalf("relationship to %s: %d entries", acct, len(rels))
	}
	return rels[0]
}

// waitFor polls cond until it holds or a minute passes (federation is
// asynchronous: a remote follow becomes "following" once the Accept arrives).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func loginCLI(t *testing.T, c *ferryCLI, u *testenv.User) {
	t.Helper()
	c.run("login", u.Instance.BaseURL, "--token-file", writeTokenFile(t, u.Token)).mustSucceed(t)
}

func postStatus(t *testing.T, ctx context.Context, u *testenv.User, text string) (id, uri string) {
	t.Helper()
	var s struct {
		ID  string `json:"id"`
		URI string `json:"uri"`
	}
	mustAPI(t, ctx, u, http.MethodPost, "/api/v1/statuses", url.Values{"status": {text}, "visibility": {"public"}}, &s)
	return s.ID, s.URI
}

// moveAccount moves old to target with GoToSocial's alias + Move API.
func moveAccount(t *testing.T, ctx context.Context, old, target *testenv.User) {
	t.Helper()
	// The alias must be JSON: GoToSocial ignores a form-encoded array.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target.Instance.BaseURL+"/api/v1/accounts/alias",
		strings.NewReader(fmt.Sprintf(`{"also_known_as_uris":[%q]}`, old.URI)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+target.Token)
	resp, err := target.Instance.HTTPClient().Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("alias: %v %v", err, resp)
	}
	resp.Body.Close()
	waitFor(t, "the move of "+old.Acct, func() bool {
		err := old.API(ctx, http.MethodPost, "/api/v1/accounts/move", url.Values{"password": {old.Password}, "moved_to_uri": {target.URI}}, nil)
		return err == nil
	})
	// The Move is processed in the background; wait until the old
	// account's own server shows it.
	waitFor(t, "the moved account to show its target", func() bool {
		var a struct{ Moved *struct{ Acct string } }
		err := old.API(ctx, http.MethodGet, "/api/v1/accounts/verify_credentials", nil, &a)
		return err == nil && a.Moved != nil
	})
}

func TestE2EGraphExportImport(t *testing.T) {
	testenv.Require(t)
	env := testenv.Shared(t, 3)
	A, B, C := env.Instances[0], env.Instances[1], env.Instances[2]
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	us := createUsers(t, ctx, A, B, C, A, B, C, C, A)
	src, dst, c1, a1, b1, c2, old, moved := us[0], us[1], us[2], us[3], us[4], us[5], us[6], us[7]

	// src on A: follows on A, B and C (one with settings), a block, a mute,
	// a list and a bookmark.
	for _, o := range []*testenv.User{a1, b1} {
		if _, err := src.Follow(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	c1ID, err := src.Resolve(ctx, c1.Acct)
	if err != nil {
		t.Fatal(err)
	}
	mustAPI(t, ctx, src, http.MethodPost, "/api/v1/accounts/"+c1ID+"/follow", url.Values{"reblogs": {"false"}, "notify": {"true"}}, nil)
	c2ID, _ := src.Resolve(ctx, c2.Acct)
	mustAPI(t, ctx, src, http.MethodPost, "/api/v1/accounts/"+c2ID+"/block", nil, nil)
	b1ID, _ := src.Resolve(ctx, b1.Acct)
	a1ID, _ := src.Resolve(ctx, a1.Acct)
	mustAPI(t, ctx, src, http.MethodPost, "/api/v1/accounts/"+b1ID+"/mute", url.Values{"notifications": {"false"}}, nil)
	waitFor(t, "src's remote follows", func() bool {
		return relationTo(t, ctx, src, c1.Acct).Following && relationTo(t, ctx, src, b1.Acct).Following
	})
	var list struct{ ID string }
	mustAPI(t, ctx, src, http.MethodPost, "/api/v1/lists", url.Values{"title": {"Friends, close"}}, &list)
	mustAPI(t, ctx, src, http.MethodPost, "/api/v1/lists/"+list.ID+"/accounts", url.Values{"account_ids[]": {a1ID, c1ID}}, nil)
	stID, stURI := postStatus(t, ctx, a1, "bookmark me")
	mustAPI(t, ctx, src, http.MethodPost, "/api/v1/statuses/"+stID+"/bookmark", nil, nil)
	moveAccount(t, ctx, old, moved)

	cli := newCLI(t, env.CAFile)
	loginCLI(t, cli, src)
	loginCLI(t, cli, dst)
	out := filepath.Join(t.TempDir(), "lifeboat")
	exp := cli.run("export", src.Acct, "--out", out).mustSucceed(t)
	if !strings.Contains(exp.stdout, "not written: this server has no user-level domain blocks") {
		t.Errorf("export output does not say domain blocks are unsupported:\n%s", exp.stdout)
	}
	if _, err := os.Stat(filepath.Join(out, "blocked_domains.csv")); !os.IsNotExist(err) {
		t.Errorf("blocked_domains.csv written for a server without domain blocks: %v", err)
	}
	following := readFile(t, filepath.Join(out, "following_accounts.csv"))
	if !strings.HasPrefix(following, "Account address,Show boosts,Notify on new posts,Languages\n") ||
		!strings.Contains(following, c1.Acct+",false,true,\n") || !strings.Contains(following, a1.Acct+",true,false,\n") {
		t.Errorf("following_accounts.csv:\n%s", following)
	}
	if got := readFile(t, filepath.Join(out, "lists.csv")); !strings.Contains(got, `"Friends, close",`+a1.Acct+"\n") {
		t.Errorf("lists.csv:\n%s", got)
	}
	if got := readFile(t, filepath.Join(out, "muted_accounts.csv")); got != "Account address,Hide notifications\n"+b1.Acct+",false\n" {
		t.Errorf("muted_accounts.csv:\n%q", got)
	}
	if got := readFile(t, filepath.Join(out, "blocked_accounts.csv")); got != c2.Acct+"\n" {
		t.Errorf("blocked_accounts.csv: %q", got)
	}
	if got := readFile(t, filepath.Join(out, "bookmarks.csv")); got != stURI+"\n" {
		t.Errorf("bookmarks.csv: %q", got)
	}
	// A handle that does not exist and an account that moved.
	missing := "nosuchuser@" + C.Host
	appendFile(t, filepath.Join(out, "following_accounts.csv"), missing+",true,false,\n"+old.Acct+",true,false,\n")

	// GoToSocial reports an account's "moved" only when it already knows the
	// target account (it never dereferences movedTo on its own), so B gets
	// to know the target first, as it would once anyone there saw it.
	if _, err := dst.Resolve(ctx, moved.Acct); err != nil {
		t.Fatal(err)
	}
	failures := t.TempDir()
	dry := cli.run("import", dst.Acct, out, "--dry-run")
	if dry.code != 0 || !strings.Contains(dry.stdout, "dry run") || !strings.Contains(dry.stdout, "moved: follow "+strings.ToLower(moved.Acct)) {
		t.Fatalf("dry run: exit %d\n%s\n%s", dry.code, dry.stdout, dry.stderr)
	}
	imp := cli.run("--json", "import", dst.Acct, out, "--failures-dir", failures)
	if imp.code != exitPartial {
		t.Fatalf("import: exit %d, want %d (one row fails)\n%s\n%s", imp.code, exitPartial, imp.stdout, imp.stderr)
	}
	var rep struct {
		Types map[string]struct{ Applied, Already, Failed int }
		Moved []struct{ From, To string }
	}
	if err := json.Unmarshal([]byte(imp.stdout), &rep); err != nil {
		t.Fatalf("import --json: %v\n%s", err, imp.stdout)
	}
	if f := rep.Types["following"]; f.Applied != 4 || f.Failed != 1 {
		t.Errorf("following counts %+v, want 4 applied (3 + the moved one's target), 1 failed", f)
	}
	if len(rep.Moved) != 1 || rep.Moved[0].To != strings.ToLower(moved.Acct) {
		t.Errorf("moved = %+v", rep.Moved)
	}
	fails := readFile(t, filepath.Join(failures, "following_failures.csv"))
	if !strings.HasPrefix(fails, "Account address,Show boosts,Notify on new posts,Languages,Source,Reason\n") ||
		!strings.Contains(fails, missing) || !strings.Contains(fails, "not found") {
		t.Errorf("following_failures.csv:\n%s", fails)
	}

	// B's account now has the same graph.
	waitFor(t, "dst's follows", func() bool {
		for _, a := range []string{a1.Acct, b1.Acct, c1.Acct, moved.Acct} {
			if !relationTo(t, ctx, dst, a).Following {
				return false
			}
		}
		return true
	})
	if r := relationTo(t, ctx, dst, c1.Acct); r.ShowingReblogs || !r.Notifying {
		t.Errorf("follow settings of %s not carried: %+v", c1.Acct, r)
	}
	if r := relationTo(t, ctx, dst, old.Acct); r.Following {
		t.Errorf("the moved account itself was followed: %+v", r)
	}
	if r := relationTo(t, ctx, dst, c2.Acct); !r.Blocking {
		t.Errorf("%s not blocked: %+v", c2.Acct, r)
	}
	if r := relationTo(t, ctx, dst, b1.Acct); !r.Muting || r.MutingNotifications {
		t.Errorf("%s not muted with notifications shown: %+v", b1.Acct, r)
	}
	var lists []struct{ ID, Title string }
	mustAPI(t, ctx, dst, http.MethodGet, "/api/v1/lists", nil, &lists)
	if len(lists) != 1 || lists[0].Title != "Friends, close" {
		t.Fatalf("lists = %+v", lists)
	}
	var members []struct{ Acct string }
	mustAPI(t, ctx, dst, http.MethodGet, "/api/v1/lists/"+lists[0].ID+"/accounts", nil, &members)
	if len(members) != 2 {
		t.Errorf("list members = %+v", members)
	}
	var bms []struct{ URI string }
	mustAPI(t, ctx, dst, http.MethodGet, "/api/v1/bookmarks", nil, &bms)
	if len(bms) != 1 || bms[0].URI != stURI {
		t.Errorf("bookmarks = %+v", bms)
	}

	// The same command again does nothing.
	again := cli.run("import", dst.Acct, out, "--failures-dir", failures)
	if !strings.Contains(again.stdout, "already finished") || !strings.Contains(again.stdout, "what that run did:") {
		t.Errorf("rerun: exit %d\n%s\n%s", again.code, again.stdout, again.stderr)
	}
	assertNoToken(t, dst.Token, imp, again, dry)

	// Round trip through GoToSocial's own importer: ferry's export, uploaded
	// with --method server, is read by the server and verified through the API.
	dst2 := createUsers(t, ctx, C)[0]
	loginCLI(t, cli, dst2)
	srv := cli.run("--json", "import", dst2.Acct, filepath.Join(out, "following_accounts.csv"), filepath.Join(out, "blocked_accounts.csv"),
		"--method", "server", "--failures-dir", t.TempDir())
	if srv.code != exitPartial { // nosuchuser is not applied by the server either
		t.Fatalf("server import: exit %d\n%s\n%s", srv.code, srv.stdout, srv.stderr)
	}
	assertNoToken(t, dst2.Token, srv)
	for _, a := range []string{a1.Acct, b1.Acct, c1.Acct} {
		if r := relationTo(t, ctx, dst2, a); !r.Following {
			t.Errorf("server import: %s not followed: %+v", a, r)
		}
	}
	if r := relationTo(t, ctx, dst2, c2.Acct); !r.Blocking {
		t.Errorf("server import: %s not blocked", c2.Acct)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}
