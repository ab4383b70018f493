package misskey_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/fakemisskey"
	mk "github.com/fedi-ferry/ferry/misskey"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sources"
	srcmk "github.com/fedi-ferry/ferry/sources/misskey"
	"github.com/fedi-ferry/ferry/sources/sourcetest"
)

type origin struct{ c *mk.Client }

func (o origin) Post(ctx context.Context, text string) (string, error) {
	n, err := o.c.CreateNote(ctx, mk.NoteParams{Text: text, Visibility: "public"})
	return n.ID, err
}

func account(t *testing.T, cfg fakemisskey.Config) (*fakemisskey.Server, *mk.Client) {
	t.Helper()
	srv := fakemisskey.Start(cfg)
	t.Cleanup(srv.Close)
	uid := srv.AddUser("alice", "pw")
	base, _ := mk.ParseServer(srv.URL)
	return srv, mk.NewClient(base, srv.AddToken(uid, mk.Permissions), mk.Options{})
}

func (o origin) Delete(ctx context.Context, id string) error { return o.c.DeleteNote(ctx, id) }

// sharkeyOrigin edits too (notes/edit).
type sharkeyOrigin struct{ origin }

func (o sharkeyOrigin) Edit(ctx context.Context, id, text string) error {
	_, err := o.c.EditNote(ctx, mk.EditParams{EditID: id, NoteParams: mk.NoteParams{Text: text, Visibility: "public"}})
	return err
}

func TestSourceContractFakeMisskey(t *testing.T) {
	_, c := account(t, fakemisskey.Config{})
	sourcetest.Run(t, srcmk.New(c, srcmk.Options{PageSize: 2}), origin{c}, sourcetest.Options{Batch: 5})
}

func TestSourceContractFakeSharkeyStreamsEdits(t *testing.T) {
	_, c := account(t, fakemisskey.Config{Flavour: "sharkey"})
	sourcetest.Run(t, srcmk.New(c, srcmk.Options{PageSize: 2}), sharkeyOrigin{origin{c}}, sourcetest.Options{Batch: 5})
}

func TestSourceConvertsNotes(t *testing.T) {
	srv, c := account(t, fakemisskey.Config{})
	ctx := t.Context()
	var img bytes.Buffer
	png.Encode(&img, image.NewRGBA(image.Rect(0, 0, 4, 4)))
	f, err := c.UploadFile(ctx, "a.png", img.Bytes(), "a tiny square", true)
	if err != nil {
		t.Fatal(err)
	}
	root, err := c.CreateNote(ctx, mk.NoteParams{Text: "**thread** start $[spin whee] #ferry", CW: "spoiler", Visibility: "home", FileIDs: []string{f.ID}})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := c.CreateNote(ctx, mk.NoteParams{Text: "second", ReplyID: root.ID, Visibility: "followers"})
	if err != nil {
		t.Fatal(err)
	}
	otherID := srv.AddUser("bob", "pw")
	base, _ := mk.ParseServer(srv.URL)
	bob := mk.NewClient(base, srv.AddToken(otherID, nil), mk.Options{})
	theirs, _ := bob.CreateNote(ctx, mk.NoteParams{Text: "bob's", Visibility: "public"})
	toBob, _ := c.CreateNote(ctx, mk.NoteParams{Text: "@bob hi", ReplyID: theirs.ID})
	boost, _ := c.CreateNote(ctx, mk.NoteParams{RenoteID: theirs.ID})
	quote, _ := c.CreateNote(ctx, mk.NoteParams{Text: "look", RenoteID: theirs.ID})
	exp := int64(4102444800000)
	poll, _ := c.CreateNote(ctx, mk.NoteParams{Text: "which?", Poll: &mk.PollParams{Choices: []string{"a", "b"}, ExpiresAt: &exp}})
	local, _ := c.CreateNote(ctx, mk.NoteParams{Text: "local only", LocalOnly: true})

	page, err := srcmk.New(c, srcmk.Options{}).Fetch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]post.Post{}
	for _, p := range page.Posts {
		byID[p.OriginID] = p
	}
	r := byID[root.ID]
	if r.Text != "thread start whee #ferry" || !strings.Contains(r.HTML, "<b>thread</b>") || r.Summary != "spoiler" || !r.Sensitive ||
		r.Visibility != post.Unlisted || len(r.Media) != 1 || r.Media[0].Description != "a tiny square" || len(r.Tags) != 1 {
		t.Errorf("root = %+v", r)
	}
	if p := byID[reply.ID]; p.InReplyTo != root.ID || p.Visibility != post.Private {
		t.Errorf("self reply = %+v", p)
	}
	if p := byID[toBob.ID]; p.InReplyTo != "" || !strings.HasSuffix(p.ReplyToURI, "/notes/"+theirs.ID) ||
		len(p.Mentions) != 1 || p.Mentions[0].Acct != "bob@"+srv.Host {
		t.Errorf("reply to another = %+v", p)
	}
	if p := byID[boost.ID]; !p.IsBoost() || !strings.HasSuffix(p.BoostOf, "/notes/"+theirs.ID) {
		t.Errorf("renote = %+v", p)
	}
	if p := byID[quote.ID]; p.IsBoost() || !strings.HasPrefix(p.Text, "look\n\n") || !strings.HasSuffix(p.Text, "/notes/"+theirs.ID) {
		t.Errorf("quote = %+v", p)
	}
	if p := byID[poll.ID]; p.Poll == nil || strings.Join(p.Poll.Options, "|") != "a|b" || p.Poll.ExpiresAt.UnixMilli() != exp {
		t.Errorf("poll = %+v", p.Poll)
	}
	if p := byID[local.ID]; p.Visibility != post.Private {
		t.Errorf("local-only note is %s elsewhere", p.Visibility)
	}
	// Quotes left out by policy.
	page, _ = srcmk.New(c, srcmk.Options{Quotes: srcmk.QuoteSkip}).Fetch(ctx, "")
	for _, p := range page.Posts {
		if p.OriginID == quote.ID {
			t.Error("quote reported under QuoteSkip")
		}
	}
	// Deletes are confirmed through notes/show.
	s := srcmk.New(c, srcmk.Options{})
	if ok, err := s.Exists(ctx, reply.ID); !ok || err != nil {
		t.Fatalf("Exists(reply) = %v %v", ok, err)
	}
	c.DeleteNote(ctx, reply.ID)
	if ok, err := s.Exists(ctx, reply.ID); ok || err != nil {
		t.Fatalf("Exists(deleted) = %v %v", ok, err)
	}
}

// Misskey's homeTimeline also carries the notes of the accounts the user
// follows (checked against Misskey 2025.4.x, MisskeyIO fork, on loopback):
// the stream reports only the account's own.
func TestStreamSkipsFolloweesNotes(t *testing.T) {
	srv, c := account(t, fakemisskey.Config{NoRateLimits: true})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	base, _ := mk.ParseServer(srv.URL)
	bob := mk.NewClient(base, srv.AddToken(srv.AddUser("bob", "pw"), mk.Permissions), mk.Options{})
	var u mk.User
	if err := c.Call(ctx, "users/show", map[string]any{"username": "bob", "host": nil}, &u, false); err != nil {
		t.Fatal(err)
	}
	if err := c.Call(ctx, "following/create", map[string]string{"userId": u.ID}, nil, true); err != nil {
		t.Fatal(err)
	}
	events := make(chan sources.Event, 16)
	go func() { _ = srcmk.New(c, srcmk.Options{}).Stream(ctx, events) }()
	next := func() (sources.Event, bool) {
		select {
		case ev := <-events:
			return ev, true
		case <-time.After(300 * time.Millisecond):
			return sources.Event{}, false
		}
	}
	// Post until the stream is connected and reports.
	for i := 0; ; i++ {
		if i == 30 {
			t.Fatal("the stream reported nothing")
		}
		if _, err := c.CreateNote(ctx, mk.NoteParams{Text: "probe", Visibility: "public"}); err != nil {
			t.Fatal(err)
		}
		if _, ok := next(); ok {
			break
		}
	}
	for _, ok := next(); ok; _, ok = next() { // drain the probes
	}
	if _, err := bob.CreateNote(ctx, mk.NoteParams{Text: "bob's", Visibility: "public"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateNote(ctx, mk.NoteParams{Text: "mine", Visibility: "public"}); err != nil {
		t.Fatal(err)
	}
	ev, ok := next()
	if !ok || ev.Post.Text != "mine" {
		t.Fatalf("next event %+v (%v), want the account's own note", ev.Post, ok)
	}
}
