// Package sourcetest is the contract suite every sources.Source must pass.
// A plugin's test calls Run with a source bound to a real origin (a
// GoToSocial account, a feed served over HTTP, an archive directory) and an
// Origin that makes new posts there through an independent channel.
package sourcetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sources"
)

// Origin makes posts at the source's origin without going through the
// source.
type Origin interface {
	// Post publishes a new post whose text contains text and returns its
	// OriginID as the source will report it. Each post is newer than
	// every post made before it.
	Post(ctx context.Context, text string) (originID string, err error)
}

// Editor is implemented by origins whose posts can be edited; the suite
// then checks that a Streamer reports the edit.
type Editor interface {
	Edit(ctx context.Context, originID, text string) error
}

// Deleter is implemented by origins whose posts can be deleted; the suite
// then checks that a Streamer reports the delete.
type Deleter interface {
	Delete(ctx context.Context, originID string) error
}

// Options tune the suite to the source.
type Options struct {
	// Batch is how many posts the suite adds before resuming from a
	// cursor. Set it above the source's page size so that resuming
	// crosses pages (More and Next); 0 means 3.
	Batch int
	// Window: the source answers every Fetch with its whole current
	// window (a feed: a document has no "after"), and the caller drops
	// what it has seen by OriginID. The suite then accepts posts seen
	// before in a resumed read, and checks instead that nothing new is
	// skipped and the order holds. False: a resumed read must repeat
	// nothing.
	Window bool
	// Wait is the least Page.Wait the source must report (a feed's ttl or
	// Cache-Control); 0 means the source sets no Wait and the suite
	// checks that it reports none.
	Wait time.Duration
}

// Run runs the contract suite against s. Origin posts made by the suite
// contain "sourcetest" and a unique tag; the origin may hold other posts.
func Run(t *testing.T, s sources.Source, o Origin, opt Options) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if opt.Batch <= 0 {
		opt.Batch = 3
	}
	run := fmt.Sprintf("sourcetest-%d", time.Now().UnixNano())
	post := func(t *testing.T, n int, label string) []string {
		t.Helper()
		var ids []string
		for i := range n {
			id, err := o.Post(ctx, fmt.Sprintf("%s %s %d", run, label, i))
			if err != nil {
				t.Fatalf("origin: post: %v", err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	seed := post(t, 2, "seed")

	var first sources.Page
	t.Run("EmptyCursorIsNewestPage", func(t *testing.T) {
		p, err := s.Fetch(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		first = p
		checkPage(t, p, "")
		ids := originIDs(p.Posts)
		if len(ids) == 0 || ids[len(ids)-1] != seed[len(seed)-1] {
			t.Fatalf("newest page %v does not end with the newest post %s", ids, seed[len(seed)-1])
		}
		if !inOrder(ids, seed) {
			t.Errorf("newest page %v lacks the seed posts %v in creation order", ids, seed)
		}
		checkWait(t, p, opt)
	})
	if t.Failed() {
		return
	}

	t.Run("SameCursorSamePage", func(t *testing.T) {
		for _, cur := range []string{"", first.Next} {
			a, err := s.Fetch(ctx, cur)
			if err != nil {
				t.Fatal(err)
			}
			b, err := s.Fetch(ctx, cur)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(originIDs(a.Posts), originIDs(b.Posts)) || a.More != b.More || a.Next != b.Next {
				t.Errorf("cursor %q: two fetches differ: %v (more %v, next %q) and %v (more %v, next %q)",
					cur, originIDs(a.Posts), a.More, a.Next, originIDs(b.Posts), b.More, b.Next)
			}
		}
	})

	t.Run("NothingNewAfterNext", func(t *testing.T) {
		p, err := s.Fetch(ctx, first.Next)
		if err != nil {
			t.Fatal(err)
		}
		checkPage(t, p, first.Next)
		if p.More {
			t.Errorf("More with nothing new after Next")
		}
		if !opt.Window && len(p.Posts) > 0 {
			t.Errorf("resuming from Next with nothing new returned %v", originIDs(p.Posts))
		}
		if p.Next == "" {
			t.Errorf("Next became empty: resuming would return to the newest page")
		}
	})

	t.Run("ResumeRepeatsNothingSkipsNothing", func(t *testing.T) {
		added := post(t, opt.Batch, "batch")
		seen := map[string]bool{}
		for _, id := range originIDs(first.Posts) {
			seen[id] = true
		}
		var got []string
		cur := first.Next
		pages := 0
		for {
			p, err := s.Fetch(ctx, cur)
			if err != nil {
				t.Fatal(err)
			}
			checkPage(t, p, cur)
			pages++
			for _, id := range originIDs(p.Posts) {
				if seen[id] {
					if !opt.Window {
						t.Errorf("resumed read repeated %s", id)
					}
					continue
				}
				seen[id] = true
				got = append(got, id)
			}
			cur = p.Next
			if !p.More {
				break
			}
			if pages > 10*opt.Batch+10 {
				t.Fatalf("More stays true after %d pages", pages)
			}
		}
		if !inOrder(got, added) {
			t.Errorf("resumed read returned %v; want the added posts %v, oldest first", got, added)
		}
		// Resuming from the last Next is quiet again.
		p, err := s.Fetch(ctx, cur)
		if err != nil {
			t.Fatal(err)
		}
		if !opt.Window && len(p.Posts) > 0 {
			t.Errorf("after reading everything, Fetch(Next) returned %v", originIDs(p.Posts))
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Fetch(cctx, ""); err == nil {
			t.Fatal("Fetch with a cancelled context succeeded")
		}
	})

	if st, ok := s.(sources.Streamer); ok {
		t.Run("StreamEvents", func(t *testing.T) { runStream(t, ctx, st, o, run) })
	}
}

// checkPage checks what holds for every page: posts oldest first with an
// OriginID each, More only with posts and a Next that moved on.
func checkPage(t *testing.T, p sources.Page, cursor string) {
	t.Helper()
	for i, q := range p.Posts {
		if q.OriginID == "" {
			t.Errorf("post %d has no OriginID", i)
		}
		if i > 0 && q.CreatedAt.Before(p.Posts[i-1].CreatedAt) {
			t.Errorf("posts not oldest first: %s (%v) after %s (%v)", q.OriginID, q.CreatedAt,
				p.Posts[i-1].OriginID, p.Posts[i-1].CreatedAt)
		}
	}
	if p.More && (len(p.Posts) == 0 || p.Next == cursor) {
		t.Errorf("More with %d posts and Next %q (cursor %q): the caller would loop", len(p.Posts), p.Next, cursor)
	}
	if p.Wait < 0 {
		t.Errorf("Wait %v is negative", p.Wait)
	}
}

func checkWait(t *testing.T, p sources.Page, opt Options) {
	t.Helper()
	switch {
	case opt.Wait == 0 && p.Wait != 0:
		t.Errorf("Wait = %v; the origin asked for none", p.Wait)
	case opt.Wait > 0 && p.Wait < opt.Wait:
		t.Errorf("Wait = %v; the origin asked for at least %v", p.Wait, opt.Wait)
	}
}

func originIDs(ps []post.Post) []string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.OriginID
	}
	return ids
}

// inOrder reports whether want appears in got, in order, and got holds no
// element of want twice.
func inOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		} else if slices.Contains(want, g) {
			return false
		}
	}
	return i == len(want)
}

// runStream checks that a Streamer reports a post made while it streams,
// and its edit and delete where the origin can make them.
func runStream(t *testing.T, ctx context.Context, st sources.Streamer, o Origin, run string) {
	sctx, stop := context.WithCancel(ctx)
	events := make(chan sources.Event, 16)
	done := make(chan error, 1)
	go func() { done <- st.Stream(sctx, events) }()
	defer func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, sources.ErrNoStreaming) {
			t.Errorf("Stream ended with %v after cancel", err)
		}
	}()
	// The stream subscribes asynchronously; post until one arrives. An
	// origin without a streaming API says so (sources.ErrNoStreaming) and
	// is read by Fetch alone.
	noStream := false
	wait := func(kind sources.EventKind, id string, again func() (string, error)) string {
		t.Helper()
		tick := time.NewTicker(3 * time.Second)
		defer tick.Stop()
		deadline := time.After(60 * time.Second)
		for {
			select {
			case ev := <-events:
				if ev.Kind == kind && id != "" && ev.Post.OriginID == id {
					return ev.Post.OriginID
				}
				if kind == sources.Created && ev.Kind == kind && strings.Contains(ev.Post.Text, run+" stream") {
					return ev.Post.OriginID
				}
			case err := <-done:
				done <- err // for the deferred check
				if errors.Is(err, sources.ErrNoStreaming) {
					noStream = true
					return ""
				}
				t.Fatalf("Stream ended: %v", err)
			case <-tick.C:
				if again != nil {
					if _, err := again(); err != nil {
						t.Fatal(err)
					}
				}
			case <-deadline:
				t.Fatalf("no %v event for %q within 60s", kind, id)
			}
		}
	}
	mk := func() (string, error) { return o.Post(ctx, run+" stream") }
	if _, err := mk(); err != nil {
		t.Fatal(err)
	}
	id := wait(sources.Created, "", mk)
	if noStream {
		t.Logf("the origin has no streaming API")
		return
	}
	if ed, ok := o.(Editor); ok {
		if err := ed.Edit(ctx, id, run+" stream edited"); err != nil {
			t.Fatal(err)
		}
		wait(sources.Edited, id, nil)
	}
	if del, ok := o.(Deleter); ok {
		if err := del.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		wait(sources.Deleted, id, nil)
	}
}
