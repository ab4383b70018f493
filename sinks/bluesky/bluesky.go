// Package bluesky is the Sink that publishes posts to a Bluesky (AT
// Protocol) account as app.bsky.feed.post records, through package atproto.
//
// What a Draft becomes:
//   - the text, with rich-text facets for links, mentions (resolved to DIDs
//     by the account's PDS) and hashtags, in UTF-8 byte offsets;
//   - a content warning (Summary) as the text's first line, "CW: summary",
//     followed by a blank line: Bluesky has no content-warning field;
//   - Sensitive as a self-label (com.atproto.label.defs#selfLabels):
//     "sexual" when the content warning speaks of nudity or sex (see
//     sexualWords), "graphic-media" otherwise. Bluesky's apps put both
//     behind a warning; the choice only changes its wording;
//   - up to four images (app.bsky.embed.images) with their alt text and
//     aspect ratio; an image over the size limit is re-encoded as a smaller
//     JPEG, and one that still does not fit (or cannot be read, or is not an
//     image) is appended to the text as a link, and the post goes on;
//   - a link card (app.bsky.embed.external) for the first link of a post
//     without images: title, description and image from the page's
//     OpenGraph tags, read within a size and time bound (see card.go);
//   - the language as the record's langs;
//   - a reply (Draft.ReplyTo, an ID this sink returned: the at:// URI of the
//     parent) as reply refs to the parent and to the root of its thread.
//
// Every Bluesky post is public: public and unlisted drafts are published,
// followers-only and direct ones refused (a permanent error), so that no
// audience is ever widened. Polls and focus points have no Bluesky form and
// are dropped.
//
// Exactly once by construction: the record key derives from Draft.Key and
// the origin post's creation time (atproto.RecordKey), and a create at an
// existing key returns the existing record (atproto.Client.CreateRecord),
// so a retry after a crash or a lost answer never makes a second record.
// For the same reason Find is a lookup of that key.
//
// Bluesky has no edit: the sink is not a sinks.Editor, so the bridge leaves
// the copy of an edited post as it is, or, under the route's edits =
// "repost", deletes a young copy and publishes the new version under a new
// Draft.Key. Deletes remove the record.
package bluesky

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/textfit"
)

// MaxImages is how many images one post carries (app.bsky.embed.images).
const MaxImages = 4

// MaxAltGraphemes is the longest alt text Bluesky's apps accept.
const MaxAltGraphemes = 2000

// cwPrefix starts the line that carries a content warning.
const cwPrefix = "CW: "

// Self-label values for sensitive posts.
const (
	LabelGraphic = "graphic-media"
	LabelSexual  = "sexual"
)

// sexualWords, found in a content warning, make a sensitive post's
// self-label "sexual" rather than "graphic-media": Bluesky's apps word the
// warning accordingly, and people who hide sexual content expect it hidden.
var sexualWords = regexp.MustCompile(`(?i)\b(nsfw|nud(e|ity)|naked|sex(ual)?|lewd|porn|explicit|18\+)`)

// Options configure a Sink.
type Options struct {
	// Client is the destination account's client.
	Client *atproto.Client
	// Fetch downloads media given by URL; nil means a client with a
	// one-minute timeout. It is not the PDS client: media live elsewhere.
	Fetch *http.Client
	// MaxMediaBytes bounds one downloaded media file; 0 means 50 MiB.
	MaxMediaBytes int64
	// MaxImageBytes is the largest image blob to upload; 0 means
	// atproto.MaxImageBytes. Larger images are re-encoded to fit.
	MaxImageBytes int
	// Logger receives the sink's log lines; nil discards them.
	Logger *slog.Logger
	// Now is the clock for records' createdAt; nil means time.Now.
	Now func() time.Time
	// NoCards leaves link cards out: by default a post without images
	// whose text has a link gets a card of the first link's page, read
	// with Fetch within a size and time bound.
	NoCards bool
}

// Sink publishes to one Bluesky account. It is safe for concurrent use.
type Sink struct {
	c        *atproto.Client
	fetch    *http.Client
	maxMedia int64
	maxImage int
	log      *slog.Logger
	now      func() time.Time
	noCards  bool
}

// New returns a sink writing as o.Client's account.
func New(o Options) *Sink {
	s := &Sink{c: o.Client, fetch: o.Fetch, maxMedia: o.MaxMediaBytes, maxImage: o.MaxImageBytes, log: o.Logger, now: o.Now, noCards: o.NoCards}
	if s.fetch == nil {
		s.fetch = &http.Client{Timeout: time.Minute}
	}
	if s.maxMedia <= 0 {
		s.maxMedia = 50 << 20
	}
	if s.maxImage <= 0 {
		s.maxImage = atproto.MaxImageBytes
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Limits are Bluesky's: 300 graphemes, four images, the image size limit
// (larger images are re-encoded, so the bridge need not turn them into
// links) and the alt-text length.
func (s *Sink) Limits(ctx context.Context) (post.Limits, error) {
	return Limits(), nil
}

// Limits are the posting limits of every Bluesky account.
func Limits() post.Limits {
	return post.Limits{
		MaxChars:       atproto.MaxPostGraphemes,
		CountGraphemes: true,
		MaxMedia:       MaxImages,
		MediaTypes:     []string{"image/jpeg", "image/png", "image/gif", "image/webp"},
		MaxImageBytes:  atproto.MaxImageBytes,
		MaxAltChars:    MaxAltGraphemes,
	}
}

// RecordKey is the key of d's record: derived from d.Key and the origin
// post's creation time, or a fresh TID for a draft without a Key (which
// then is not protected against duplicates).
func RecordKey(d sinks.Draft) string {
	if d.Key == "" {
		return syntax.NewTIDNow(0).String()
	}
	return atproto.RecordKey(d.Key, d.Post.OriginID, d.Post.CreatedAt)
}

// Publish writes d as a post record and returns its at:// URI as the ID
// and its bsky.app address as the URL. Publishing the same Key again
// returns the record already written.
func (s *Sink) Publish(ctx context.Context, d sinks.Draft) (post.Ref, error) {
	if err := ctx.Err(); err != nil {
		return post.Ref{}, err
	}
	if v := d.Post.Visibility; v == post.Private || v == post.Direct {
		// Every Bluesky post is public: never widen an audience.
		return post.Ref{}, &sinks.PermanentError{Err: fmt.Errorf("a %s post is not published on Bluesky, where every post is public", v)}
	}
	rkey := RecordKey(d)
	if len(d.Post.Media) > 0 {
		// Do not upload the media again for a record a lost answer hid.
		if rec, err := s.c.GetRecord(ctx, atproto.PostCollection, rkey); err == nil {
			return s.ref(rec), nil
		} else if !errors.Is(err, atproto.ErrNotFound) {
			return post.Ref{}, classify(err)
		}
	}
	rec, err := s.record(ctx, d)
	if err != nil {
		return post.Ref{}, err
	}
	out, existed, err := s.c.CreateRecord(ctx, atproto.PostCollection, rkey, rec, true)
	if err != nil {
		return post.Ref{}, classify(err)
	}
	if existed {
		s.log.Info("the post was already written by an earlier attempt", "uri", out.URI, "key", d.Key)
	}
	return s.ref(out), nil
}

// CanBackdate is true: a post record's createdAt is whatever its author
// writes, so a draft's PublishedAt becomes the record's createdAt. Bluesky
// documents createdAt as claimed, not verified
// (https://docs.bsky.app/docs/advanced-guides/timestamps), sorts by it,
// and since late 2024 its app shows a post whose createdAt is far (over a
// day) before the app view first saw it with an "Archived from DATE"
// marker saying the date cannot be confirmed (bluesky-social/social-app
// #6156).
func (s *Sink) CanBackdate(context.Context) (bool, error) { return true, nil }

// record builds the post record for d: text and facets, images, reply
// refs, languages and labels.
func (s *Sink) record(ctx context.Context, d sinks.Draft) (*bsky.FeedPost, error) {
	p := d.Post
	images, links := s.images(ctx, p.Media)
	text := ComposeText(p.Summary, p.Text, links)
	facets, err := atproto.Facets(ctx, text, s.c.ResolveHandle)
	if err != nil {
		return nil, err
	}
	rec := &bsky.FeedPost{
		LexiconTypeID: atproto.PostCollection,
		Text:          text,
		Facets:        facets,
		CreatedAt:     s.now().UTC().Format(syntax.AtprotoDatetimeLayout),
	}
	if !d.PublishedAt.IsZero() {
		// Backdated (archive publish): the record carries the original
		// date; see CanBackdate.
		rec.CreatedAt = d.PublishedAt.UTC().Format(syntax.AtprotoDatetimeLayout)
	}
	if len(images) > 0 {
		rec.Embed = &bsky.FeedPost_Embed{EmbedImages: &bsky.EmbedImages{LexiconTypeID: "app.bsky.embed.images", Images: images}}
	} else if link := firstLink(facets); link != "" && !s.noCards {
		if card := s.card(ctx, link); card != nil {
			rec.Embed = &bsky.FeedPost_Embed{EmbedExternal: card}
		}
	}
	if p.Language != "" {
		rec.Langs = []string{p.Language}
	}
	if p.Sensitive {
		rec.Labels = &bsky.FeedPost_Labels{LabelDefs_SelfLabels: &comatproto.LabelDefs_SelfLabels{
			LexiconTypeID: "com.atproto.label.defs#selfLabels",
			Values:        []*comatproto.LabelDefs_SelfLabel{{Val: SelfLabel(p.Summary)}},
		}}
	}
	if d.ReplyTo != "" {
		if rec.Reply, err = s.replyRef(ctx, d.ReplyTo); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

// SelfLabel is the self-label of a sensitive post with the content
// warning summary.
func SelfLabel(summary string) string {
	if sexualWords.MatchString(summary) {
		return LabelSexual
	}
	return LabelGraphic
}

// ComposeText is the text of a post: the content warning line, the text,
// and the links of media that could not be attached, within the
// 300-grapheme and 3000-byte limits (the text is shortened, never the
// warning or the links, unless they alone are too long).
func ComposeText(summary, text string, links []string) string {
	head := ""
	if summary = strings.TrimSpace(summary); summary != "" {
		head = cwPrefix + summary + "\n\n"
	}
	tail := ""
	if len(links) > 0 {
		tail = "\n\n" + strings.Join(links, "\n")
	}
	text = strings.TrimSpace(text)
	r := textfit.Rules{Unit: textfit.Graphemes}
	full := head + text + tail
	if r.Count(full) <= atproto.MaxPostGraphemes && len(full) <= atproto.MaxPostBytes {
		return strings.TrimSpace(full)
	}
	room := atproto.MaxPostGraphemes - r.Count(head) - r.Count(tail)
	if room > 20 {
		body := r.Truncate(text, "…", room)
		for len(head)+len(body)+len(tail) > atproto.MaxPostBytes && room > 20 {
			room -= 20
			body = r.Truncate(text, "…", room)
		}
		if len(head)+len(body)+len(tail) <= atproto.MaxPostBytes {
			return strings.TrimSpace(head + body + tail)
		}
	}
	return r.Truncate(strings.TrimSpace(full), "…", atproto.MaxPostGraphemes/2)
}

// replyRef builds the reply refs of a post answering parentID: the parent
// as a strong ref (URI and CID, read with getRecord) and the root of its
// thread (the parent's own root, or the parent when it starts the thread).
func (s *Sink) replyRef(ctx context.Context, parentID string) (*bsky.FeedPost_ReplyRef, error) {
	u, err := syntax.ParseATURI(parentID)
	if err != nil || u.RecordKey() == "" {
		return nil, &sinks.PermanentError{Err: fmt.Errorf("reply to %q: not the at:// URI of a post", parentID)}
	}
	out, err := comatproto.RepoGetRecord(ctx, s.c, "", u.Collection().String(), u.Authority().String(), u.RecordKey().String())
	if err != nil {
		return nil, classify(fmt.Errorf("read the parent %s: %w", parentID, err))
	}
	if out.Cid == nil {
		return nil, fmt.Errorf("read the parent %s: the answer has no CID", parentID)
	}
	parent := &comatproto.RepoStrongRef{Uri: out.Uri, Cid: *out.Cid}
	root := parent
	if out.Value != nil {
		if fp, ok := out.Value.Val.(*bsky.FeedPost); ok && fp.Reply != nil && fp.Reply.Root != nil {
			root = fp.Reply.Root
		}
	}
	return &bsky.FeedPost_ReplyRef{Parent: parent, Root: root}, nil
}

// ref is where a record landed: its URI, and its address in Bluesky's web app.
func (s *Sink) ref(rec atproto.Record) post.Ref {
	r := post.Ref{ID: rec.URI}
	if u, err := syntax.ParseATURI(rec.URI); err == nil {
		r.URL = "https://bsky.app/profile/" + u.Authority().String() + "/post/" + u.RecordKey().String()
	}
	return r
}

// Delete removes the post id (an at:// URI this sink returned). A post
// already gone is not an error.
func (s *Sink) Delete(ctx context.Context, id string) error {
	u, err := syntax.ParseATURI(id)
	if err != nil || u.RecordKey() == "" {
		return &sinks.PermanentError{Err: fmt.Errorf("delete %q: not the at:// URI of a post", id)}
	}
	if u.Authority().String() != s.c.DID() {
		return &sinks.PermanentError{Err: fmt.Errorf("delete %s: the post belongs to another account", id)}
	}
	return classify(s.c.DeleteRecord(ctx, u.Collection().String(), u.RecordKey().String()))
}

// Find looks up the record d would be written to (its key derives from d),
// so it finds the copy an interrupted attempt made whatever since is.
func (s *Sink) Find(ctx context.Context, d sinks.Draft, since time.Time) (post.Ref, bool, error) {
	if d.Key == "" {
		return post.Ref{}, false, nil
	}
	rec, err := s.c.GetRecord(ctx, atproto.PostCollection, RecordKey(d))
	if errors.Is(err, atproto.ErrNotFound) {
		return post.Ref{}, false, nil
	}
	if err != nil {
		return post.Ref{}, false, classify(err)
	}
	return s.ref(rec), true, nil
}

// classify marks the PDS's refusals that a retry will not change
// (4xx answers other than 408 and 429) as permanent.
func classify(err error) error {
	var e *atproto.Error
	if errors.As(err, &e) && e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout &&
		e.Status != http.StatusTooManyRequests {
		return &sinks.PermanentError{Err: err}
	}
	return err
}

var (
	_ sinks.Sink      = (*Sink)(nil)
	_ sinks.Deleter   = (*Sink)(nil)
	_ sinks.Limiter   = (*Sink)(nil)
	_ sinks.Finder    = (*Sink)(nil)
	_ sinks.Backdater = (*Sink)(nil)
)

// blobRef is an uploaded blob as a record embeds it.
type blobRef = *lexutil.LexBlob
