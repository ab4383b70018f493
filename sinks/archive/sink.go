package archive

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
)

// Sink writes posts into an archive directory, as a sinks.Sink: a route or
// the archive publisher can keep copies in an archive the way it keeps them
// on an account. The archive stays in the layout `ferry archive` writes
// (and every reader of Mastodon archives reads): each write updates the
// record store and regenerates the JSON files, so the directory is
// complete after every call.
//
// What an archive can do decides the abilities:
//   - Publish is idempotent by Draft.Key (the post's ID derives from it), so
//     a repeated Publish after a crash returns the post already written.
//   - Edit replaces text, content warning, sensitivity and language and sets
//     the post's "updated" time; media and polls stay as published.
//   - Delete keeps the post and marks it deleted (ferry:deleted), as the
//     archiver does for posts gone from the server: an archive is where a
//     deleted post is still found. Readers report it with Deleted set.
//   - Every post can keep its original date (Backdater, always true).
//   - There are no limits (no Limiter): an archive holds what it is given.
//
// Sink is safe for concurrent use; writes are serialised.
type Sink struct {
	mu    sync.Mutex
	s     *Store
	actor string
	now   func() time.Time
}

// SinkOptions configure a Sink.
type SinkOptions struct {
	// Actor is the URI of the account whose archive this is: posts are
	// attributed to it and their URIs are Actor + "/statuses/" + ID.
	Actor string
	// Now is the clock for creation and edit times; nil means time.Now.
	Now func() time.Time
}

// NewSink returns a Sink writing into the archive of s. The caller keeps
// ownership of s and closes it after the last write.
func NewSink(s *Store, o SinkOptions) (*Sink, error) {
	if o.Actor == "" {
		return nil, errors.New("archive sink: the actor (the archive's account URI) is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Sink{s: s, actor: strings.TrimSuffix(o.Actor, "/"), now: o.Now}, nil
}

// Publish writes d as a new post of the archive and returns its ID (and its
// URI as URL). With a Key, the ID is derived from it and a post already
// written under that Key is returned unchanged.
func (k *Sink) Publish(ctx context.Context, d sinks.Draft) (post.Ref, error) {
	if err := ctx.Err(); err != nil {
		return post.Ref{}, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	id, err := newID(d.Key)
	if err != nil {
		return post.Ref{}, err
	}
	ref := post.Ref{ID: id, URL: k.uri(id)}
	if d.Key != "" {
		if has, err := k.s.Has(ctx, id); err != nil || has {
			return ref, err
		}
	}
	at := k.now().UTC()
	if !d.PublishedAt.IsZero() {
		at = d.PublishedAt.UTC()
	}
	rec, err := k.record(ctx, id, at, d)
	if err != nil {
		return post.Ref{}, err
	}
	if err := k.s.Put(ctx, rec); err != nil {
		return post.Ref{}, err
	}
	return ref, Write(ctx, k.s)
}

// Edit replaces the text, content warning, sensitivity and language of post
// id with d's and records the edit time. Editing a post the archive does not
// hold is a permanent error.
func (k *Sink) Edit(ctx context.Context, id string, d sinks.Draft) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var raw, parentID, parentURI string
	err := k.s.db.QueryRowContext(ctx, `SELECT record, parent_id, parent_uri FROM activities WHERE id = ?`, id).Scan(&raw, &parentID, &parentURI)
	if errors.Is(err, sql.ErrNoRows) {
		return &sinks.PermanentError{Err: fmt.Errorf("archive: no post %s to edit", id)}
	}
	if err != nil {
		return fmt.Errorf("archive: edit %s: %w", id, err)
	}
	a, err := decodeActivity([]byte(raw))
	if err != nil {
		return fmt.Errorf("archive: edit %s: %w", id, err)
	}
	n, ok := a.Object.(*Note)
	if !ok {
		return &sinks.PermanentError{Err: fmt.Errorf("archive: post %s is a boost and cannot be edited", id)}
	}
	now := k.now().UTC()
	fillText(n, d.Post)
	n.Updated = &now
	rec := Record{ID: id, URI: n.ID, ParentID: parentID, ParentURI: parentURI, Edited: now, Activity: a}
	if err := k.s.Put(ctx, rec); err != nil {
		return err
	}
	return Write(ctx, k.s)
}

// Delete marks post id deleted; the post stays in the archive. Deleting a
// post already marked, or one the archive does not hold, is not an error.
func (k *Sink) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.s.MarkDeleted(ctx, id, k.now()); err != nil {
		return err
	}
	return Write(ctx, k.s)
}

// CanBackdate reports true: an archive keeps whatever date it is given.
func (k *Sink) CanBackdate(context.Context) (bool, error) { return true, nil }

func (k *Sink) uri(id string) string { return k.actor + "/statuses/" + id }

// newID derives a post ID from key (so the same key names the same post),
// or makes a random one.
func newID(key string) (string, error) {
	if key != "" {
		h := sha256.Sum256([]byte(key))
		return hex.EncodeToString(h[:12]), nil
	}
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("archive: make a post ID: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// record builds the stored record of a new post, copying its media files
// into the archive.
func (k *Sink) record(ctx context.Context, id string, at time.Time, d sinks.Draft) (Record, error) {
	p := d.Post
	uri := k.uri(id)
	var mentions []string
	for _, m := range p.Mentions {
		if m.URL != "" {
			mentions = append(mentions, m.URL)
		}
	}
	to, cc := addressing(string(orPublic(p.Visibility)), k.actor+"/followers", mentions)
	if to == nil {
		to = []string{}
	}
	if cc == nil {
		cc = []string{}
	}
	n := &Note{ID: uri, Type: "Note", Published: at, URL: uri, AttributedTo: k.actor, To: to, Cc: cc,
		AtomURI: uri, Attachment: []Document{}, Tag: []Tag{}}
	fillText(n, p)
	for i, m := range p.Media {
		doc, err := k.addMedia(ctx, id, i, m)
		if err != nil {
			return Record{}, err
		}
		n.Attachment = append(n.Attachment, doc)
	}
	for _, m := range p.Mentions {
		n.Tag = append(n.Tag, Tag{Type: "Mention", Href: m.URL, Name: "@" + m.Acct})
	}
	for _, t := range p.Tags {
		n.Tag = append(n.Tag, Tag{Type: "Hashtag", Name: "#" + t})
	}
	if pl := p.Poll; pl != nil {
		n.Type = "Question"
		opts := make([]PollOption, 0, len(pl.Options))
		for i, o := range pl.Options {
			po := PollOption{Type: "Note", Name: o}
			po.Replies.Type = "Collection"
			if i < len(pl.Votes) {
				po.Replies.TotalItems = pl.Votes[i]
			}
			opts = append(opts, po)
		}
		if pl.Multiple {
			n.AnyOf = opts
		} else {
			n.OneOf = opts
		}
		if !pl.ExpiresAt.IsZero() {
			t := pl.ExpiresAt.UTC()
			n.EndTime = &t
		}
	}
	rec := Record{ID: id, URI: uri, ParentID: d.ReplyTo}
	if d.ReplyTo != "" {
		rec.ParentURI = k.uri(d.ReplyTo)
	}
	rec.Activity = Activity{ID: uri + "/activity", Type: "Create", Actor: k.actor, Published: at, To: to, Cc: cc, Object: n}
	return rec, nil
}

func orPublic(v post.Visibility) post.Visibility {
	if v == "" {
		return post.Public
	}
	return v
}

// fillText sets the note's text fields from p: the plain text as HTML
// paragraphs (blank lines) and line breaks.
func fillText(n *Note, p post.Post) {
	n.Content = textHTML(p.Text)
	n.Summary = nil
	if p.Summary != "" {
		s := p.Summary
		n.Summary = &s
	}
	n.Sensitive = p.Sensitive || p.Summary != ""
	n.ContentMap = nil
	if p.Language != "" {
		n.ContentMap = map[string]string{p.Language: n.Content}
	}
}

// textHTML renders plain text as Mastodon does: paragraphs at blank lines,
// <br> at single line breaks, everything escaped.
func textHTML(text string) string {
	var b strings.Builder
	for _, para := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		if strings.TrimSpace(para) == "" {
			continue
		}
		lines := strings.Split(strings.Trim(para, "\n"), "\n")
		for i, l := range lines {
			lines[i] = html.EscapeString(l)
		}
		b.WriteString("<p>" + strings.Join(lines, "<br>") + "</p>")
	}
	return b.String()
}

// addMedia copies a local media file into the archive, or queues a remote
// one for the archiver's media download, and describes it.
func (k *Sink) addMedia(ctx context.Context, id string, i int, m post.Media) (Document, error) {
	name := "file"
	switch {
	case m.Path != "":
		name = safeName(filepath.Base(m.Path))
	case m.URL != "":
		name = safeName(path.Base(m.URL))
	}
	rel := fmt.Sprintf("media_attachments/files/%s/original/%d-%s", id, i, name)
	d := Document{Type: "Document", MediaType: m.MIMEType, URL: rel, Blurhash: m.Blurhash, RemoteURL: m.URL}
	if d.MediaType == "" {
		d.MediaType = mediaType(fedi.Attachment{}, rel)
	}
	if m.Description != "" {
		alt := m.Description
		d.Name = &alt
	}
	if m.FocusX != 0 || m.FocusY != 0 {
		d.FocalPoint = []float64{m.FocusX, m.FocusY}
	}
	switch {
	case m.Path != "":
		if err := copyInto(k.s.dir, rel, m.Path); err != nil {
			return Document{}, err
		}
	case m.URL != "":
		if err := k.s.QueueMedia(ctx, rel, m.URL, id); err != nil {
			return Document{}, err
		}
	}
	return d, nil
}

// copyInto copies the file src to dir/rel (rel made by addMedia, inside
// the archive) through os.Root, so nothing lands outside dir.
func copyInto(dir, rel, src string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return &sinks.PermanentError{Err: fmt.Errorf("archive: media: %w", err)}
	}
	defer in.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer root.Close()
	if err := root.MkdirAll(path.Dir(rel), 0o755); err != nil {
		return fmt.Errorf("archive: media: %w", err)
	}
	out, err := root.Create(rel)
	if err != nil {
		return fmt.Errorf("archive: media: %w", err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("archive: media: %w", cerr)
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("archive: media: %w", err)
	}
	return nil
}

var (
	_ sinks.Sink      = (*Sink)(nil)
	_ sinks.Editor    = (*Sink)(nil)
	_ sinks.Deleter   = (*Sink)(nil)
	_ sinks.Backdater = (*Sink)(nil)
)
