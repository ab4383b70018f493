package bluesky_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/sinks/bluesky"
	"github.com/fedi-ferry/ferry/sinks/sinktest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// inspector reads post records back with getRecord through its own
// session, independently of the sink, and maps them to the neutral
// vocabulary: the "CW: " first line back to a summary, a self-label to
// Sensitive, the record's langs to Language.
type inspector struct{ c *atproto.Client }

func (in inspector) Get(ctx context.Context, id string) (sinktest.Published, error) {
	fp, err := readPost(ctx, in.c, id)
	if errors.Is(err, atproto.ErrNotFound) {
		return sinktest.Published{}, fmt.Errorf("%s: %w", id, sinktest.ErrGone)
	}
	if err != nil {
		return sinktest.Published{}, err
	}
	p := sinktest.Published{Text: fp.Text, Visibility: post.Public}
	if rest, ok := strings.CutPrefix(fp.Text, "CW: "); ok {
		p.Summary, p.Text, _ = strings.Cut(rest, "\n\n")
	}
	p.Sensitive = fp.Labels != nil && fp.Labels.LabelDefs_SelfLabels != nil && len(fp.Labels.LabelDefs_SelfLabels.Values) > 0
	if len(fp.Langs) > 0 {
		p.Language = fp.Langs[0]
	}
	if fp.Reply != nil && fp.Reply.Parent != nil {
		p.ReplyTo = fp.Reply.Parent.Uri
	}
	if fp.Embed != nil && fp.Embed.EmbedImages != nil {
		for _, img := range fp.Embed.EmbedImages.Images {
			p.Media = append(p.Media, post.Media{Description: img.Alt, MIMEType: img.Image.MimeType})
		}
	}
	if t, err := syntax.ParseDatetimeLenient(fp.CreatedAt); err == nil {
		p.CreatedAt = t.Time()
	}
	return p, nil
}

// readPost reads the post record at the at:// URI id.
func readPost(ctx context.Context, c *atproto.Client, id string) (*bsky.FeedPost, error) {
	u, err := syntax.ParseATURI(id)
	if err != nil {
		return nil, err
	}
	out, err := comatproto.RepoGetRecord(ctx, c, "", u.Collection().String(), u.Authority().String(), u.RecordKey().String())
	if err != nil {
		var xe *atproto.Error
		if strings.Contains(err.Error(), "RecordNotFound") || (errors.As(err, &xe) && xe.Status == 404) {
			return nil, atproto.ErrNotFound
		}
		return nil, err
	}
	fp, ok := out.Value.Val.(*bsky.FeedPost)
	if !ok {
		return nil, fmt.Errorf("%s is a %T, not a post", id, out.Value.Val)
	}
	return fp, nil
}

// login creates an account on the shared PDS and returns a client for the
// sink and another for the inspector.
func login(t *testing.T, ctx context.Context, name string) (*testenv.PDSAccount, *atproto.Client, *atproto.Client) {
	t.Helper()
	env := testenv.SharedPDS(t, 1)
	acct, err := env.PDSes[0].CreateAccount(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var cs [2]*atproto.Client
	for i := range cs {
		if cs[i], err = atproto.Login(ctx, acct.PDS.URL, acct.Handle, acct.Password, atproto.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	return acct, cs[0], cs[1]
}

// The Bluesky sink against a real PDS: the contract suite (Bluesky posts
// are all public and images have no focal point).
func TestE2ESinkContractBluesky(t *testing.T) {
	ctx := t.Context()
	_, c, ic := login(t, ctx, "sinktest")
	sinktest.Run(t, bluesky.New(bluesky.Options{Client: c}), inspector{ic},
		sinktest.Options{Idempotent: true, PublicOnly: true, NoFocus: true})
}

// What the contract suite does not cover: facets on the right bytes,
// mentions resolved to DIDs, thread roots, self-labels, a large image
// re-encoded to fit with its aspect ratio, an unreadable one posted as a
// link, and the record key surviving a lost answer.
func TestE2ESinkBlueskyRecords(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	acct, c, ic := login(t, ctx, "records")
	friend, err := testenv.SharedPDS(t, 1).PDSes[0].CreateAccount(ctx, "friend")
	if err != nil {
		t.Fatal(err)
	}
	s := bluesky.New(bluesky.Options{Client: c, MaxImageBytes: 300_000})
	created := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

	text := "Grüße 👩‍👩‍👧 日本語 @" + friend.Handle + " see https://example.org/a?b=c, #ferry 🇫🇷"
	root, err := s.Publish(ctx, sinks.Draft{Key: "k-root", Post: post.Post{OriginID: "o1", CreatedAt: created, Text: text,
		Summary: "nudity", Sensitive: true, Language: "fr",
		Media: []post.Media{
			{Path: noisePNG(t, 1200, 800), MIMEType: "image/png", Description: "noise, re-encoded"},
			{URL: "http://127.0.0.1:1/gone.png", MIMEType: "image/png", Description: "unreachable"},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(root.ID, "at://"+acct.DID+"/app.bsky.feed.post/") || !strings.HasPrefix(root.URL, "https://bsky.app/profile/") {
		t.Fatalf("ref = %+v", root)
	}
	fp, err := readPost(ctx, ic, root.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantText := "CW: nudity\n\n" + text + "\n\nhttp://127.0.0.1:1/gone.png"
	if fp.Text != wantText {
		t.Errorf("text = %q, want %q", fp.Text, wantText)
	}
	want := map[string]string{
		"@" + friend.Handle:           "mention:" + friend.DID,
		"https://example.org/a?b=c":   "link:https://example.org/a?b=c",
		"#ferry":                      "tag:ferry",
		"http://127.0.0.1:1/gone.png": "link:http://127.0.0.1:1/gone.png",
	}
	if len(fp.Facets) != len(want) {
		t.Errorf("%d facets, want %d", len(fp.Facets), len(want))
	}
	for _, f := range fp.Facets {
		span := fp.Text[f.Index.ByteStart:f.Index.ByteEnd]
		got := ""
		switch ft := f.Features[0]; {
		case ft.RichtextFacet_Mention != nil:
			got = "mention:" + ft.RichtextFacet_Mention.Did
		case ft.RichtextFacet_Link != nil:
			got = "link:" + ft.RichtextFacet_Link.Uri
		case ft.RichtextFacet_Tag != nil:
			got = "tag:" + ft.RichtextFacet_Tag.Tag
		}
		if want[span] != got {
			t.Errorf("facet over %q is %q, want %q", span, got, want[span])
		}
	}
	if fp.Labels == nil || fp.Labels.LabelDefs_SelfLabels.Values[0].Val != bluesky.LabelSexual {
		t.Errorf("labels = %+v", fp.Labels)
	}
	if len(fp.Langs) != 1 || fp.Langs[0] != "fr" {
		t.Errorf("langs = %v", fp.Langs)
	}
	if fp.Embed == nil || fp.Embed.EmbedImages == nil || len(fp.Embed.EmbedImages.Images) != 1 {
		t.Fatalf("embed = %+v", fp.Embed)
	}
	img := fp.Embed.EmbedImages.Images[0]
	if img.Alt != "noise, re-encoded" || img.Image.MimeType != "image/jpeg" || img.Image.Size > 300_000 ||
		img.AspectRatio == nil || img.AspectRatio.Width*2 != img.AspectRatio.Height*3 {
		t.Errorf("image = alt %q %s %d bytes, aspect %+v", img.Alt, img.Image.MimeType, img.Image.Size, img.AspectRatio)
	}

	// A thread of three: each reply names the first post as its root.
	mid, err := s.Publish(ctx, sinks.Draft{Key: "k-mid", ReplyTo: root.ID, Post: post.Post{OriginID: "o2", CreatedAt: created, Text: "two"}})
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.Publish(ctx, sinks.Draft{Key: "k-last", ReplyTo: mid.ID, Post: post.Post{OriginID: "o3", CreatedAt: created, Text: "three"}})
	if err != nil {
		t.Fatal(err)
	}
	fp, err = readPost(ctx, ic, last.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fp.Reply == nil || fp.Reply.Parent.Uri != mid.ID || fp.Reply.Root.Uri != root.ID || fp.Reply.Root.Cid == "" {
		t.Errorf("reply = %+v", fp.Reply)
	}

	// The same draft again (a retry after a lost answer): the same record.
	again, err := s.Publish(ctx, sinks.Draft{Key: "k-mid", ReplyTo: root.ID, Post: post.Post{OriginID: "o2", CreatedAt: created, Text: "two"}})
	if err != nil || again.ID != mid.ID {
		t.Fatalf("republish = %+v, %v; want %s", again, err, mid.ID)
	}
	recs, _, err := ic.ListRecords(ctx, atproto.PostCollection, "", 100, false)
	if err != nil || len(recs) != 3 {
		t.Fatalf("%d records (%v), want 3", len(recs), err)
	}

	// A post without images whose text has a link gets a card of the
	// page, its large image made small enough.
	cover, err := os.ReadFile(noisePNG(t, 900, 700))
	if err != nil {
		t.Fatal(err)
	}
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/article":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<html><head><title>fallback</title><meta property="og:title" content="An article">`+
				`<meta property="og:description" content="What it is about"><meta property="og:image" content="/cover.png"></head><body>x</body></html>`)
		case "/cover.png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(cover)
		default:
			http.NotFound(w, r)
		}
	}))
	defer site.Close()
	if len(cover) <= bluesky.MaxThumbBytes {
		t.Fatalf("the cover has %d bytes: too small to need shrinking", len(cover))
	}
	withCard, err := s.Publish(ctx, sinks.Draft{Key: "k-card", Post: post.Post{Text: "read " + site.URL + "/article and " + site.URL + "/missing"}})
	if err != nil {
		t.Fatal(err)
	}
	fp, err = readPost(ctx, ic, withCard.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fp.Embed == nil || fp.Embed.EmbedExternal == nil {
		t.Fatalf("no card: %+v", fp.Embed)
	}
	ext := fp.Embed.EmbedExternal.External
	if ext.Uri != site.URL+"/article" || ext.Title != "An article" || ext.Description != "What it is about" ||
		ext.Thumb == nil || ext.Thumb.MimeType != "image/jpeg" || ext.Thumb.Size > bluesky.MaxThumbBytes {
		t.Errorf("card = %+v", ext)
	}
	noCard, err := s.Publish(ctx, sinks.Draft{Key: "k-nocard", Post: post.Post{Text: "gone: " + site.URL + "/missing"}})
	if err != nil {
		t.Fatal(err)
	}
	if fp, err = readPost(ctx, ic, noCard.ID); err != nil || fp.Embed != nil {
		t.Fatalf("a card for a missing page: %+v, %v", fp, err)
	}

	// A followers-only post is never made public.
	if _, err := s.Publish(ctx, sinks.Draft{Key: "k-private", Post: post.Post{Text: "only for followers", Visibility: post.Private}}); !sinks.IsPermanent(err) {
		t.Fatalf("a private post: %v", err)
	}

	// Deleting the middle post; then a reply to it is refused for good.
	if err := s.Delete(ctx, mid.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.Publish(ctx, sinks.Draft{Key: "k-orphan", ReplyTo: mid.ID, Post: post.Post{Text: "orphan"}})
	if err == nil {
		t.Fatal("a reply to a deleted post was published")
	}
}

// noisePNG writes a w×h PNG of random pixels, which no encoder makes small.
func noisePNG(t *testing.T, w, h int) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.UintN(256))
	}
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "noise.png")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// lostAnswers forwards every request and, while armed, loses the answer
// of the next createRecord after the PDS stored the record, as a dropped
// connection would.
type lostAnswers struct {
	base  http.RoundTripper
	armed atomic.Bool
}

func (l *lostAnswers) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(req)
	if err == nil && strings.HasSuffix(req.URL.Path, "/com.atproto.repo.createRecord") && l.armed.CompareAndSwap(true, false) {
		resp.Body.Close()
		return nil, errors.New("connection reset by peer (the answer was lost)")
	}
	return resp, err
}

// A publish whose answer is lost after the PDS stored the record returns
// that record, and publishing again does not make a second one.
func TestE2ESinkBlueskyLostAnswer(t *testing.T) {
	ctx := t.Context()
	env := testenv.SharedPDS(t, 1)
	acct, err := env.PDSes[0].CreateAccount(ctx, "lost")
	if err != nil {
		t.Fatal(err)
	}
	lost := &lostAnswers{base: http.DefaultTransport}
	c, err := atproto.Login(ctx, acct.PDS.URL, acct.Handle, acct.Password, atproto.Options{HTTPClient: &http.Client{Transport: lost}})
	if err != nil {
		t.Fatal(err)
	}
	s := bluesky.New(bluesky.Options{Client: c, NoCards: true})
	d := sinks.Draft{Key: "lost-1", Post: post.Post{OriginID: "o", CreatedAt: time.Now(), Text: "sent once",
		Media: []post.Media{{Path: noisePNG(t, 100, 80), Description: "small"}}}}
	lost.armed.Store(true)
	ref, err := s.Publish(ctx, d)
	if err != nil || lost.armed.Load() {
		t.Fatalf("publish with a lost answer: %+v, %v (answer lost: %v)", ref, err, !lost.armed.Load())
	}
	again, err := s.Publish(ctx, d)
	if err != nil || again.ID != ref.ID {
		t.Fatalf("publish again = %+v, %v; want %s", again, err, ref.ID)
	}
	recs, _, err := c.ListRecords(ctx, atproto.PostCollection, "", 10, false)
	if err != nil || len(recs) != 1 || recs[0].URI != ref.ID {
		t.Fatalf("records %+v (%v), want only %s", recs, err, ref.ID)
	}
}
