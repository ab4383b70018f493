package main

import (
	"fmt"
	"image/color"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/fakemisskey"
	"github.com/fedi-ferry/ferry/internal/testenv"
	mk "github.com/fedi-ferry/ferry/misskey"
	"github.com/fedi-ferry/ferry/post"
)

// End-to-end tests between a Misskey account (fakemisskey: no real
// Misskey can run here) and a real GoToSocial account, with `ferry
// mirror`.

// Misskey → GoToSocial: a note with a content warning and an image with
// alt text, a self-reply kept as a thread, a delete propagated.
func TestE2EMirrorMisskeyToGoToSocial(t *testing.T) {
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	b := mirUser(t, in)
	c := newCLI(t, env.CAFile)
	hb := mirLogin(t, c, in, b)
	_, hm, origin, _ := mkAccount(t, c, fakemisskey.Config{})
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "misskey-to-gts"
source = { type = "account", account = "%s" }

[[route.sink]]
account = "%s"
`, hm, hb))
	c.run("--config", cfg, "config", "check").mustSucceed(t)
	mirror := func() { t.Helper(); c.run("--config", cfg, "mirror").mustSucceed(t) }
	ctx := t.Context()
	note := func(p mk.NoteParams) string {
		t.Helper()
		if p.Visibility == "" {
			p.Visibility = "public"
		}
		n, err := origin.CreateNote(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return n.ID
	}
	note(mk.NoteParams{Text: "before the first run"})
	mirror()
	if n := len(mirStatuses(t, b)); n != 0 {
		t.Fatalf("the first run posted %d", n)
	}

	const alt = "a green square on Misskey"
	f, err := origin.UploadFile(ctx, "green.png", mirPNG(t, color.RGBA{G: 200, A: 255}), alt, true)
	if err != nil {
		t.Fatal(err)
	}
	root := note(mk.NoteParams{Text: "A **thread** from Misskey $[spin whee] #ferry", CW: "squares", FileIDs: []string{f.ID}})
	second := note(mk.NoteParams{Text: "and its second note", ReplyID: root})
	mirror()
	mirror()
	sts := mirStatuses(t, b)
	if len(sts) != 2 {
		t.Fatalf("GoToSocial has %d statuses, want 2", len(sts))
	}
	c2, c1 := sts[0], sts[1] // newest first
	if txt := mirText(c1); !strings.Contains(txt, "A thread from Misskey whee") || strings.Contains(txt, "$[") || strings.Contains(txt, "**") {
		t.Errorf("the first copy's text: %q", txt)
	}
	if c1.SpoilerText != "squares" || !c1.Sensitive || len(c1.MediaAttachments) != 1 || c1.MediaAttachments[0].Description != alt {
		t.Errorf("the first copy: cw %q sensitive %v media %+v", c1.SpoilerText, c1.Sensitive, c1.MediaAttachments)
	}
	if c2.InReplyToID != c1.ID || mirText(c2) != "and its second note" {
		t.Errorf("the second copy: reply to %s (want %s), %q", c2.InReplyToID, c1.ID, mirText(c2))
	}

	// A delete is noticed among the notes read again: a later note puts
	// the deleted one inside the window.
	note(mk.NoteParams{Text: "a later note"})
	mirror()
	if err := origin.DeleteNote(ctx, second); err != nil {
		t.Fatal(err)
	}
	mirror()
	var gone error
	waitFor(t, "the copy of the deleted note to go", func() bool {
		gone = b.API(ctx, http.MethodGet, "/api/v1/statuses/"+c2.ID, nil, nil)
		return gone != nil
	})
	if g := gtsTexts(t, b); len(g) != 2 || g["a later note"] != 1 {
		t.Errorf("GoToSocial has %v after the delete", g)
	}
}

// GoToSocial → Misskey: the same, the other way.
func TestE2EMirrorGoToSocialToMisskey(t *testing.T) {
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	a := mirUser(t, in)
	c := newCLI(t, env.CAFile)
	ha := mirLogin(t, c, in, a)
	_, hm, dest, _ := mkAccount(t, c, fakemisskey.Config{})
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "gts-to-misskey"
source = { type = "account", account = "%s" }

[[route.sink]]
account = "%s"
`, ha, hm))
	c.run("--config", cfg, "config", "check").mustSucceed(t)
	mirror := func() { t.Helper(); c.run("--config", cfg, "mirror").mustSucceed(t) }
	origin := mirSinkFor(t, env, in, a)
	mirPublish(t, origin, post.Post{Text: "before the first run", Visibility: post.Public}, "")
	mirror()
	if n := len(mkNotes(t, dest)); n != 0 {
		t.Fatalf("the first run posted %d notes", n)
	}
	img := filepath.Join(t.TempDir(), "red.png")
	if err := os.WriteFile(img, mirPNG(t, color.RGBA{R: 255, A: 255}), 0o600); err != nil {
		t.Fatal(err)
	}
	first := mirPublish(t, origin, post.Post{Text: "A thread about squares", Summary: "shapes", Sensitive: true,
		Visibility: post.Public, Media: []post.Media{{Path: img, Description: "a red square"}}}, "")
	second := mirPublish(t, origin, post.Post{Text: "Second post of the thread", Visibility: post.Public}, first)
	mirror()
	mirror()
	ns := mkNotes(t, dest)
	if len(ns) != 2 {
		t.Fatalf("Misskey has %d notes, want 2", len(ns))
	}
	n1, n2 := ns[0], ns[1]
	if mk.Str(n1.Text) != "A thread about squares" || mk.Str(n1.CW) != "shapes" || len(n1.Files) != 1 ||
		mk.Str(n1.Files[0].Comment) != "a red square" || !n1.Files[0].IsSensitive || n1.Visibility != "public" {
		t.Errorf("the first note: %+v", n1)
	}
	if mk.Str(n2.ReplyID) != n1.ID || mk.Str(n2.Text) != "Second post of the thread" {
		t.Errorf("the second note: reply to %q (want %s), %q", mk.Str(n2.ReplyID), n1.ID, mk.Str(n2.Text))
	}

	// A delete on GoToSocial deletes the note.
	if err := a.API(t.Context(), http.MethodDelete, "/api/v1/statuses/"+second, nil, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delete on GoToSocial to take effect", func() bool {
		return a.API(t.Context(), http.MethodGet, "/api/v1/statuses/"+second, nil, nil) != nil
	})
	mirPublish(t, origin, post.Post{Text: "a later post", Visibility: post.Public}, "")
	mirror()
	if _, err := dest.ShowNote(t.Context(), n2.ID); !mk.IsCode(err, "NO_SUCH_NOTE") {
		t.Errorf("the copy of the deleted post: %v", err)
	}
	if n := len(mkNotes(t, dest)); n != 2 {
		t.Errorf("Misskey has %d notes after the delete, want 2", n)
	}
}

// federation is an HTTP client trusting the test servers' CA, for the fake
// Misskey's WebFinger lookups of GoToSocial accounts.
func federation(t *testing.T, caFile string) *http.Client {
	t.Helper()
	roots, err := fedi.LoadRoots(caFile)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: fedi.NewBaseTransport(roots)}
}

// The follow graph exported from GoToSocial imported into Misskey, and
// Misskey's export imported back into another GoToSocial account: the
// same follows on all three, through the same CSV files. (The fake finds
// GoToSocial's accounts by WebFinger as Misskey does, and does not
// federate further: the follows are Misskey's records.)
func TestE2EGraphGoToSocialToMisskeyAndBack(t *testing.T) {
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	ctx := t.Context()
	a, b := mirUser(t, in), mirUser(t, in)
	p1, p2 := mirUser(t, in), mirUser(t, in)
	for _, p := range []*testenv.User{p1, p2} {
		if _, err := a.Follow(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	c := newCLI(t, env.CAFile)
	ha, hb := mirLogin(t, c, in, a), mirLogin(t, c, in, b)
	mks, hm, mkc, _ := mkAccount(t, c, fakemisskey.Config{Federation: federation(t, env.CAFile)})

	fromGTS := filepath.Join(t.TempDir(), "gts")
	c.run("export", ha, "--out", fromGTS, "--what", "following").mustSucceed(t)
	c.run("import", hm, fromGTS).mustSucceed(t)
	me, err := mkc.I(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A follow of a remote user is a request until its server accepts
	// (the fake accepts after its RemoteAccept delay).
	got := map[string]bool{}
	for deadline := time.Now().Add(10 * time.Second); len(got) < 2 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var follows []struct {
			Followee mk.User `json:"followee"`
		}
		if err := mkc.Call(ctx, "users/following", map[string]any{"userId": me.ID, "limit": 100}, &follows, false); err != nil {
			t.Fatal(err)
		}
		got = map[string]bool{}
		for _, f := range follows {
			got[f.Followee.Username+"@"+mk.Str(f.Followee.Host)] = true
		}
	}
	if len(got) != 2 || !got[p1.Acct] || !got[p2.Acct] {
		t.Fatalf("Misskey follows %v, want %s and %s", got, p1.Acct, p2.Acct)
	}

	fromMisskey := filepath.Join(t.TempDir(), "misskey")
	c.run("export", hm, "--out", fromMisskey, "--what", "following").mustSucceed(t)
	csv, err := os.ReadFile(filepath.Join(fromMisskey, "following_accounts.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(csv), "Account address,Show boosts,Notify on new posts,Languages\n") ||
		!strings.Contains(string(csv), p1.Acct+",true,false,") || !strings.Contains(string(csv), p2.Acct+",true,false,") {
		t.Fatalf("Misskey's export:\n%s", csv)
	}
	c.run("import", hb, fromMisskey).mustSucceed(t)
	for _, p := range []*testenv.User{p1, p2} {
		id, err := b.Resolve(ctx, p.Acct)
		if err != nil {
			t.Fatal(err)
		}
		rel, err := b.Relationship(ctx, id)
		if err != nil || !rel.Following {
			t.Errorf("%s does not follow %s after the import from Misskey: %+v %v", hb, p.Acct, rel, err)
		}
	}
	// A second import, even a fresh one, follows no one again.
	before := mks.Calls("following/create")
	c.run("import", hm, fromGTS, "--fresh").mustSucceed(t)
	if n := mks.Calls("following/create"); n != before {
		t.Errorf("the second import sent %d follows", n-before)
	}
}

// `ferry archive` of a Misskey account, searched with `ferry archive
// search` and published on a GoToSocial account with `ferry archive
// publish`: notes with their warning, MFM as text, the image with its alt
// text, the self-thread.
func TestE2EArchiveMisskeyPublishOnGoToSocial(t *testing.T) {
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	b := mirUser(t, in)
	c := newCLI(t, env.CAFile)
	hb := mirLogin(t, c, in, b)
	_, hm, mkc, _ := mkAccount(t, c, fakemisskey.Config{})
	ctx := t.Context()
	f, err := mkc.UploadFile(ctx, "blue.png", mirPNG(t, color.RGBA{B: 200, A: 255}), "a blue square from Misskey", false)
	if err != nil {
		t.Fatal(err)
	}
	root, err := mkc.CreateNote(ctx, mk.NoteParams{Text: "An **archived** thread $[rainbow colourful]", CW: "squares", FileIDs: []string{f.ID}, Visibility: "public"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mkc.CreateNote(ctx, mk.NoteParams{Text: "its archived reply", ReplyID: root.ID, Visibility: "public"}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "archive")
	r := c.run("--json", "archive", hm, "--out", dir).mustSucceed(t)
	if !strings.Contains(r.stdout, `"new_posts": 2`) && !strings.Contains(r.stdout, `"new_posts":2`) {
		t.Fatalf("archive: %s", r.stdout)
	}
	srch := c.run("archive", "search", dir, "colourful").mustSucceed(t)
	if !strings.Contains(srch.stdout, "An archived thread") || !strings.Contains(srch.stdout, "colourful") ||
		strings.Contains(srch.stdout, "$[") || strings.Contains(srch.stdout, "**") {
		t.Fatalf("search: %s", srch.stdout)
	}
	c.run("archive", "publish", dir, "--to", hb, "--mode", "repost").mustSucceed(t)
	sts := mirStatuses(t, b)
	if len(sts) != 2 {
		t.Fatalf("GoToSocial has %d statuses, want 2", len(sts))
	}
	reply, first := sts[0], sts[1]
	if !strings.Contains(mirText(first), "An archived thread colourful") || first.SpoilerText != "squares" ||
		len(first.MediaAttachments) != 1 || first.MediaAttachments[0].Description != "a blue square from Misskey" {
		t.Errorf("the first post: %q cw %q media %+v", mirText(first), first.SpoilerText, first.MediaAttachments)
	}
	if reply.InReplyToID != first.ID {
		t.Errorf("the reply answers %s, want %s", reply.InReplyToID, first.ID)
	}
}

// `ferry daemon` mirrors a Misskey account to GoToSocial as notes are
// made, over Misskey's streaming WebSocket (the route polls only every two
// minutes), and a delete the same way.
func TestE2EDaemonStreamsMisskeyToGoToSocial(t *testing.T) {
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	b := mirUser(t, in)
	c := newCLI(t, env.CAFile)
	hb := mirLogin(t, c, in, b)
	srv, hm, mkc, _ := mkAccount(t, c, fakemisskey.Config{})
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "misskey-to-gts"
source = { type = "account", account = "%s" }
schedule = "2m"

[[route.sink]]
account = "%s"
`, hm, hb))
	c.run("--config", cfg, "mirror").mustSucceed(t) // the first run
	d := startMirDaemon(t, ferryBinary(t), c, cfg)
	waitFor(t, "the daemon to stream the Misskey account", func() bool {
		return strings.Contains(d.logText(), "misskey source: streaming")
	})
	ctx := t.Context()
	start := time.Now()
	n, err := mkc.CreateNote(ctx, mk.NoteParams{Text: "streamed from Misskey", Visibility: "public"})
	if err != nil {
		t.Fatal(err)
	}
	took := until(t, "the note on GoToSocial", 30*time.Second, func() bool { return gtsTexts(t, b)["streamed from Misskey"] == 1 })
	t.Logf("Misskey → GoToSocial by the stream in %v", took.Round(time.Millisecond))
	if err := mkc.DeleteNote(ctx, n.ID); err != nil {
		t.Fatal(err)
	}
	until(t, "the copy to be deleted", 30*time.Second, func() bool { return len(gtsTexts(t, b)) == 0 })
	if time.Since(start) > 60*time.Second {
		t.Errorf("streaming took %v: polling, not the stream, carried it", time.Since(start))
	}
	// The server drops the stream (a restart): the daemon connects again
	// and polls once to catch what it missed, so a note made meanwhile
	// arrives too.
	srv.CloseStreams()
	if _, err := mkc.CreateNote(ctx, mk.NoteParams{Text: "made while the stream was down", Visibility: "public"}); err != nil {
		t.Fatal(err)
	}
	took = until(t, "the note made while the stream was down", 60*time.Second, func() bool {
		return gtsTexts(t, b)["made while the stream was down"] == 1
	})
	t.Logf("after the stream dropped, the note arrived in %v", took.Round(time.Millisecond))
	if _, err := mkc.CreateNote(ctx, mk.NoteParams{Text: "streamed again", Visibility: "public"}); err != nil {
		t.Fatal(err)
	}
	until(t, "a note on the new stream", 30*time.Second, func() bool { return gtsTexts(t, b)["streamed again"] == 1 })
}

// A GoToSocial ↔ Misskey pair of routes never loops: a post made on either
// side appears once on the other, and nothing comes back.
func TestE2EMirrorMisskeyTwoWayNoLoop(t *testing.T) {
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	a := mirUser(t, in)
	c := newCLI(t, env.CAFile)
	ha := mirLogin(t, c, in, a)
	_, hm, mkc, _ := mkAccount(t, c, fakemisskey.Config{})
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "gts-to-misskey"
source = { type = "account", account = "%[1]s" }

[[route.sink]]
account = "%[2]s"

[[route]]
name = "misskey-to-gts"
source = { type = "account", account = "%[2]s" }

[[route.sink]]
account = "%[1]s"
`, ha, hm))
	mirror := func() { t.Helper(); c.run("--config", cfg, "mirror").mustSucceed(t) }
	mirror()
	mirPublish(t, mirSinkFor(t, env, in, a), post.Post{Text: "written on GoToSocial", Visibility: post.Public}, "")
	if _, err := mkc.CreateNote(t.Context(), mk.NoteParams{Text: "written on Misskey", Visibility: "public"}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		mirror()
	}
	g := gtsTexts(t, a)
	m := map[string]int{}
	for _, n := range mkNotes(t, mkc) {
		m[mk.Str(n.Text)]++
	}
	if len(g) != 2 || g["written on GoToSocial"] != 1 || g["written on Misskey"] != 1 {
		t.Errorf("GoToSocial: %v, want each post once", g)
	}
	if len(m) != 2 || m["written on GoToSocial"] != 1 || m["written on Misskey"] != 1 {
		t.Errorf("Misskey: %v, want each post once", m)
	}
}

// GoToSocial → Sharkey: a long post is split to the server's note length
// into a self-thread (length = "split"), and an edit on GoToSocial edits
// the note (Sharkey's notes/edit).
func TestE2EMirrorGoToSocialToSharkeySplitAndEdit(t *testing.T) {
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	a := mirUser(t, in)
	c := newCLI(t, env.CAFile)
	ha := mirLogin(t, c, in, a)
	_, hm, dest, _ := mkAccount(t, c, fakemisskey.Config{Flavour: "sharkey", MaxNoteTextLength: 200})
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "gts-to-sharkey"
source = { type = "account", account = "%s" }

[[route.sink]]
account = "%s"
length = "split"
`, ha, hm))
	mirror := func() { t.Helper(); c.run("--config", cfg, "mirror").mustSucceed(t) }
	mirror()
	origin := mirSinkFor(t, env, in, a)
	long := strings.TrimSpace(strings.Repeat("This sentence is exactly forty-six characters. ", 9)) // ~420
	mirPublish(t, origin, post.Post{Text: long, Visibility: post.Public}, "")
	short := mirPublish(t, origin, post.Post{Text: "before the edit", Visibility: post.Public}, "")
	mirror()
	ns := mkNotes(t, dest)
	var parts []mk.Note
	var edited mk.Note
	for _, n := range ns {
		if strings.HasPrefix(mk.Str(n.Text), "This sentence") {
			parts = append(parts, n)
		}
		if mk.Str(n.Text) == "before the edit" {
			edited = n
		}
	}
	if len(parts) < 3 || edited.ID == "" {
		t.Fatalf("notes: %d parts of the long post, edit target %q", len(parts), edited.ID)
	}
	for i, p := range parts {
		if n := len([]rune(mk.Str(p.Text))); n > 200 {
			t.Errorf("part %d has %d characters", i, n)
		}
		if i > 0 && mk.Str(p.ReplyID) != parts[i-1].ID {
			t.Errorf("part %d answers %q, want %s", i, mk.Str(p.ReplyID), parts[i-1].ID)
		}
	}
	if err := a.API(t.Context(), http.MethodPut, "/api/v1/statuses/"+short, url.Values{"status": {"after the edit"}}, nil); err != nil {
		t.Fatal(err)
	}
	mirror()
	got, err := dest.ShowNote(t.Context(), edited.ID)
	if err != nil || mk.Str(got.Text) != "after the edit" || got.UpdatedAt == nil {
		t.Fatalf("after the edit: %q updated %v (%v)", mk.Str(got.Text), got.UpdatedAt, err)
	}
}
