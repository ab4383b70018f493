package feed

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sources"
)

func parseFile(t *testing.T, name, base string) []post.Post {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ps, err := Parse(f, base)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestParseRSS(t *testing.T) {
	ps := parseFile(t, "blog.rss", "https://blog.example/feed.xml")
	if len(ps) != 3 {
		t.Fatalf("%d items", len(ps))
	}
	// Oldest first.
	for i, want := range []string{"First post", "Second post", "Third post: <tags> & entities"} {
		if ps[i].Title != want {
			t.Errorf("item %d title %q, want %q", i, ps[i].Title, want)
		}
	}
	first, second, third := ps[0], ps[1], ps[2]
	if first.OriginID != "https://blog.example/2026/11/first/" || first.URL != "https://blog.example/2026/11/first/" {
		t.Errorf("item without GUID: id %q url %q (relative link not resolved?)", first.OriginID, first.URL)
	}
	if second.Text != "Escaped HTML in the description." {
		t.Errorf("escaped HTML description became %q", second.Text)
	}
	if third.OriginID != "post-3" || third.Language != "en-gb" || !third.CreatedAt.Equal(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("third: %+v", third)
	}
	wantText := "Hello world, this is the third post.\n\n• one\n• two\n\n[a cat]"
	if third.Text != wantText {
		t.Errorf("third text %q, want %q", third.Text, wantText)
	}
	if len(third.Media) != 1 || third.Media[0].URL != "https://blog.example/img/photo.jpg" || third.Media[0].MIMEType != "image/jpeg" {
		t.Errorf("enclosure: %+v", third.Media)
	}
	if strings.Join(third.Tags, ",") != "golang,fediverse" {
		t.Errorf("tags %v", third.Tags)
	}
}

func TestParseAtomAndJSON(t *testing.T) {
	ps := parseFile(t, "blog.atom", "https://atom.example/feed")
	if len(ps) != 2 || ps[0].OriginID != "urn:uuid:1" || ps[1].OriginID != "urn:uuid:2" {
		t.Fatalf("atom order: %+v", ps)
	}
	two := ps[1]
	if two.Title != "Deux & trois" || two.Text != "Le contenu modifié." || two.EditedAt.IsZero() || two.Language != "fr" {
		t.Errorf("atom entry: title %q text %q edited %v lang %q", two.Title, two.Text, two.EditedAt, two.Language)
	}
	if len(two.Media) != 1 || two.Media[0].MIMEType != "audio/mpeg" {
		t.Errorf("atom enclosure: %+v", two.Media)
	}
	if ps[0].Text != "Résumé seulement." {
		t.Errorf("atom summary-only entry: %q", ps[0].Text)
	}

	js := parseFile(t, "blog.json", "https://json.example/feed.json")
	if len(js) != 2 || js[0].OriginID != "j1" || js[1].OriginID != "j2" {
		t.Fatalf("json order: %+v", js)
	}
	if js[0].Text != "Nur Text." || strings.Join(js[0].Tags, ",") != "a,b" || js[0].Language != "de" {
		t.Errorf("json item 1: %+v", js[0])
	}
	if js[1].Title != "" || js[1].Text != "Ohne Titel, mit Link." || len(js[1].Media) == 0 {
		t.Errorf("json item 2: %+v", js[1])
	}
}

// feedServer serves a feed with validators and counts requests.
type feedServer struct {
	body     atomic.Value // string
	requests atomic.Int64
	notMod   atomic.Int64
	status   atomic.Int64
}

func newFeedServer(t *testing.T, body string) (*feedServer, *httptest.Server) {
	fs := &feedServer{}
	fs.body.Store(body)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.requests.Add(1)
		if s := fs.status.Load(); s != 0 {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(int(s))
			return
		}
		b := fs.body.Load().(string)
		etag := `"` + strings.Repeat("x", len(b)%7) + string(rune('a'+len(b)%26)) + `"`
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", "Sat, 21 Nov 2026 10:00:00 GMT")
		if r.Header.Get("If-None-Match") == etag {
			fs.notMod.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/rss+xml")
		_, _ = w.Write([]byte(b))
	}))
	t.Cleanup(srv.Close)
	return fs, srv
}

func TestFetchConditional(t *testing.T) {
	rss, _ := os.ReadFile("testdata/blog.rss")
	fs, srv := newFeedServer(t, string(rss))
	src, err := New(Options{URL: srv.URL + "/feed.xml", UserAgent: "ferry-test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p1, err := src.Fetch(ctx, "")
	if err != nil || len(p1.Posts) != 3 || p1.Next == "" {
		t.Fatalf("first fetch: %d posts, next %q, %v", len(p1.Posts), p1.Next, err)
	}
	p2, err := src.Fetch(ctx, p1.Next)
	if err != nil || len(p2.Posts) != 0 || p2.Next != p1.Next {
		t.Fatalf("conditional fetch: %+v %v", p2, err)
	}
	if fs.requests.Load() != 2 || fs.notMod.Load() != 1 {
		t.Errorf("requests %d, 304s %d", fs.requests.Load(), fs.notMod.Load())
	}
	// A changed feed is fetched whole again.
	fs.body.Store(strings.Replace(string(rss), "Second post", "Second post, edited", 1) + " ")
	p3, err := src.Fetch(ctx, p1.Next)
	if err != nil || len(p3.Posts) != 3 || p3.Next == p1.Next {
		t.Fatalf("changed feed: %d posts, %v", len(p3.Posts), err)
	}
	// 503 with Retry-After is reported with the wait.
	fs.status.Store(503)
	_, err = src.Fetch(ctx, p3.Next)
	var re *RetryError
	if !errors.As(err, &re) || re.RetryAfter() != 2*time.Minute {
		t.Errorf("503: %v, want a RetryError asking to wait 2m", err)
	}
}

// TestSourceContract checks the sources.Source contract for feeds: oldest
// first, safe to repeat with the same cursor, resuming from Next neither
// loses nor repeats (a feed returns itself whole, so "not repeat" is the
// bridge's dedup; here: the same items, the same identities).
func TestSourceContract(t *testing.T) {
	for _, name := range []string{"blog.rss", "blog.atom", "blog.json"} {
		t.Run(name, func(t *testing.T) {
			b, _ := os.ReadFile("testdata/" + name)
			_, srv := newFeedServer(t, string(b))
			var src sources.Source
			src, err := New(Options{URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			a, err := src.Fetch(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i < len(a.Posts); i++ {
				if a.Posts[i].CreatedAt.Before(a.Posts[i-1].CreatedAt) {
					t.Errorf("not oldest first at %d", i)
				}
			}
			again, err := src.Fetch(context.Background(), "")
			if err != nil || len(again.Posts) != len(a.Posts) {
				t.Fatalf("repeat: %v", err)
			}
			for i := range a.Posts {
				if a.Posts[i].OriginID != again.Posts[i].OriginID || a.Posts[i].OriginID == "" {
					t.Errorf("identity changed between fetches at %d", i)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := src.Fetch(ctx, ""); err == nil {
				t.Error("a cancelled context did not stop Fetch")
			}
		})
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x.example/feed", "not a url", "file:///etc/passwd"} {
		if _, err := New(Options{URL: u}); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}

func TestWaitFor(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		h    http.Header
		ttl  time.Duration
		want time.Duration
	}{
		{"nothing", http.Header{}, 0, 0},
		{"ttl", http.Header{}, time.Hour, time.Hour},
		{"max-age less age", http.Header{"Cache-Control": {"max-age=600"}, "Age": {"100"}}, 0, 500 * time.Second},
		{"no-cache wins over max-age", http.Header{"Cache-Control": {"no-cache, max-age=600"}}, 0, 0},
		{"longest of ttl and max-age", http.Header{"Cache-Control": {"max-age=60"}}, 5 * time.Minute, 5 * time.Minute},
		{"retry-after seconds", http.Header{"Retry-After": {"120"}}, 0, 2 * time.Minute},
		{"retry-after date", http.Header{"Retry-After": {now.Add(time.Hour).Format(http.TimeFormat)}}, 0, time.Hour},
		{"capped", http.Header{"Cache-Control": {"max-age=99999999"}}, 0, maxWait},
		{"garbage", http.Header{"Cache-Control": {"max-age=soon"}, "Retry-After": {"later"}}, 0, 0},
	} {
		if got := waitFor(tc.h, tc.ttl, now); got != tc.want {
			t.Errorf("%s: waitFor = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A 304 carries the publisher's wait too.
func TestNotModifiedKeepsWait(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=900")
		w.WriteHeader(http.StatusNotModified)
	}))
	defer srv.Close()
	s, err := New(Options{URL: srv.URL, Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Fetch(context.Background(), `{"etag":"\"x\""}`)
	if err != nil || p.Wait != 15*time.Minute || len(p.Posts) != 0 {
		t.Fatalf("304 page %+v, %v; want Wait 15m", p, err)
	}
}
