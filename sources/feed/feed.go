// Package feed is the source for RSS 2.0, Atom and JSON Feed documents.
//
// It fetches with its own HTTP client so that it can send conditional
// requests (If-None-Match, If-Modified-Since: a 304 costs the publisher
// nothing) and honour Retry-After, then hands the body to gofeed's parser.
// The cursor it returns is the validators of the last response; Fetch
// always returns the whole feed, oldest item first, and the bridge decides
// what is new by GUID, canonical link and content hash. Each page says how
// long the publisher asked to be left alone (Page.Wait: the RSS <ttl>, the
// response's Cache-Control max-age, a Retry-After), so a feed that is
// polled every minute is still fetched only as often as it allows.
package feed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mmcdole/gofeed"
	"github.com/mmcdole/gofeed/rss"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sources"
)

// Options configure a Source.
type Options struct {
	// URL is the feed's address (http or https).
	URL string
	// Client fetches the feed; nil means a client with a 60 s timeout.
	Client *http.Client
	// UserAgent is sent with every request.
	UserAgent string
	// MaxBytes bounds a feed document; 0 means 10 MiB.
	MaxBytes int64
}

// Source reads one feed. It holds no state between calls and is safe for
// concurrent use.
type Source struct {
	url   string
	hc    *http.Client
	ua    string
	limit int64
}

// New returns a Source for o.URL, or an error if the URL is not an http or
// https URL.
func New(o Options) (*Source, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("feed url %q: want an http or https URL", o.URL)
	}
	s := &Source{url: u.String(), hc: o.Client, ua: o.UserAgent, limit: o.MaxBytes}
	if s.hc == nil {
		s.hc = &http.Client{Timeout: 60 * time.Second}
	}
	if s.limit <= 0 {
		s.limit = 10 << 20
	}
	return s, nil
}

// cursor is what Fetch remembers between calls: the validators of the
// last full response.
type cursor struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

func parseCursor(s string) cursor {
	var c cursor
	if s != "" {
		_ = json.Unmarshal([]byte(s), &c) // a cursor we cannot read just means a full fetch
	}
	return c
}

func (c cursor) String() string {
	if c.ETag == "" && c.LastModified == "" {
		return ""
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// RetryError reports that the feed's server asked to be left alone for a
// while (429 or 503, with or without Retry-After).
type RetryError struct {
	URL    string
	Status int
	Wait   time.Duration // from Retry-After; 0 if the server gave none
}

func (e *RetryError) Error() string {
	if e.Wait > 0 {
		return fmt.Sprintf("feed %s: HTTP %d, retry after %s", e.URL, e.Status, e.Wait)
	}
	return fmt.Sprintf("feed %s: HTTP %d", e.URL, e.Status)
}

// StatusError reports an answer other than 200, 304, 429 and 503.
type StatusError struct {
	URL    string
	Status int
}

func (e *StatusError) Error() string { return fmt.Sprintf("feed %s: HTTP %d", e.URL, e.Status) }

// Permanent reports whether asking again will fail the same way: the
// server refused the request itself (4xx other than 408), as opposed to
// failing for now (5xx).
func (e *StatusError) Permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout
}

// RetryAfter is how long to wait before asking again.
func (e *RetryError) RetryAfter() time.Duration { return e.Wait }

// Fetch returns every item of the feed, oldest first. When the feed has
// not changed since cursor (HTTP 304), the page is empty and Next is
// cursor. A response with no items is treated as "no data" (its cursor is
// not kept), since a feed that suddenly empties is far more often a
// publishing glitch than the truth.
func (s *Source) Fetch(ctx context.Context, cur string) (sources.Page, error) {
	c := parseCursor(cur)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return sources.Page{}, fmt.Errorf("feed %s: %w", s.url, err)
	}
	req.Header.Set("Accept", "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5")
	if s.ua != "" {
		req.Header.Set("User-Agent", s.ua)
	}
	if c.ETag != "" {
		req.Header.Set("If-None-Match", c.ETag)
	}
	if c.LastModified != "" {
		req.Header.Set("If-Modified-Since", c.LastModified)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return sources.Page{}, fmt.Errorf("feed %s: %w", s.url, err)
	}
	defer resp.Body.Close()
	now := time.Now()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return sources.Page{Next: cur, Wait: waitFor(resp.Header, 0, now)}, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return sources.Page{}, &RetryError{URL: s.url, Status: resp.StatusCode, Wait: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	case resp.StatusCode != http.StatusOK:
		return sources.Page{}, &StatusError{URL: s.url, Status: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.limit+1))
	if err != nil {
		return sources.Page{}, fmt.Errorf("feed %s: %w", s.url, err)
	}
	if int64(len(body)) > s.limit {
		return sources.Page{}, fmt.Errorf("feed %s: larger than %d bytes", s.url, s.limit)
	}
	posts, ttl, err := parse(strings.NewReader(string(body)), s.url)
	if err != nil {
		return sources.Page{}, fmt.Errorf("feed %s: %w", s.url, err)
	}
	wait := waitFor(resp.Header, ttl, now)
	if len(posts) == 0 {
		return sources.Page{Next: cur, Wait: wait}, nil
	}
	next := cursor{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	return sources.Page{Posts: posts, Next: next.String(), Wait: wait}, nil
}

// maxWait bounds what a feed may ask: a typo'd ttl of a year must not
// silence a route for good.
const maxWait = 24 * time.Hour

// waitFor is how long the publisher asked not to be fetched again: the
// longest of the feed's ttl, the response's freshness (Cache-Control
// max-age less Age; none under no-cache or no-store, which ask to
// revalidate, as ferry's conditional request does) and Retry-After;
// capped at maxWait.
func waitFor(h http.Header, ttl time.Duration, now time.Time) time.Duration {
	w := max(ttl, retryAfter(h.Get("Retry-After"), now))
	fresh := time.Duration(0)
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(name) {
		case "no-cache", "no-store":
			fresh = -1
		case "max-age":
			if n, err := strconv.Atoi(strings.Trim(val, `"`)); err == nil && n > 0 && fresh >= 0 {
				fresh = time.Duration(n) * time.Second
			}
		}
	}
	if fresh > 0 {
		if age, err := strconv.Atoi(strings.TrimSpace(h.Get("Age"))); err == nil && age > 0 {
			fresh -= time.Duration(age) * time.Second
		}
		w = max(w, fresh)
	}
	return min(w, maxWait)
}

// retryAfter reads a Retry-After header (seconds or an HTTP date).
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Parse reads a feed document (RSS, Atom or JSON Feed; detected) and
// returns its items as posts, oldest first. base resolves relative links.
func Parse(r io.Reader, base string) ([]post.Post, error) {
	posts, _, err := parse(r, base)
	return posts, err
}

// ttlTranslator is gofeed's RSS translation, keeping the channel's <ttl>
// (minutes), which the generic feed drops.
type ttlTranslator struct {
	gofeed.DefaultRSSTranslator
	ttl time.Duration
}

func (t *ttlTranslator) Translate(feed any) (*gofeed.Feed, error) {
	if f, ok := feed.(*rss.Feed); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(f.TTL)); err == nil && n > 0 {
			t.ttl = time.Duration(n) * time.Minute
		}
	}
	return t.DefaultRSSTranslator.Translate(feed)
}

// parse is Parse that also returns the RSS ttl (0 for none, and for Atom
// and JSON Feed, which have no such field).
func parse(r io.Reader, base string) ([]post.Post, time.Duration, error) {
	tr := &ttlTranslator{}
	p := gofeed.NewParser()
	p.RSSTranslator = tr
	f, err := p.Parse(r)
	if err != nil {
		return nil, 0, fmt.Errorf("parse: %w", err)
	}
	baseURL, _ := url.Parse(base)
	if f.Link != "" {
		if u, err := url.Parse(f.Link); err == nil && u.IsAbs() {
			baseURL = u
		}
	}
	type dated struct {
		p   post.Post
		idx int
	}
	items := make([]dated, 0, len(f.Items))
	for i, it := range f.Items {
		if it == nil {
			continue
		}
		items = append(items, dated{p: convert(f, it, baseURL), idx: i})
	}
	// Oldest first. Items without a date keep the feed's order, which is
	// newest first by convention, reversed.
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if !a.p.CreatedAt.IsZero() && !b.p.CreatedAt.IsZero() && !a.p.CreatedAt.Equal(b.p.CreatedAt) {
			return a.p.CreatedAt.Before(b.p.CreatedAt)
		}
		return a.idx > b.idx
	})
	out := make([]post.Post, len(items))
	for i, d := range items {
		out[i] = d.p
	}
	return out, tr.ttl, nil
}

// convert maps one feed item to a post.
func convert(f *gofeed.Feed, it *gofeed.Item, base *url.URL) post.Post {
	p := post.Post{
		Title:    strings.TrimSpace(html.UnescapeString(it.Title)), // titles are text; gofeed decoded the XML
		URL:      resolve(base, it.Link),
		Language: f.Language,
		Author:   post.Author{Acct: f.Title},
	}
	if len(it.Authors) > 0 && it.Authors[0] != nil && it.Authors[0].Name != "" {
		p.Author.DisplayName = it.Authors[0].Name
	}
	p.HTML = it.Content
	if p.HTML == "" {
		p.HTML = it.Description
	}
	p.Text = fedi.HTMLText(p.HTML, nil)
	switch {
	case it.PublishedParsed != nil:
		p.CreatedAt = it.PublishedParsed.UTC()
		if it.UpdatedParsed != nil && it.UpdatedParsed.After(*it.PublishedParsed) {
			p.EditedAt = it.UpdatedParsed.UTC()
		}
	case it.UpdatedParsed != nil:
		p.CreatedAt = it.UpdatedParsed.UTC()
	}
	for _, c := range it.Categories {
		for _, t := range strings.Split(c, ",") {
			if t = strings.TrimSpace(t); t != "" {
				p.Tags = append(p.Tags, t)
			}
		}
	}
	for _, e := range it.Enclosures {
		if e == nil || e.URL == "" {
			continue
		}
		if t := strings.ToLower(e.Type); strings.HasPrefix(t, "image/") || strings.HasPrefix(t, "video/") || strings.HasPrefix(t, "audio/") || t == "" {
			p.Media = append(p.Media, post.Media{URL: resolve(base, e.URL), MIMEType: t})
		}
	}
	if it.Image != nil && it.Image.URL != "" && len(p.Media) == 0 {
		p.Media = append(p.Media, post.Media{URL: resolve(base, it.Image.URL), Description: it.Image.Title})
	}
	p.OriginID = strings.TrimSpace(it.GUID)
	if p.OriginID == "" {
		p.OriginID = p.URL
	}
	if p.OriginID == "" {
		h := sha256.Sum256([]byte(p.Title + "\x00" + p.Text + "\x00" + it.Published))
		p.OriginID = "sha256:" + hex.EncodeToString(h[:16])
	}
	return p
}

func resolve(base *url.URL, ref string) string {
	ref = strings.TrimSpace(ref)
	if ref == "" || base == nil {
		return ref
	}
	u, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	return base.ResolveReference(u).String()
}

var _ sources.Source = (*Source)(nil)
