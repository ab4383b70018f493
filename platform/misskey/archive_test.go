package misskey_test

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/internal/fakemisskey"
	mk "github.com/fedi-ferry/ferry/misskey"
	"github.com/fedi-ferry/ferry/platform"
	srcarchive "github.com/fedi-ferry/ferry/sources/archive"
	"github.com/fedi-ferry/ferry/state"
)

// An archive of a Misskey account in ferry's archive layout: notes (MFM
// as HTML, warnings, threads, polls, renotes), their files with alt text
// downloaded, the profile, favourites as bookmarks; read back by the
// archive reader; a second run adds only what is new.
func TestArchiveMisskeyAccount(t *testing.T) {
	srv := fakemisskey.Start(fakemisskey.Config{})
	defer srv.Close()
	uid := srv.AddUser("alice", "pw")
	tok := srv.AddToken(uid, mk.Permissions)
	base, _ := mk.ParseServer(srv.URL)
	c := mk.NewClient(base, tok, mk.Options{})
	ctx := t.Context()
	var img bytes.Buffer
	png.Encode(&img, image.NewRGBA(image.Rect(0, 0, 4, 4)))
	f, err := c.UploadFile(ctx, "sq.png", img.Bytes(), "a tiny square", false)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := c.CreateNote(ctx, mk.NoteParams{Text: "**bold** start $[x2 big] #ferry", CW: "warned", FileIDs: []string{f.ID}})
	reply, _ := c.CreateNote(ctx, mk.NoteParams{Text: "second", ReplyID: root.ID, Visibility: "followers"})
	exp := int64(4102444800000)
	c.CreateNote(ctx, mk.NoteParams{Text: "which?", Poll: &mk.PollParams{Choices: []string{"a", "b"}, ExpiresAt: &exp}})
	c.CreateNote(ctx, mk.NoteParams{RenoteID: root.ID})
	if err := c.Call(ctx, "notes/favorites/create", map[string]string{"noteId": root.ID}, nil, true); err != nil {
		t.Fatal(err)
	}

	reg := registry(t)
	p, info, err := reg.Detect(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := platform.Login(ctx, p, info, platform.LoginRequest{Server: srv.URL, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	sess, _ := p.Open(acct)
	arc := sess.(platform.Archiver)
	dir := t.TempDir()
	st := state.TestStore(t)
	res, err := arc.Update(ctx, platform.ArchiveOptions(acct.Handle, st, dir, false, 2, "", nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.NewPosts != 4 || res.Bookmarks != 1 || res.MediaDownloaded != 1 || len(res.MediaFailed) != 0 {
		t.Fatalf("first run: %+v", res.Summary)
	}
	// Misskey's default avatar (/identicon/…, no extension) is a PNG.
	for _, name := range []string{"outbox.json", "actor.json", "bookmarks.json", "avatar.png"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	page, err := srcarchive.NewSource(dir, srcarchive.SourceOptions{}).Fetch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var got, gotReply, boost bool
	for _, q := range page.Posts {
		switch {
		case strings.Contains(q.HTML, "<b>bold</b>"):
			got = q.Summary == "warned" && len(q.Media) == 1 && q.Media[0].Description == "a tiny square" &&
				!strings.Contains(q.HTML, "$[") && q.Media[0].Path != ""
			if got {
				if _, err := os.Stat(q.Media[0].Path); err != nil {
					t.Errorf("the file was not downloaded: %v", err)
				}
			}
		case q.Text == "second":
			gotReply = q.InReplyTo != "" && q.Visibility == "private"
		case q.IsBoost():
			boost = strings.HasSuffix(q.BoostOf, "/notes/"+root.ID)
		}
	}
	if !got || !gotReply || !boost {
		for _, q := range page.Posts {
			t.Logf("%+v", q)
		}
		t.Fatalf("archive read back: note %v, reply %v, renote %v", got, gotReply, boost)
	}
	// A second run finds nothing new; a new note is added.
	c.CreateNote(ctx, mk.NoteParams{Text: "later"})
	res, err = arc.Update(ctx, platform.ArchiveOptions(acct.Handle, st, dir, false, 2, "", nil))
	if err != nil || res.NewPosts != 1 {
		t.Fatalf("second run: %+v, %v", res.Summary, err)
	}
	// A deleted note is kept and marked by a refresh.
	c.DeleteNote(ctx, reply.ID)
	res, err = arc.Update(ctx, platform.ArchiveOptions(acct.Handle, st, dir, true, 2, "", nil))
	if err != nil || res.DeletedPosts != 1 {
		t.Fatalf("refresh: %+v, %v", res.Summary, err)
	}
	// Misskey's notesCount still counts the deleted note: no warning that
	// posts are missing.
	if len(res.Warnings) != 0 {
		t.Errorf("refresh warned: %q", res.Warnings)
	}
}
