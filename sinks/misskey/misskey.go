// Package misskey is the Sink that publishes posts to a Misskey account
// (or one on a fork: Sharkey, Firefish, Iceshrimp, CherryPick …) as notes,
// through package misskey.
//
// What a Draft becomes:
//   - the text as the note's text (Misskey renders it as MFM; plain text
//     stays plain), fitted by the caller to the server's
//     maxNoteTextLength (Limits) in code points, as Misskey counts; on
//     the forks that measure in UTF-16 code units (Sharkey: emoji count
//     two) it is cut further to fit that measure;
//   - the content warning (Summary) as cw, cut to Misskey's 100 characters;
//   - each media file uploaded to the account's drive
//     (drive/files/create) with its alt text as the file's comment (cut to
//     512 characters) and the post's sensitivity as the file's, then
//     attached by fileIds. A file the drive refuses (too large, a type the
//     server does not take, a full drive) or that cannot be read goes in
//     the text as a link when it has one, and the note goes on;
//   - visibility mapped to Misskey's: public → public, unlisted → home,
//     followers-only → followers, direct → specified (addressed to no one
//     but the account: ferry never widens an audience); LocalOnly keeps
//     notes off federation;
//   - a reply (Draft.ReplyTo, a note ID) as replyId, so threads stay
//     threads; a poll as the note's poll.
//
// Notes have no language, no focal points and no sensitivity of their
// own (Misskey marks files sensitive; a text-only sensitive post needs a
// content warning to be hidden).
//
// Misskey has no idempotency keys: a note whose answer was lost is an
// ambiguous error, and the caller looks for it with Find (the account's
// newest notes) before publishing again. Deletes use notes/delete. Edits
// exist only on forks that have notes/edit (Sharkey and the Firefish
// line): New returns an Editor only when Options.CanEdit says so; on
// Misskey itself the bridge applies the route's edit policy.
package misskey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/fedi-ferry/ferry/misskey"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/textfit"
)

// Options configure a Sink.
type Options struct {
	// Client is the destination account's client.
	Client *misskey.Client
	// Fetch downloads media given by URL; nil means a client with a
	// one-minute timeout.
	Fetch *http.Client
	// MaxMediaBytes bounds one downloaded media file; 0 means 100 MB.
	MaxMediaBytes int64
	// CanEdit says the server has notes/edit (misskey.Server.CanEdit).
	CanEdit bool
	// LocalOnly publishes every note local-only (kept off federation).
	LocalOnly bool
	// Logger receives the sink's log lines; nil discards them.
	Logger *slog.Logger
}

// Sink publishes to one Misskey account. Safe for concurrent use.
type Sink struct {
	c        *misskey.Client
	fetch    *http.Client
	maxMedia int64
	local    bool
	log      *slog.Logger

	mu     sync.Mutex
	server *misskey.Server
	selfID string
}

// EditSink is a Sink on a server that can edit notes.
type EditSink struct{ *Sink }

// New returns a sink writing as o.Client's account: an *EditSink when
// o.CanEdit, else a *Sink.
func New(o Options) sinks.Sink {
	s := &Sink{c: o.Client, fetch: o.Fetch, maxMedia: o.MaxMediaBytes, local: o.LocalOnly, log: o.Logger}
	if s.fetch == nil {
		s.fetch = &http.Client{Timeout: time.Minute}
	}
	if s.maxMedia <= 0 {
		s.maxMedia = 100_000_000
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if o.CanEdit {
		return &EditSink{s}
	}
	return s
}

// meta reads (once) the server's limits.
func (s *Sink) meta(ctx context.Context) (misskey.Server, error) {
	s.mu.Lock()
	if s.server != nil {
		defer s.mu.Unlock()
		return *s.server, nil
	}
	s.mu.Unlock()
	// Detect (nodeinfo, then meta) names the software, which decides how
	// the note's length is counted (fitLength); meta alone is the
	// fallback, counting the safe way.
	srv, err := misskey.Detect(ctx, s.c)
	if err != nil && ctx.Err() == nil {
		srv, err = misskey.Meta(ctx, s.c)
	}
	if err != nil {
		return misskey.Server{}, err
	}
	s.mu.Lock()
	s.server = &srv
	s.mu.Unlock()
	return srv, nil
}

// Limits are the server's: maxNoteTextLength from meta, 16 files, polls
// of 10 choices of 50 characters, 512-character alt text, the drive's
// largest file.
func (s *Sink) Limits(ctx context.Context) (post.Limits, error) {
	srv, err := s.meta(ctx)
	if err != nil {
		return post.Limits{}, err
	}
	return srv.Limits(), nil
}

// Visibility is Misskey's visibility for v; unknown values are the
// narrowest.
func Visibility(v post.Visibility) string {
	switch v {
	case post.Public:
		return "public"
	case post.Unlisted:
		return "home"
	case post.Private:
		return "followers"
	}
	return "specified"
}

// clip cuts s to n code points (Misskey's Ajv counts code points).
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return textfit.Rules{}.Truncate(s, "…", n)
}

// Publish uploads the draft's media and creates the note. A lost answer
// is misskey's *AmbiguousError: look with Find before publishing again.
func (s *Sink) Publish(ctx context.Context, d sinks.Draft) (post.Ref, error) {
	if !d.PublishedAt.IsZero() {
		return post.Ref{}, &sinks.PermanentError{Err: sinks.ErrNoBackdate}
	}
	if err := ctx.Err(); err != nil {
		return post.Ref{}, err
	}
	p, err := s.params(ctx, d)
	if err != nil {
		return post.Ref{}, fmt.Errorf("publish %s: %w", d.Key, err)
	}
	n, err := s.c.CreateNote(ctx, p)
	if err != nil {
		return post.Ref{}, fmt.Errorf("publish %s: %w", d.Key, err)
	}
	if n.ID == "" {
		return post.Ref{}, fmt.Errorf("publish %s: the server returned no note id", d.Key)
	}
	return s.ref(n.ID), nil
}

func (s *Sink) ref(id string) post.Ref {
	return post.Ref{ID: id, URL: s.c.Base().JoinPath("notes", id).String()}
}

// params builds notes/create's parameters for d, uploading its media.
func (s *Sink) params(ctx context.Context, d sinks.Draft) (misskey.NoteParams, error) {
	p := misskey.NoteParams{Visibility: Visibility(d.Post.Visibility), ReplyID: d.ReplyTo, LocalOnly: s.local,
		CW: clip(strings.TrimSpace(d.Post.Summary), misskey.MaxCWChars)}
	ids, links, err := s.files(ctx, d.Post)
	if err != nil {
		return p, err
	}
	p.FileIDs = ids
	text, limit := strings.TrimSpace(d.Post.Text), 0
	srv, err := s.meta(ctx)
	if err == nil {
		limit = srv.Limits().MaxChars
	}
	text = textfit.Rules{}.WithLinks(text, links, limit)
	if err == nil {
		text = fitLength(text, srv)
	}
	p.Text = text
	if pl := d.Post.Poll; pl != nil && len(pl.Options) >= 2 {
		pp := &misskey.PollParams{Multiple: pl.Multiple}
		for i, o := range pl.Options {
			if i == misskey.MaxPollChoices {
				break
			}
			pp.Choices = append(pp.Choices, clip(o, misskey.MaxPollChoiceChars))
		}
		switch {
		case pl.ExpiresAt.IsZero():
		case time.Until(pl.ExpiresAt) < 5*time.Minute:
			// Misskey refuses an expired poll; a mirrored one gets a day.
			day := int64(24 * time.Hour / time.Millisecond)
			pp.ExpiredAfter = &day
		default:
			ms := pl.ExpiresAt.UnixMilli()
			pp.ExpiresAt = &ms
		}
		p.Poll = pp
	}
	if p.Text == "" && len(p.FileIDs) == 0 && p.Poll == nil {
		return p, &sinks.PermanentError{Err: errors.New("the post has no text, no file that could be attached and no poll")}
	}
	return p, nil
}

// files uploads the media to the drive and returns their IDs, and the
// links of those that could not be attached.
func (s *Sink) files(ctx context.Context, p post.Post) (ids, links []string, err error) {
	srv, err := s.meta(ctx)
	if err != nil {
		return nil, nil, err
	}
	for i, m := range p.Media {
		if len(ids) == misskey.MaxFilesPerNote {
			links = sinks.AppendLink(links, m)
			continue
		}
		id, err := s.upload(ctx, m, p.Sensitive, srv)
		if err == nil {
			ids = append(ids, id)
			continue
		}
		var refused *sinks.MediaRefusal
		if errors.As(err, &refused) || sinks.IsPermanent(err) && !misskey.IsUnauthorized(err) {
			s.log.Warn("posting a file as a link: the drive does not take it", "media", m.Source(), "n", i+1, "err", err)
			links = sinks.AppendLink(links, m)
			continue
		}
		return nil, nil, fmt.Errorf("media %d of %d: %w", i+1, len(p.Media), err)
	}
	return ids, links, nil
}

func (s *Sink) upload(ctx context.Context, m post.Media, sensitive bool, srv misskey.Server) (string, error) {
	limit := s.maxMedia
	if srv.MaxFileSize > 0 && srv.MaxFileSize < limit {
		limit = srv.MaxFileSize
	}
	data, _, err := sinks.ReadMedia(ctx, s.fetch, m, limit)
	if err != nil {
		return "", err
	}
	name := path.Base(m.Source())
	if name == "." || name == "/" || strings.ContainsAny(name, `\?#`) {
		name = "file"
	}
	f, err := s.c.UploadFile(ctx, name, data, clip(m.Description, misskey.MaxAltChars), sensitive)
	if err != nil {
		return "", err
	}
	return f.ID, nil
}

// fitLength cuts text to the server's note length as the server counts
// it: code points on Misskey (what ferry's fitting counts too), UTF-16
// code units on the forks that measure with JavaScript's length
// (misskey.Server.CountsUTF16).
func fitLength(text string, srv misskey.Server) string {
	max := srv.Limits().MaxChars
	if !srv.CountsUTF16() {
		if max > 0 && utf8.RuneCountInString(text) > max {
			return textfit.Rules{}.Truncate(text, "…", max)
		}
		return text
	}
	return fitUTF16(text, max)
}

// fitUTF16 cuts text to max UTF-16 code units, in which an emoji outside
// the Basic Multilingual Plane counts two, while ferry's fitting counts
// it once.
func fitUTF16(text string, max int) string {
	n := len(utf16.Encode([]rune(text)))
	if max <= 0 || n <= max {
		return text
	}
	for limit := min(utf8.RuneCountInString(text), max); limit > 0; limit-- {
		t := textfit.Rules{}.Truncate(text, "…", limit)
		if len(utf16.Encode([]rune(t))) <= max {
			return t
		}
	}
	return ""
}

// Delete removes the note; a note already gone is not an error.
func (s *Sink) Delete(ctx context.Context, id string) error {
	err := s.c.DeleteNote(ctx, id)
	if err != nil && !misskey.IsCode(err, "NO_SUCH_NOTE") {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	return nil
}

// Edit replaces the note's text and content warning (notes/edit, on
// Sharkey and the Firefish line). notes/edit makes the note what the
// request says, so everything else is sent back as it is: files, poll,
// visibility, the reply it answers, local-only.
func (e *EditSink) Edit(ctx context.Context, id string, d sinks.Draft) error {
	cur, err := e.c.ShowNote(ctx, id)
	if err != nil {
		return fmt.Errorf("edit %s: read the note: %w", id, err)
	}
	p := misskey.NoteParams{Text: strings.TrimSpace(d.Post.Text), FileIDs: cur.FileIDs, Visibility: cur.Visibility,
		ReplyID: misskey.Str(cur.ReplyID), RenoteID: misskey.Str(cur.RenoteID), LocalOnly: cur.LocalOnly,
		CW: clip(strings.TrimSpace(d.Post.Summary), misskey.MaxCWChars)}
	if srv, err := e.meta(ctx); err == nil {
		p.Text = fitLength(p.Text, srv)
	}
	if cur.Poll != nil {
		pp := &misskey.PollParams{Multiple: cur.Poll.Multiple}
		for _, c := range cur.Poll.Choices {
			pp.Choices = append(pp.Choices, c.Text)
		}
		if t := misskey.Time(misskey.Str(cur.Poll.ExpiresAt)); !t.IsZero() && time.Until(t) > time.Minute {
			ms := t.UnixMilli()
			pp.ExpiresAt = &ms
		}
		p.Poll = pp
	}
	if _, err := e.c.EditNote(ctx, misskey.EditParams{EditID: id, NoteParams: p}); err != nil {
		return fmt.Errorf("edit %s: %w", id, err)
	}
	return nil
}

// self returns (once) the account's user ID.
func (s *Sink) self(ctx context.Context) (string, error) {
	s.mu.Lock()
	id := s.selfID
	s.mu.Unlock()
	if id != "" {
		return id, nil
	}
	me, err := s.c.I(ctx)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.selfID = me.ID
	s.mu.Unlock()
	return me.ID, nil
}

// Find looks through the account's newest notes (up to 100, replies
// included) for one made since since (less a minute for clocks) with d's
// parent, content warning and text.
func (s *Sink) Find(ctx context.Context, d sinks.Draft, since time.Time) (post.Ref, bool, error) {
	self, err := s.self(ctx)
	if err != nil {
		return post.Ref{}, false, err
	}
	notes, err := s.c.UserNotes(ctx, misskey.UserNotesParams{UserID: self, Limit: 100, WithReplies: true})
	if err != nil {
		return post.Ref{}, false, fmt.Errorf("look for an earlier copy of %s: %w", d.Key, err)
	}
	want := normalize(d.Post.Text)
	cw := clip(strings.TrimSpace(d.Post.Summary), misskey.MaxCWChars)
	for _, n := range notes {
		if misskey.Time(n.CreatedAt).Before(since.Add(-time.Minute)) {
			continue
		}
		if misskey.Str(n.ReplyID) != d.ReplyTo || misskey.Str(n.CW) != cw {
			continue
		}
		// A file refused at the first attempt became a link after the
		// text.
		if sinks.SameText(normalize(misskey.Str(n.Text)), want, d.Post.Media) {
			return s.ref(n.ID), true, nil
		}
	}
	return post.Ref{}, false, nil
}

func normalize(s string) string { return strings.Join(strings.Fields(s), " ") }

var (
	_ sinks.Sink    = (*Sink)(nil)
	_ sinks.Deleter = (*Sink)(nil)
	_ sinks.Limiter = (*Sink)(nil)
	_ sinks.Finder  = (*Sink)(nil)
	_ sinks.Editor  = (*EditSink)(nil)
)
