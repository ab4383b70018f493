// Package bluesky is the source for a Bluesky (AT Protocol) account's own
// posts. It reads the app.bsky.feed.post records of the account's
// repository on its PDS page by page (com.atproto.repo.listRecords; the
// cursor is the record key of the newest record handled), can say whether a
// post still exists (to confirm deletes), and streams new and deleted posts
// from the PDS's repository event stream (com.atproto.sync.subscribeRepos).
//
// A post's OriginID is its at:// URI: unique across the account's
// collections (posts and reposts), unchanged when the handle changes, and
// what replies use to name their parent.
package bluesky

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/sources"
)

// DefaultPageSize is how many records one Fetch reads when Options.PageSize
// is 0; 100 is listRecords' maximum.
const DefaultPageSize = 100

// QuotePolicy says what the source does with quote posts (posts embedding
// another post).
type QuotePolicy int

const (
	// QuoteLink reports a quote post with the quoted post's bsky.app URL as
	// the last paragraph of its text: the fediverse has no quote embeds.
	QuoteLink QuotePolicy = iota
	// QuoteSkip leaves quote posts out.
	QuoteSkip
)

// Options configure a Source.
type Options struct {
	// PageSize is how many records one request reads, 1–100; 0 means
	// DefaultPageSize.
	PageSize int
	// Logger receives debug lines; nil discards.
	Logger *slog.Logger
	// Reposts makes the source read the account's reposts too and report
	// them as boosts (post.Post.BoostOf, the reposted post's at:// URI), for
	// the route's boosts policy. False leaves them unread.
	Reposts bool
	// Quotes says what to do with quote posts; the zero value is QuoteLink.
	Quotes QuotePolicy
}

// Source reads one account's own posts from its PDS. It is safe for
// concurrent use.
type Source struct {
	c        *atproto.Client
	pageSize int
	log      *slog.Logger
	reposts  bool
	quotes   QuotePolicy
}

// New returns a Source for the account behind c.
func New(c *atproto.Client, o Options) *Source {
	s := &Source{c: c, pageSize: o.PageSize, log: o.Logger, reposts: o.Reposts, quotes: o.Quotes}
	if s.pageSize <= 0 || s.pageSize > 100 {
		s.pageSize = DefaultPageSize
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// account returns who the source reads, with the session's current handle.
func (s *Source) account() account {
	sess := s.c.Session()
	return account{did: sess.DID, handle: sess.Handle, pds: s.c.PDS()}
}

func (s *Source) collections() []string {
	if s.reposts {
		return []string{atproto.PostCollection, repostCollection}
	}
	return []string{atproto.PostCollection}
}

// maxSkippedPages bounds how many pages one Fetch reads past records it
// does not report (quotes under QuoteSkip, unknown record types), so that a
// page with More always carries posts.
const maxSkippedPages = 10

// Fetch returns the account's posts after cursor (a record key), oldest
// first; an empty cursor returns the newest page. Next is the key of the
// newest record read (or cursor when there is nothing new); More reports
// that a full page was read, after which more may follow.
//
// Record keys of posts are TIDs, which order records by creation; the PDS
// lists a collection in key order and takes the last key as the cursor of
// the next page, which is what makes the cursor resumable and repeatable.
// A post whose key is older than the cursor when it is written (a client
// with a clock far behind, a copy backdated by a cross-poster) is not seen.
func (s *Source) Fetch(ctx context.Context, cursor string) (sources.Page, error) {
	if cursor != "" {
		if _, err := syntax.ParseRecordKey(cursor); err != nil {
			return sources.Page{}, fmt.Errorf("bluesky source: cursor %q is not a record key: %w", cursor, err)
		}
	}
	acct := s.account()
	page := sources.Page{Next: cursor}
	for range maxSkippedPages {
		recs, more, err := s.read(ctx, page.Next)
		if err != nil {
			return sources.Page{}, err
		}
		for _, r := range recs {
			if p, ok := acct.convert(r.URI, r.RKey, r.Value, s.quotes); ok {
				page.Posts = append(page.Posts, p)
			} else {
				s.log.Debug("bluesky source: record left out", "uri", r.URI)
			}
			page.Next = r.RKey
		}
		page.More = more
		if len(page.Posts) > 0 || !more {
			break
		}
	}
	if len(page.Posts) == 0 {
		// Every record read was left out: nothing to hand over, but Next
		// has moved past them, and the caller's next run resumes there.
		page.More = false
	}
	return page, nil
}

// read returns the next records after cursor (the newest page for ""),
// oldest first across the source's collections, and whether more may follow.
func (s *Source) read(ctx context.Context, cursor string) ([]atproto.Record, bool, error) {
	newest := cursor == ""
	var all []atproto.Record
	full := false
	for _, col := range s.collections() {
		recs, _, err := s.c.ListRecords(ctx, col, cursor, s.pageSize, !newest)
		if err != nil {
			return nil, false, fmt.Errorf("bluesky source: list %s of %s: %w", col, s.c.DID(), err)
		}
		if len(recs) == s.pageSize {
			full = true
		}
		for _, r := range recs {
			// The cursor bounds the listing on the PDS; dropping what is
			// not after it keeps "resume repeats nothing" true whatever the
			// server does.
			if r.RKey == "" || (!newest && r.RKey <= cursor) {
				continue
			}
			all = append(all, r)
		}
	}
	slices.SortStableFunc(all, func(a, b atproto.Record) int { return cmp.Compare(a.RKey, b.RKey) })
	if newest {
		if len(all) > s.pageSize {
			all = all[len(all)-s.pageSize:]
		}
		return all, false, nil
	}
	if len(all) > s.pageSize {
		// Two collections were merged: keep one page, but never split
		// records sharing a key, which one cursor could not resume between.
		n := s.pageSize
		for n < len(all) && all[n].RKey == all[n-1].RKey {
			n++
		}
		if n < len(all) {
			all, full = all[:n], true
		}
	}
	return all, full && len(all) > 0, nil
}

// Exists reports whether the post (or repost) originID, an at:// URI of the
// account's repository, still exists: false when the PDS has no such
// record. An error means "do not know".
func (s *Source) Exists(ctx context.Context, originID string) (bool, error) {
	u, err := syntax.ParseATURI(originID)
	if err != nil {
		return false, fmt.Errorf("bluesky source: origin %q: %w", originID, err)
	}
	if u.Authority().String() != s.c.DID() || !slices.Contains(s.collections(), u.Collection().String()) {
		return false, fmt.Errorf("bluesky source: %s is not a post of %s", originID, s.c.DID())
	}
	_, err = s.c.GetRecord(ctx, u.Collection().String(), u.RecordKey().String())
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, atproto.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("bluesky source: check %s: %w", originID, err)
}

var (
	_ sources.Source   = (*Source)(nil)
	_ sources.Streamer = (*Source)(nil)
)
