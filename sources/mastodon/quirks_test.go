package mastodon

import (
	"context"
	"errors"
	"fmt"
	"github.com/fedi-ferry/ferry/sources"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/fakemastodon"
	"github.com/fedi-ferry/ferry/sources/sourcetest"
)

// tickingClock moves on a second each time it is read.
type tickingClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *tickingClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// fakeOrigin posts through the fake server's API with the account's token.
type fakeOrigin struct {
	c *fedi.Client
}

func (o fakeOrigin) Post(ctx context.Context, text string) (string, error) {
	var st fedi.Status
	_, err := o.c.Do(ctx, http.MethodPost, "/api/v1/statuses", nil, map[string]string{"status": text, "visibility": "public"}, &st)
	return st.ID, err
}

// fakeEditor adds edits and deletes, for servers whose IDs survive an edit.
type fakeEditor struct{ fakeOrigin }

func (o fakeEditor) Edit(ctx context.Context, id, text string) error {
	_, err := o.c.Do(ctx, http.MethodPut, "/api/v1/statuses/"+url.PathEscape(id), nil, map[string]string{"status": text}, nil)
	return err
}

func (o fakeEditor) Delete(ctx context.Context, id string) error {
	_, err := o.c.Do(ctx, http.MethodDelete, "/api/v1/statuses/"+url.PathEscape(id), nil, nil, nil)
	return err
}

func fakeSource(t *testing.T, cfg fakemastodon.Config, pageSize int) (*fakemastodon.Server, *Source, *fedi.Client) {
	t.Helper()
	srv := fakemastodon.Start(cfg)
	t.Cleanup(srv.Close)
	_, token := srv.AddAccount("alice")
	base, err := fedi.ParseServer(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	hc, _ := fedi.NewHTTPClient(fedi.HTTPOptions{})
	c := fedi.NewClient(base, token, hc)
	return srv, New(Options{Client: c, PageSize: pageSize}), c
}

// The source contract on Mastodon-API servers with the deviations of
// snac2 and Hollo (issue 16), one quirk at a time. A server whose IDs
// change on edit cannot pass the contract's edit check by ID (the edited
// post has another ID by design), so there the origin only posts. Without
// streaming, the contract accepts sources.ErrNoStreaming.
func TestSourceContractQuirks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		q      fakemastodon.Quirks
		noEdit bool
	}{
		{name: "Plain"},
		{name: "NoLinkHeader", q: fakemastodon.Quirks{NoLinkHeader: true}},
		{name: "IDChangesOnEdit", q: fakemastodon.Quirks{IDChangesOnEdit: true}, noEdit: true},
		{name: "NoEditedAt", q: fakemastodon.Quirks{NoEditedAt: true}},
		{name: "NoStreaming", q: fakemastodon.Quirks{NoStreaming: true}},
		{name: "HiddenPrivatePosts", q: fakemastodon.Quirks{HiddenPrivatePosts: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fakemastodon.Config{Quirks: tc.q}
			if tc.q.IDChangesOnEdit {
				// Posts a second apart: within a second such a server
				// gives no order at all (see TestSameSecondThread).
				cfg.Now = (&tickingClock{t: time.Now()}).now
			}
			_, src, c := fakeSource(t, cfg, 2)
			var o sourcetest.Origin = fakeEditor{fakeOrigin{c}}
			if tc.noEdit {
				o = fakeOrigin{c}
			}
			sourcetest.Run(t, src, o, sourcetest.Options{Batch: 5})
		})
	}
}

// A thread posted within one second on a server whose IDs sort by hash
// within a second and whose times are kept to the second (snac2): the
// source still hands out each parent before its reply, so that a mirror
// does not leave replies out for lack of their parent.
func TestSameSecondThread(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	_, src, c := fakeSource(t, fakemastodon.Config{Quirks: fakemastodon.Quirks{IDChangesOnEdit: true},
		Now: func() time.Time { return at }}, 0)
	var ids []string
	parent := ""
	for i := range 6 {
		body := map[string]string{"status": fmt.Sprintf("part %d", i), "visibility": "public"}
		if parent != "" {
			body["in_reply_to_id"] = parent
		}
		var st fedi.Status
		if _, err := c.Do(t.Context(), http.MethodPost, "/api/v1/statuses", nil, body, &st); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, st.ID)
		parent = st.ID
	}
	page, err := src.Fetch(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range page.Posts {
		got = append(got, p.OriginID)
	}
	if !slices.Equal(got, ids) {
		t.Errorf("thread order %v, want %v (each parent before its reply)", got, ids)
	}
}

// A server that advertises streaming but has none (snac2, Hollo): Stream
// says so with sources.ErrNoStreaming, so the daemon polls instead.
func TestStreamWithoutStreamingAPI(t *testing.T) {
	_, src, _ := fakeSource(t, fakemastodon.Config{Quirks: fakemastodon.Quirks{NoStreaming: true}}, 0)
	err := src.Stream(t.Context(), make(chan sources.Event, 1))
	if !errors.Is(err, sources.ErrNoStreaming) {
		t.Errorf("Stream: %v; want sources.ErrNoStreaming", err)
	}
}
