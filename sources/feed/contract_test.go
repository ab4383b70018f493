package feed_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/sources/feed"
	"github.com/fedi-ferry/ferry/sources/sourcetest"
)

type item struct {
	id, text string
	at       time.Time
}

// publisher is a blog: it serves its feed in one format over HTTP, with an
// ETag (answering If-None-Match with 304) and the caching headers it is
// given, and Post adds an entry the way a blog engine publishes one.
type publisher struct {
	format  string // rss, atom or json
	ttl     int    // RSS <ttl> minutes, 0 for none
	headers http.Header

	mu    sync.Mutex
	items []item
	next  time.Time
}

func (p *publisher) Post(_ context.Context, text string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next = p.next.Add(time.Hour)
	id := fmt.Sprintf("https://blog.example/%d/", len(p.items)+1)
	p.items = append(p.items, item{id: id, text: text, at: p.next})
	return id, nil
}

func (p *publisher) document() (body, ctype string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	switch p.format {
	case "rss":
		b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Blog</title><link>https://blog.example/</link>`)
		if p.ttl > 0 {
			fmt.Fprintf(&b, "<ttl>%d</ttl>", p.ttl)
		}
		for i := len(p.items) - 1; i >= 0; i-- { // newest first, as feeds are written
			it := p.items[i]
			fmt.Fprintf(&b, `<item><title>%s</title><link>%s</link><guid>%s</guid><pubDate>%s</pubDate><description>%s</description></item>`,
				html.EscapeString(it.text), it.id, it.id, it.at.Format(time.RFC1123Z), html.EscapeString("<p>"+it.text+"</p>"))
		}
		b.WriteString(`</channel></rss>`)
		return b.String(), "application/rss+xml"
	case "atom":
		b.WriteString(`<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Blog</title><id>https://blog.example/</id><updated>2026-01-01T00:00:00Z</updated>`)
		for i := len(p.items) - 1; i >= 0; i-- {
			it := p.items[i]
			fmt.Fprintf(&b, `<entry><title>%s</title><id>%s</id><link href="%s"/><published>%s</published><updated>%s</updated><content type="html">%s</content></entry>`,
				html.EscapeString(it.text), it.id, it.id, it.at.Format(time.RFC3339), it.at.Format(time.RFC3339), html.EscapeString("<p>"+it.text+"</p>"))
		}
		b.WriteString(`</feed>`)
		return b.String(), "application/atom+xml"
	default:
		type jsonItem struct {
			ID            string `json:"id"`
			URL           string `json:"url"`
			ContentHTML   string `json:"content_html"`
			DatePublished string `json:"date_published"`
		}
		doc := struct {
			Version string     `json:"version"`
			Title   string     `json:"title"`
			Items   []jsonItem `json:"items"`
		}{Version: "https://jsonfeed.org/version/1.1", Title: "Blog", Items: []jsonItem{}}
		for i := len(p.items) - 1; i >= 0; i-- {
			it := p.items[i]
			doc.Items = append(doc.Items, jsonItem{ID: it.id, URL: it.id, ContentHTML: "<p>" + it.text + "</p>", DatePublished: it.at.Format(time.RFC3339)})
		}
		out, _ := json.Marshal(doc)
		return string(out), "application/feed+json"
	}
}

func (p *publisher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ctype := p.document()
	sum := sha256.Sum256([]byte(body))
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	for k, v := range p.headers {
		w.Header()[k] = v
	}
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", ctype)
	fmt.Fprint(w, body)
}

// The feed source passes the source contract for each format a blog
// serves. A feed is a window (each document holds the newest items), so
// the suite checks that nothing new is skipped and the order holds, and the
// bridge drops repeats by GUID. The publisher's ttl and Cache-Control
// become Page.Wait.
func TestSourceContract(t *testing.T) {
	for _, tc := range []struct {
		name string
		pub  *publisher
		wait time.Duration
	}{
		{"RSSWithTTL", &publisher{format: "rss", ttl: 30}, 30 * time.Minute},
		{"AtomWithMaxAge", &publisher{format: "atom", headers: http.Header{"Cache-Control": {"public, max-age=600"}}}, 10 * time.Minute},
		{"JSONFeedUncached", &publisher{format: "json"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.pub.next = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			srv := httptest.NewServer(tc.pub)
			defer srv.Close()
			src, err := feed.New(feed.Options{URL: srv.URL + "/feed", Client: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			sourcetest.Run(t, src, tc.pub, sourcetest.Options{Window: true, Wait: tc.wait, Batch: 4})
		})
	}
}
