package bridge_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/sinks/memsink"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/sources/memsource"
	"github.com/fedi-ferry/ferry/state"
)

// Tests of edits = "repost": a sink that cannot edit in place gets the
// new version of a young copy as a new post, exactly once.

// noEditSink imitates a server without edits (Bluesky): memsink's
// publish, delete, find and limits, without its Edit.
type noEditSink struct{ m *memsink.Sink }

func (s noEditSink) Publish(ctx context.Context, d sinks.Draft) (post.Ref, error) {
	return s.m.Publish(ctx, d)
}
func (s noEditSink) Delete(ctx context.Context, id string) error { return s.m.Delete(ctx, id) }
func (s noEditSink) Find(ctx context.Context, d sinks.Draft, since time.Time) (post.Ref, bool, error) {
	return s.m.Find(ctx, d, since)
}
func (s noEditSink) Limits(ctx context.Context) (post.Limits, error) { return s.m.Limits(ctx) }

var (
	_ sinks.Deleter = noEditSink{}
	_ sinks.Finder  = noEditSink{}
)

const repostSink = "me@sky.example"

// repostRoute is an account route to sink under edits = "repost".
func repostRoute(src *memsource.Source, sink sinks.Sink, within time.Duration) *bridge.Route {
	return &bridge.Route{Name: "acct", Kind: bridge.KindAccount, Source: src, SourceAccount: "me@src.example",
		Sinks: []bridge.Target{{Account: repostSink, Sink: sink,
			Policy: bridge.Policy{Edits: bridge.PolicyRepost, RepostWithin: within}}}}
}

func repostPost(id, text, replyTo string, at time.Time) post.Post {
	return post.Post{OriginID: id, Text: text, InReplyTo: replyTo, Visibility: post.Public, CreatedAt: at}
}

func edited(p post.Post, text string) post.Post {
	p.Text, p.EditedAt = text, time.Now()
	return p
}

// copyOf returns the remote ID the route's state holds for part 0 of item.
func copyOf(t *testing.T, st *state.Store, item string) state.BridgeCopy {
	t.Helper()
	cs, err := st.BridgeCopies(context.Background(), "acct", item)
	if err != nil || len(cs) != 1 {
		t.Fatalf("copies of %s: %v %+v", item, err, cs)
	}
	return cs[0]
}

// A young copy of an edited post is deleted and the new version published
// in the same place of the thread; the state then points at the new copy.
func TestEngineRepostYoungCopy(t *testing.T) {
	e, st, clk := newEngine(t, bridge.Options{})
	src, m := memsource.New(), memsink.New()
	r := repostRoute(src, noEditSink{m}, 0)
	mirRun(t, e, clk, r)
	now := time.Now()
	root, reply := repostPost("1", "the start of a thread", "", now), repostPost("2", "a reply with a tpyo", "1", now.Add(time.Second))
	src.Set(root, reply)
	mirRun(t, e, clk, r)
	if got := m.Texts(); len(got) != 2 {
		t.Fatalf("before the edit: %q", got)
	}
	old := copyOf(t, st, "2")

	src.Set(root, edited(reply, "a reply without a typo"))
	res := mirRun(t, e, clk, r)
	mirRun(t, e, clk, r)
	if res.Edited != 1 || m.Calls(memsink.OpDelete) != 1 || m.Calls(memsink.OpPublish) != 3 {
		t.Fatalf("repost: %+v, %d deletes, %d publishes", res, m.Calls(memsink.OpDelete), m.Calls(memsink.OpPublish))
	}
	if _, ok := m.Get(old.RemoteID); ok {
		t.Fatalf("the old copy %s is still there: %q", old.RemoteID, m.Texts())
	}
	got := copyOf(t, st, "2")
	d, ok := m.Get(got.RemoteID)
	if !ok || got.RemoteID == old.RemoteID || d.Post.Text != "a reply without a typo" || m.Count() != 2 {
		t.Fatalf("state points at %s (%v, %q); the sink holds %q", got.RemoteID, ok, d.Post.Text, m.Texts())
	}
	if rootCopy := copyOf(t, st, "1"); d.ReplyTo != rootCopy.RemoteID {
		t.Errorf("the new copy answers %q, want the root's copy %q", d.ReplyTo, rootCopy.RemoteID)
	}
	if ok, _ := st.BridgeIsCopy(context.Background(), repostSink, got.RemoteID); !ok {
		t.Error("the new copy is not known as a copy (two-way loop guard)")
	}

	// A delete at the origin now deletes the new copy.
	src.Set(root)
	if _, err := e.Handle(context.Background(), r, sources.Event{Kind: sources.Deleted, Post: post.Post{OriginID: "2"}}); err != nil {
		t.Fatal(err)
	}
	if m.Count() != 1 {
		t.Errorf("after the delete: %q", m.Texts())
	}
}

// A run that stops between the delete and the publish, or loses the
// publish's answer, is finished by the next one with exactly one copy.
func TestEngineRepostInterrupted(t *testing.T) {
	t.Parallel() // retries wait out the store's real in-flight grace
	for _, tc := range []struct {
		name  string
		fault memsink.Fault
	}{
		{"crash before the publish", memsink.Fault{Err: errors.New("killed")}},
		{"answer lost after the publish", memsink.Fault{Err: errors.New("connection reset"), Done: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, st, clk := newEngine(t, bridge.Options{Retry: bridge.Retry{Total: time.Nanosecond}})
			src, m := memsource.New(), memsink.New()
			r := repostRoute(src, noEditSink{m}, time.Hour)
			mirRun(t, e, clk, r)
			p := repostPost("x", "first version", "", time.Now())
			src.Set(p)
			mirRun(t, e, clk, r)
			src.Set(edited(p, "second version"))
			m.Fail(memsink.OpPublish, tc.fault)
			if _, err := tryRun(t, e, clk, r); err == nil {
				t.Fatal("the interrupted run reported no error")
			}
			mirRun(t, e, clk, r)
			mirRun(t, e, clk, r)
			if got := m.Texts(); len(got) != 1 || got[0] != "second version" {
				t.Fatalf("after recovery the sink holds %q", got)
			}
			if c := copyOf(t, st, "x"); c.RemoteID != m.Posts()[0].ID || c.State != bridge.CopyPosted {
				t.Fatalf("state: %+v, sink: %+v", c, m.Posts())
			}
		})
	}
}

// A copy older than repost_within keeps its text, and that is logged once
// per edit; so does every copy under the default edits = "ignore".
func TestEngineRepostOldCopyUntouched(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	e, st, clk := newEngine(t, bridge.Options{Logger: log})
	src, m := memsource.New(), memsink.New()
	r := repostRoute(src, noEditSink{m}, 30*time.Minute)
	mi := memsink.New()
	ignore := repostRoute(src, noEditSink{mi}, 0)
	ignore.Name, ignore.Sinks[0].Policy = "ignore", bridge.Policy{}
	mirRun(t, e, clk, r)
	mirRun(t, e, clk, ignore)
	p := repostPost("o", "said an hour ago", "", time.Now())
	src.Set(p)
	mirRun(t, e, clk, r)
	mirRun(t, e, clk, ignore)
	before := copyOf(t, st, "o")

	clk.Advance(time.Hour)
	src.Set(edited(p, "said an hour ago, edited"))
	for range 2 {
		mirRun(t, e, clk, r)
		mirRun(t, e, clk, ignore)
	}
	for _, s := range []*memsink.Sink{m, mi} {
		if got := s.Texts(); len(got) != 1 || got[0] != "said an hour ago" || s.Calls(memsink.OpDelete) != 0 || s.Calls(memsink.OpPublish) != 1 {
			t.Fatalf("the old copy was touched: %q, %d deletes", got, s.Calls(memsink.OpDelete))
		}
	}
	if after := copyOf(t, st, "o"); after.RemoteID != before.RemoteID {
		t.Errorf("state moved from %s to %s", before.RemoteID, after.RemoteID)
	}
	if n := strings.Count(logs.String(), "older than repost_within"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs.String())
	}
}

// A sink that can edit (Mastodon) edits in place whatever edits says.
func TestEngineRepostEditorEditsInPlace(t *testing.T) {
	e, st, clk := newEngine(t, bridge.Options{})
	src, m := memsource.New(), memsink.New()
	r := repostRoute(src, m, time.Hour)
	mirRun(t, e, clk, r)
	p := repostPost("y", "before", "", time.Now())
	src.Set(p)
	mirRun(t, e, clk, r)
	id := copyOf(t, st, "y").RemoteID
	src.Set(edited(p, "after"))
	mirRun(t, e, clk, r)
	if m.Calls(memsink.OpEdit) != 1 || m.Calls(memsink.OpDelete) != 0 || m.Count() != 1 || copyOf(t, st, "y").RemoteID != id {
		t.Fatalf("%d edits, %d deletes, %q", m.Calls(memsink.OpEdit), m.Calls(memsink.OpDelete), m.Texts())
	}
}

// syncBuffer is a bytes.Buffer safe for the engine's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
