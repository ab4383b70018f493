package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/fakemastodon"
	"github.com/fedi-ferry/ferry/internal/fakemisskey"
	mk "github.com/fedi-ferry/ferry/misskey"
)

// Misskey accounts through the command line, against fakemisskey (a real
// Misskey cannot run here; see internal/fakemisskey).

// mkAccount starts a fake Misskey server with cfg, makes the user "me"
// there with a token of every permission ferry asks for, and logs c in;
// it returns the server, the handle and a client of the account for the
// test's own reading and writing.
func mkAccount(t *testing.T, c *ferryCLI, cfg fakemisskey.Config) (*fakemisskey.Server, string, *mk.Client, string) {
	t.Helper()
	srv := fakemisskey.Start(cfg)
	t.Cleanup(srv.Close)
	uid := srv.AddUser("me", "secret")
	tok := srv.AddToken(uid, mk.Permissions)
	c.run("login", srv.URL, "--token-file", writeTokenFile(t, tok)).mustSucceed(t)
	base, err := mk.ParseServer(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return srv, "me@" + srv.Host, mk.NewClient(base, tok, mk.Options{}), tok
}

// mkNotes returns the account's notes, oldest first.
func mkNotes(t *testing.T, c *mk.Client) []mk.Note {
	t.Helper()
	me, err := c.I(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ns, err := c.UserNotes(t.Context(), mk.UserNotesParams{UserID: me.ID, Limit: 100, WithReplies: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(ns)-1; i < j; i, j = i+1, j-1 {
		ns[i], ns[j] = ns[j], ns[i]
	}
	return ns
}

// Token login records the platform and software; accounts check shows the
// limits from api/meta; a revoked token then exits 4.
func TestMisskeyLoginCheckAndRevokedToken(t *testing.T) {
	c := newCLI(t, "")
	srv := fakemisskey.Start(fakemisskey.Config{Flavour: "sharkey", Version: "2024.9.1", MaxNoteTextLength: 5000})
	t.Cleanup(srv.Close)
	tok := srv.AddToken(srv.AddUser("me", "pw"), mk.Permissions)
	r := c.run("--json", "login", srv.URL, "--token-file", writeTokenFile(t, tok)).mustSucceed(t)
	var out map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out["handle"] != "me@"+srv.Host || out["software"] != "sharkey" {
		t.Fatalf("login --json: %q (%v)", r.stdout, err)
	}
	if strings.Contains(r.stdout+r.stderr, tok) {
		t.Fatal("the token was printed")
	}
	r = c.run("--json", "accounts", "check", "me@"+srv.Host).mustSucceed(t)
	var chk []struct {
		Platform   string `json:"platform"`
		Software   string `json:"software"`
		LimitsFrom string `json:"limits_from"`
		TokenOK    bool   `json:"token_ok"`
		Limits     struct{ MaxChars, MaxMedia int }
	}
	if err := json.Unmarshal([]byte(r.stdout), &chk); err != nil || len(chk) != 1 {
		t.Fatalf("accounts check --json: %q (%v)", r.stdout, err)
	}
	if k := chk[0]; k.Platform != "misskey" || k.Software != "sharkey" || !k.TokenOK || k.LimitsFrom != "api/meta" ||
		k.Limits.MaxChars != 5000 || k.Limits.MaxMedia != 16 {
		t.Fatalf("accounts check: %+v", k)
	}
	srv.RevokeToken(tok)
	r = c.run("accounts", "check", "me@"+srv.Host)
	if r.code != exitAuth {
		t.Fatalf("a revoked token: exit %d, want %d\n%s%s", r.code, exitAuth, r.stdout, r.stderr)
	}
}

// A server whose nodeinfo says Misskey but whose API answers HTML is named
// as such at login.
func TestMisskeyServerAnsweringHTML(t *testing.T) {
	c := newCLI(t, "")
	srv := fakemisskey.Start(fakemisskey.Config{HTMLAPI: true})
	t.Cleanup(srv.Close)
	r := c.run("login", srv.URL, "--token-file", writeTokenFile(t, "whatever"))
	if r.code == 0 || !strings.Contains(r.stderr, "text/html") || !strings.Contains(r.stderr, "misskey") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}

// A feed mirrored to Misskey: the first run posts nothing (no flood), a
// new item is posted once with its image in the drive.
func TestMisskeyFeedToMisskeyOnce(t *testing.T) {
	c := newCLI(t, "")
	_, handle, client, _ := mkAccount(t, c, fakemisskey.Config{})
	f := newMirFeed(t)
	t0 := time.Now().Add(-2 * time.Hour)
	items := []mirRSSItem{
		{GUID: "old-1", Title: "Old one", Link: f.srv.URL + "/old-1", HTML: "<p>old</p>", At: t0},
		{GUID: "old-2", Title: "Old two", Link: f.srv.URL + "/old-2", HTML: "<p>old</p>", At: t0.Add(time.Minute)},
	}
	f.set(f.rssDoc(items...))
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "rss-to-misskey"
source = { type = "feed", url = "%s/feed.xml" }

[[route.sink]]
account = "%s"
`, f.srv.URL, handle))
	c.run("--config", cfg, "config", "check").mustSucceed(t)
	c.run("--config", cfg, "mirror").mustSucceed(t)
	if n := len(mkNotes(t, client)); n != 0 {
		t.Fatalf("the first run posted %d notes", n)
	}
	items = append(items, mirRSSItem{GUID: "new-1", Title: "New one", Link: f.srv.URL + "/new-1", HTML: "<p>fresh <b>news</b></p>", At: time.Now(), Image: true})
	f.set(f.rssDoc(items...))
	c.run("--config", cfg, "mirror").mustSucceed(t)
	c.run("--config", cfg, "mirror").mustSucceed(t)
	ns := mkNotes(t, client)
	if len(ns) != 1 {
		t.Fatalf("%d notes after the new item, want 1", len(ns))
	}
	if txt := mk.Str(ns[0].Text); !strings.Contains(txt, "New one") || !strings.Contains(txt, "/new-1") || len(ns[0].Files) != 1 || ns[0].Visibility != "public" {
		t.Fatalf("the note: %q, %d files, %s", txt, len(ns[0].Files), ns[0].Visibility)
	}
}

// A file the drive refuses (a type the server does not take) goes in the
// note as a link; the route goes on and the next item is posted too.
func TestMisskeyDriveRefusesFile(t *testing.T) {
	c := newCLI(t, "")
	_, handle, client, _ := mkAccount(t, c, fakemisskey.Config{AllowedTypes: []string{"video/*"}})
	f := newMirFeed(t)
	f.png = mirPNG(t, color.RGBA{B: 200, A: 255})
	f.set(f.rssDoc())
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "rss-to-misskey"
source = { type = "feed", url = "%s/feed.xml" }

[[route.sink]]
account = "%s"
`, f.srv.URL, handle))
	c.run("--config", cfg, "mirror").mustSucceed(t)
	f.set(f.rssDoc(mirRSSItem{GUID: "img", Title: "With a picture", Link: f.srv.URL + "/img", HTML: "<p>picture</p>", At: time.Now(), Image: true}))
	c.run("--config", cfg, "mirror").mustSucceed(t)
	f.set(f.rssDoc(
		mirRSSItem{GUID: "img", Title: "With a picture", Link: f.srv.URL + "/img", HTML: "<p>picture</p>", At: time.Now().Add(-time.Minute), Image: true},
		mirRSSItem{GUID: "next", Title: "Next", Link: f.srv.URL + "/next", HTML: "<p>next item</p>", At: time.Now()}))
	c.run("--config", cfg, "mirror").mustSucceed(t)
	ns := mkNotes(t, client)
	if len(ns) != 2 {
		t.Fatalf("%d notes, want 2", len(ns))
	}
	if txt := mk.Str(ns[0].Text); len(ns[0].Files) != 0 || !strings.Contains(txt, f.srv.URL+"/img.png") {
		t.Fatalf("the refused file's note: %q with %d files", txt, len(ns[0].Files))
	}
	if !strings.Contains(mk.Str(ns[1].Text), "/next") {
		t.Fatalf("the next note: %q", mk.Str(ns[1].Text))
	}
}

// `ferry login` with MiAuth, as a person does it: ferry prints the MiAuth
// page; with the browser coming back to ferry's loopback listener, or
// (--oob) with the person pressing Allow and then pasting the address
// into ferry.
func TestMisskeyMiAuthLogin(t *testing.T) {
	for _, oob := range []bool{false, true} {
		t.Run(map[bool]string{false: "loopback", true: "pasted"}[oob], func(t *testing.T) {
			srv := fakemisskey.Start(fakemisskey.Config{Flavour: "sharkey"})
			t.Cleanup(srv.Close)
			srv.AddUser("me", "pw")
			c := newCLI(t, "")
			stdin, stdinW := io.Pipe()
			defer stdinW.Close()
			args := []string{"login", srv.URL, "--no-browser", "--callback-port", "0"}
			if oob {
				args = append(args, "--oob")
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			stderr, wait := c.start(ctx, stdin, args...)
			var page string
			waitFor(t, "ferry to print the MiAuth page", func() bool {
				for _, f := range strings.Fields(stderr.String()) {
					if strings.Contains(f, "/miauth/") {
						page = f
						return true
					}
				}
				return false
			})
			u, err := url.Parse(page)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if q.Get("name") != "ferry" || !strings.Contains(q.Get("permission"), "write:notes") || (q.Get("callback") == "") == !oob {
				t.Fatalf("MiAuth page %s", page)
			}
			// The person opens the page and presses Allow.
			resp, err := http.Get(page)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			back, err := srv.Approve(strings.TrimPrefix(u.Path, "/miauth/"), "me")
			if err != nil {
				t.Fatal(err)
			}
			if oob {
				fmt.Fprintln(stdinW, page)
			} else {
				resp, err := http.Get(back) // the browser comes back to ferry
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			r := wait().mustSucceed(t)
			if !strings.Contains(r.stdout, "logged in as me@"+srv.Host+" (sharkey") {
				t.Fatalf("login: %s\n%s", r.stdout, r.stderr)
			}
			c.run("accounts", "check", "me@"+srv.Host).mustSucceed(t)
		})
	}
}

// A route's policies reach the Misskey platform: local_only = true on a
// sink posts local-only notes, quotes = "skip" on the source leaves quote
// notes out; a sink whose platform has no local-only posts is refused
// with the reason, naming the route and the account.
func TestMisskeyLocalOnlyAndQuotesByPolicy(t *testing.T) {
	c := newCLI(t, "")
	_, from, src, _ := mkAccount(t, c, fakemisskey.Config{})
	_, to, dst, _ := mkAccount(t, c, fakemisskey.Config{})
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "mk-to-mk"
source = { type = "account", account = "%s", quotes = "skip" }

[[route.sink]]
account = "%s"
local_only = true
`, from, to))
	c.run("--config", cfg, "mirror").mustSucceed(t) // the first run: nothing yet
	ctx := t.Context()
	plain, err := src.CreateNote(ctx, mk.NoteParams{Text: "a plain note", Visibility: "public"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.CreateNote(ctx, mk.NoteParams{Text: "a quote of it", RenoteID: plain.ID, Visibility: "public"}); err != nil {
		t.Fatal(err)
	}
	c.run("--config", cfg, "mirror").mustSucceed(t)
	ns := mkNotes(t, dst)
	if len(ns) != 1 || mk.Str(ns[0].Text) != "a plain note" || !ns[0].LocalOnly {
		for _, n := range ns {
			t.Logf("copy: %q local-only %v", mk.Str(n.Text), n.LocalOnly)
		}
		t.Fatalf("%d copies; want the plain note alone, local-only", len(ns))
	}

	_, masto := loginFake(t, c, fakemastodon.Config{})
	bad := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "mk-to-masto"
source = { type = "account", account = "%s" }

[[route.sink]]
account = "%s"
local_only = true
`, from, masto))
	r := c.run("--config", bad, "mirror")
	if r.code == 0 || !strings.Contains(r.stderr, "route mk-to-masto, sink "+masto+": local_only: the Mastodon API has no local-only posts") {
		t.Fatalf("local_only on a Mastodon-API sink: exit %d\n%s", r.code, r.stderr)
	}
}

// Logging in again to the same account keeps its short name, which routes
// use: another --name replaces it only with --rename, and the output says
// which happened. (Seen with a real Misskey: a second MiAuth login with
// another --name used to replace the name silently.)
func TestMisskeyLoginAgainKeepsTheName(t *testing.T) {
	c := newCLI(t, "")
	srv := fakemisskey.Start(fakemisskey.Config{})
	t.Cleanup(srv.Close)
	uid := srv.AddUser("me", "pw")
	c.run("login", srv.URL, "--name", "mk", "--token-file", writeTokenFile(t, srv.AddToken(uid, mk.Permissions))).mustSucceed(t)
	r := c.run("login", srv.URL, "--name", "mkm", "--token-file", writeTokenFile(t, srv.AddToken(uid, mk.Permissions))).mustSucceed(t)
	if !strings.Contains(r.stdout, `kept the name "mk"`) || !strings.Contains(r.stdout, "--rename") {
		t.Fatalf("second login with another --name: %q", r.stdout)
	}
	c.run("accounts", "check", "mk").mustSucceed(t)
	c.run("login", srv.URL, "--token-file", writeTokenFile(t, srv.AddToken(uid, mk.Permissions))).mustSucceed(t)
	c.run("accounts", "check", "mk").mustSucceed(t)
	r = c.run("--json", "login", srv.URL, "--name", "mkm", "--rename", "--token-file", writeTokenFile(t, srv.AddToken(uid, mk.Permissions))).mustSucceed(t)
	var out map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out["name"] != "mkm" || !strings.Contains(out["note"], "renamed") {
		t.Fatalf("login --rename --json: %q (%v)", r.stdout, err)
	}
	c.run("accounts", "check", "mkm").mustSucceed(t)
	if r := c.run("accounts", "check", "mk"); r.code == exitOK {
		t.Fatal("the old name still resolves after --rename")
	}
}
