package archivesite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/archivesite"
)

// writeSynthetic writes an archive of n posts over five years: self-threads,
// content warnings, images with alt text (200 distinct files), polls,
// boosts, deleted posts.
func writeSynthetic(tb testing.TB, dir string, n int) {
	tb.Helper()
	words := strings.Fields("garden cat tea coffee river mountain bread music train winter summer book city forest rain ferry harbour")
	var sb strings.Builder
	sb.WriteString(`{"id":"outbox.json","type":"OrderedCollection","orderedItems":[`)
	base := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	step := 5 * 365 * 24 * time.Hour / time.Duration(n)
	const public = `["https://www.w3.org/ns/activitystreams#Public"]`
	for i := range n {
		if i > 0 {
			sb.WriteString(",\n")
		}
		at := base.Add(time.Duration(i) * step).Format(time.RFC3339)
		id := fmt.Sprintf("https://x.example/users/me/statuses/%d", i)
		if i%25 == 7 {
			fmt.Fprintf(&sb, `{"id":"%s/activity","type":"Announce","published":"%s","to":%s,"object":"https://else.example/notes/%d"}`, id, at, public, i)
			continue
		}
		text := fmt.Sprintf("Post %d about the %s and the %s near the %s, with a few more words so that it reads like a post someone wrote.", i, words[i%len(words)], words[(i*7)%len(words)], words[(i*3)%len(words)])
		extra := ""
		if i%10 == 3 {
			extra += fmt.Sprintf(`,"attachment":[{"type":"Document","mediaType":"image/png","url":"/system/media_attachments/files/%d/original/p.png","name":"picture %d of a %s"}]`, i%200, i, words[i%len(words)])
		}
		if i%20 == 5 {
			extra += `,"summary":"a content warning","sensitive":true`
		}
		if i%50 == 9 {
			extra += `,"oneOf":[{"name":"yes","replies":{"totalItems":3}},{"name":"no","replies":{"totalItems":1}}]`
		}
		if i%4 == 1 {
			extra += fmt.Sprintf(`,"inReplyTo":"https://x.example/users/me/statuses/%d"`, i-1)
		}
		deleted := ""
		if i%100 == 42 {
			deleted = `,"ferry:deleted":"2026-01-01T00:00:00Z"`
		}
		fmt.Fprintf(&sb, `{"id":"%s/activity","type":"Create","published":"%s","to":%s%s,"object":{"id":"%s","type":"Note","published":"%s","url":"https://x.example/@me/%d","to":%s,"content":"<p>%s</p>","contentMap":{"en":"<p>%s</p>"}%s}}`,
			id, at, public, deleted, id, at, i, public, text, text, extra)
	}
	sb.WriteString("]}")
	if err := os.WriteFile(filepath.Join(dir, "outbox.json"), []byte(sb.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	png, err := os.ReadFile("testdata/mastodon-export/avatar.png")
	if err != nil {
		tb.Fatal(err)
	}
	for i := range 200 {
		d := filepath.Join(dir, "media_attachments", "files", fmt.Sprint(i), "original")
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "p.png"), png, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	actor := `{"id":"https://x.example/users/me","type":"Person","preferredUsername":"me","name":"Bench","summary":"<p>twenty thousand posts</p>","icon":{"type":"Image","url":"avatar.png"}}`
	if err := os.WriteFile(filepath.Join(dir, "actor.json"), []byte(actor), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "avatar.png"), png, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkBuild20k builds the site of a 20 000-post archive from scratch
// and reports the figures of the issue: build time, the size of the first
// page and of the whole site, and a re-run after one new post.
// go test -run '^$' -bench Build20k -benchtime 3x ./archivesite
func BenchmarkBuild20k(b *testing.B) {
	dir := b.TempDir()
	writeSynthetic(b, dir, 20000)
	ctx := context.Background()
	var res archivesite.Result
	var total time.Duration
	for b.Loop() {
		site := filepath.Join(b.TempDir(), "site")
		start := time.Now()
		var err error
		if res, err = archivesite.Build(ctx, dir, site, archivesite.Options{}); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	if res.Posts != 20000 {
		b.Fatalf("%d posts", res.Posts)
	}
	// The incremental re-run: one more post in the newest month.
	site := filepath.Join(b.TempDir(), "site")
	if _, err := archivesite.Build(ctx, dir, site, archivesite.Options{}); err != nil {
		b.Fatal(err)
	}
	appendPost(b, dir, "2025-12-31T12:00:00Z", "<p>one more</p>")
	start := time.Now()
	re, err := archivesite.Build(ctx, dir, site, archivesite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	rebuild := time.Since(start)
	idx, _ := os.Stat(filepath.Join(site, "search-index.js"))
	b.ReportMetric(float64(res.FirstPageBytes), "first-page-bytes")
	b.ReportMetric(float64(res.Bytes), "site-bytes")
	b.ReportMetric(float64(idx.Size()), "search-index-bytes")
	b.ReportMetric(float64(rebuild.Milliseconds()), "rebuild-ms")
	b.ReportMetric(float64(re.PagesWritten), "rebuild-files-written")
	fmt.Printf("FIGURES archive-html posts=%d months=%d build=%s first_page_bytes=%d site_bytes=%d search_index_bytes=%d media_copied=%d rebuild=%s rebuild_written=%d rebuild_skipped=%d\n",
		res.Posts, res.Months, (total / time.Duration(b.N)).Round(time.Millisecond), res.FirstPageBytes, res.Bytes, idx.Size(), res.MediaCopied, rebuild.Round(time.Millisecond), re.PagesWritten, re.PagesSkipped)
}
