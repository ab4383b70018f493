package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
)

// fakeServer serves the Mastodon API endpoints Run reads, for one account
// whose posts have numeric IDs growing with time.
type fakeServer struct {
	mu      sync.Mutex
	posts   map[int]fedi.Status
	listed  map[int]bool // false: left out of the account's list (but still there)
	pages   int
	lookups int
}

func (f *fakeServer) add(id int, at time.Time, parent int) {
	st := fedi.Status{ID: strconv.Itoa(id), URI: fmt.Sprintf("https://old.example/users/me/statuses/%d", id),
		URL: fmt.Sprintf("https://old.example/@me/%d", id), CreatedAt: at, Visibility: "public", Content: fmt.Sprintf("<p>post %d</p>", id)}
	if parent > 0 {
		st.InReplyToID = strconv.Itoa(parent)
	}
	f.posts[id] = st
	f.listed[id] = true
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	write := func(v any) { json.NewEncoder(w).Encode(v) } //nolint:errcheck // test server
	switch p := r.URL.Path; {
	case p == "/api/v1/accounts/verify_credentials":
		write(fedi.Profile{Account: fedi.Account{ID: "1", Username: "me", URL: "https://old.example/@me"}})
	case p == "/api/v1/accounts/1/statuses":
		f.pages++
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		maxID, _ := strconv.Atoi(q.Get("max_id"))
		sinceID, _ := strconv.Atoi(q.Get("since_id"))
		var ids []int
		for id := range f.posts {
			if f.listed[id] && (maxID == 0 || id < maxID) && id > sinceID {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		slices.Reverse(ids) // newest first
		ids = ids[:min(limit, len(ids))]
		page := []fedi.Status{}
		for _, id := range ids {
			page = append(page, f.posts[id])
		}
		if len(ids) > 0 {
			w.Header().Set("Link", fmt.Sprintf(`<https://%s%s?limit=%d&max_id=%d>; rel="next"`, r.Host, p, limit, ids[len(ids)-1]))
		}
		write(page)
	case strings.HasPrefix(p, "/api/v1/statuses/"):
		f.lookups++
		id, _ := strconv.Atoi(strings.TrimPrefix(p, "/api/v1/statuses/"))
		st, ok := f.posts[id]
		if !ok {
			http.Error(w, `{"error":"Record not found"}`, http.StatusNotFound)
			return
		}
		write(st)
	case p == "/api/v1/favourites", p == "/api/v1/bookmarks":
		write([]fedi.Status{})
	default:
		http.NotFound(w, r)
	}
}

type memCursors map[string]string

func (m memCursors) Get(_ context.Context, k string) (string, error) { return m[k], nil }
func (m memCursors) Set(_ context.Context, k, v string) error        { m[k] = v; return nil }

// Run fetches everything once, then only what is new; --refresh finds
// edits and deletions in one walk of the list (the seen set on disk), and
// a post listed again loses its deletion mark.
func TestRunIncrementalAndRefresh(t *testing.T) {
	f := &fakeServer{posts: map[int]fedi.Status{}, listed: map[int]bool{}}
	srv := httptest.NewTLSServer(f)
	defer srv.Close()
	base, _ := url.Parse(srv.URL)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for i := range 85 { // posts 10 ms apart: many share a second
		parent := 0
		if i%10 == 9 {
			parent = 100 + i - 1
		}
		f.add(100+i, t0.Add(time.Duration(i)*10*time.Millisecond), parent)
	}
	s, err := OpenStore(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := Options{Client: fedi.NewClient(base, "token", srv.Client()), Cursors: memCursors{}, Account: "me@old.example"}
	run := func(refresh bool) Summary {
		t.Helper()
		f.pages, f.lookups = 0, 0
		o.Refresh = refresh
		sum, err := Run(ctx, s, o)
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}

	if sum := run(false); sum.NewPosts != 85 || sum.TotalPosts != 85 || f.pages != 3 {
		t.Errorf("first run: %+v, %d pages (want 85 new from 3)", sum, f.pages)
	}
	ids := outboxIDs(t, s.Dir())
	if !slices.IsSorted(ids) || len(ids) != 85 {
		t.Errorf("outbox.json is not oldest first: %v", ids)
	}

	for i := range 3 {
		f.add(185+i, t0.Add(time.Minute+time.Duration(i)*time.Millisecond), 0)
	}
	if sum := run(false); sum.NewPosts != 3 || sum.TotalPosts != 88 || f.pages != 1 || f.lookups != 0 {
		t.Errorf("second run: %+v, %d pages, %d look-ups (want 3 new from 1 page)", sum, f.pages, f.lookups)
	}

	edited := t0.Add(time.Hour)
	st := f.posts[120]
	st.EditedAt, st.Content = &edited, "<p>post 120, edited</p>"
	f.posts[120] = st
	delete(f.posts, 130)
	delete(f.listed, 130)
	f.listed[140] = false // left out of the list but still there
	sum := run(true)
	if sum.NewPosts != 0 || sum.UpdatedPosts != 1 || sum.DeletedPosts != 1 || sum.MarkedDeleted != 1 || sum.TotalPosts != 88 {
		t.Errorf("refresh: %+v", sum)
	}
	if f.pages != 3 || f.lookups != 2 { // one walk; a look-up for each post not listed
		t.Errorf("refresh: %d pages, %d look-ups, want 3 and 2", f.pages, f.lookups)
	}
	if _, deleted, _, _ := s.Stored(ctx, "140"); deleted {
		t.Error("a post left out of the list but still there was marked deleted")
	}

	f.add(130, t0.Add(300*time.Millisecond), 0) // it was not gone after all
	if sum := run(true); sum.MarkedDeleted != 0 || sum.UpdatedPosts != 1 {
		t.Errorf("second refresh: %+v, want the post listed again unmarked", sum)
	}
	if ids := outboxIDs(t, s.Dir()); !slices.IsSorted(ids) || len(ids) != 88 {
		t.Errorf("outbox.json is not oldest first: %v", ids)
	}
}
