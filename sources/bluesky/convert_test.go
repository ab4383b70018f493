package bluesky

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/api/bsky"
	lexutil "github.com/bluesky-social/indigo/lex/util"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/post"
)

var alice = account{did: "did:plc:alice123", handle: "alice.test", pds: "http://127.0.0.1:2583"}

const friendDID = "did:plc:friend456"

func postURI(did, rkey string) string { return "at://" + did + "/app.bsky.feed.post/" + rkey }

// facet returns a facet over the first occurrence of span in text, in UTF-8
// bytes as the lexicon counts them.
func facet(t *testing.T, text, span string, f *bsky.RichtextFacet_Features_Elem) *bsky.RichtextFacet {
	t.Helper()
	i := strings.Index(text, span)
	if i < 0 {
		t.Fatalf("%q not in %q", span, text)
	}
	return &bsky.RichtextFacet{
		Index:    &bsky.RichtextFacet_ByteSlice{ByteStart: int64(i), ByteEnd: int64(i + len(span))},
		Features: []*bsky.RichtextFacet_Features_Elem{f},
	}
}

func link(u string) *bsky.RichtextFacet_Features_Elem {
	return &bsky.RichtextFacet_Features_Elem{RichtextFacet_Link: &bsky.RichtextFacet_Link{Uri: u}}
}

func mention(did string) *bsky.RichtextFacet_Features_Elem {
	return &bsky.RichtextFacet_Features_Elem{RichtextFacet_Mention: &bsky.RichtextFacet_Mention{Did: did}}
}

func tag(s string) *bsky.RichtextFacet_Features_Elem {
	return &bsky.RichtextFacet_Features_Elem{RichtextFacet_Tag: &bsky.RichtextFacet_Tag{Tag: s}}
}

// blob returns a blob reference to cid (a raw-data CIDv1), as a record
// carries it.
func blob(t *testing.T, cid, mime string) *lexutil.LexBlob {
	t.Helper()
	var b lexutil.LexBlob
	doc := `{"$type":"blob","ref":{"$link":"` + cid + `"},"mimeType":"` + mime + `","size":3}`
	if err := json.Unmarshal([]byte(doc), &b); err != nil {
		t.Fatal(err)
	}
	return &b
}

const (
	cidOne = "bafkreidwslb22nkaxoadyaqlhlxgntmiq4jdenhkbrxhcq6avxlt75br5u"
	cidTwo = "bafkreib7ytgp45cyodrmbwm7ohzq74dfnsg63va4yhl5hu3wwdn6nbpc6m"
	cidX   = "bafkreibnoelefnzgwbcacyt4vh52ymxvzbjq7mmqhtcnwarfq4lzegsiqe"
)

func convertOK(t *testing.T, rkey string, v lexutil.CBOR, q QuotePolicy) post.Post {
	t.Helper()
	p, ok := alice.convert(postURI(alice.did, rkey), rkey, v, q)
	if !ok {
		t.Fatalf("record %s left out", rkey)
	}
	return p
}

func TestConvertFacetsOnEmojiAndCJK(t *testing.T) {
	text := "🚢 渡し船で東京へ 👩‍👩‍👧 example.com/東京/a-very-lo... に @friend.test さんと #フェリー & <b>\n\n二段落目 https://example.org/x"
	v := &bsky.FeedPost{
		Text:      text,
		CreatedAt: "2026-03-04T05:06:07.123Z",
		Langs:     []string{"ja", "en"},
		Facets: []*bsky.RichtextFacet{
			// Out of order on purpose: facets need not be sorted.
			facet(t, text, "https://example.org/x", link("https://example.org/x")),
			facet(t, text, "example.com/東京/a-very-lo...", link("https://example.com/東京/a-very-long-path")),
			facet(t, text, "@friend.test", mention(friendDID)),
			facet(t, text, "#フェリー", tag("フェリー")),
		},
	}
	p := convertOK(t, "3lbbbbbbbbb22", v, QuoteLink)

	wantText := strings.Replace(text, "example.com/東京/a-very-lo...", "https://example.com/東京/a-very-long-path", 1)
	if p.Text != wantText {
		t.Errorf("Text = %q\nwant %q", p.Text, wantText)
	}
	for _, frag := range []string{
		`<p>🚢 渡し船で東京へ 👩‍👩‍👧 <a href="https://example.com/東京/a-very-long-path" rel="nofollow noopener" target="_blank">example.com/東京/a-very-lo...</a> に `,
		`<span class="h-card"><a href="https://bsky.app/profile/did:plc:friend456" class="u-url mention" rel="nofollow noopener" target="_blank">@friend.test</a></span> さんと `,
		`<a href="https://bsky.app/hashtag/%E3%83%95%E3%82%A7%E3%83%AA%E3%83%BC" class="mention hashtag" rel="nofollow noopener" target="_blank">#フェリー</a> &amp; &lt;b&gt;</p>`,
		`<p>二段落目 <a href="https://example.org/x" rel="nofollow noopener" target="_blank">https://example.org/x</a></p>`,
	} {
		if !strings.Contains(p.HTML, frag) {
			t.Errorf("HTML lacks %s\nHTML: %s", frag, p.HTML)
		}
	}
	if want := []post.Mention{{Acct: "friend.test", URL: "https://bsky.app/profile/" + friendDID}}; !slices.Equal(p.Mentions, want) {
		t.Errorf("Mentions = %+v, want %+v", p.Mentions, want)
	}
	if !slices.Equal(p.Tags, []string{"フェリー"}) {
		t.Errorf("Tags = %v", p.Tags)
	}
	if p.Language != "ja" || p.Visibility != post.Public || p.Sensitive {
		t.Errorf("language %q visibility %q sensitive %v", p.Language, p.Visibility, p.Sensitive)
	}
	if want := time.Date(2026, 3, 4, 5, 6, 7, 123e6, time.UTC); !p.CreatedAt.Equal(want) {
		t.Errorf("CreatedAt = %v, want %v", p.CreatedAt, want)
	}
	if p.OriginID != postURI(alice.did, "3lbbbbbbbbb22") || p.URI != p.OriginID ||
		p.URL != "https://bsky.app/profile/alice.test/post/3lbbbbbbbbb22" {
		t.Errorf("ids: origin %q uri %q url %q", p.OriginID, p.URI, p.URL)
	}
	if p.Author.Acct != "alice.test" || p.Author.URI != alice.did {
		t.Errorf("author = %+v", p.Author)
	}
}

// Facets computed by ferry's own writer (atproto.Facets) come back as the
// same links and tags.
func TestConvertRoundTripsAtprotoFacets(t *testing.T) {
	text := "👩‍👩‍👧 ＃フェリー の記事 https://example.com/東京?q=1 と #ferry🚢 🇯🇵"
	facets, err := atproto.Facets(context.Background(), text, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := convertOK(t, "3lbbbbbbbbb23", &bsky.FeedPost{Text: text, Facets: facets, CreatedAt: "2026-01-01T00:00:00Z"}, QuoteLink)
	if p.Text != text {
		t.Errorf("Text = %q, want %q", p.Text, text)
	}
	if !slices.Equal(p.Tags, []string{"フェリー", "ferry🚢"}) {
		t.Errorf("Tags = %v", p.Tags)
	}
	if !strings.Contains(p.HTML, `>https://example.com/東京?q=1</a> と <a href="https://bsky.app/hashtag/ferry%F0%9F%9A%A2"`) {
		t.Errorf("HTML = %s", p.HTML)
	}
}

// Facets are user data: ranges outside the text, inside a character or over
// another facet are dropped, never a panic.
func TestConvertBadFacets(t *testing.T) {
	text := "東京 https://a.example/ end"
	bad := func(start, end int64, f *bsky.RichtextFacet_Features_Elem) *bsky.RichtextFacet {
		return &bsky.RichtextFacet{Index: &bsky.RichtextFacet_ByteSlice{ByteStart: start, ByteEnd: end}, Features: []*bsky.RichtextFacet_Features_Elem{f}}
	}
	good := facet(t, text, "https://a.example/", link("https://a.example/"))
	v := &bsky.FeedPost{Text: text, CreatedAt: "2026-01-01T00:00:00Z", Facets: []*bsky.RichtextFacet{
		bad(1, 4, tag("mid-rune")),       // starts inside 東
		bad(-1, 3, tag("negative")),      // before the text
		bad(5, 500, tag("past-the-end")), // after it
		bad(7, 7, tag("empty")),          // empty range
		good,                             //
		bad(good.Index.ByteStart+2, good.Index.ByteEnd+2, tag("overlap")),
		bad(0, 3, link("javascript:alert(1)")), // not a web link
		bad(0, 3, mention("not-a-did")),
		{Index: nil},
		nil,
	}}
	p := convertOK(t, "3lbbbbbbbbb24", v, QuoteLink)
	if p.Text != text || len(p.Tags) != 0 || len(p.Mentions) != 0 {
		t.Errorf("text %q tags %v mentions %v", p.Text, p.Tags, p.Mentions)
	}
	if strings.Count(p.HTML, "<a ") != 1 || strings.Contains(p.HTML, "javascript") {
		t.Errorf("HTML = %s", p.HTML)
	}
}

// A mention facet over text that is no handle names the account by its DID.
func TestConvertMentionWithoutHandleText(t *testing.T) {
	text := "thanks to my friend!"
	p := convertOK(t, "3lbbbbbbbbb2f", &bsky.FeedPost{Text: text, CreatedAt: "2026-01-01T00:00:00Z",
		Facets: []*bsky.RichtextFacet{facet(t, text, "my friend", mention(friendDID))}}, QuoteLink)
	if want := []post.Mention{{Acct: friendDID, URL: "https://bsky.app/profile/" + friendDID}}; !slices.Equal(p.Mentions, want) {
		t.Errorf("Mentions = %+v, want %+v", p.Mentions, want)
	}
	if p.Text != text || !strings.Contains(p.HTML, `class="u-url mention" rel="nofollow noopener" target="_blank">my friend</a>`) {
		t.Errorf("text %q HTML %s", p.Text, p.HTML)
	}
}

func TestConvertImagesWithAltText(t *testing.T) {
	img1, img2 := blob(t, cidOne, "image/png"), blob(t, cidTwo, "image/jpeg")
	v := &bsky.FeedPost{Text: "two pictures", CreatedAt: "2026-01-01T00:00:00Z",
		Embed: &bsky.FeedPost_Embed{EmbedImages: &bsky.EmbedImages{Images: []*bsky.EmbedImages_Image{
			{Alt: "a ferry 🚢 at dusk", Image: img1},
			{Alt: "渡し船", Image: img2},
			{Alt: "no blob"},
		}}},
		Labels: &bsky.FeedPost_Labels{LabelDefs_SelfLabels: &comatproto.LabelDefs_SelfLabels{
			Values: []*comatproto.LabelDefs_SelfLabel{{Val: "graphic-media"}},
		}},
	}
	p := convertOK(t, "3lbbbbbbbbb25", v, QuoteLink)
	want := []post.Media{
		{URL: "http://127.0.0.1:2583/xrpc/com.atproto.sync.getBlob?cid=" + cidOne + "&did=did%3Aplc%3Aalice123", MIMEType: "image/png", Description: "a ferry 🚢 at dusk"},
		{URL: "http://127.0.0.1:2583/xrpc/com.atproto.sync.getBlob?cid=" + cidTwo + "&did=did%3Aplc%3Aalice123", MIMEType: "image/jpeg", Description: "渡し船"},
	}
	if !slices.Equal(p.Media, want) {
		t.Errorf("Media = %+v\nwant %+v", p.Media, want)
	}
	if !p.Sensitive {
		t.Error("a post self-labelled graphic-media is not sensitive")
	}

	// A system label is not a content warning.
	v.Labels.LabelDefs_SelfLabels.Values[0].Val = "!no-unauthenticated"
	if p := convertOK(t, "3lbbbbbbbbb26", v, QuoteLink); p.Sensitive {
		t.Error("!no-unauthenticated made the post sensitive")
	}
}

func TestConvertReplies(t *testing.T) {
	root := postURI(alice.did, "3laaaaaaaaa22")
	parent := postURI(alice.did, "3laaaaaaaaa23")
	ref := func(uri string) *comatproto.RepoStrongRef { return &comatproto.RepoStrongRef{Uri: uri, Cid: "bafy"} }

	self := convertOK(t, "3lbbbbbbbbb27", &bsky.FeedPost{Text: "2/3", CreatedAt: "2026-01-01T00:00:00Z",
		Reply: &bsky.FeedPost_ReplyRef{Root: ref(root), Parent: ref(parent)}}, QuoteLink)
	if self.InReplyTo != parent || self.ReplyToURI != "" {
		t.Errorf("self-reply: InReplyTo %q ReplyToURI %q, want the parent's origin ID %q", self.InReplyTo, self.ReplyToURI, parent)
	}

	other := postURI(friendDID, "3laaaaaaaaa24")
	reply := convertOK(t, "3lbbbbbbbbb28", &bsky.FeedPost{Text: "@friend.test yes", CreatedAt: "2026-01-01T00:00:00Z",
		Reply: &bsky.FeedPost_ReplyRef{Root: ref(other), Parent: ref(other)}}, QuoteLink)
	if reply.InReplyTo != "" || reply.ReplyToURI != other {
		t.Errorf("reply to another account: InReplyTo %q ReplyToURI %q, want only ReplyToURI %q", reply.InReplyTo, reply.ReplyToURI, other)
	}
}

func TestConvertQuotes(t *testing.T) {
	quoted := postURI(friendDID, "3laaaaaaaaa25")
	strong := &comatproto.RepoStrongRef{Uri: quoted, Cid: "bafy"}
	plain := &bsky.FeedPost{Text: "look at this", CreatedAt: "2026-01-01T00:00:00Z",
		Embed: &bsky.FeedPost_Embed{EmbedRecord: &bsky.EmbedRecord{Record: strong}}}
	p := convertOK(t, "3lbbbbbbbbb29", plain, QuoteLink)
	const web = "https://bsky.app/profile/did:plc:friend456/post/3laaaaaaaaa25"
	if p.Text != "look at this\n\n"+web {
		t.Errorf("Text = %q", p.Text)
	}
	if !strings.HasSuffix(p.HTML, `<p><a href="`+web+`" rel="nofollow noopener" target="_blank">`+web+`</a></p>`) {
		t.Errorf("HTML = %s", p.HTML)
	}
	if _, ok := alice.convert(postURI(alice.did, "3lbbbbbbbbb29"), "3lbbbbbbbbb29", plain, QuoteSkip); ok {
		t.Error("a quote post was reported under QuoteSkip")
	}

	// A quote with images: both.
	withMedia := &bsky.FeedPost{Text: "", CreatedAt: "2026-01-01T00:00:00Z",
		Embed: &bsky.FeedPost_Embed{EmbedRecordWithMedia: &bsky.EmbedRecordWithMedia{
			Record: &bsky.EmbedRecord{Record: strong},
			Media: &bsky.EmbedRecordWithMedia_Media{EmbedImages: &bsky.EmbedImages{Images: []*bsky.EmbedImages_Image{
				{Alt: "alt", Image: blob(t, cidX, "image/webp")}}}},
		}}}
	p = convertOK(t, "3lbbbbbbbbb2a", withMedia, QuoteLink)
	if p.Text != web || len(p.Media) != 1 || p.Media[0].Description != "alt" {
		t.Errorf("quote with media: text %q media %+v", p.Text, p.Media)
	}

	// A link card whose URL the text does not show gets it appended once.
	card := &bsky.FeedPost{Text: "read this", CreatedAt: "2026-01-01T00:00:00Z",
		Embed: &bsky.FeedPost_Embed{EmbedExternal: &bsky.EmbedExternal{External: &bsky.EmbedExternal_External{Uri: "https://blog.example/post", Title: "T"}}}}
	if p := convertOK(t, "3lbbbbbbbbb2b", card, QuoteLink); p.Text != "read this\n\nhttps://blog.example/post" {
		t.Errorf("card: Text = %q", p.Text)
	}
	card.Text = "read https://blog.example/post"
	if p := convertOK(t, "3lbbbbbbbbb2c", card, QuoteLink); p.Text != card.Text {
		t.Errorf("card already linked: Text = %q", p.Text)
	}
}

func TestConvertRepostAndUnknown(t *testing.T) {
	subject := postURI(friendDID, "3laaaaaaaaa26")
	uri := "at://" + alice.did + "/app.bsky.feed.repost/3lbbbbbbbbb2d"
	p, ok := alice.convert(uri, "3lbbbbbbbbb2d", &bsky.FeedRepost{Subject: &comatproto.RepoStrongRef{Uri: subject}, CreatedAt: "2026-01-01T00:00:00Z"}, QuoteLink)
	if !ok || !p.IsBoost() || p.BoostOf != subject || p.OriginID != uri ||
		p.URL != "https://bsky.app/profile/did:plc:friend456/post/3laaaaaaaaa26" {
		t.Errorf("repost = %+v ok=%v", p, ok)
	}
	if _, ok := alice.convert(uri, "x", &bsky.FeedLike{}, QuoteLink); ok {
		t.Error("a like was converted")
	}
	if _, ok := alice.convert(uri, "x", nil, QuoteLink); ok {
		t.Error("a nil record was converted")
	}
	// A record without a usable createdAt takes the time of its TID key.
	p = convertOK(t, "3lbbbbbbbbb2e", &bsky.FeedPost{Text: "x", CreatedAt: "yesterday"}, QuoteLink)
	if p.CreatedAt.IsZero() || p.CreatedAt.Year() < 2023 {
		t.Errorf("CreatedAt from the TID = %v", p.CreatedAt)
	}
}

func TestLinkText(t *testing.T) {
	for _, c := range []struct{ shown, uri, want string }{
		{"https://a.example/x", "https://a.example/x", "https://a.example/x"},
		{"a.example/very-lo...", "https://a.example/very-long", "https://a.example/very-long"},
		{"www.a.example/x…", "https://www.a.example/xyz", "https://www.a.example/xyz"},
		{"my blog", "https://a.example/", "my blog (https://a.example/)"},
	} {
		if got := linkText(c.shown, c.uri); got != c.want {
			t.Errorf("linkText(%q, %q) = %q, want %q", c.shown, c.uri, got, c.want)
		}
	}
}

func TestStreamURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://pds.example":   "wss://pds.example/xrpc/com.atproto.sync.subscribeRepos",
		"http://127.0.0.1:2583": "ws://127.0.0.1:2583/xrpc/com.atproto.sync.subscribeRepos",
	} {
		if got, err := streamURL(in); err != nil || got != want {
			t.Errorf("streamURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := streamURL("ftp://x"); err == nil {
		t.Error("ftp accepted")
	}
}
