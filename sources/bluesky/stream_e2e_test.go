package bluesky_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/sources/bluesky"
)

// logBuffer collects log lines from the stream's goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// streaming starts src.Stream and returns its events and a stop function
// that cancels it and returns its error.
func streaming(t *testing.T, ctx context.Context, src *bluesky.Source) (<-chan sources.Event, func() error) {
	t.Helper()
	sctx, cancel := context.WithCancel(ctx)
	events := make(chan sources.Event, 64)
	done := make(chan error, 1)
	go func() { done <- src.Stream(sctx, events) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return events, stop
}

// next waits for the event of kind about originID, dropping others.
func next(t *testing.T, events <-chan sources.Event, kind sources.EventKind, originID string) sources.Event {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Kind == kind && ev.Post.OriginID == originID {
				return ev
			}
		case <-deadline:
			t.Fatalf("no event %v for %s within 30s", kind, originID)
		}
	}
}

// waitSubscribed posts until the stream reports a post, so that what
// follows is not posted before the subscription is live.
func waitSubscribed(t *testing.T, ctx context.Context, o *origin, events <-chan sources.Event) {
	t.Helper()
	for range 20 {
		id, err := o.Post(ctx, "are you there?")
		if err != nil {
			t.Fatal(err)
		}
		timeout := time.After(500 * time.Millisecond)
	wait:
		for {
			select {
			case ev := <-events:
				if ev.Post.OriginID == id {
					return
				}
			case <-timeout:
				break wait
			}
		}
	}
	t.Fatal("the stream reports nothing")
}

// The stream carries whole posts (read from the commit's blocks, not asked
// for again), threads and deletes, and nothing of other accounts on the
// same PDS.
func TestE2EStreamCarriesPostsFromCommits(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	_, other := login(t, ctx, "neighbour")
	_, c := login(t, ctx, "streamer")
	var logs logBuffer
	src := bluesky.New(c, bluesky.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	events, stop := streaming(t, ctx, src)
	me, them := newOrigin(c), newOrigin(other)
	waitSubscribed(t, ctx, me, events)

	if _, err := them.Post(ctx, "not mine"); err != nil {
		t.Fatal(err)
	}
	blob, err := c.UploadBlob(ctx, testPNG(t), "image/png")
	if err != nil {
		t.Fatal(err)
	}
	rootURI, rootCID, err := me.create(ctx, atproto.PostCollection, &bsky.FeedPost{
		Text: "1/2 with a picture 🚢", CreatedAt: syntax.DatetimeNow().String(),
		Embed: &bsky.FeedPost_Embed{EmbedImages: &bsky.EmbedImages{Images: []*bsky.EmbedImages_Image{{Alt: "渡し船", Image: blob}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	root := &comatproto.RepoStrongRef{Uri: rootURI, Cid: rootCID}
	reply, _, err := me.create(ctx, atproto.PostCollection, &bsky.FeedPost{Text: "2/2", CreatedAt: syntax.DatetimeNow().String(),
		Reply: &bsky.FeedPost_ReplyRef{Root: root, Parent: root}})
	if err != nil {
		t.Fatal(err)
	}
	if err := me.Delete(ctx, reply); err != nil {
		t.Fatal(err)
	}

	var got []sources.Event
	deadline := time.After(30 * time.Second)
	for len(got) < 3 {
		select {
		case ev := <-events:
			if !strings.HasPrefix(ev.Post.OriginID, "at://"+c.DID()+"/") {
				t.Errorf("event of another account: %+v", ev)
			}
			if ev.Post.Text == "are you there?" {
				continue
			}
			got = append(got, ev)
		case <-deadline:
			t.Fatalf("events so far: %+v", got)
		}
	}
	if got[0].Kind != sources.Created || got[0].Post.OriginID != rootURI || got[0].Post.Text != "1/2 with a picture 🚢" ||
		len(got[0].Post.Media) != 1 || got[0].Post.Media[0].Description != "渡し船" {
		t.Errorf("first event = %+v", got[0])
	}
	if got[1].Kind != sources.Created || got[1].Post.OriginID != reply || got[1].Post.InReplyTo != rootURI {
		t.Errorf("second event = %+v", got[1])
	}
	if got[2].Kind != sources.Deleted || got[2].Post.OriginID != reply || !got[2].Post.Deleted {
		t.Errorf("third event = %+v", got[2])
	}
	if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("stream after cancel: %v", err)
	}
	if l := logs.String(); strings.Contains(l, "unreadable") || strings.Contains(l, "undecodable") {
		t.Errorf("records were not read from the commits:\n%s", l)
	}
}

// relay forwards TCP connections to a server until cut, as a network that
// drops.
type relay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newRelay(t *testing.T, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: target}
	t.Cleanup(r.cut)
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, in, out)
			r.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return r
}

// cut closes the listener and every connection.
func (r *relay) cut() {
	r.ln.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

// When the connection to the PDS drops, Stream returns an error (not a
// cancellation), so the caller falls back to polling.
func TestE2EStreamFailsWhenTheConnectionDrops(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, c := login(t, ctx, "dropped")
	u, err := url.Parse(c.PDS())
	if err != nil {
		t.Fatal(err)
	}
	r := newRelay(t, u.Host)
	sess := c.Session()
	sess.PDS = "http://" + r.ln.Addr().String()
	viaRelay, err := atproto.NewClient(sess, atproto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan sources.Event, 64)
	done := make(chan error, 1)
	go func() { done <- bluesky.New(viaRelay, bluesky.Options{}).Stream(ctx, events) }()
	waitSubscribed(t, ctx, newOrigin(c), events)

	r.cut()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.Canceled) {
			t.Fatalf("stream over a dropped connection ended with %v, want an error", err)
		}
		t.Logf("stream ended with: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the stream did not end after its connection dropped")
	}
}

// Streaming latency on loopback: from the create call to the Created
// event, over 20 posts (FERRY_BENCH=1).
func TestE2EBenchStreamLatency(t *testing.T) {
	if os.Getenv("FERRY_BENCH") != "1" {
		t.Skip("set FERRY_BENCH=1 to measure streaming latency")
	}
	const n = 20
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	_, c := login(t, ctx, "latency")
	events, _ := streaming(t, ctx, bluesky.New(c, bluesky.Options{}))
	o := newOrigin(c)
	waitSubscribed(t, ctx, o, events)
	var lat []time.Duration
	for i := range n {
		start := time.Now()
		id, err := o.Post(ctx, fmt.Sprintf("latency %d", i))
		if err != nil {
			t.Fatal(err)
		}
		next(t, events, sources.Created, id)
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	median := (lat[n/2-1] + lat[n/2]) / 2
	p90 := lat[(n*9+9)/10-1]
	fmt.Printf("FIGURES bluesky-stream-latency N=%d median=%s p90=%s min=%s max=%s (create record → Created event, loopback PDS)\n",
		n, median.Round(100*time.Microsecond), p90.Round(100*time.Microsecond), lat[0].Round(100*time.Microsecond), lat[n-1].Round(100*time.Microsecond))
	if median > 2*time.Second {
		t.Errorf("median streaming latency %s is over 2s", median)
	}
}
