package bluesky

import (
	"html"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/post"
)

// repostCollection holds an account's reposts (boosts) of other posts.
const repostCollection = "app.bsky.feed.repost"

// account is who the source reads: what converting a record needs to name
// the account's posts and blobs.
type account struct {
	did    string
	handle string // "" when unknown; URLs then use the DID, which bsky.app accepts too
	pds    string // base URL, for getBlob links
}

// profile returns the account's bsky.app profile name: its handle, else its DID.
func (a account) profile() string {
	if a.handle != "" {
		return a.handle
	}
	return a.did
}

// convert maps one record of the account's repository to a post. ok is false
// for records the source does not report: unknown record types, and quote
// posts under QuoteSkip.
func (a account) convert(uri, rkey string, value lexutil.CBOR, quotes QuotePolicy) (p post.Post, ok bool) {
	switch v := value.(type) {
	case *bsky.FeedPost:
		return a.convertPost(uri, rkey, v, quotes)
	case *bsky.FeedRepost:
		return a.convertRepost(uri, rkey, v)
	}
	return post.Post{}, false
}

func (a account) base(uri, rkey, createdAt string) post.Post {
	return post.Post{
		OriginID:   uri,
		URI:        uri,
		Author:     post.Author{Acct: a.handle, URI: a.did},
		CreatedAt:  createdTime(createdAt, rkey),
		Visibility: post.Public, // every Bluesky post is public
	}
}

func (a account) convertRepost(uri, rkey string, v *bsky.FeedRepost) (post.Post, bool) {
	if v.Subject == nil || v.Subject.Uri == "" {
		return post.Post{}, false
	}
	p := a.base(uri, rkey, v.CreatedAt)
	p.BoostOf = v.Subject.Uri
	p.URL = webURL(v.Subject.Uri)
	return p, true
}

func (a account) convertPost(uri, rkey string, v *bsky.FeedPost, quotes QuotePolicy) (post.Post, bool) {
	p := a.base(uri, rkey, v.CreatedAt)
	p.URL = "https://bsky.app/profile/" + a.profile() + "/post/" + rkey
	if len(v.Langs) > 0 {
		if _, err := syntax.ParseLanguage(v.Langs[0]); err == nil {
			p.Language = v.Langs[0]
		}
	}
	if v.Labels != nil && v.Labels.LabelDefs_SelfLabels != nil {
		for _, l := range v.Labels.LabelDefs_SelfLabels.Values {
			// Values starting with '!' are system labels ("!no-unauthenticated"),
			// not content warnings.
			if l != nil && l.Val != "" && !strings.HasPrefix(l.Val, "!") {
				p.Sensitive = true
			}
		}
	}
	if v.Reply != nil && v.Reply.Parent != nil {
		if parent, err := syntax.ParseATURI(v.Reply.Parent.Uri); err == nil &&
			parent.Authority().String() == a.did && parent.Collection().String() == atproto.PostCollection {
			p.InReplyTo = v.Reply.Parent.Uri
		} else {
			// A reply to someone else: the bridge's replies policy decides.
			p.ReplyToURI = v.Reply.Parent.Uri
		}
	}

	r := renderText(v.Text, v.Facets)
	p.Text, p.HTML, p.Mentions = r.plain, r.html, r.mentions
	p.Tags = r.tags
	for _, t := range v.Tags {
		if t != "" && !slices.Contains(p.Tags, t) {
			p.Tags = append(p.Tags, t)
		}
	}

	var links []string // URLs the text does not carry, appended as their own lines
	if e := v.Embed; e != nil {
		var quoted string
		switch {
		case e.EmbedImages != nil:
			p.Media = a.images(e.EmbedImages)
		case e.EmbedGallery != nil:
			p.Media = a.gallery(e.EmbedGallery)
		case e.EmbedVideo != nil:
			p.Media = a.video(e.EmbedVideo)
		case e.EmbedExternal != nil && e.EmbedExternal.External != nil:
			links = append(links, e.EmbedExternal.External.Uri)
		case e.EmbedRecord != nil && e.EmbedRecord.Record != nil:
			quoted = e.EmbedRecord.Record.Uri
		case e.EmbedRecordWithMedia != nil:
			if rec := e.EmbedRecordWithMedia.Record; rec != nil && rec.Record != nil {
				quoted = rec.Record.Uri
			}
			if m := e.EmbedRecordWithMedia.Media; m != nil {
				switch {
				case m.EmbedImages != nil:
					p.Media = a.images(m.EmbedImages)
				case m.EmbedGallery != nil:
					p.Media = a.gallery(m.EmbedGallery)
				case m.EmbedVideo != nil:
					p.Media = a.video(m.EmbedVideo)
				case m.EmbedExternal != nil && m.EmbedExternal.External != nil:
					links = append(links, m.EmbedExternal.External.Uri)
				}
			}
		}
		if quoted != "" {
			if quotes == QuoteSkip {
				return post.Post{}, false
			}
			links = append(links, webURL(quoted))
		}
	}
	for _, l := range links {
		if !isWebURL(l) || strings.Contains(p.Text, l) {
			continue
		}
		p.Text = joinParagraph(p.Text, l)
		p.HTML += "<p>" + anchor(l, "", html.EscapeString(l)) + "</p>"
	}
	return p, true
}

// createdTime is the record's declared creation time, else the time of its
// TID record key, else zero.
func createdTime(createdAt, rkey string) time.Time {
	if d, err := syntax.ParseDatetimeLenient(createdAt); err == nil {
		return d.Time().UTC()
	}
	if tid, err := syntax.ParseTID(rkey); err == nil {
		return tid.Time().UTC()
	}
	return time.Time{}
}

// webURL returns the bsky.app page of an at:// URI (a post, a list, a feed),
// or the URI itself when bsky.app has no page for it.
func webURL(atURI string) string {
	u, err := syntax.ParseATURI(atURI)
	if err != nil {
		return atURI
	}
	base := "https://bsky.app/profile/" + u.Authority().String()
	switch u.Collection().String() {
	case atproto.PostCollection:
		return base + "/post/" + u.RecordKey().String()
	case "app.bsky.graph.list":
		return base + "/lists/" + u.RecordKey().String()
	case "app.bsky.feed.generator":
		return base + "/feed/" + u.RecordKey().String()
	}
	return atURI
}

// blobURL is where the PDS serves a blob of the account's repository.
func (a account) blobURL(b *lexutil.LexBlob) (string, bool) {
	if b == nil || !b.Ref.Defined() {
		return "", false
	}
	q := url.Values{"did": {a.did}, "cid": {b.Ref.String()}}
	return a.pds + "/xrpc/com.atproto.sync.getBlob?" + q.Encode(), true
}

func (a account) images(e *bsky.EmbedImages) []post.Media {
	var ms []post.Media
	for _, img := range e.Images {
		if img == nil {
			continue
		}
		if u, ok := a.blobURL(img.Image); ok {
			ms = append(ms, post.Media{URL: u, MIMEType: img.Image.MimeType, Description: img.Alt})
		}
	}
	return ms
}

func (a account) gallery(e *bsky.EmbedGallery) []post.Media {
	var ms []post.Media
	for _, it := range e.Items {
		if it == nil || it.EmbedGallery_Image == nil {
			continue
		}
		img := it.EmbedGallery_Image
		if u, ok := a.blobURL(img.Image); ok {
			ms = append(ms, post.Media{URL: u, MIMEType: img.Image.MimeType, Description: img.Alt})
		}
	}
	return ms
}

func (a account) video(e *bsky.EmbedVideo) []post.Media {
	u, ok := a.blobURL(e.Video)
	if !ok {
		return nil
	}
	m := post.Media{URL: u, MIMEType: e.Video.MimeType}
	if e.Alt != nil {
		m.Description = *e.Alt
	}
	return []post.Media{m}
}

// rendered is a post's text with its facets applied.
type rendered struct {
	plain    string // links written out in full
	html     string // paragraphs with links, mentions and hashtags as anchors
	tags     []string
	mentions []post.Mention
}

// facetSpan is one usable facet: a byte range of the text and what it is.
type facetSpan struct {
	start, end int
	link       string // http(s) URL
	mentionDID string
	tag        string
}

// spans returns the facets that can be applied to text, ordered and without
// overlaps. Facets come from whoever wrote the record: ranges outside the
// text, inside a UTF-8 sequence, or overlapping an earlier facet are dropped,
// as are features ferry does not render.
func spans(text string, facets []*bsky.RichtextFacet) []facetSpan {
	var out []facetSpan
	for _, f := range facets {
		if f == nil || f.Index == nil {
			continue
		}
		s := facetSpan{start: int(f.Index.ByteStart), end: int(f.Index.ByteEnd)}
		if f.Index.ByteStart < 0 || f.Index.ByteEnd > int64(len(text)) || s.start >= s.end ||
			!boundary(text, s.start) || !boundary(text, s.end) {
			continue
		}
		// The first feature ferry renders wins; a facet is one thing.
		for _, ft := range f.Features {
			if ft == nil || s.link != "" || s.mentionDID != "" || s.tag != "" {
				continue
			}
			switch {
			case ft.RichtextFacet_Link != nil && isWebURL(ft.RichtextFacet_Link.Uri):
				s.link = ft.RichtextFacet_Link.Uri
			case ft.RichtextFacet_Mention != nil && strings.HasPrefix(ft.RichtextFacet_Mention.Did, "did:"):
				s.mentionDID = ft.RichtextFacet_Mention.Did
			case ft.RichtextFacet_Tag != nil && ft.RichtextFacet_Tag.Tag != "":
				s.tag = ft.RichtextFacet_Tag.Tag
			}
		}
		if s.link != "" || s.mentionDID != "" || s.tag != "" {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(x, y facetSpan) int { return x.start - y.start })
	kept := out[:0]
	for _, s := range out {
		if len(kept) > 0 && s.start < kept[len(kept)-1].end {
			continue
		}
		kept = append(kept, s)
	}
	return kept
}

// boundary reports whether byte offset i of text starts a character (or is
// the end).
func boundary(text string, i int) bool {
	return i == len(text) || utf8.RuneStart(text[i])
}

func isWebURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && !strings.ContainsAny(s, " \t\r\n")
}

// renderText applies facets to text (their offsets are UTF-8 bytes).
func renderText(text string, facets []*bsky.RichtextFacet) rendered {
	var r rendered
	var plain, inline strings.Builder
	at := 0
	for _, s := range spans(text, facets) {
		plain.WriteString(text[at:s.start])
		inline.WriteString(html.EscapeString(text[at:s.start]))
		shown := text[s.start:s.end]
		switch {
		case s.link != "":
			plain.WriteString(linkText(shown, s.link))
			inline.WriteString(anchor(s.link, "", html.EscapeString(shown)))
		case s.mentionDID != "":
			// The text shows the handle the author saw; a facet over other
			// text names the account by its DID, which never goes stale.
			handle := strings.TrimPrefix(strings.TrimPrefix(shown, "@"), "＠")
			if _, err := syntax.ParseHandle(handle); err != nil {
				handle = s.mentionDID
			}
			profile := "https://bsky.app/profile/" + s.mentionDID
			if !slices.ContainsFunc(r.mentions, func(m post.Mention) bool { return m.URL == profile }) {
				r.mentions = append(r.mentions, post.Mention{Acct: handle, URL: profile})
			}
			plain.WriteString(shown)
			inline.WriteString(`<span class="h-card">` + anchor(profile, "u-url mention", html.EscapeString(shown)) + `</span>`)
		case s.tag != "":
			if !slices.Contains(r.tags, s.tag) {
				r.tags = append(r.tags, s.tag)
			}
			plain.WriteString(shown)
			inline.WriteString(anchor("https://bsky.app/hashtag/"+url.PathEscape(s.tag), "mention hashtag", html.EscapeString(shown)))
		}
		at = s.end
	}
	plain.WriteString(text[at:])
	inline.WriteString(html.EscapeString(text[at:]))
	r.plain = plain.String()
	r.html = paragraphs(inline.String())
	return r
}

// linkText is what plain text shows for a link facet. Bluesky apps shorten
// the text of long links ("example.com/a-long-pa...") and let people label
// links; plain text has no hidden target, so it shows the URL in full.
func linkText(shown, uri string) string {
	bare := func(s string) string {
		s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
		return strings.TrimPrefix(s, "www.")
	}
	short := strings.TrimSuffix(strings.TrimSuffix(bare(shown), "..."), "…")
	switch {
	case shown == uri:
		return shown
	case short != "" && strings.HasPrefix(bare(uri), short):
		return uri
	}
	return shown + " (" + uri + ")"
}

func anchor(href, class, inner string) string {
	c := ""
	if class != "" {
		c = ` class="` + class + `"`
	}
	return `<a href="` + html.EscapeString(href) + `"` + c + ` rel="nofollow noopener" target="_blank">` + inner + `</a>`
}

var blankLines = regexp.MustCompile(`\n\s*\n`)

// paragraphs turns escaped inline HTML with the text's newlines into
// paragraphs (blank lines) and line breaks.
func paragraphs(inline string) string {
	var b strings.Builder
	for _, para := range blankLines.Split(strings.TrimSpace(inline), -1) {
		if para = strings.TrimSpace(para); para == "" {
			continue
		}
		b.WriteString("<p>" + strings.ReplaceAll(para, "\n", "<br>") + "</p>")
	}
	return b.String()
}

// joinParagraph adds line as a paragraph of its own after text.
func joinParagraph(text, line string) string {
	if strings.TrimSpace(text) == "" {
		return line
	}
	return strings.TrimRight(text, " \n") + "\n\n" + line
}
