package bluesky_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/sources/bluesky"
	"github.com/fedi-ferry/ferry/sources/sourcetest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// login creates an account on the shared PDS and logs in to it.
func login(t *testing.T, ctx context.Context, name string) (*testenv.PDSAccount, *atproto.Client) {
	t.Helper()
	env := testenv.SharedPDS(t, 1)
	acct, err := env.PDSes[0].CreateAccount(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := atproto.Login(ctx, acct.PDS.URL, acct.Handle, acct.Password, atproto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return acct, c
}

// origin writes posts into the account's repository through the client,
// beside the source, with record keys from a TID clock as Bluesky apps make
// them (each newer than the last).
type origin struct {
	c *atproto.Client

	mu    sync.Mutex
	clock *syntax.TIDClock
}

func newOrigin(c *atproto.Client) *origin { return &origin{c: c, clock: syntax.NewTIDClock(7)} }

func (o *origin) key() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.clock.Next().String()
}

// create writes a record and returns its at:// URI and CID.
func (o *origin) create(ctx context.Context, collection string, rec lexutil.CBOR) (string, string, error) {
	r, _, err := o.c.CreateRecord(ctx, collection, o.key(), rec, true)
	return r.URI, r.CID, err
}

func (o *origin) Post(ctx context.Context, text string) (string, error) {
	uri, _, err := o.create(ctx, atproto.PostCollection, &bsky.FeedPost{Text: text, CreatedAt: syntax.DatetimeNow().String()})
	return uri, err
}

// Edit rewrites the post in place (putRecord). Bluesky apps never do this,
// but a repository allows it, and the stream reports it as an edit.
func (o *origin) Edit(ctx context.Context, originID, text string) error {
	u, err := syntax.ParseATURI(originID)
	if err != nil {
		return err
	}
	cur, err := o.c.GetRecord(ctx, u.Collection().String(), u.RecordKey().String())
	if err != nil {
		return err
	}
	// indigo sends an unset swapRecord as null, which the PDS reads as
	// "only if there is no record": swap against the current version.
	_, err = comatproto.RepoPutRecord(ctx, o.c, &comatproto.RepoPutRecord_Input{
		Repo:       o.c.DID(),
		Collection: u.Collection().String(),
		Rkey:       u.RecordKey().String(),
		Record:     &lexutil.LexiconTypeDecoder{Val: &bsky.FeedPost{Text: text, CreatedAt: syntax.DatetimeNow().String()}},
		SwapRecord: &cur.CID,
	})
	return err
}

func (o *origin) Delete(ctx context.Context, originID string) error {
	u, err := syntax.ParseATURI(originID)
	if err != nil {
		return err
	}
	return o.c.DeleteRecord(ctx, u.Collection().String(), u.RecordKey().String())
}

// The shared source contract against a real PDS, in pages of 2 so that
// resuming crosses pages; the stream reports created, rewritten and deleted
// posts.
func TestE2ESourceContractPDS(t *testing.T) {
	_, c := login(t, t.Context(), "contract")
	sourcetest.Run(t, bluesky.New(c, bluesky.Options{PageSize: 2}), newOrigin(c), sourcetest.Options{Batch: 5})
}

// The same contract with reposts read too: two collections merged into one
// cursor. Every post comes with a repost, so a page of 4 holds both seed
// posts and the suite's batch of 5 (10 records) crosses pages.
func TestE2ESourceContractPDSWithReposts(t *testing.T) {
	ctx := t.Context()
	_, c := login(t, ctx, "reposts")
	o := newOrigin(c)
	// Reposts of the account's own posts, interleaved with what the suite
	// posts, so pages hold both kinds.
	first, err := o.Post(ctx, "to be reposted")
	if err != nil {
		t.Fatal(err)
	}
	sourcetest.Run(t, bluesky.New(c, bluesky.Options{PageSize: 4, Reposts: true}), &repostingOrigin{o: o, subject: first}, sourcetest.Options{Batch: 5})
}

// repostingOrigin reposts subject before every post it makes. It edits
// nothing: the first post the suite's stream check sees is a repost.
type repostingOrigin struct {
	o       *origin
	subject string
}

func (o *repostingOrigin) Delete(ctx context.Context, originID string) error {
	return o.o.Delete(ctx, originID)
}

func (o *repostingOrigin) Post(ctx context.Context, text string) (string, error) {
	rec, err := o.o.c.GetRecord(ctx, atproto.PostCollection, path(o.subject))
	if err != nil {
		return "", err
	}
	if _, _, err := o.o.create(ctx, "app.bsky.feed.repost", &bsky.FeedRepost{
		Subject:   &comatproto.RepoStrongRef{Uri: o.subject, Cid: rec.CID},
		CreatedAt: syntax.DatetimeNow().String(),
	}); err != nil {
		return "", err
	}
	return o.o.Post(ctx, text)
}

func path(uri string) string { return uri[strings.LastIndex(uri, "/")+1:] }

func testPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 12))
	for y := range 12 {
		for x := range 16 {
			img.Set(x, y, color.RGBA{uint8(x * 16), uint8(y * 20), 99, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Real records on a real PDS: an image with alt text and facets, a
// self-thread, a reply to someone else, a quote and a repost come out as
// the bridge needs them; the image URL serves the image; Exists follows a
// delete.
func TestE2EPostsAsTheBridgeSeesThem(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	friendAcct, friendC := login(t, ctx, "friend")
	acct, c := login(t, ctx, "author")
	me, them := newOrigin(c), newOrigin(friendC)

	theirs, err := them.Post(ctx, "a post by a friend")
	if err != nil {
		t.Fatal(err)
	}
	theirRec, err := friendC.GetRecord(ctx, atproto.PostCollection, path(theirs))
	if err != nil {
		t.Fatal(err)
	}
	theirRef := &comatproto.RepoStrongRef{Uri: theirs, Cid: theirRec.CID}

	// 1: an image with alt text; emoji, CJK, a link, a mention and a tag.
	data := testPNG(t)
	blob, err := c.UploadBlob(ctx, data, "image/png")
	if err != nil {
		t.Fatal(err)
	}
	text := "🚢 渡し船 👩‍👩‍👧 https://example.com/東京 @" + friendAcct.Handle + " さん #フェリー"
	facets, err := atproto.Facets(ctx, text, c.ResolveHandle)
	if err != nil {
		t.Fatal(err)
	}
	const alt = "A ferry 🚢 at dusk — 渡し船"
	rootURI, rootCID, err := me.create(ctx, atproto.PostCollection, &bsky.FeedPost{
		Text: text, Facets: facets, CreatedAt: syntax.DatetimeNow().String(), Langs: []string{"ja"},
		Embed: &bsky.FeedPost_Embed{EmbedImages: &bsky.EmbedImages{Images: []*bsky.EmbedImages_Image{{Alt: alt, Image: blob}}}},
		Labels: &bsky.FeedPost_Labels{LabelDefs_SelfLabels: &comatproto.LabelDefs_SelfLabels{
			Values: []*comatproto.LabelDefs_SelfLabel{{Val: "nudity"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	root := &comatproto.RepoStrongRef{Uri: rootURI, Cid: rootCID}
	// 2: a reply to 1 (a thread).
	selfReply, _, err := me.create(ctx, atproto.PostCollection, &bsky.FeedPost{Text: "2/2", CreatedAt: syntax.DatetimeNow().String(),
		Reply: &bsky.FeedPost_ReplyRef{Root: root, Parent: root}})
	if err != nil {
		t.Fatal(err)
	}
	// 3: a reply to the friend.
	otherReply, _, err := me.create(ctx, atproto.PostCollection, &bsky.FeedPost{Text: "yes!", CreatedAt: syntax.DatetimeNow().String(),
		Reply: &bsky.FeedPost_ReplyRef{Root: theirRef, Parent: theirRef}})
	if err != nil {
		t.Fatal(err)
	}
	// 4: a quote of the friend's post.
	quote, _, err := me.create(ctx, atproto.PostCollection, &bsky.FeedPost{Text: "worth reading", CreatedAt: syntax.DatetimeNow().String(),
		Embed: &bsky.FeedPost_Embed{EmbedRecord: &bsky.EmbedRecord{Record: theirRef}}})
	if err != nil {
		t.Fatal(err)
	}
	// 5: a repost of it.
	repost, _, err := me.create(ctx, "app.bsky.feed.repost", &bsky.FeedRepost{Subject: theirRef, CreatedAt: syntax.DatetimeNow().String()})
	if err != nil {
		t.Fatal(err)
	}

	src := bluesky.New(c, bluesky.Options{Reposts: true})
	page, err := src.Fetch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	byID := map[string]post.Post{}
	for _, p := range page.Posts {
		ids = append(ids, p.OriginID)
		byID[p.OriginID] = p
	}
	if want := []string{rootURI, selfReply, otherReply, quote, repost}; !slices.Equal(ids, want) {
		t.Fatalf("newest page = %v\nwant %v", ids, want)
	}

	p := byID[rootURI]
	if p.Text != text || p.Language != "ja" || !p.Sensitive || p.Visibility != post.Public {
		t.Errorf("root: text %q lang %q sensitive %v visibility %q", p.Text, p.Language, p.Sensitive, p.Visibility)
	}
	if want := "https://bsky.app/profile/" + acct.Handle + "/post/" + path(rootURI); p.URL != want || p.URI != rootURI {
		t.Errorf("root: URL %q URI %q, want %q", p.URL, p.URI, want)
	}
	if !slices.Equal(p.Tags, []string{"フェリー"}) ||
		!slices.Equal(p.Mentions, []post.Mention{{Acct: friendAcct.Handle, URL: "https://bsky.app/profile/" + friendAcct.DID}}) {
		t.Errorf("root: tags %v mentions %+v", p.Tags, p.Mentions)
	}
	if !strings.Contains(p.HTML, `<a href="https://example.com/東京" rel="nofollow noopener" target="_blank">https://example.com/東京</a>`) ||
		!strings.Contains(p.HTML, `>@`+friendAcct.Handle+`</a>`) {
		t.Errorf("root: HTML %s", p.HTML)
	}
	if len(p.Media) != 1 || p.Media[0].Description != alt || p.Media[0].MIMEType != "image/png" {
		t.Fatalf("root: media %+v", p.Media)
	}
	// The media URL is the PDS's getBlob, and it serves the image.
	resp, err := http.Get(p.Media[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Errorf("GET %s: %s, %d bytes, want the %d bytes uploaded", p.Media[0].URL, resp.Status, len(got), len(data))
	}

	if r := byID[selfReply]; r.InReplyTo != rootURI || r.ReplyToURI != "" {
		t.Errorf("self-reply: InReplyTo %q ReplyToURI %q", r.InReplyTo, r.ReplyToURI)
	}
	if r := byID[otherReply]; r.InReplyTo != "" || r.ReplyToURI != theirs {
		t.Errorf("reply to the friend: InReplyTo %q ReplyToURI %q", r.InReplyTo, r.ReplyToURI)
	}
	quoted := "https://bsky.app/profile/" + friendAcct.DID + "/post/" + path(theirs)
	if q := byID[quote]; q.Text != "worth reading\n\n"+quoted {
		t.Errorf("quote: text %q", q.Text)
	}
	if r := byID[repost]; r.BoostOf != theirs || r.URL != quoted {
		t.Errorf("repost: BoostOf %q URL %q", r.BoostOf, r.URL)
	}

	// QuoteSkip leaves the quote out, and without Reposts the repost is not read.
	page, err = bluesky.New(c, bluesky.Options{Quotes: bluesky.QuoteSkip}).Fetch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	ids = ids[:0]
	for _, p := range page.Posts {
		ids = append(ids, p.OriginID)
	}
	if want := []string{rootURI, selfReply, otherReply}; !slices.Equal(ids, want) {
		t.Errorf("QuoteSkip, no reposts: %v, want %v", ids, want)
	}

	// Exists, before and after a delete; someone else's post is not ours to judge.
	for _, id := range []string{selfReply, repost} {
		if ok, err := src.Exists(ctx, id); err != nil || !ok {
			t.Errorf("Exists(%s) = %v, %v before the delete", id, ok, err)
		}
		if err := me.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		if ok, err := src.Exists(ctx, id); err != nil || ok {
			t.Errorf("Exists(%s) = %v, %v after the delete", id, ok, err)
		}
	}
	if _, err := src.Exists(ctx, theirs); err == nil {
		t.Error("Exists of another account's post answered")
	}
	if _, err := src.Fetch(ctx, "not a cursor!"); err == nil {
		t.Error("Fetch accepted a cursor that is no record key")
	}
}

// A stream on a PDS that goes away ends with an error, for the caller's
// fall back to polling; a stream to a port where nothing listens fails at
// once.
func TestE2EStreamEndsWithAnError(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, c := login(t, ctx, "nostream")
	dead, err := atproto.NewClient(atproto.Session{PDS: "http://127.0.0.1:1", DID: c.DID(), Handle: "x.test"}, atproto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = bluesky.New(dead, bluesky.Options{}).Stream(ctx, make(chan sources.Event))
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("stream to a closed port: %v", err)
	}
}

// Pages of records the source leaves out (quotes under QuoteSkip) are read
// through in one Fetch, so a page with More never comes back empty.
func TestE2EFetchReadsPastLeftOutRecords(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, c := login(t, ctx, "skipper")
	o := newOrigin(c)
	first, err := o.Post(ctx, "before")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.GetRecord(ctx, atproto.PostCollection, path(first))
	if err != nil {
		t.Fatal(err)
	}
	ref := &comatproto.RepoStrongRef{Uri: first, Cid: rec.CID}
	var quotes []string
	for range 5 {
		q, _, err := o.create(ctx, atproto.PostCollection, &bsky.FeedPost{Text: "quoting myself", CreatedAt: syntax.DatetimeNow().String(),
			Embed: &bsky.FeedPost_Embed{EmbedRecord: &bsky.EmbedRecord{Record: ref}}})
		if err != nil {
			t.Fatal(err)
		}
		quotes = append(quotes, q)
	}
	src := bluesky.New(c, bluesky.Options{PageSize: 2, Quotes: bluesky.QuoteSkip})
	// Only quotes after the cursor: nothing to report, but Next moves past them.
	page, err := src.Fetch(ctx, path(first))
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Posts) != 0 || page.Next != path(quotes[len(quotes)-1]) || page.More {
		t.Errorf("only quotes: %d posts, next %q, more %v; want none, next %q", len(page.Posts), page.Next, page.More, path(quotes[len(quotes)-1]))
	}
	after, err := o.Post(ctx, "after")
	if err != nil {
		t.Fatal(err)
	}
	for _, cursor := range []string{path(first), path(quotes[0]), page.Next} {
		p, err := src.Fetch(ctx, cursor)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Posts) != 1 || p.Posts[0].OriginID != after || p.Next != path(after) {
			var ids []string
			for _, q := range p.Posts {
				ids = append(ids, q.OriginID)
			}
			t.Errorf("Fetch(%s) = %v next %q; want [%s] next %q", cursor, ids, p.Next, after, path(after))
		}
	}
}
