package misskey_test

import (
	"context"
	"errors"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/fedi-ferry/ferry/internal/fakemisskey"
	"github.com/fedi-ferry/ferry/misskey"
	mk "github.com/fedi-ferry/ferry/misskey"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	sinkmk "github.com/fedi-ferry/ferry/sinks/misskey"
	"github.com/fedi-ferry/ferry/sinks/sinktest"
)

// inspector reads notes back with notes/show, mapping them to what the
// suite compares: Misskey's visibilities to ferry's, a sensitive file or
// a content warning to Sensitive, files' comments to alt text.
type inspector struct{ c *misskey.Client }

func (in inspector) Get(ctx context.Context, id string) (sinktest.Published, error) {
	n, err := in.c.ShowNote(ctx, id)
	if misskey.IsCode(err, "NO_SUCH_NOTE") {
		return sinktest.Published{}, sinktest.ErrGone
	}
	if err != nil {
		return sinktest.Published{}, err
	}
	vis := map[string]post.Visibility{"public": post.Public, "home": post.Unlisted, "followers": post.Private, "specified": post.Direct}
	p := sinktest.Published{Text: misskey.Str(n.Text), Summary: misskey.Str(n.CW), Sensitive: n.CW != nil,
		Visibility: vis[n.Visibility], ReplyTo: misskey.Str(n.ReplyID), CreatedAt: misskey.Time(n.CreatedAt)}
	for _, f := range n.Files {
		p.Sensitive = p.Sensitive || f.IsSensitive
		p.Media = append(p.Media, post.Media{URL: f.URL, MIMEType: f.Type, Description: misskey.Str(f.Comment)})
	}
	if n.Poll != nil {
		for _, c := range n.Poll.Choices {
			p.Poll = append(p.Poll, c.Text)
		}
	}
	return p, nil
}

func account(t *testing.T, cfg fakemisskey.Config) (*fakemisskey.Server, *misskey.Client, string) {
	t.Helper()
	srv := fakemisskey.Start(cfg)
	t.Cleanup(srv.Close)
	uid := srv.AddUser("alice", "pw")
	base, _ := misskey.ParseServer(srv.URL)
	return srv, misskey.NewClient(base, srv.AddToken(uid, misskey.Permissions), misskey.Options{}), uid
}

func TestSinkContractFakeMisskey(t *testing.T) {
	_, c, _ := account(t, fakemisskey.Config{})
	s := sinkmk.New(sinkmk.Options{Client: c})
	if _, ok := s.(sinks.Editor); ok {
		t.Fatal("a Misskey sink offers edits")
	}
	sinktest.Run(t, s, inspector{c}, sinktest.Options{Polls: true, NoFocus: true, NoLanguage: true})
}

func TestSinkContractFakeSharkeyEdits(t *testing.T) {
	_, c, _ := account(t, fakemisskey.Config{Flavour: "sharkey"})
	s := sinkmk.New(sinkmk.Options{Client: c, CanEdit: true})
	if _, ok := s.(sinks.Editor); !ok {
		t.Fatal("a Sharkey sink offers no edits")
	}
	sinktest.Run(t, s, inspector{c}, sinktest.Options{Polls: true, NoFocus: true, NoLanguage: true})
}

func writePNG(t *testing.T, pad int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.png")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, image.NewRGBA(image.Rect(0, 0, 16, 16))); err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, pad))
	f.Close()
	return p
}

// A file the drive refuses (too large, a type it does not take) goes in
// the note as a link, and the note is published.
func TestDriveRefusalBecomesLink(t *testing.T) {
	srv, c, _ := account(t, fakemisskey.Config{MaxFileSize: 1_000_000, AllowedTypes: []string{"image/*"}})
	media := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".txt") {
			w.Write([]byte("just some text, not an image"))
			return
		}
		http.ServeFile(w, r, writePNG(t, 1_100_000))
	}))
	defer media.Close()
	s := sinkmk.New(sinkmk.Options{Client: c})
	ctx := t.Context()
	ref, err := s.Publish(ctx, sinks.Draft{Key: "k", Post: post.Post{Text: "three files", Visibility: post.Public, Media: []post.Media{
		{Path: writePNG(t, 0), Description: "small, kept"},
		{URL: media.URL + "/big.png", Description: "too large"},
		{URL: media.URL + "/notes.txt", Description: "wrong type"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := inspector{c}.Get(ctx, ref.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Media) != 1 || got.Media[0].Description != "small, kept" ||
		!strings.Contains(got.Text, media.URL+"/big.png") || !strings.Contains(got.Text, media.URL+"/notes.txt") {
		t.Fatalf("published %+v", got)
	}
	// The too-large file was never sent: the sink knew the drive's limit.
	if n := srv.Calls("drive/files/create"); n != 2 {
		t.Errorf("drive/files/create called %d times, want 2 (small, then the wrong type)", n)
	}
}

func TestVisibilityNeverWidens(t *testing.T) {
	for v, want := range map[post.Visibility]string{post.Public: "public", post.Unlisted: "home", post.Private: "followers",
		post.Direct: "specified", "": "specified", "weird": "specified"} {
		if got := sinkmk.Visibility(v); got != want {
			t.Errorf("Visibility(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestLongWarningIsCut(t *testing.T) {
	_, c, _ := account(t, fakemisskey.Config{})
	s := sinkmk.New(sinkmk.Options{Client: c})
	ref, err := s.Publish(t.Context(), sinks.Draft{Post: post.Post{Text: "x", Summary: strings.Repeat("warning ", 30), Visibility: post.Public}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := inspector{c}.Get(t.Context(), ref.ID)
	if n := len([]rune(got.Summary)); n > 100 || n < 50 {
		t.Fatalf("cw of %d characters: %q", n, got.Summary)
	}
}

// dropAnswers loses the answer of the first notes/create after the server
// made the note.
type dropAnswers struct {
	base    http.RoundTripper
	dropped atomic.Bool
}

func (d *dropAnswers) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := d.base.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.URL.Path, "/notes/create") && d.dropped.CompareAndSwap(false, true) {
		resp.Body.Close()
		return nil, errors.New("connection reset by peer")
	}
	return resp, err
}

// A lost answer is ambiguous, and Find then finds the note the attempt
// made, so the caller does not post twice.
func TestLostAnswerIsFound(t *testing.T) {
	srv, c, uid := account(t, fakemisskey.Config{})
	base, _ := misskey.ParseServer(srv.URL)
	hc := &http.Client{Transport: &dropAnswers{base: http.DefaultTransport}}
	lossy := misskey.NewClient(base, srv.AddToken(uid, nil), misskey.Options{HTTPClient: hc})
	s := sinkmk.New(sinkmk.Options{Client: lossy})
	since := time.Now()
	d := sinks.Draft{Key: "lost", Post: post.Post{Text: "said once", Visibility: post.Public}}
	_, err := s.Publish(t.Context(), d)
	if !sinks.IsAmbiguous(err) || !sinks.IsTransient(err) {
		t.Fatalf("lost answer = %v; want ambiguous", err)
	}
	ref, found, err := s.(sinks.Finder).Find(t.Context(), d, since)
	if err != nil || !found {
		t.Fatalf("Find = %v %v", found, err)
	}
	if n := srv.NoteCount(uid); n != 1 {
		t.Fatalf("%d notes, want 1", n)
	}
	_ = c
	_ = ref
}

// Misskey counts a note's length in code points (checked against
// Misskey 2025.4.x, MisskeyIO fork, on loopback: 3000 emoji were taken), so
// a text of emoji that fits ferry's count is published whole; Sharkey
// measures UTF-16 code units, so there it is cut to fit, not refused.
func TestEmojiTextFitsMisskeysMeasure(t *testing.T) {
	text := strings.Repeat("🦊", 18) // 18 characters, 36 UTF-16 units
	t.Run("misskey", func(t *testing.T) {
		_, c, _ := account(t, fakemisskey.Config{MaxNoteTextLength: 20})
		s := sinkmk.New(sinkmk.Options{Client: c})
		ref, err := s.Publish(t.Context(), sinks.Draft{Post: post.Post{Text: text, Visibility: post.Public}})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := (inspector{c}).Get(t.Context(), ref.ID); got.Text != text {
			t.Fatalf("published %q, want all 18 emoji", got.Text)
		}
		// The fake refuses what Misskey refuses, as Misskey does.
		_, err = c.CreateNote(t.Context(), mk.NoteParams{Text: strings.Repeat("x", 21)})
		var ae *mk.APIError
		if !errors.As(err, &ae) || ae.Code != "INVALID_PARAM" || !strings.Contains(string(ae.Info), "#/then/properties/text/maxLength") {
			t.Fatalf("a note over the limit: %v", err)
		}
	})
	t.Run("sharkey", func(t *testing.T) {
		_, c, _ := account(t, fakemisskey.Config{Flavour: "sharkey", MaxNoteTextLength: 20})
		s := sinkmk.New(sinkmk.Options{Client: c})
		ref, err := s.Publish(t.Context(), sinks.Draft{Post: post.Post{Text: text, Visibility: post.Public}})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := inspector{c}.Get(t.Context(), ref.ID)
		if n := len(utf16.Encode([]rune(got.Text))); n > 20 || !strings.HasPrefix(got.Text, "🦊🦊🦊") {
			t.Fatalf("published %q (%d units)", got.Text, n)
		}
		if _, err := c.CreateNote(t.Context(), mk.NoteParams{Text: text}); !mk.IsCode(err, "MAX_LENGTH") {
			t.Fatalf("a note over the limit: %v", err)
		}
	})
}

// Sharkey's notes/edit makes the note what the request says: an edit of a
// reply keeps its parent, visibility and poll because the sink sends them
// back.
func TestEditKeepsReplyVisibilityAndPoll(t *testing.T) {
	_, c, _ := account(t, fakemisskey.Config{Flavour: "sharkey"})
	s := sinkmk.New(sinkmk.Options{Client: c, CanEdit: true})
	ctx := t.Context()
	parent, err := s.Publish(ctx, sinks.Draft{Post: post.Post{Text: "parent", Visibility: post.Public}})
	if err != nil {
		t.Fatal(err)
	}
	d := sinks.Draft{ReplyTo: parent.ID, Post: post.Post{Text: "child", Visibility: post.Unlisted,
		Poll: &post.Poll{Options: []string{"yes", "no"}, ExpiresAt: time.Now().Add(24 * time.Hour)}}}
	child, err := s.Publish(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	d.Post.Text = "child, edited"
	if err := s.(sinks.Editor).Edit(ctx, child.ID, d); err != nil {
		t.Fatal(err)
	}
	got, err := inspector{c}.Get(ctx, child.ID)
	if err != nil || got.Text != "child, edited" || got.ReplyTo != parent.ID || got.Visibility != post.Unlisted ||
		strings.Join(got.Poll, "|") != "yes|no" {
		t.Fatalf("after the edit: %+v (%v)", got, err)
	}
}

// Misskey deletes a note's replies, renotes and quotes with it (checked
// against Misskey 2025.4.x, MisskeyIO fork, on loopback), so deleting a
// thread's root and then its later part finds the part gone already:
// that delete is done, not an error.
func TestDeleteAfterCascade(t *testing.T) {
	srv, c, uid := account(t, fakemisskey.Config{NoRateLimits: true})
	s := sinkmk.New(sinkmk.Options{Client: c})
	ctx := t.Context()
	root, err := s.Publish(ctx, sinks.Draft{Post: post.Post{Text: "part 1", Visibility: post.Public}})
	if err != nil {
		t.Fatal(err)
	}
	child, err := s.Publish(ctx, sinks.Draft{Post: post.Post{Text: "part 2", Visibility: post.Public}, ReplyTo: root.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateNote(ctx, mk.NoteParams{Text: "quoting", RenoteID: child.ID}); err != nil {
		t.Fatal(err)
	}
	if err := s.(sinks.Deleter).Delete(ctx, root.ID); err != nil {
		t.Fatal(err)
	}
	if n := srv.NoteCount(uid); n != 0 {
		t.Fatalf("%d notes left after the root's delete, want 0 (the reply and the quote of it go too)", n)
	}
	if err := s.(sinks.Deleter).Delete(ctx, child.ID); err != nil {
		t.Fatalf("deleting the already cascaded part: %v", err)
	}
}
