// Package archive keeps a person's posts, favourites, bookmarks, profile and
// media in a directory laid out like Mastodon's "Request your archive"
// export (outbox.json, actor.json, likes.json, bookmarks.json,
// media_attachments/…), so that every tool that reads Mastodon archives
// reads ferry's.
//
// Per-post records live in a ferry-private SQLite file (DIR/.ferry/archive.db)
// and the JSON files are regenerated from it by streaming, so memory stays
// flat in the number of posts. Run fetches an account's posts into
// the directory incrementally; Write regenerates the JSON files; Zip packs
// the layout into a zip file; Sink (sink.go) writes posts into an archive as
// a sinks.Sink.
package archive

import (
	"encoding/json"
	"time"
)

// Public is the ActivityStreams public collection.
const Public = "https://www.w3.org/ns/activitystreams#Public"

// outboxContext is the JSON-LD context Mastodon puts at the top of outbox.json.
var outboxContext = []any{
	"https://www.w3.org/ns/activitystreams",
	map[string]any{
		"ostatus":          "http://ostatus.org#",
		"atomUri":          "ostatus:atomUri",
		"inReplyToAtomUri": "ostatus:inReplyToAtomUri",
		"conversation":     "ostatus:conversation",
		"sensitive":        "as:sensitive",
		"toot":             "http://joinmastodon.org/ns#",
		"votersCount":      "toot:votersCount",
		"blurhash":         "toot:blurhash",
		"focalPoint":       map[string]string{"@container": "@list", "@id": "toot:focalPoint"},
		"Hashtag":          "as:Hashtag",
		"ferry":            "https://ferry.invalid/ns#",
	},
}

// Activity is one item of outbox.json: a Create wrapping a Note or Question
// (the account's own post) or an Announce whose object is the URI of the
// boosted post (protocols.md §1b).
type Activity struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"` // Create or Announce
	Actor     string    `json:"actor"`
	Published time.Time `json:"published"`
	To        []string  `json:"to"`
	Cc        []string  `json:"cc"`
	// Object is a *Note for Create and a string (URI) for Announce.
	Object any `json:"object"`
	// Deleted, when set, is when ferry found the post gone from the server.
	// The post stays in the archive; readers that do not know the field
	// ignore it.
	Deleted *time.Time `json:"ferry:deleted,omitempty"`
}

// Note is a post as ActivityPub describes it (Mastodon's NoteSerializer).
type Note struct {
	ID               string            `json:"id"`
	Type             string            `json:"type"` // Note, or Question for polls
	Summary          *string           `json:"summary"`
	InReplyTo        *string           `json:"inReplyTo"`
	Published        time.Time         `json:"published"`
	URL              string            `json:"url,omitempty"`
	AttributedTo     string            `json:"attributedTo"`
	To               []string          `json:"to"`
	Cc               []string          `json:"cc"`
	Sensitive        bool              `json:"sensitive"`
	AtomURI          string            `json:"atomUri"`
	InReplyToAtomURI *string           `json:"inReplyToAtomUri"`
	Content          string            `json:"content"`
	ContentMap       map[string]string `json:"contentMap,omitempty"`
	Updated          *time.Time        `json:"updated,omitempty"`
	Attachment       []Document        `json:"attachment"`
	Tag              []Tag             `json:"tag"`

	// Poll fields (Question only).
	OneOf       []PollOption `json:"oneOf,omitempty"`
	AnyOf       []PollOption `json:"anyOf,omitempty"`
	EndTime     *time.Time   `json:"endTime,omitempty"`
	Closed      *time.Time   `json:"closed,omitempty"`
	VotersCount *int         `json:"votersCount,omitempty"`
}

// Document is a media attachment. URL is the file's path inside the archive
// (media_attachments/…), as Mastodon writes it.
type Document struct {
	Type       string    `json:"type"` // Document
	MediaType  string    `json:"mediaType,omitempty"`
	URL        string    `json:"url"`
	Name       *string   `json:"name"` // alt text
	Blurhash   string    `json:"blurhash,omitempty"`
	FocalPoint []float64 `json:"focalPoint,omitempty"`
	Width      int       `json:"width,omitempty"`
	Height     int       `json:"height,omitempty"`
	RemoteURL  string    `json:"ferry:remoteUrl,omitempty"` // where ferry downloaded it from
}

// Tag is a Mention or Hashtag of a Note.
type Tag struct {
	Type string `json:"type"`
	Href string `json:"href"`
	Name string `json:"name"`
}

// PollOption is one answer of a Question.
type PollOption struct {
	Type    string `json:"type"` // Note
	Name    string `json:"name"`
	Replies struct {
		Type       string `json:"type"` // Collection
		TotalItems int    `json:"totalItems"`
	} `json:"replies"`
}

// Actor is actor.json: the account's profile with the avatar and header
// pointing at files at the archive root (avatar.<ext>, header.<ext>).
type Actor struct {
	Context                   any             `json:"@context"`
	ID                        string          `json:"id"`
	Type                      string          `json:"type"`
	Following                 string          `json:"following,omitempty"`
	Followers                 string          `json:"followers,omitempty"`
	Inbox                     string          `json:"inbox,omitempty"`
	Outbox                    string          `json:"outbox"`
	Likes                     string          `json:"likes"`
	Bookmarks                 string          `json:"bookmarks"`
	PreferredUsername         string          `json:"preferredUsername"`
	Name                      string          `json:"name"`
	Summary                   string          `json:"summary"`
	URL                       string          `json:"url,omitempty"`
	ManuallyApprovesFollowers bool            `json:"manuallyApprovesFollowers"`
	Published                 *time.Time      `json:"published,omitempty"`
	Attachment                []PropertyValue `json:"attachment"`
	Icon                      *Image          `json:"icon,omitempty"`
	Image                     *Image          `json:"image,omitempty"`
}

// PropertyValue is one profile field.
type PropertyValue struct {
	Type  string `json:"type"` // PropertyValue
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Image is the avatar or header, URL relative to the archive root.
type Image struct {
	Type      string `json:"type"` // Image
	MediaType string `json:"mediaType,omitempty"`
	URL       string `json:"url"`
}

// decodeActivity decodes a stored record, restoring a Create's object as a
// *Note (json leaves it a map).
func decodeActivity(data []byte) (Activity, error) {
	var raw struct {
		Activity
		Object json.RawMessage `json:"object"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return Activity{}, err
	}
	a := raw.Activity
	if len(raw.Object) > 0 && raw.Object[0] == '{' {
		var n Note
		if err := json.Unmarshal(raw.Object, &n); err != nil {
			return Activity{}, err
		}
		a.Object = &n
	} else {
		var s string
		if err := json.Unmarshal(raw.Object, &s); err != nil {
			return Activity{}, err
		}
		a.Object = s
	}
	return a, nil
}
