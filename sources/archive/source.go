package archive

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sources"
)

// DefaultPageSize is how many posts a Source returns per Fetch unless told
// otherwise.
const DefaultPageSize = 40

// Source reads the posts of an archive directory (a Mastodon export or one
// `ferry archive` writes) as a sources.Source, so an archive can feed a
// route like an account or a feed.
//
// Posts are ordered by (creation time, OriginID), whatever order
// outbox.json lists them in. The cursor is the position of the last post
// returned in that order, written as "<RFC 3339 time> <OriginID>"; Fetch
// returns the posts strictly after it. So a page read twice is the same
// page, and posts that `ferry archive` adds later (newer ones) are read
// once each. A post added with a date before the cursor (an archive
// re-imported from an older export) is not read: like an account's
// timeline, the archive is followed forward. An empty cursor returns the
// newest page, as every Source does.
//
// Posts the archiver found deleted on the server come with Deleted set, so
// a route removes its copies. Source holds no state between calls and is
// safe for concurrent use.
type Source struct {
	dir      string
	pageSize int
}

// SourceOptions configure a Source.
type SourceOptions struct {
	// PageSize is how many posts one Fetch returns; 0 means
	// DefaultPageSize.
	PageSize int
}

// NewSource returns a Source for the archive unpacked in dir (see Import).
func NewSource(dir string, o SourceOptions) *Source {
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	return &Source{dir: dir, pageSize: o.PageSize}
}

// position orders posts: creation time, then OriginID.
type position struct {
	at time.Time
	id string
}

func (p position) less(q position) bool {
	if !p.at.Equal(q.at) {
		return p.at.Before(q.at)
	}
	return p.id < q.id
}

func (p position) String() string { return p.at.UTC().Format(time.RFC3339Nano) + " " + p.id }

func parsePosition(s string) (position, error) {
	at, id, ok := strings.Cut(s, " ")
	if !ok || id == "" {
		return position{}, fmt.Errorf("archive cursor %q: want \"<time> <id>\"", s)
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return position{}, fmt.Errorf("archive cursor %q: %w", s, err)
	}
	return position{at: t, id: id}, nil
}

func positionOf(p post.Post) position { return position{at: p.CreatedAt, id: p.OriginID} }

// Fetch returns up to the page size of posts after cursor, oldest first
// (the newest page for an empty cursor). Next is the position of the last
// post returned, or cursor when there is none; More reports that posts
// after Next remain. It reads outbox.json in one pass, keeping only a
// page of posts in memory.
func (s *Source) Fetch(ctx context.Context, cursor string) (sources.Page, error) {
	var after *position
	if cursor != "" {
		p, err := parsePosition(cursor)
		if err != nil {
			return sources.Page{}, err
		}
		after = &p
	}
	// For a cursor, keep the pageSize+1 smallest positions after it (the
	// extra one says whether more follow); for the newest page, the
	// pageSize largest.
	h := &postHeap{newest: after == nil}
	limit := s.pageSize
	if after != nil {
		limit++
	}
	err := EachPost(ctx, s.dir, func(p post.Post) error {
		pos := positionOf(p)
		if after != nil && !after.less(pos) {
			return nil
		}
		heap.Push(h, p)
		if h.Len() > limit {
			heap.Pop(h)
		}
		return nil
	})
	if err != nil {
		return sources.Page{}, fmt.Errorf("archive source %s: %w", s.dir, err)
	}
	posts := make([]post.Post, h.Len())
	for i := range posts {
		// The min-heap pops oldest first, the max-heap newest first.
		j := i
		if !h.newest {
			j = len(posts) - 1 - i
		}
		posts[j] = heap.Pop(h).(post.Post)
	}
	page := sources.Page{Next: cursor}
	if after != nil && len(posts) > s.pageSize {
		posts, page.More = posts[:s.pageSize], true
	}
	page.Posts = posts
	if len(posts) > 0 {
		page.Next = positionOf(posts[len(posts)-1]).String()
	}
	return page, nil
}

// postHeap keeps a bounded set of posts. For the newest page it is a
// min-heap (popping drops the oldest, which falls out of the page); for a
// page after a cursor it is a max-heap (popping drops the newest).
type postHeap struct {
	posts  []post.Post
	newest bool
}

func (h *postHeap) Len() int { return len(h.posts) }
func (h *postHeap) Less(i, j int) bool {
	a, b := positionOf(h.posts[i]), positionOf(h.posts[j])
	if h.newest {
		return a.less(b)
	}
	return b.less(a)
}
func (h *postHeap) Swap(i, j int) { h.posts[i], h.posts[j] = h.posts[j], h.posts[i] }
func (h *postHeap) Push(x any)    { h.posts = append(h.posts, x.(post.Post)) }
func (h *postHeap) Pop() any {
	n := len(h.posts) - 1
	p := h.posts[n]
	h.posts = h.posts[:n]
	return p
}

var _ sources.Source = (*Source)(nil)

// errFound stops EachPost once Exists has its answer.
var errFound = errors.New("found")

// Exists reports whether the archive holds the post originID and does not
// mark it deleted. With it, a route from an archive notices posts that a
// later `ferry archive` run found deleted on the server, even after they
// scrolled out of the newest page.
func (s *Source) Exists(ctx context.Context, originID string) (bool, error) {
	exists := false
	err := EachPost(ctx, s.dir, func(p post.Post) error {
		if p.OriginID == originID {
			exists = !p.Deleted
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return false, fmt.Errorf("archive source %s: %w", s.dir, err)
	}
	return exists, nil
}
