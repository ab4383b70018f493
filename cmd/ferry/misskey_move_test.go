package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/fakemisskey"
	mk "github.com/fedi-ferry/ferry/misskey"
)

// mkMove is a Move between two accounts of one fake Misskey server, as a
// person sets it up: old follows, blocks, mutes and lists people and has
// two followers; both accounts are logged in with ferry (app tokens).
// The fake does not federate, and moves its own users' follows as
// Misskey's AccountMoveService does for local followers.
type mkMove struct {
	srv          *fakemisskey.Server
	c            *ferryCLI
	old, neu     *mk.Client // app tokens
	oldID, newID string
	ids          map[string]string
	from, to     string
}

func newMisskeyMove(t *testing.T, cfg fakemisskey.Config) *mkMove {
	t.Helper()
	srv := fakemisskey.Start(cfg)
	t.Cleanup(srv.Close)
	base, _ := mk.ParseServer(srv.URL)
	ctx := t.Context()
	user := func(name string) (string, *mk.Client) {
		id := srv.AddUser(name, "pw-"+name)
		return id, mk.NewClient(base, srv.AddToken(id, mk.Permissions), mk.Options{})
	}
	m := &mkMove{srv: srv, ids: map[string]string{}}
	m.oldID, m.old = user("old")
	m.newID, m.neu = user("new")
	call := func(c *mk.Client, endpoint string, params any, out any) {
		t.Helper()
		if err := c.Call(ctx, endpoint, params, out, true); err != nil {
			t.Fatalf("%s: %v", endpoint, err)
		}
	}
	for _, n := range []string{"f1", "f2", "p1", "p2", "p3"} {
		id, c := user(n)
		m.ids[n] = id
		if n == "f1" || n == "f2" {
			call(c, "following/create", map[string]string{"userId": m.oldID}, nil)
		}
	}
	call(m.old, "following/create", map[string]string{"userId": m.ids["p1"]}, nil)
	call(m.old, "blocking/create", map[string]string{"userId": m.ids["p2"]}, nil)
	call(m.old, "mute/create", map[string]string{"userId": m.ids["p3"]}, nil)
	var list struct{ ID string }
	call(m.old, "users/lists/create", map[string]string{"name": "close friends"}, &list)
	call(m.old, "users/lists/push", map[string]string{"listId": list.ID, "userId": m.ids["p1"]}, nil)

	m.c = newCLI(t, "")
	for _, n := range []string{"old", "new"} {
		tok := srv.AddToken(srv.UserID(n), mk.Permissions)
		m.c.run("login", srv.URL, "--token-file", writeTokenFile(t, tok)).mustSucceed(t)
	}
	m.from, m.to = "old@"+srv.Host, "new@"+srv.Host
	return m
}

// runArgs are `ferry --json migrate run` for the Move, with more flags.
func (m *mkMove) runArgs(dir string, more ...string) []string {
	return append([]string{"--json", "migrate", "run", "--from", m.from, "--to", m.to, "--yes", "--verify-window", "2s", "--dir", dir}, more...)
}

// checkReplayed checks what the Move and the replay left on the new
// account: the alias, the follows, the block, the mute and the list, and
// the followers that moved.
func (m *mkMove) checkReplayed(t *testing.T, stdout string) {
	t.Helper()
	ctx := t.Context()
	migrateJSON(t, stdout, "replay")
	var doc struct {
		Steps  map[string]string `json:"steps"`
		Verify struct {
			Followers, Moved int
			OldMoved         bool `json:"old_moved"`
		} `json:"verify"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc.Steps["move"], "moved to new@") || doc.Verify.Followers != 2 || doc.Verify.Moved != 2 {
		t.Fatalf("steps %v, verify %+v", doc.Steps, doc.Verify)
	}
	var me struct {
		AlsoKnownAs []string `json:"alsoKnownAs"`
	}
	if err := m.neu.Call(ctx, "i", nil, &me, false); err != nil || len(me.AlsoKnownAs) != 1 || me.AlsoKnownAs[0] != m.oldID {
		t.Errorf("alsoKnownAs = %v, want [%s] (%v)", me.AlsoKnownAs, m.oldID, err)
	}
	var old struct {
		MovedTo string `json:"movedTo"`
	}
	if err := m.old.Call(ctx, "i", nil, &old, false); err != nil || old.MovedTo != m.newID {
		t.Errorf("old account's movedTo = %q, want %s (%v)", old.MovedTo, m.newID, err)
	}
	var rel []struct {
		ID                               string
		IsFollowing, IsBlocking, IsMuted bool
	}
	if err := m.neu.Call(ctx, "users/relation", map[string]any{"userId": []string{m.ids["p1"], m.ids["p2"], m.ids["p3"]}}, &rel, false); err != nil ||
		len(rel) != 3 || !rel[0].IsFollowing || !rel[1].IsBlocking || !rel[2].IsMuted {
		t.Errorf("relations after the replay: %+v %v", rel, err)
	}
	var lists []struct {
		Name    string
		UserIDs []string
	}
	if err := m.neu.Call(ctx, "users/lists/list", nil, &lists, false); err != nil || len(lists) != 1 || lists[0].Name != "close friends" ||
		len(lists[0].UserIDs) != 1 || lists[0].UserIDs[0] != m.ids["p1"] {
		t.Errorf("lists after the replay: %+v %v", lists, err)
	}
}

// noNativeToken checks that the old account's native token (the sign-in's)
// is nowhere ferry writes: its output, its log, its data directory.
func (m *mkMove) noNativeToken(t *testing.T, outputs ...string) {
	t.Helper()
	tok := m.srv.NativeToken(m.oldID)
	if tok == "" {
		t.Fatal("ferry never signed in")
	}
	for _, o := range outputs {
		if strings.Contains(o, tok) {
			t.Fatal("the native token is in ferry's output")
		}
	}
	err := filepath.WalkDir(m.c.dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(tok)) {
			t.Errorf("the native token is stored in %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A Move from one Misskey account to another with `ferry migrate run
// --password-file`: the lifeboat, the alias through i/update, the Move
// through i/move with the native token of a sign-in with the password (an
// app's token is refused there), the replay of follows, blocks, mutes and
// lists, and the followers' check. A second run does nothing again.
func TestMisskeyMoveToMisskeyWithReplay(t *testing.T) {
	m := newMisskeyMove(t, fakemisskey.Config{})
	ctx := t.Context()
	// i/move refuses the app's token, as on Misskey.
	if err := m.old.Call(ctx, "i/move", map[string]string{"moveToAccount": m.to}, nil, true); !mk.IsCode(err, "ACCESS_DENIED") {
		t.Fatalf("i/move with an app's token: %v", err)
	}
	plan := m.c.run("migrate", "plan", "--from", m.from, "--to", m.to).mustSucceed(t)
	for _, want := range []string{"password", `"login" notification`, "captcha"} {
		if !strings.Contains(plan.stdout, want) {
			t.Errorf("the plan does not say %q:\n%s", want, plan.stdout)
		}
	}

	dir := t.TempDir()
	r := m.c.run(m.runArgs(dir, "--password-file", writeSecret(t, "pw-old"))...).mustSucceed(t)
	m.checkReplayed(t, r.stdout)
	if n := m.srv.Calls("i/move"); n != 2 { // the app token's refusal above, and ferry's
		t.Errorf("i/move called %d times", n)
	}
	if m.srv.Logins(m.oldID) != 1 {
		t.Errorf("signed in %d times", m.srv.Logins(m.oldID))
	}
	if _, err := os.Stat(filepath.Join(dir, "archive", "outbox.json")); err != nil {
		t.Errorf("the lifeboat has no archive: %v", err)
	}
	m.noNativeToken(t, r.stdout, r.stderr)
	if strings.Contains(r.stdout+r.stderr, "pw-old") {
		t.Error("the password is in ferry's output")
	}

	again := m.c.run(m.runArgs(dir, "--password-file", writeSecret(t, "pw-old"))...).mustSucceed(t)
	if strings.Contains(again.stderr, "== move") || m.srv.Calls("i/move") != 2 || m.srv.Logins(m.oldID) != 1 {
		t.Errorf("the second run moved again (i/move %d, sign-ins %d):\n%s", m.srv.Calls("i/move"), m.srv.Logins(m.oldID), again.stderr)
	}
}

// The answer of i/move is lost after Misskey made the Move (the fake
// closes the connection): ferry looks at the old account, sees movedTo,
// and goes on without a second i/move.
func TestMisskeyMoveLostAnswer(t *testing.T) {
	m := newMisskeyMove(t, fakemisskey.Config{})
	m.srv.DropAnswers("i/move", 1)
	r := m.c.run(m.runArgs(t.TempDir(), "--password-file", writeSecret(t, "pw-old"))...).mustSucceed(t)
	m.checkReplayed(t, r.stdout)
	if n := m.srv.Calls("i/move"); n != 1 {
		t.Errorf("i/move called %d times, want 1", n)
	}
	if !strings.Contains(r.stderr, "the Move's answer was lost, but "+m.from+" shows it") {
		t.Errorf("ferry does not say what happened:\n%s", r.stderr)
	}
}

// A wrong password: a clear error naming the account, the exit status of
// refused credentials, no Move sent; the same command with the right
// password then finishes the migration.
func TestMisskeyMoveWrongPassword(t *testing.T) {
	m := newMisskeyMove(t, fakemisskey.Config{})
	dir := t.TempDir()
	r := m.c.run(m.runArgs(dir, "--password-file", writeSecret(t, "not-the-password"))...)
	if r.code != exitAuth || !strings.Contains(r.stderr, "sign in as "+m.from) || !strings.Contains(r.stderr, "password is wrong") {
		t.Fatalf("wrong password: exit %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "not-the-password") {
		t.Error("the password is in ferry's output")
	}
	if n := m.srv.Calls("i/move"); n != 0 {
		t.Fatalf("i/move called %d times after a wrong password", n)
	}
	r = m.c.run(m.runArgs(dir, "--password-file", writeSecret(t, "pw-old"))...).mustSucceed(t)
	m.checkReplayed(t, r.stdout)
	if n := m.srv.Calls("i/move"); n != 1 {
		t.Errorf("i/move called %d times", n)
	}
}

// An account with two-factor authentication: the one-time code comes
// from where ferry reads codes (here the first line of standard input,
// which is not a terminal). Without one, the run stops before signing in
// and says how to give it.
func TestMisskeyMoveTwoFactor(t *testing.T) {
	m := newMisskeyMove(t, fakemisskey.Config{})
	const secret = "JBSWY3DPEHPK3PXP"
	m.srv.EnableTwoFactor(m.oldID, secret, false)
	dir := t.TempDir()
	pw := writeSecret(t, "pw-old")
	r := m.c.run(m.runArgs(dir, "--password-file", pw)...)
	if r.code != exitUsage || !strings.Contains(r.stderr, "--otp-file") || m.srv.Calls("signin-flow") != 0 {
		t.Fatalf("no code: exit %d, sign-ins %d\n%s", r.code, m.srv.Calls("signin-flow"), r.stderr)
	}
	code := fakemisskey.TOTP(secret, time.Now())
	r = m.c.runIn(strings.NewReader(code+"\n"), m.runArgs(dir, "--password-file", pw)...).mustSucceed(t)
	m.checkReplayed(t, r.stdout)
	if m.srv.Calls("signin-flow") != 1 || m.srv.Calls("i/move") != 1 {
		t.Errorf("sign-ins %d, i/move %d", m.srv.Calls("signin-flow"), m.srv.Calls("i/move"))
	}
	m.noNativeToken(t, r.stdout, r.stderr)
}

// A server that asks for a captcha at sign-in: ferry cannot sign in, says
// why, shows the web client's page and waits; the person moves there
// (the web client's own token) and the migration finishes.
func TestMisskeyMoveCaptchaGuided(t *testing.T) {
	m := newMisskeyMove(t, fakemisskey.Config{Captcha: "hcaptcha"})
	rctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	stderr, wait := m.c.start(rctx, strings.NewReader(""), m.runArgs(t.TempDir(), "--password-file", writeSecret(t, "pw-old"))...)
	waitFor(t, "ferry to show where the Move is made", func() bool {
		return strings.Contains(stderr.String(), "/settings/migration")
	})
	if !strings.Contains(stderr.String(), "captcha (hcaptcha)") {
		t.Errorf("ferry does not say why it cannot send the Move:\n%s", stderr.String())
	}
	// The person, in Misskey's web client (its own session token), moves.
	base, _ := mk.ParseServer(m.srv.URL)
	web := mk.NewClient(base, m.srv.AddToken(m.oldID, nil), mk.Options{})
	if err := web.Call(t.Context(), "i/move", map[string]string{"moveToAccount": m.to}, nil, true); err != nil {
		t.Fatal(err)
	}
	r := wait().mustSucceed(t)
	m.checkReplayed(t, r.stdout)
	if n := m.srv.Calls("signin-flow"); n != 0 {
		t.Errorf("ferry tried to sign in %d times under a captcha", n)
	}
}
