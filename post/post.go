// Package post is ferry's neutral vocabulary: a post as it travels from a
// source (an account, a feed, an archive) to a sink (an account, an archive),
// together with the limits a destination imposes on it.
//
// The package imports nothing from the rest of the module, so every other
// package can depend on it without creating cycles. Conversions from and to
// wire formats live next to those formats (each plugin's convert.go), never
// here.
package post

import "time"

// Visibility is who may see a post, in the Mastodon API's vocabulary, which
// every server ferry talks to maps onto.
type Visibility string

// The visibilities, from widest to narrowest.
const (
	Public   Visibility = "public"   // anyone, shown on public timelines
	Unlisted Visibility = "unlisted" // anyone with the link, kept off public timelines
	Private  Visibility = "private"  // followers only
	Direct   Visibility = "direct"   // mentioned accounts only
)

// Valid reports whether v is one of the four known visibilities.
func (v Visibility) Valid() bool {
	switch v {
	case Public, Unlisted, Private, Direct:
		return true
	}
	return false
}

// Rank orders visibilities from widest (0) to narrowest (3); unknown values
// rank as Direct so that a mapping error never widens an audience.
func (v Visibility) Rank() int {
	switch v {
	case Public:
		return 0
	case Unlisted:
		return 1
	case Private:
		return 2
	}
	return 3
}

// Post is one post from any origin. Only OriginID is required; every other
// field is optional and its zero value means "not known" or "none".
type Post struct {
	OriginID  string // stable ID at the origin: status ID, feed GUID, archive activity ID
	URI       string // canonical identifier (ActivityPub object ID), if any
	URL       string // human-facing link, if any
	Author    Author
	CreatedAt time.Time
	EditedAt  time.Time // zero when never edited

	Title   string // feeds only: the entry title
	Text    string // plain text; the form a sink posts when it cannot send HTML
	HTML    string // the original HTML content, if the origin had any
	Summary string // content warning (spoiler text)

	Sensitive  bool
	Visibility Visibility
	Language   string // BCP 47 tag, "" when unknown

	Media      []Media
	InReplyTo  string // OriginID of the post this replies to, "" for none
	ReplyToURI string // URI of the parent when it is not one of the origin's own posts
	Tags       []string
	Mentions   []Mention
	Poll       *Poll
	BoostOf    string // URI of the boosted post; Text and Media are empty for a boost
	Deleted    bool   // set by sources that report deletions (tombstones)
}

// IsBoost reports whether p is a boost (reblog, Announce) of another post.
func (p Post) IsBoost() bool { return p.BoostOf != "" }

// Author identifies who wrote a post at its origin.
type Author struct {
	Acct        string // user@host, or a feed's title for feeds
	DisplayName string
	URI         string
}

// Mention is an account a post mentions.
type Mention struct {
	Acct string // user@host
	URL  string // profile URL, used to link a mention without pinging
}

// Media is one attachment. URL is where to fetch it; a sink re-uploads it.
type Media struct {
	URL         string
	MIMEType    string
	Description string  // alt text
	FocusX      float64 // focal point, -1..1, 0 = centre
	FocusY      float64
	Blurhash    string
	Path        string // local file, for archives; used instead of URL when set
}

// Source is where the media is read from: the local file when there is
// one, else the URL.
func (m Media) Source() string {
	if m.Path != "" {
		return m.Path
	}
	return m.URL
}

// Poll is a poll attached to a post.
type Poll struct {
	Options   []string
	Multiple  bool
	ExpiresAt time.Time
	Votes     []int // per option, same order, when known
}

// Limits are what a destination accepts. A zero field means "no limit known";
// callers substitute a safe default.
type Limits struct {
	MaxChars int // characters per post (graphemes when CountGraphemes)
	// CountGraphemes says the server counts MaxChars in grapheme clusters
	// (what a reader sees as one character: a flag or a family emoji is
	// one), as Bluesky does, rather than in Unicode code points.
	CountGraphemes  bool
	CharsPerURL     int      // how many characters a URL counts as; 0 = its real length
	MaxMedia        int      // attachments per post
	MediaTypes      []string // accepted MIME types; empty = unknown
	MaxPollOptions  int
	MaxPollOptChars int
	MaxImageBytes   int64
	MaxVideoBytes   int64
	MaxAltChars     int // alt text length
}

// Ref is where a published post landed: its ID on the destination and its URL.
type Ref struct {
	ID  string
	URL string
}
