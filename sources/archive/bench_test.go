package archive

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkSearch10k measures search latency over a synthetic archive of
// 10 000 posts (go test -bench Search10k ./sources/archive).
func BenchmarkSearch10k(b *testing.B) {
	dir := b.TempDir()
	words := strings.Fields("garden cat tea coffee river mountain bread music train winter summer book city forest rain")
	var sb strings.Builder
	sb.WriteString(`{"id":"outbox.json","type":"OrderedCollection","orderedItems":[`)
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10000 {
		if i > 0 {
			sb.WriteString(",")
		}
		text := fmt.Sprintf("post %d about %s and %s near the %s", i, words[i%len(words)], words[(i*7)%len(words)], words[(i*3)%len(words)])
		fmt.Fprintf(&sb, `{"id":"https://x.example/s/%d/activity","type":"Create","published":"%s","to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"https://x.example/s/%d","type":"Note","published":"%s","url":"https://x.example/@me/%d","content":"<p>%s</p>"}}`,
			i, base.Add(time.Duration(i)*time.Hour).Format(time.RFC3339), i, base.Add(time.Duration(i)*time.Hour).Format(time.RFC3339), i, text)
	}
	sb.WriteString("]}")
	if err := os.WriteFile(filepath.Join(dir, "outbox.json"), []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	if n, err := Reindex(ctx, dir); err != nil || n != 10000 {
		b.Fatalf("%d %v", n, err)
	}
	indexMS := float64(time.Since(start).Milliseconds())
	queries := []Query{{Text: "garden coffee"}, {Text: `"near the river"`}, {Text: "winter", From: base.AddDate(0, 6, 0)}, {Text: "tea*"}}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := Search(ctx, dir, queries[i%len(queries)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(indexMS, "index-ms") // after the loop, which resets the metrics
}
