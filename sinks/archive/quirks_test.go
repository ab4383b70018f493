package archive

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/fakemastodon"
)

// stepClock is a fake server's clock that a test moves on.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *stepClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type quirkArchive struct {
	srv   *fakemastodon.Server
	clock *stepClock
	c     *fedi.Client
	store *Store
	o     Options
}

func newQuirkArchive(t *testing.T, q fakemastodon.Quirks) *quirkArchive {
	t.Helper()
	clk := &stepClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	srv := fakemastodon.Start(fakemastodon.Config{Software: "snac", Quirks: q, Now: clk.now})
	t.Cleanup(srv.Close)
	_, token := srv.AddAccount("alice")
	base, err := fedi.ParseServer(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := fedi.NewClient(base, token, http.DefaultClient)
	s, err := OpenStore(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &quirkArchive{srv: srv, clock: clk, c: c, store: s,
		o: Options{Client: c, Media: http.DefaultClient, Cursors: memCursors{}, Account: "alice@" + srv.Host}}
}

func (a *quirkArchive) post(t *testing.T, text, visibility string) fedi.Status {
	t.Helper()
	var st fedi.Status
	if _, err := a.c.Do(t.Context(), http.MethodPost, "/api/v1/statuses", nil,
		map[string]string{"status": text, "visibility": visibility}, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func (a *quirkArchive) edit(t *testing.T, id, text string) fedi.Status {
	t.Helper()
	var st fedi.Status
	if _, err := a.c.Do(t.Context(), http.MethodPut, "/api/v1/statuses/"+url.PathEscape(id), nil, map[string]string{"status": text}, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func (a *quirkArchive) run(t *testing.T, refresh bool) Summary {
	t.Helper()
	a.o.Refresh = refresh
	sum, err := Run(context.Background(), a.store, a.o)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// A server without a Link header on the account's statuses but with
// max_id (snac2): every post is archived, not the newest page only.
func TestArchiveWithoutLinkHeader(t *testing.T) {
	a := newQuirkArchive(t, fakemastodon.Quirks{NoLinkHeader: true})
	for i := range 67 {
		a.post(t, fmt.Sprintf("post %d", i), "public")
		a.clock.add(time.Second)
	}
	sum := a.run(t, false)
	if sum.NewPosts != 67 || sum.TotalPosts != 67 || len(sum.Warnings) != 0 {
		t.Errorf("archived %d new, %d in all, warnings %q; want 67 and none", sum.NewPosts, sum.TotalPosts, sum.Warnings)
	}
}

// Followers-only posts missing from the account's own list (snac2): the
// summary says, once, that the archive may lack posts and why.
func TestArchiveWarnsWhenTheServerCountsMore(t *testing.T) {
	a := newQuirkArchive(t, fakemastodon.Quirks{HiddenPrivatePosts: true})
	a.post(t, "public", "public")
	a.post(t, "followers only", "private")
	sum := a.run(t, false)
	if sum.TotalPosts != 1 || sum.ServerPosts != 2 || len(sum.Warnings) != 1 || !strings.Contains(sum.Warnings[0], "1 of the 2 posts it counts") {
		t.Errorf("summary %+v; want 1 archived, 2 counted and a warning", sum)
	}
}

// A server whose IDs change on edit (snac2): the edited post replaces the
// stored one (same URI) instead of being stored twice.
func TestArchiveIDChangesOnEdit(t *testing.T) {
	a := newQuirkArchive(t, fakemastodon.Quirks{IDChangesOnEdit: true})
	first := a.post(t, "one", "public")
	a.post(t, "two", "public")
	a.clock.add(5 * time.Second)
	if sum := a.run(t, false); sum.NewPosts != 2 {
		t.Fatalf("first run: %+v", sum)
	}
	a.clock.add(5 * time.Second)
	ed := a.edit(t, first.ID, "one, edited")
	if ed.ID == first.ID {
		t.Fatal("the fake kept the ID")
	}
	for _, refresh := range []bool{false, true} {
		sum := a.run(t, refresh)
		if sum.TotalPosts != 2 || sum.MarkedDeleted != 0 {
			t.Errorf("refresh %v: %d posts (%d marked deleted); want 2 and none", refresh, sum.TotalPosts, sum.MarkedDeleted)
		}
	}
	outbox, err := os.ReadFile(filepath.Join(a.store.Dir(), "outbox.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(outbox), "one, edited") || strings.Count(string(outbox), first.URI+`"`) > 2 {
		t.Errorf("outbox.json lacks the edit or holds the post twice:\n%s", outbox)
	}
}

// A server that never sends edited_at (Hollo): --refresh notices the edit
// by comparing content.
func TestArchiveRefreshWithoutEditedAt(t *testing.T) {
	a := newQuirkArchive(t, fakemastodon.Quirks{NoEditedAt: true})
	p := a.post(t, "before", "public")
	a.post(t, "other", "public")
	a.run(t, false)
	if sum := a.run(t, true); sum.UpdatedPosts != 0 {
		t.Errorf("refresh without edits updated %d posts", sum.UpdatedPosts)
	}
	a.edit(t, p.ID, "after")
	if sum := a.run(t, true); sum.UpdatedPosts != 1 {
		t.Errorf("refresh after an edit: %d updated; want 1", sum.UpdatedPosts)
	}
	outbox, _ := os.ReadFile(filepath.Join(a.store.Dir(), "outbox.json"))
	if !strings.Contains(string(outbox), "after") {
		t.Error("outbox.json lacks the edited text")
	}
}

// Posts made in the second of the last run's newest post, on a server whose
// IDs sort by a hash within a second (snac2), are archived by the next run
// although their IDs may be smaller than the cursor's.
func TestArchiveSameSecondAfterCursor(t *testing.T) {
	a := newQuirkArchive(t, fakemastodon.Quirks{IDChangesOnEdit: true})
	for i := range 4 {
		a.post(t, fmt.Sprintf("early %d", i), "public")
	}
	if sum := a.run(t, false); sum.NewPosts != 4 {
		t.Fatalf("first run: %+v", sum)
	}
	for i := range 8 {
		a.post(t, fmt.Sprintf("late %d", i), "public")
	}
	if sum := a.run(t, false); sum.NewPosts != 8 || sum.TotalPosts != 12 {
		t.Errorf("second run: %d new, %d in all; want 8 and 12", sum.NewPosts, sum.TotalPosts)
	}
}
