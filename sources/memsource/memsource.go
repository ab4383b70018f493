// Package memsource is a test double for the mirroring engine: a
// sources.Source over a slice of posts in memory, read like a feed (every
// Fetch returns every post, oldest first), with the source's Wait, edits,
// deletes, fetch errors and streamed events under the test's control.
//
// It imitates no server; it exists so that the engine's and the daemon's
// own rules (dedup, retries, scheduling) can be tested without one. The
// real sources run the sourcetest contract against real servers and
// documents.
package memsource

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sources"
)

// Source is an in-memory source. The zero value is not usable; call New.
// It is safe for concurrent use.
type Source struct {
	mu      sync.Mutex
	posts   []post.Post
	wait    time.Duration
	errs    []error
	fetches int
	events  chan sources.Event
	drop    chan struct{} // closed by EndStream; replaced for the next connection
	streams int
}

// New returns a source holding posts (oldest first).
func New(posts ...post.Post) *Source {
	return &Source{posts: slices.Clone(posts), events: make(chan sources.Event), drop: make(chan struct{})}
}

// Set replaces every post.
func (s *Source) Set(posts ...post.Post) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts = slices.Clone(posts)
}

// Add appends a post (the newest).
func (s *Source) Add(p post.Post) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts = append(s.posts, p)
}

// Edit replaces the post with p's OriginID, keeping its place; it reports
// whether there was one.
func (s *Source) Edit(p post.Post) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.posts {
		if s.posts[i].OriginID == p.OriginID {
			s.posts[i] = p
			return true
		}
	}
	return false
}

// Delete removes the post originID; it reports whether there was one.
func (s *Source) Delete(originID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.posts)
	s.posts = slices.DeleteFunc(s.posts, func(p post.Post) bool { return p.OriginID == originID })
	return len(s.posts) < n
}

// SetWait sets the Page.Wait every Fetch returns (a feed's ttl, a
// Retry-After).
func (s *Source) SetWait(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wait = d
}

// FailFetch makes the next len(errs) calls of Fetch return these errors,
// in order, instead of a page.
func (s *Source) FailFetch(errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, errs...)
}

// Fetches counts the calls of Fetch, failed ones included.
func (s *Source) Fetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

// Fetch returns every post, oldest first, whatever the cursor (a feed has
// no paging), with the cursor "all"; or the next queued error.
func (s *Source) Fetch(ctx context.Context, cursor string) (sources.Page, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetches++
	if err := ctx.Err(); err != nil {
		return sources.Page{}, err
	}
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		return sources.Page{}, err
	}
	return sources.Page{Posts: slices.Clone(s.posts), Next: "all", Wait: s.wait}, nil
}

// Stream forwards the events given to Push until ctx ends, or returns
// the error given to EndStream.
func (s *Source) Stream(ctx context.Context, events chan<- sources.Event) error {
	s.mu.Lock()
	s.streams++
	drop := s.drop
	s.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-drop:
			return errStreamEnded
		case ev := <-s.events:
			select {
			case events <- ev:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// Streams counts the calls of Stream (connections and reconnections).
func (s *Source) Streams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams
}

// Push hands ev to a running Stream, waiting until it is taken or ctx ends.
func (s *Source) Push(ctx context.Context, ev sources.Event) error {
	select {
	case s.events <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// EndStream makes the running Stream return an error, as a dropped
// connection would; the next Stream call connects again.
func (s *Source) EndStream() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.drop)
	s.drop = make(chan struct{})
}

type streamEnded struct{}

func (streamEnded) Error() string { return "memsource: stream ended" }

var errStreamEnded error = streamEnded{}

var (
	_ sources.Source   = (*Source)(nil)
	_ sources.Streamer = (*Source)(nil)
)
