// Package misskey is the source of a Misskey account's own notes (on
// Misskey or a fork), through package misskey: users/notes pages walked
// with sinceId/untilId, each note converted to ferry's post (MFM to plain
// text and simple HTML, see mfm.go), and notes/show to confirm deletes.
//
// A note's OriginID is its ID (time-ordered on every Misskey version, so
// it also is the cursor). Replies to the account's own notes keep their
// parent (InReplyTo), so threads stay threads; replies to others carry the
// parent's address (ReplyToURI) for the route's reply policy. A renote
// without text is a boost of the renoted note; a quote (a renote with
// text) becomes, by Options.Quotes, a post ending with the quoted note's
// address, or is left out.
//
// Stream (stream.go) pushes new notes, edits and deletes over Misskey's
// streaming WebSocket; polling with Fetch is the fallback.
package misskey

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"

	mk "github.com/fedi-ferry/ferry/misskey"
	"github.com/fedi-ferry/ferry/sources"
)

// DefaultPageSize is how many notes one request reads; 100 is users/notes'
// maximum.
const DefaultPageSize = 100

// QuotePolicy says what the source does with quotes (renotes with text).
type QuotePolicy int

const (
	// QuoteLink reports a quote with the quoted note's address as its last
	// paragraph.
	QuoteLink QuotePolicy = iota
	// QuoteSkip leaves quotes out.
	QuoteSkip
)

// Options configure a Source.
type Options struct {
	// PageSize is how many notes one request reads, 1–100; 0 means
	// DefaultPageSize.
	PageSize int
	// Quotes says what to do with quotes; the zero value is QuoteLink.
	Quotes QuotePolicy
	// Logger receives debug lines; nil discards.
	Logger *slog.Logger
}

// Source reads one account's own notes. Safe for concurrent use.
type Source struct {
	c        *mk.Client
	pageSize int
	quotes   QuotePolicy
	log      *slog.Logger

	mu   sync.Mutex
	self *mk.User
}

// New returns a Source for the account behind c.
func New(c *mk.Client, o Options) *Source {
	s := &Source{c: c, pageSize: o.PageSize, quotes: o.Quotes, log: o.Logger}
	if s.pageSize <= 0 || s.pageSize > 100 {
		s.pageSize = DefaultPageSize
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

func (s *Source) me(ctx context.Context) (mk.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.self != nil {
		return *s.self, nil
	}
	u, err := s.c.I(ctx)
	if err != nil {
		return mk.User{}, fmt.Errorf("misskey source on %s: %w", s.c.Base().Host, err)
	}
	s.self = &u
	return u, nil
}

// maxWalk bounds the pages one Fetch reads back towards its cursor.
const maxWalk = 50

// Fetch returns the account's notes after cursor (a note ID), oldest
// first; an empty cursor returns the newest page. Next is the newest note
// ID read (cursor when nothing is new); More says a full page was read
// and more may follow.
//
// Misskey versions answer a sinceId-only page either with the oldest notes
// after it (older versions) or with the newest (timelines served from
// Redis): so when a page is full, the notes between the cursor and the
// page are read too, walking down with untilId, and the oldest page of
// them is returned.
func (s *Source) Fetch(ctx context.Context, cursor string) (sources.Page, error) {
	me, err := s.me(ctx)
	if err != nil {
		return sources.Page{}, err
	}
	q := mk.UserNotesParams{UserID: me.ID, Limit: s.pageSize, SinceID: cursor, WithReplies: true}
	notes, err := s.c.UserNotes(ctx, q)
	if err != nil {
		return sources.Page{}, fmt.Errorf("misskey source on %s: %w", s.c.Base().Host, err)
	}
	notes = own(notes, me.ID, cursor)
	more := false
	if cursor != "" && len(notes) >= s.pageSize {
		more = true
		for range maxWalk {
			q.UntilID = notes[0].ID
			older, err := s.c.UserNotes(ctx, q)
			if err != nil {
				return sources.Page{}, fmt.Errorf("misskey source on %s: %w", s.c.Base().Host, err)
			}
			older = own(older, me.ID, cursor)
			if len(older) == 0 {
				break
			}
			notes = append(older, notes...)
		}
		notes = notes[:s.pageSize]
	}
	page := sources.Page{Next: cursor, More: more}
	for _, n := range notes {
		page.Next = n.ID
		if p, ok := s.convert(n, me); ok {
			page.Posts = append(page.Posts, p)
		}
	}
	if len(page.Posts) == 0 && page.Next == cursor {
		page.More = false
	}
	return page, nil
}

// own keeps the account's notes newer than cursor, oldest first, once
// each.
func own(ns []mk.Note, self, cursor string) []mk.Note {
	out := ns[:0:0]
	for _, n := range ns {
		if n.ID != "" && n.UserID == self && (cursor == "" || n.ID > cursor) {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b mk.Note) int { return strings.Compare(a.ID, b.ID) })
	return slices.CompactFunc(out, func(a, b mk.Note) bool { return a.ID == b.ID })
}

// Exists reports whether the note still exists: false for NO_SUCH_NOTE.
func (s *Source) Exists(ctx context.Context, originID string) (bool, error) {
	_, err := s.c.ShowNote(ctx, originID)
	switch {
	case err == nil:
		return true, nil
	case mk.IsCode(err, "NO_SUCH_NOTE"):
		return false, nil
	}
	return false, fmt.Errorf("misskey source: check %s: %w", originID, err)
}

// noteURL is a note's address on base.
func noteURL(base *url.URL, id string) string { return base.JoinPath("notes", id).String() }

var _ sources.Source = (*Source)(nil)
