package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func testRecord(id, parentID string, published time.Time) Record {
	uri := "https://old.example/users/me/statuses/" + id
	n := &Note{ID: uri, Type: "Note", Published: published, AttributedTo: "https://old.example/users/me",
		To: []string{Public}, Cc: []string{}, AtomURI: uri, Content: "<p>post " + id + "</p>",
		Attachment: []Document{}, Tag: []Tag{}}
	return Record{ID: id, URI: uri, ParentID: parentID, Activity: Activity{ID: uri + "/activity", Type: "Create",
		Actor: "https://old.example/users/me", Published: published, To: n.To, Cc: n.Cc, Object: n}}
}

// outboxIDs returns the note IDs (status IDs) of outbox.json in its order.
func outboxIDs(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "outbox.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ob struct {
		OrderedItems []struct {
			Object struct {
				ID        string  `json:"id"`
				InReplyTo *string `json:"inReplyTo"`
			} `json:"object"`
		} `json:"orderedItems"`
	}
	if err := json.Unmarshal(data, &ob); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range ob.OrderedItems {
		ids = append(ids, filepath.Base(it.Object.ID))
	}
	return ids
}

// GoToSocial and Mastodon give created_at in milliseconds; posts made in
// quick succession share a second. Stored as time.RFC3339Nano writes them
// (trailing zeros trimmed), "…:00.1Z" sorted after "…:00.12Z" and "…:00Z"
// after "…:00.5Z", so outbox.json listed a thread reply after later posts.
func TestOutboxIsChronological(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return base.Add(time.Duration(n) * time.Millisecond) }
	// Stored newest first, as the API lists them.
	recs := []Record{
		testRecord("07", "", ms(1000)),   // "…:01Z"
		testRecord("06", "05", ms(500)),  // "…:00.5Z"
		testRecord("05", "04", ms(120)),  // "…:00.12Z"
		testRecord("04", "03", ms(100)),  // "…:00.1Z"
		testRecord("03", "", ms(10)),     // "…:00.01Z"
		testRecord("02", "", ms(0)),      // "…:00Z"
		testRecord("01", "", ms(-1)),     // "…:59.999Z" the second before
		testRecord("00", "", ms(-60000)), // a minute before
	}
	for _, r := range recs {
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := Write(ctx, s); err != nil {
		t.Fatal(err)
	}
	want := []string{"00", "01", "02", "03", "04", "05", "06", "07"}
	if got := outboxIDs(t, dir); !slices.Equal(got, want) {
		t.Errorf("outbox.json order %v, want %v (oldest first)", got, want)
	}
}

// A store written with the old time format is rewritten on open.
func TestOpenStoreMigratesTimes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]string{"a": "2026-03-01T10:00:00.1Z", "b": "2026-03-01T10:00:00.12Z", "c": "2026-03-01T10:00:00Z", "d": "2026-03-01T09:59:59.999999999Z"}
	for id, pub := range old {
		r := testRecord(id, "", time.Time{})
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE activities SET published = ?, edited = ? WHERE id = ?`, pub, pub, id); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err = OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.db.QueryContext(ctx, `SELECT id, published, edited FROM activities ORDER BY published, id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id, pub, edited string
		if err := rows.Scan(&id, &pub, &edited); err != nil {
			t.Fatal(err)
		}
		want, _ := time.Parse(time.RFC3339Nano, old[id])
		if pub != fmtTime(want) || edited != pub {
			t.Errorf("post %s: published %q edited %q, want %q", id, pub, edited, fmtTime(want))
		}
		got = append(got, id)
	}
	if want := []string{"d", "c", "a", "b"}; !slices.Equal(got, want) {
		t.Errorf("order after migration %v, want %v", got, want)
	}
}

// EachUnseen pages through the posts a refresh did not see, with the
// seen set on disk.
func TestEachUnseen(t *testing.T) {
	ctx := context.Background()
	s, err := OpenStore(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var want []string
	for i := range 350 {
		id := fmt.Sprintf("%04d", i)
		if err := s.Put(ctx, testRecord(id, "", base.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			want = append(want, id)
		}
	}
	if err := s.Seen(ctx, "0001"); err != nil { // left over from an interrupted refresh
		t.Fatal(err)
	}
	if err := s.StartRefresh(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 350 {
		if i%3 != 0 {
			if err := s.Seen(ctx, fmt.Sprintf("%04d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.MarkDeleted(ctx, "0000", base); err != nil {
		t.Fatal(err)
	}
	want = want[1:] // marked deleted already
	var got []string
	err = s.EachUnseen(ctx, func(id string) error {
		got = append(got, id)
		return s.MarkDeleted(ctx, id, base) // the store is usable from fn
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("unseen: %d posts %v…, want %d", len(got), got[:min(5, len(got))], len(want))
	}
	if total, deleted, _ := s.Count(ctx); total != 350 || deleted != len(want)+1 {
		t.Errorf("count %d, %d deleted", total, deleted)
	}
}
