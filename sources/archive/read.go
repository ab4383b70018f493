// Package archive reads post archives: Mastodon's "Request your archive"
// export (a zip, an older tar.gz, or an unpacked directory) and the
// directories ferry writes in the same layout. Import unpacks an archive
// safely into a directory; EachPost streams its posts as post.Post; Source
// (source.go) reads them as a sources.Source, so an archive can feed a
// route; the search index (index.go) is a SQLite FTS5 database inside the
// directory.
package archive

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/post"
)

// publicCollection is the ActivityStreams public audience, which may appear
// in its short forms too.
const publicCollection = "https://www.w3.org/ns/activitystreams#Public"

// list is a JSON value that may be one string or an array of strings.
type list []string

func (l *list) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*l = nil
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = list{one}
		return nil
	}
	var many []json.RawMessage
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("expected a string or an array of strings")
	}
	for _, m := range many {
		if s, ok := idOf(m); ok {
			*l = append(*l, s)
		}
	}
	return nil
}

// many is a JSON value that may be one object or an array of objects.
type many[T any] []T

func (m *many[T]) UnmarshalJSON(b []byte) error {
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if b[0] == '[' {
		var out []T
		if err := json.Unmarshal(b, &out); err != nil {
			return err
		}
		*m = out
		return nil
	}
	var one T
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*m = many[T]{one}
	return nil
}

// idOf returns a JSON value's identifier: the string itself, or an object's
// "id" (or "href").
func idOf(raw json.RawMessage) (string, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true
	}
	var o struct {
		ID   string `json:"id"`
		Href string `json:"href"`
	}
	if err := json.Unmarshal(raw, &o); err == nil {
		if o.ID != "" {
			return o.ID, true
		}
		return o.Href, o.Href != ""
	}
	return "", false
}

type rawActivity struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Actor     json.RawMessage `json:"actor"`
	Published *time.Time      `json:"published"`
	To        list            `json:"to"`
	Cc        list            `json:"cc"`
	Object    json.RawMessage `json:"object"`
	Deleted   *time.Time      `json:"ferry:deleted"`
}

type rawNote struct {
	ID           string            `json:"id"`
	Type         string            `json:"type"`
	URL          json.RawMessage   `json:"url"`
	Summary      *string           `json:"summary"`
	InReplyTo    json.RawMessage   `json:"inReplyTo"`
	Published    *time.Time        `json:"published"`
	Updated      *time.Time        `json:"updated"`
	To           list              `json:"to"`
	Cc           list              `json:"cc"`
	Sensitive    bool              `json:"sensitive"`
	Content      string            `json:"content"`
	ContentMap   map[string]string `json:"contentMap"`
	AttributedTo json.RawMessage   `json:"attributedTo"`
	Attachment   many[rawDoc]      `json:"attachment"`
	Tag          many[rawTag]      `json:"tag"`
	OneOf        many[rawOption]   `json:"oneOf"`
	AnyOf        many[rawOption]   `json:"anyOf"`
	EndTime      *time.Time        `json:"endTime"`
}

type rawDoc struct {
	Type       string          `json:"type"`
	MediaType  string          `json:"mediaType"`
	URL        json.RawMessage `json:"url"`
	Name       *string         `json:"name"`
	Blurhash   string          `json:"blurhash"`
	FocalPoint []float64       `json:"focalPoint"`
}

type rawTag struct {
	Type string `json:"type"`
	Href string `json:"href"`
	Name string `json:"name"`
}

type rawOption struct {
	Name    string `json:"name"`
	Replies struct {
		TotalItems int `json:"totalItems"`
	} `json:"replies"`
}

// EachItem streams the orderedItems of the outbox.json at path, calling fn
// with each item's raw JSON and its position (from 1). Memory stays at one
// item. Malformed JSON is an error naming the file and the position.
func EachItem(ctx context.Context, file string, fn func(n int, raw json.RawMessage) error) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	defer f.Close()
	return eachItem(ctx, filepath.Base(file), f, fn)
}

func eachItem(ctx context.Context, name string, r io.Reader, fn func(n int, raw json.RawMessage) error) error {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 256<<10))
	bad := func(err error) error {
		return fmt.Errorf("%s: malformed JSON near byte %d: %w", name, dec.InputOffset(), err)
	}
	tok, err := dec.Token()
	if err != nil {
		return bad(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("%s: not a JSON object (an OrderedCollection was expected)", name)
	}
	found := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad(err)
		}
		key, _ := tok.(string)
		if key != "orderedItems" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return bad(err)
			}
			continue
		}
		found = true
		tok, err = dec.Token()
		if err != nil {
			return bad(err)
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return fmt.Errorf("%s: orderedItems is not an array", name)
		}
		n := 0
		for dec.More() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return bad(fmt.Errorf("item %d: %w", n+1, err))
			}
			n++
			if err := fn(n, raw); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return bad(err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return bad(err)
	}
	if !found {
		return fmt.Errorf("%s: no orderedItems (not an outbox)", name)
	}
	return nil
}

// EachPost streams the posts of the archive in dir, in the outbox's order
// (Mastodon and ferry write it oldest first), as post.Post: OriginID is the
// post's URI (the activity's for boosts), InReplyTo is set when the parent
// is in the archive (ReplyToURI always), media carry Path when their file is
// in the archive. It reads outbox.json twice (once to learn which posts are
// there), keeping only their URIs in memory.
func EachPost(ctx context.Context, dir string, fn func(post.Post) error) error {
	file := filepath.Join(dir, "outbox.json")
	own := map[string]bool{}
	err := EachItem(ctx, file, func(n int, raw json.RawMessage) error {
		var a rawActivity
		if err := json.Unmarshal(raw, &a); err != nil {
			return fmt.Errorf("outbox.json: item %d: %w", n, err)
		}
		if id, ok := idOf(a.Object); ok && a.Type == "Create" {
			own[id] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	return eachPost(ctx, dir, own, fn)
}

// eachPost streams the posts of outbox.json in dir; own holds the URIs of
// the archive's posts (nil: InReplyTo is left empty).
func eachPost(ctx context.Context, dir string, own map[string]bool, fn func(post.Post) error) error {
	return EachItem(ctx, filepath.Join(dir, "outbox.json"), func(n int, raw json.RawMessage) error {
		p, ok, err := convert(raw, dir, own)
		if err != nil {
			return fmt.Errorf("outbox.json: item %d: %w", n, err)
		}
		if !ok {
			return nil
		}
		return fn(p)
	})
}

// convert turns one outbox item into a Post; ok is false for activities
// that are not posts.
func convert(raw json.RawMessage, dir string, own map[string]bool) (post.Post, bool, error) {
	var a rawActivity
	if err := json.Unmarshal(raw, &a); err != nil {
		return post.Post{}, false, err
	}
	actor, _ := idOf(a.Actor)
	p := post.Post{Author: post.Author{URI: actor}, Deleted: a.Deleted != nil}
	if a.Published != nil {
		p.CreatedAt = a.Published.UTC()
	}
	p.Visibility = visibility(a.To, a.Cc)
	switch a.Type {
	case "Announce":
		target, ok := idOf(a.Object)
		if !ok || target == "" {
			return post.Post{}, false, fmt.Errorf("Announce %q has no object", a.ID)
		}
		p.OriginID, p.URI, p.BoostOf = a.ID, a.ID, target
		return p, true, nil
	case "Create":
	default:
		return post.Post{}, false, nil
	}
	var n rawNote
	if err := json.Unmarshal(a.Object, &n); err != nil {
		return post.Post{}, false, fmt.Errorf("Create %q: object: %w", a.ID, err)
	}
	if n.ID == "" {
		return post.Post{}, false, fmt.Errorf("Create %q: the object has no id", a.ID)
	}
	p.OriginID, p.URI = n.ID, n.ID
	if u, ok := idOf(n.URL); ok {
		p.URL = u
	}
	if n.Published != nil {
		p.CreatedAt = n.Published.UTC()
	}
	if n.Updated != nil {
		p.EditedAt = n.Updated.UTC()
	}
	if len(n.To)+len(n.Cc) > 0 {
		p.Visibility = visibility(n.To, n.Cc)
	}
	if n.Summary != nil {
		p.Summary = *n.Summary
	}
	p.Sensitive = n.Sensitive
	p.HTML = n.Content
	for lang, c := range n.ContentMap {
		p.Language = lang
		if p.HTML == "" {
			p.HTML = c
		}
		break
	}
	p.Text = fedi.HTMLText(p.HTML, nil)
	if parent, ok := idOf(n.InReplyTo); ok && parent != "" {
		p.ReplyToURI = parent
		if own[parent] {
			p.InReplyTo = parent
		}
	}
	for _, d := range n.Attachment {
		u, _ := idOf(d.URL)
		if u == "" {
			continue // a preview card (Link) or a damaged entry
		}
		m := post.Media{URL: u, MIMEType: d.MediaType, Blurhash: d.Blurhash}
		if d.Name != nil {
			m.Description = *d.Name
		}
		if len(d.FocalPoint) == 2 {
			m.FocusX, m.FocusY = d.FocalPoint[0], d.FocalPoint[1]
		}
		if rel := MediaRel(u); rel != "" {
			if fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel))); err == nil && fi.Mode().IsRegular() {
				m.Path = filepath.Join(dir, filepath.FromSlash(rel))
			}
		}
		p.Media = append(p.Media, m)
	}
	for _, t := range n.Tag {
		switch t.Type {
		case "Hashtag":
			p.Tags = append(p.Tags, strings.TrimPrefix(t.Name, "#"))
		case "Mention":
			acct := strings.TrimPrefix(t.Name, "@")
			if !strings.Contains(acct, "@") {
				if u, err := url.Parse(t.Href); err == nil && u.Host != "" {
					acct += "@" + u.Host
				}
			}
			p.Mentions = append(p.Mentions, post.Mention{Acct: acct, URL: t.Href})
		}
	}
	if len(n.OneOf)+len(n.AnyOf) > 0 {
		opts := n.OneOf
		poll := &post.Poll{}
		if len(n.AnyOf) > 0 {
			opts, poll.Multiple = n.AnyOf, true
		}
		for _, o := range opts {
			poll.Options = append(poll.Options, o.Name)
			poll.Votes = append(poll.Votes, o.Replies.TotalItems)
		}
		if n.EndTime != nil {
			poll.ExpiresAt = n.EndTime.UTC()
		}
		p.Poll = poll
	}
	return p, true, nil
}

// MediaRel returns the archive-relative path of a media URL: from its
// "media_attachments/" segment on (Mastodon strips "/system/"; CDN setups
// add prefixes), or "" when the URL has none or the path is unsafe.
func MediaRel(u string) string {
	if pu, err := url.Parse(u); err == nil && pu.Path != "" {
		u = pu.Path
	}
	i := strings.Index(u, "media_attachments/")
	if i < 0 {
		return ""
	}
	rel := path.Clean(u[i:])
	if strings.Contains(rel, "..") || strings.ContainsAny(rel, "\\\x00") {
		return ""
	}
	return rel
}

// visibility derives a post's audience from its addressing (Public in to:
// public; in cc: unlisted; a followers collection: private; else direct).
func visibility(to, cc list) post.Visibility {
	isPublic := func(s string) bool {
		return s == publicCollection || s == "as:Public" || s == "Public"
	}
	for _, s := range to {
		if isPublic(s) {
			return post.Public
		}
	}
	for _, s := range cc {
		if isPublic(s) {
			return post.Unlisted
		}
	}
	for _, s := range append(append(list{}, to...), cc...) {
		if strings.HasSuffix(s, "/followers") {
			return post.Private
		}
	}
	return post.Direct
}
