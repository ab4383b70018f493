// Package sources defines how ferry reads posts from an origin: an account on
// a server, a feed, an archive. The bridge and the archive tools consume
// sources through these interfaces; each plugin lives in a subpackage.
package sources

import (
	"context"
	"errors"
	"time"

	"github.com/fedi-ferry/ferry/post"
)

// Source reads posts from one origin.
type Source interface {
	// Fetch returns the posts that follow cursor, oldest first, and the
	// cursor to resume from. Fetch holds no state: it must be safe to call
	// again with the same cursor (after a crash, the caller repeats the
	// page it did not finish). An empty cursor means "the newest page": the
	// caller decides what to do with an origin's existing posts on a first
	// run (the bridge records them as seen so nothing floods).
	Fetch(ctx context.Context, cursor string) (Page, error)
}

// Page is one batch from a Source.
type Page struct {
	Posts []post.Post // oldest first
	// Next is the cursor after Posts; the caller stores it only once it
	// has handled every post of the page.
	Next string
	// More reports that another page is available right away.
	More bool
	// Wait is the earliest the origin should be asked again (Retry-After,
	// a feed's ttl); 0 = the caller's schedule.
	Wait time.Duration
}

// Streamer is implemented by sources that can push new posts as they
// appear (the Mastodon streaming API). Stream blocks until ctx ends or the
// stream fails; the caller falls back to Fetch when it returns an error.
type Streamer interface {
	Stream(ctx context.Context, events chan<- Event) error
}

// ErrNoStreaming is wrapped by a Streamer's error when its origin has no
// streaming API at all (not a stream that broke): the caller stops
// streaming and reads the source with Fetch on its schedule.
var ErrNoStreaming = errors.New("the origin has no streaming API")

// EventKind says what happened to a post at the origin.
type EventKind int

// The events a Streamer reports.
const (
	Created EventKind = iota + 1
	Edited
	Deleted
)

// Event is one change pushed by a Streamer. For Deleted, only Post.OriginID
// is set.
type Event struct {
	Kind EventKind
	Post post.Post
}
