package bridge_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/sinks/memsink"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/sources/feed"
	"github.com/fedi-ferry/ferry/state"
	"github.com/fedi-ferry/ferry/state/bridgestore"
)

// mirDocSource parses a feed document on every Fetch, as the feed source
// does with a 200 response.
type mirDocSource struct{ doc []byte }

func (s *mirDocSource) Fetch(ctx context.Context, cursor string) (sources.Page, error) {
	ps, err := feed.Parse(bytes.NewReader(s.doc), "https://bench.example/feed.xml")
	return sources.Page{Posts: ps, Next: "c"}, err
}

func mirBenchFeed(n, first int) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Bench</title><link>https://bench.example/</link><description>d</description>`)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := first + n - 1; i >= first; i-- {
		fmt.Fprintf(&b, `<item><title>Item number %d</title><link>https://bench.example/posts/%d/</link><guid>item-%d</guid>`+
			`<pubDate>%s</pubDate><category>bench</category><content:encoded><![CDATA[<p>Paragraph <b>%d</b> with a <a href="https://x.example/%d">link</a>.</p><p>Second paragraph.</p>]]></content:encoded></item>`,
			i, i, i, t0.Add(time.Duration(i)*time.Minute).Format(time.RFC1123Z), i, i)
	}
	b.WriteString(`</channel></rss>`)
	return []byte(b.String())
}

// BenchmarkFeedPipeline measures the feed pipeline as a route runs it:
// parse a 500-item RSS document, recognise every item against the SQLite
// store (GUID, canonical link, content hash), plan and journal the new
// ones (5 per run) and apply them to an in-memory sink. items/s counts
// feed items handled.
func BenchmarkFeedPipeline(b *testing.B) {
	const size, fresh = 500, 5
	st := state.TestStore(b)
	e := bridge.New(bridgestore.New(st), bridge.Options{})
	src, sink := &mirDocSource{doc: mirBenchFeed(size, 0)}, memsink.New()
	r := &bridge.Route{Name: "bench", Kind: bridge.KindFeed, Source: src, MaxPerHour: 1 << 30,
		Sinks: []bridge.Target{{Account: "me@sink.example", Sink: sink}}}
	if _, err := e.Run(context.Background(), r); err != nil { // the first run records everything
		b.Fatal(err)
	}
	docs := make([][]byte, b.N)
	for i := range docs {
		docs[i] = mirBenchFeed(size, (i+1)*fresh)
	}
	b.ResetTimer()
	for i := range b.N {
		src.doc = docs[i]
		res, err := e.Run(context.Background(), r)
		if err != nil {
			b.Fatal(err)
		}
		if res.Published != fresh {
			b.Fatalf("run %d published %d, want %d", i, res.Published, fresh)
		}
	}
	b.ReportMetric(float64(size*b.N)/b.Elapsed().Seconds(), "items/s")
}
