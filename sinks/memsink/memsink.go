// Package memsink is a test double for the mirroring engine: a sink in
// memory that records every post, edit and delete, finds its own posts
// like a server's Finder, announces limits, and fails on demand,
// including the ambiguous way a flaky network fails: the post is made but
// the caller gets an error (the answer was lost).
//
// It imitates no server; it exists so that the engine's own rules
// (exactly once, retries, reconciliation) can be tested without one. The
// real sinks run the sinktest contract against real servers.
package memsink

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
)

// Op names a sink operation, for injecting failures and counting calls.
type Op string

// The operations of a Sink.
const (
	OpPublish Op = "publish"
	OpEdit    Op = "edit"
	OpDelete  Op = "delete"
	OpFind    Op = "find"
)

// Fault is one injected failure.
type Fault struct {
	Err error
	// Done makes the operation take effect before Err is returned: the
	// server did the work but its answer was lost.
	Done bool
}

// Post is a post the sink holds.
type Post struct {
	ID    string
	Draft sinks.Draft
}

// Sink is an in-memory sink: a sinks.Sink, Editor, Deleter, Finder and
// Limiter. The zero value is not usable; call New. It is safe for
// concurrent use.
type Sink struct {
	mu       sync.Mutex
	n        int
	posts    map[string]sinks.Draft
	order    []string
	calls    map[Op]int
	faults   map[Op][]Fault
	mediaErr error
	limits   post.Limits
}

// New returns an empty sink whose server allows 500 characters, counts a
// URL as 23 and takes four attachments (Mastodon's defaults).
func New() *Sink {
	return &Sink{posts: map[string]sinks.Draft{}, calls: map[Op]int{}, faults: map[Op][]Fault{},
		limits: post.Limits{MaxChars: 500, CharsPerURL: 23, MaxMedia: 4}}
}

// SetLimits sets what Limits returns.
func (s *Sink) SetLimits(l post.Limits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = l
}

// Fail queues faults for the next calls of op, in order.
func (s *Sink) Fail(op Op, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[op] = append(s.faults[op], faults...)
}

// FailMedia makes every publish of a post with media fail with err (nil
// stops it): a dead enclosure link, a file the server rejects.
func (s *Sink) FailMedia(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mediaErr = err
}

// Calls counts the calls of op, failed ones included.
func (s *Sink) Calls(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// begin counts a call and pops its fault, if one is queued. The caller
// holds s.mu.
func (s *Sink) begin(op Op) (Fault, bool) {
	s.calls[op]++
	q := s.faults[op]
	if len(q) == 0 {
		return Fault{}, false
	}
	s.faults[op] = q[1:]
	return q[0], true
}

// Publish records the post as "r1", "r2" …
func (s *Sink) Publish(ctx context.Context, d sinks.Draft) (post.Ref, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return post.Ref{}, err
	}
	f, fail := s.begin(OpPublish)
	if fail && !f.Done {
		return post.Ref{}, f.Err
	}
	if s.mediaErr != nil && len(d.Post.Media) > 0 {
		return post.Ref{}, s.mediaErr
	}
	s.n++
	id := fmt.Sprintf("r%d", s.n)
	s.posts[id] = d
	s.order = append(s.order, id)
	if fail {
		return post.Ref{}, f.Err
	}
	return post.Ref{ID: id, URL: "https://sink.example/" + id}, nil
}

// Edit replaces the post's draft, keeping what it answers.
func (s *Sink) Edit(ctx context.Context, id string, d sinks.Draft) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, fail := s.begin(OpEdit)
	if fail && !f.Done {
		return f.Err
	}
	old, ok := s.posts[id]
	if !ok {
		return &sinks.PermanentError{Err: fmt.Errorf("edit %s: no such post", id)}
	}
	d.ReplyTo = old.ReplyTo
	s.posts[id] = d
	if fail {
		return f.Err
	}
	return nil
}

// Delete removes the post; a post already gone is not an error.
func (s *Sink) Delete(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, fail := s.begin(OpDelete)
	if fail && !f.Done {
		return f.Err
	}
	delete(s.posts, id)
	if fail {
		return f.Err
	}
	return nil
}

// Find returns a post with d's text and parent, as a server's search of
// the account's recent posts would. since is ignored: every post here is
// recent.
func (s *Sink) Find(ctx context.Context, d sinks.Draft, since time.Time) (post.Ref, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, fail := s.begin(OpFind); fail {
		return post.Ref{}, false, f.Err
	}
	for _, id := range s.order {
		if p, ok := s.posts[id]; ok && p.Post.Text == d.Post.Text && p.ReplyTo == d.ReplyTo {
			return post.Ref{ID: id, URL: "https://sink.example/" + id}, true, nil
		}
	}
	return post.Ref{}, false, nil
}

// Limits returns the limits set by New or SetLimits.
func (s *Sink) Limits(ctx context.Context) (post.Limits, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limits, nil
}

// Posts returns the posts the sink holds, oldest first.
func (s *Sink) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Post
	for _, id := range s.order {
		if d, ok := s.posts[id]; ok {
			out = append(out, Post{ID: id, Draft: d})
		}
	}
	return out
}

// Get returns the post id.
func (s *Sink) Get(id string) (sinks.Draft, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.posts[id]
	return d, ok
}

// Count returns how many posts the sink holds.
func (s *Sink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.posts)
}

// Texts returns the text of every post the sink holds, oldest first.
func (s *Sink) Texts() []string {
	var out []string
	for _, p := range s.Posts() {
		out = append(out, p.Draft.Post.Text)
	}
	return slices.Clip(out)
}

var (
	_ sinks.Sink    = (*Sink)(nil)
	_ sinks.Editor  = (*Sink)(nil)
	_ sinks.Deleter = (*Sink)(nil)
	_ sinks.Finder  = (*Sink)(nil)
	_ sinks.Limiter = (*Sink)(nil)
)
