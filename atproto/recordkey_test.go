package atproto

import (
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

func TestRecordKey(t *testing.T) {
	published := time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)
	k := RecordKey("blog-to-bsky", "https://example.com/posts/1", published)

	tid, err := syntax.ParseTID(k)
	if err != nil {
		t.Fatalf("RecordKey = %q, not a TID: %v", k, err)
	}
	if _, err := syntax.ParseRecordKey(k); err != nil {
		t.Fatalf("RecordKey = %q, not a record key: %v", k, err)
	}
	if got := tid.Time().Truncate(time.Second); !got.Equal(published.Truncate(time.Second)) {
		t.Errorf("TID time = %s, want the published second %s", got, published.Truncate(time.Second))
	}
	if again := RecordKey("blog-to-bsky", "https://example.com/posts/1", published); again != k {
		t.Errorf("not deterministic: %q then %q", k, again)
	}
	// The time zone of published does not matter, only the instant.
	if other := RecordKey("blog-to-bsky", "https://example.com/posts/1", published.In(time.FixedZone("x", 3600))); other != k {
		t.Errorf("depends on the zone: %q vs %q", k, other)
	}
	for name, other := range map[string]string{
		"other origin":   RecordKey("blog-to-bsky", "https://example.com/posts/2", published),
		"other route":    RecordKey("blog-to-bsky-2", "https://example.com/posts/1", published),
		"shifted bounds": RecordKey("blog-to-bsk", "yhttps://example.com/posts/1", published),
	} {
		if other == k {
			t.Errorf("%s: same key %q", name, k)
		}
	}
}

func TestRecordKeyOrderFollowsPublished(t *testing.T) {
	// A repository lists records in key order, so copies keep the order of their origins
	// when they were published at least a second apart.
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := ""
	for i := range 100 {
		k := RecordKey("r", "post-"+string(rune('a'+i%26))+string(rune('a'+i/26)), base.Add(time.Duration(i)*time.Second))
		if k <= prev {
			t.Fatalf("key %d %q sorts before or equal to key %d %q", i, k, i-1, prev)
		}
		prev = k
	}
}

func TestRecordKeySameSecondDistinct(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	for i := range 5000 {
		k := RecordKey("r", "item-"+string(rune(0x4e00+i)), at)
		if seen[k] {
			t.Fatalf("collision after %d keys in one second", i)
		}
		seen[k] = true
	}
}

func TestRecordKeyZeroTime(t *testing.T) {
	for _, ts := range []time.Time{{}, time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)} {
		k := RecordKey("r", "x", ts)
		tid, err := syntax.ParseTID(k)
		if err != nil {
			t.Fatalf("%s: %q is not a TID: %v", ts, k, err)
		}
		if tid.Time().Unix() != 0 {
			t.Errorf("%s: TID time %s, want within the first second of 1970", ts, tid.Time())
		}
	}
}
