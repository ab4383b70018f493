package bluesky

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/api/bsky"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Bounds of a link card's fetches: a page or image that is larger, or
// slower, makes a post without a card (or a card without its image).
const (
	cardTimeout   = 10 * time.Second
	maxPageBytes  = 1 << 20
	maxThumbFetch = 10 << 20
	// MaxThumbBytes is the largest card image (app.bsky.embed.external's
	// thumb); larger ones are re-encoded to fit.
	MaxThumbBytes = 1_000_000
	maxCardTitle  = 300
	maxCardDesc   = 1000
)

// Card is what a page says about itself in its OpenGraph tags (or its
// <title> and description), for a link card.
type Card struct {
	URL, Title, Description, Image string
}

// firstLink returns the URI of the first link facet, "" for none.
func firstLink(facets []*bsky.RichtextFacet) string {
	for _, f := range facets {
		for _, ft := range f.Features {
			if ft.RichtextFacet_Link != nil {
				return ft.RichtextFacet_Link.Uri
			}
		}
	}
	return ""
}

// card builds the app.bsky.embed.external card of link, or returns nil
// when the page cannot be read within the bounds or says nothing about
// itself. A card whose image cannot be fetched or uploaded goes without it.
func (s *Sink) card(ctx context.Context, link string) *bsky.EmbedExternal {
	ctx, cancel := context.WithTimeout(ctx, cardTimeout)
	defer cancel()
	c, err := s.fetchCard(ctx, link)
	if err != nil {
		s.log.Debug("no link card", "url", link, "err", err)
		return nil
	}
	ext := &bsky.EmbedExternal_External{Uri: c.URL, Title: clipGraphemes(c.Title, maxCardTitle), Description: clipGraphemes(c.Description, maxCardDesc)}
	if c.Image != "" {
		if blob, err := s.thumb(ctx, c.Image); err != nil {
			s.log.Debug("link card without its image", "url", link, "image", c.Image, "err", err)
		} else {
			ext.Thumb = blob
		}
	}
	return &bsky.EmbedExternal{LexiconTypeID: "app.bsky.embed.external", External: ext}
}

// fetchCard reads the page at link (at most maxPageBytes of HTML) and
// parses its card.
func (s *Sink) fetchCard(ctx context.Context, link string) (Card, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return Card{}, err
	}
	req.Header.Set("Accept", "text/html")
	resp, err := s.fetch.Do(req)
	if err != nil {
		return Card{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Card{}, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/html" && mt != "application/xhtml+xml" {
		return Card{}, fmt.Errorf("the page is %q, not HTML", mt)
	}
	c := ParseCard(io.LimitReader(resp.Body, maxPageBytes), resp.Request.URL)
	c.URL = link
	if c.Title == "" && c.Description == "" {
		return Card{}, fmt.Errorf("the page has no title or description")
	}
	return c, nil
}

// ParseCard reads a page's head for its card: og:title (else <title>),
// og:description (else the description meta tag) and og:image, resolved
// against base. It stops at <body>: the tags live in the head.
func ParseCard(r io.Reader, base *url.URL) Card {
	var c Card
	var title, desc string
	z := html.NewTokenizer(r)
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return finishCard(c, title, desc)
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			switch tok.DataAtom {
			case atom.Body:
				return finishCard(c, title, desc)
			case atom.Title:
				if tt == html.StartTagToken && z.Next() == html.TextToken {
					title = strings.TrimSpace(string(z.Text()))
				}
			case atom.Meta:
				var key, content string
				for _, a := range tok.Attr {
					switch strings.ToLower(a.Key) {
					case "property", "name":
						key = strings.ToLower(a.Val)
					case "content":
						content = strings.TrimSpace(a.Val)
					}
				}
				switch key {
				case "og:title":
					c.Title = content
				case "og:description":
					c.Description = content
				case "description":
					desc = content
				case "og:image", "og:image:url", "og:image:secure_url":
					if c.Image == "" {
						if u, err := base.Parse(content); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
							c.Image = u.String()
						}
					}
				}
			}
		}
	}
}

func finishCard(c Card, title, desc string) Card {
	if c.Title == "" {
		c.Title = title
	}
	if c.Description == "" {
		c.Description = desc
	}
	return c
}

// thumb fetches and uploads a card's image, made small enough.
func (s *Sink) thumb(ctx context.Context, src string) (blobRef, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.fetch.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxThumbFetch+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxThumbFetch {
		return nil, fmt.Errorf("larger than %d bytes", maxThumbFetch)
	}
	mt := http.DetectContentType(data)
	if !strings.HasPrefix(mt, "image/") {
		return nil, fmt.Errorf("the image is %s", mt)
	}
	if len(data) > MaxThumbBytes {
		if data, _, _, err = Shrink(data, MaxThumbBytes); err != nil {
			return nil, err
		}
		mt = "image/jpeg"
	}
	return s.c.UploadBlob(ctx, data, mt)
}
