package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/fakemisskey"
	mk "github.com/fedi-ferry/ferry/misskey"
)

// A Move from one Misskey account to another with `ferry migrate run`:
// the lifeboat (graph and archive), the alias
// through i/update, the Move sent by the person from Misskey's web client
// (i/move takes only the web client's own token, so ferry shows where and
// waits), the replay of follows, blocks, mutes and lists, and the
// followers' check. Both accounts are on one fake server: it does not
// federate, and moves its own users' follows as Misskey does.
func TestMisskeyMoveToMisskeyWithReplay(t *testing.T) {
	srv := fakemisskey.Start(fakemisskey.Config{})
	t.Cleanup(srv.Close)
	base, _ := mk.ParseServer(srv.URL)
	ctx := t.Context()
	user := func(name string) (string, *mk.Client) {
		id := srv.AddUser(name, "pw-"+name)
		return id, mk.NewClient(base, srv.AddToken(id, mk.Permissions), mk.Options{})
	}
	oldID, old := user("old")
	_, neu := user("new")
	ids := map[string]string{}
	for _, n := range []string{"f1", "f2", "p1", "p2", "p3"} {
		id, c := user(n)
		ids[n] = id
		if n == "f1" || n == "f2" {
			if err := c.Call(ctx, "following/create", map[string]string{"userId": oldID}, nil, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	call := func(c *mk.Client, endpoint string, params any, out any) {
		t.Helper()
		if err := c.Call(ctx, endpoint, params, out, true); err != nil {
			t.Fatalf("%s: %v", endpoint, err)
		}
	}
	call(old, "following/create", map[string]string{"userId": ids["p1"]}, nil)
	call(old, "blocking/create", map[string]string{"userId": ids["p2"]}, nil)
	call(old, "mute/create", map[string]string{"userId": ids["p3"]}, nil)
	var list struct{ ID string }
	call(old, "users/lists/create", map[string]string{"name": "close friends"}, &list)
	call(old, "users/lists/push", map[string]string{"listId": list.ID, "userId": ids["p1"]}, nil)

	c := newCLI(t, "")
	for _, n := range []string{"old", "new"} {
		tok := srv.AddToken(srv.UserID(n), mk.Permissions)
		c.run("login", srv.URL, "--token-file", writeTokenFile(t, tok)).mustSucceed(t)
	}
	from, to := "old@"+srv.Host, "new@"+srv.Host
	plan := c.run("migrate", "plan", "--from", from, "--to", to).mustSucceed(t)
	if !strings.Contains(plan.stdout+plan.stderr, "/settings/migration") {
		t.Fatalf("the plan does not say where the Move is made:\n%s%s", plan.stdout, plan.stderr)
	}

	dir := t.TempDir()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	stderr, wait := c.start(rctx, strings.NewReader(""), "--json", "migrate", "run", "--from", from, "--to", to, "--yes",
		"--verify-window", "2s", "--dir", dir)
	waitFor(t, "ferry to show where the Move is made", func() bool {
		return strings.Contains(stderr.String(), "/settings/migration")
	})
	// The person, in Misskey's web client (its own session token), moves.
	web := mk.NewClient(base, srv.AddToken(oldID, nil), mk.Options{})
	// An app's token is refused, as on Misskey.
	if err := old.Call(ctx, "i/move", map[string]string{"moveToAccount": to}, nil, true); !mk.IsCode(err, "ACCESS_DENIED") {
		t.Fatalf("i/move with an app's token: %v", err)
	}
	call(web, "i/move", map[string]string{"moveToAccount": to}, nil)
	r := wait().mustSucceed(t)
	migrateJSON(t, r.stdout, "lifeboat", "replay")
	var doc struct {
		Steps  map[string]string `json:"steps"`
		Verify struct {
			Followers, Moved int
		} `json:"verify"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc.Steps["lifeboat"], "graph and archive") || !strings.Contains(doc.Steps["alias"], "added old@") ||
		!strings.Contains(doc.Steps["move"], "moved to new@") || doc.Verify.Followers != 2 || doc.Verify.Moved != 2 {
		t.Fatalf("steps %v, verify %+v\n%s", doc.Steps, doc.Verify, r.stderr)
	}
	t.Logf("steps: %v", doc.Steps)
	if _, err := os.Stat(filepath.Join(dir, "graph", "following_accounts.csv")); err != nil {
		t.Errorf("the lifeboat has no follows: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "archive", "outbox.json")); err != nil {
		t.Errorf("the lifeboat has no archive: %v", err)
	}

	// The new account lists the old one, follows, blocks, mutes and lists
	// what the old one did.
	var me struct {
		ID          string   `json:"id"`
		AlsoKnownAs []string `json:"alsoKnownAs"`
	}
	call(neu, "i", nil, &me)
	if len(me.AlsoKnownAs) != 1 || me.AlsoKnownAs[0] != oldID {
		t.Errorf("alsoKnownAs = %v, want [%s]", me.AlsoKnownAs, oldID)
	}
	var rel []struct {
		ID                               string
		IsFollowing, IsBlocking, IsMuted bool
	}
	call(neu, "users/relation", map[string]any{"userId": []string{ids["p1"], ids["p2"], ids["p3"]}}, &rel)
	if len(rel) != 3 || !rel[0].IsFollowing || !rel[1].IsBlocking || !rel[2].IsMuted {
		t.Errorf("relations after the replay: %+v", rel)
	}
	var lists []struct {
		Name    string
		UserIDs []string
	}
	call(neu, "users/lists/list", nil, &lists)
	if len(lists) != 1 || lists[0].Name != "close friends" || len(lists[0].UserIDs) != 1 || lists[0].UserIDs[0] != ids["p1"] {
		t.Errorf("lists after the replay: %+v", lists)
	}
	// A second run does nothing again: every step is done.
	again := c.run("--json", "migrate", "run", "--from", from, "--to", to, "--yes", "--dir", dir).mustSucceed(t)
	if strings.Contains(again.stderr, "== move") {
		t.Errorf("the second run sent the Move again:\n%s", again.stderr)
	}
}
