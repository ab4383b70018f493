package archive_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	sinkarchive "github.com/fedi-ferry/ferry/sinks/archive"
	"github.com/fedi-ferry/ferry/sources/archive"
	"github.com/fedi-ferry/ferry/sources/sourcetest"
)

// copyDir copies the testdata archive src into a new directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// exportOrigin adds posts to a Mastodon export the way a newer export of
// the same account would hold them: appended to outbox.json.
type exportOrigin struct {
	dir  string
	mu   sync.Mutex
	next time.Time
	n    int
}

func (o *exportOrigin) Post(_ context.Context, text string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	file := filepath.Join(o.dir, "outbox.json")
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", err
	}
	o.n++
	o.next = o.next.Add(time.Hour)
	const actor = "https://old.example/users/me"
	id := fmt.Sprintf("%s/statuses/2%08d", actor, o.n)
	pub := o.next.Format(time.RFC3339)
	to := []string{"https://www.w3.org/ns/activitystreams#Public"}
	note := map[string]any{"id": id, "type": "Note", "published": pub, "attributedTo": actor, "to": to,
		"cc": []string{actor + "/followers"}, "content": "<p>" + text + "</p>", "attachment": []any{}, "tag": []any{}}
	items := append(doc["orderedItems"].([]any), map[string]any{"id": id + "/activity", "type": "Create",
		"actor": actor, "published": pub, "to": to, "cc": note["cc"], "object": note})
	doc["orderedItems"], doc["totalItems"] = items, len(items)
	if b, err = json.Marshal(doc); err != nil {
		return "", err
	}
	return id, os.WriteFile(file, b, 0o644)
}

// A Mastodon "Request your archive" export (testdata) passes the source
// contract; new posts are appended as a newer export would hold them.
func TestSourceContractMastodonExport(t *testing.T) {
	dir := copyDir(t, "testdata/mastodon-export")
	o := &exportOrigin{dir: dir, next: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	sourcetest.Run(t, archive.NewSource(dir, archive.SourceOptions{PageSize: 2}), o, sourcetest.Options{Batch: 5})
}

// sinkOrigin writes posts with ferry's archive writer (the record store and
// the regenerated outbox.json of `ferry archive`).
type sinkOrigin struct {
	s    *sinkarchive.Sink
	mu   sync.Mutex
	next time.Time
}

func (o *sinkOrigin) Post(ctx context.Context, text string) (string, error) {
	o.mu.Lock()
	o.next = o.next.Add(time.Minute)
	at := o.next
	o.mu.Unlock()
	ref, err := o.s.Publish(ctx, sinks.Draft{PublishedAt: at, Post: post.Post{Text: text, Visibility: post.Public}})
	return ref.URL, err
}

// An archive ferry writes passes the source contract, deletion marks
// included.
func TestSourceContractFerryArchive(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	st, err := sinkarchive.OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := sinkarchive.NewSink(st, sinkarchive.SinkOptions{Actor: "https://ferry.example/users/me"})
	if err != nil {
		t.Fatal(err)
	}
	o := &sinkOrigin{s: s, next: time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)}
	src := archive.NewSource(dir, archive.SourceOptions{PageSize: 3})
	sourcetest.Run(t, src, o, sourcetest.Options{Batch: 7})

	// A post deleted after it was archived comes back marked.
	ref, err := s.Publish(ctx, sinks.Draft{PublishedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Post: post.Post{Text: "gone soon"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, ref.ID); err != nil {
		t.Fatal(err)
	}
	page, err := src.Fetch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	last := page.Posts[len(page.Posts)-1]
	if last.OriginID != ref.URL || !last.Deleted {
		t.Fatalf("newest post %s deleted=%v; want %s marked deleted", last.OriginID, last.Deleted, ref.URL)
	}
}

// Posts are ordered by date whatever order outbox.json lists them in, boosts
// included, and the newest page is the last PageSize of them.
func TestSourceOrdersByDate(t *testing.T) {
	dir := copyDir(t, "testdata/mastodon-export")
	file := filepath.Join(dir, "outbox.json")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	items := doc["orderedItems"].([]any)
	slices.Reverse(items)
	b, _ = json.Marshal(doc)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	const actor = "https://old.example/users/me/statuses/"
	want := []string{actor + "109860000", actor + "109860001", actor + "109860002", actor + "109860003/activity", actor + "109860004"}
	all, err := archive.NewSource(dir, archive.SourceOptions{}).Fetch(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range all.Posts {
		got = append(got, p.OriginID)
	}
	if !slices.Equal(got, want) || all.More {
		t.Fatalf("posts %v (more %v), want %v", got, all.More, want)
	}
	if all.Posts[2].Media[0].Path == "" || all.Posts[3].BoostOf != "https://else.example/notes/1" {
		t.Errorf("media or boost lost: %+v %+v", all.Posts[2].Media, all.Posts[3])
	}
	newest, err := archive.NewSource(dir, archive.SourceOptions{PageSize: 2}).Fetch(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(newest.Posts) != 2 || newest.Posts[0].OriginID != want[3] || newest.Posts[1].OriginID != want[4] {
		t.Fatalf("newest page %+v", newest.Posts)
	}
	if _, err := archive.NewSource(dir, archive.SourceOptions{}).Fetch(t.Context(), "not a cursor"); err == nil {
		t.Fatal("a malformed cursor was accepted")
	}
}
