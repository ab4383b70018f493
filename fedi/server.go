package fedi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/fedi-ferry/ferry/post"
)

// ErrNotFediverse is wrapped by Detect's error when the server publishes no
// usable nodeinfo, which every fediverse server does.
var ErrNotFediverse = errors.New("no nodeinfo found: this does not look like a fediverse server")

// Software is what a server says it runs, from its nodeinfo document.
type Software struct {
	Name    string // lower case: "mastodon", "gotosocial", "akkoma", "pleroma", "misskey" …
	Version string
}

// Server is what ferry knows about a server before logging in to it.
type Server struct {
	Base     *url.URL
	Software Software
	Title    string
	Limits   post.Limits
	// LimitsFrom says where Limits came from: "api/v2/instance",
	// "api/v1/instance", or "defaults for <software>".
	LimitsFrom string
	// StreamingURL is the streaming API's base when the server names one.
	StreamingURL string
	// Domain is the domain the server's handles carry (v2 `domain`, v1
	// `uri`), which may differ from Base's host: a server reached at
	// 127.0.0.1:8001 may call itself localhost:8001. "" when not published.
	Domain string
}

// Detect reads the server's nodeinfo (to learn its software and version)
// and its instance document (to learn its limits). It needs no token.
func Detect(ctx context.Context, c *Client) (Server, error) {
	sw, err := NodeInfo(ctx, c)
	if err != nil {
		return Server{}, err
	}
	srv := Server{Base: c.Base(), Software: sw}
	if err := readInstance(ctx, c, &srv); err != nil {
		return Server{}, err
	}
	return srv, nil
}

// NodeInfo fetches /.well-known/nodeinfo and the newest nodeinfo document it
// links to, and returns the software it names.
func NodeInfo(ctx context.Context, c *Client) (Software, error) {
	var wk struct {
		Links []struct {
			Rel  string `json:"rel"`
			Href string `json:"href"`
		} `json:"links"`
	}
	host := c.base.Host
	if _, err := c.Do(ctx, http.MethodGet, "/.well-known/nodeinfo", nil, nil, &wk); err != nil {
		if StatusCode(err) != 0 || errors.Is(err, ErrNotJSON) {
			return Software{}, fmt.Errorf("detect %s: %w (%w)", host, ErrNotFediverse, err)
		}
		return Software{}, fmt.Errorf("detect %s: %w", host, err)
	}
	best, bestVer := "", ""
	for _, l := range wk.Links {
		// rel is http://nodeinfo.diaspora.software/ns/schema/<version>
		i := strings.LastIndex(l.Rel, "/schema/")
		if i < 0 || l.Href == "" {
			continue
		}
		if v := l.Rel[i+len("/schema/"):]; v > bestVer {
			best, bestVer = l.Href, v
		}
	}
	if best == "" {
		return Software{}, fmt.Errorf("detect %s: %w (the nodeinfo index links no schema)", host, ErrNotFediverse)
	}
	ref, err := url.Parse(best)
	if err != nil {
		return Software{}, fmt.Errorf("detect %s: nodeinfo link %q: %w", host, best, err)
	}
	// The document must come from the server itself; a link elsewhere is
	// followed only by path so a hostile index cannot send ferry off-site.
	path := ref.Path
	if ref.RawQuery != "" {
		path += "?" + ref.RawQuery
	}
	var doc struct {
		Software struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"software"`
	}
	if _, err := c.Do(ctx, http.MethodGet, path, nil, nil, &doc); err != nil {
		return Software{}, fmt.Errorf("detect %s: read nodeinfo: %w", host, err)
	}
	if doc.Software.Name == "" {
		return Software{}, fmt.Errorf("detect %s: %w (nodeinfo names no software)", host, ErrNotFediverse)
	}
	sw := Software{Name: strings.ToLower(doc.Software.Name), Version: doc.Software.Version}
	if t, ok := c.http.Transport.(*Transport); ok {
		// The transport's resend rule depends on the software (resend.go).
		t.learnSoftware(sw)
	}
	return sw, nil
}

// instanceV2 holds the parts of /api/v2/instance that ferry reads.
type instanceV2 struct {
	Title         string `json:"title"`
	Domain        string `json:"domain"`
	Configuration struct {
		URLs struct {
			Streaming string `json:"streaming"`
		} `json:"urls"`
		Statuses struct {
			MaxCharacters            int `json:"max_characters"`
			MaxMediaAttachments      int `json:"max_media_attachments"`
			CharactersReservedPerURL int `json:"characters_reserved_per_url"`
		} `json:"statuses"`
		MediaAttachments struct {
			SupportedMIMETypes  []string `json:"supported_mime_types"`
			ImageSizeLimit      int64    `json:"image_size_limit"`
			VideoSizeLimit      int64    `json:"video_size_limit"`
			DescriptionLimit    int      `json:"description_limit"`
			DescriptionMaxChars int      `json:"max_description_characters"` // GoToSocial's name
		} `json:"media_attachments"`
		Polls struct {
			MaxOptions             int `json:"max_options"`
			MaxCharactersPerOption int `json:"max_characters_per_option"`
		} `json:"polls"`
	} `json:"configuration"`
}

// instanceV1 holds the parts of /api/v1/instance that servers without v2
// (Pleroma, Akkoma, older Mastodon) publish.
type instanceV1 struct {
	Title        string `json:"title"`
	URI          string `json:"uri"`            // the domain, sometimes with a scheme (Pleroma)
	MaxTootChars int    `json:"max_toot_chars"` // Pleroma/Akkoma
	URLs         struct {
		StreamingAPI string `json:"streaming_api"`
	} `json:"urls"`
	Configuration *struct {
		Statuses struct {
			MaxCharacters            int `json:"max_characters"`
			MaxMediaAttachments      int `json:"max_media_attachments"`
			CharactersReservedPerURL int `json:"characters_reserved_per_url"`
		} `json:"statuses"`
		MediaAttachments struct {
			SupportedMIMETypes []string `json:"supported_mime_types"`
			ImageSizeLimit     int64    `json:"image_size_limit"`
			VideoSizeLimit     int64    `json:"video_size_limit"`
			DescriptionLimit   int      `json:"description_limit"`
		} `json:"media_attachments"`
		// Polls is published by Mastodon 3.x+, Hollo, snac2 and others
		// that speak only v1; a server allowing 8 options must not be
		// planned for Mastodon's default 4.
		Polls struct {
			MaxOptions             int `json:"max_options"`
			MaxCharactersPerOption int `json:"max_characters_per_option"`
		} `json:"polls"`
	} `json:"configuration"`
}

// readInstance fills srv's title and limits from the instance API, falling
// back to the software's documented defaults for anything not published.
func readInstance(ctx context.Context, c *Client, srv *Server) error {
	var v2 instanceV2
	_, err := c.Do(ctx, http.MethodGet, "/api/v2/instance", nil, nil, &v2)
	switch {
	case err == nil:
		srv.Title = v2.Title
		srv.Domain = cleanDomain(v2.Domain)
		srv.StreamingURL = v2.Configuration.URLs.Streaming
		st, ma, po := v2.Configuration.Statuses, v2.Configuration.MediaAttachments, v2.Configuration.Polls
		srv.Limits = post.Limits{
			MaxChars:        st.MaxCharacters,
			CharsPerURL:     st.CharactersReservedPerURL,
			MaxMedia:        st.MaxMediaAttachments,
			MediaTypes:      ma.SupportedMIMETypes,
			MaxPollOptions:  po.MaxOptions,
			MaxPollOptChars: po.MaxCharactersPerOption,
			MaxImageBytes:   ma.ImageSizeLimit,
			MaxVideoBytes:   ma.VideoSizeLimit,
			MaxAltChars:     max(ma.DescriptionLimit, ma.DescriptionMaxChars),
		}
		srv.LimitsFrom = "api/v2/instance"
	case IsNotFound(err) || StatusCode(err) == http.StatusGone:
		var v1 instanceV1
		if _, err := c.Do(ctx, http.MethodGet, "/api/v1/instance", nil, nil, &v1); err != nil {
			return fmt.Errorf("read instance information of %s: %w", c.base.Host, err)
		}
		srv.Title = v1.Title
		srv.Domain = cleanDomain(v1.URI)
		srv.StreamingURL = v1.URLs.StreamingAPI
		srv.Limits.MaxChars = v1.MaxTootChars
		if cfg := v1.Configuration; cfg != nil {
			srv.Limits.MaxChars = max(srv.Limits.MaxChars, cfg.Statuses.MaxCharacters)
			srv.Limits.MaxMedia = cfg.Statuses.MaxMediaAttachments
			srv.Limits.CharsPerURL = cfg.Statuses.CharactersReservedPerURL
			srv.Limits.MediaTypes = cfg.MediaAttachments.SupportedMIMETypes
			srv.Limits.MaxImageBytes = cfg.MediaAttachments.ImageSizeLimit
			srv.Limits.MaxVideoBytes = cfg.MediaAttachments.VideoSizeLimit
			srv.Limits.MaxAltChars = cfg.MediaAttachments.DescriptionLimit
			srv.Limits.MaxPollOptions = cfg.Polls.MaxOptions
			srv.Limits.MaxPollOptChars = cfg.Polls.MaxCharactersPerOption
		}
		srv.LimitsFrom = "api/v1/instance"
	default:
		return fmt.Errorf("read instance information of %s: %w", c.base.Host, err)
	}
	if srv.Software.Name == "gotosocial" {
		// GoToSocial advertises characters_reserved_per_url but counts every
		// URL at its full length when it checks a post (v0.19.2's status
		// validation); plan as it counts, or split posts get refused.
		srv.Limits.CharsPerURL = 0
	}
	def := DefaultLimits(srv.Software.Name)
	filled := false
	fill := func(v *int, d int) {
		if *v <= 0 && d > 0 {
			*v, filled = d, true
		}
	}
	fill(&srv.Limits.MaxChars, def.MaxChars)
	fill(&srv.Limits.MaxMedia, def.MaxMedia)
	if srv.Software.Name != "gotosocial" {
		fill(&srv.Limits.CharsPerURL, def.CharsPerURL)
	}
	fill(&srv.Limits.MaxPollOptions, def.MaxPollOptions)
	if filled {
		srv.LimitsFrom += " + defaults for " + orUnknown(srv.Software.Name)
	}
	return nil
}

// DefaultLimits are the limits each server software ships with, for servers
// that do not publish theirs. Unknown software gets Mastodon's, the most
// conservative of the common ones.
func DefaultLimits(software string) post.Limits {
	switch software {
	case "gotosocial":
		return post.Limits{MaxChars: 5000, MaxMedia: 6, MaxPollOptions: 6}
	case "pleroma", "akkoma":
		return post.Limits{MaxChars: 5000, MaxMedia: 10, MaxPollOptions: 20}
	case "misskey", "sharkey", "firefish", "iceshrimp":
		return post.Limits{MaxChars: 3000, MaxMedia: 16, MaxPollOptions: 10}
	default:
		return post.Limits{MaxChars: 500, CharsPerURL: 23, MaxMedia: 4, MaxPollOptions: 4}
	}
}

// cleanDomain turns an instance's `domain` or `uri` into a bare host[:port]:
// Pleroma and Akkoma publish `uri` with a scheme.
func cleanDomain(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	return strings.ToLower(strings.TrimRight(s, "/"))
}

// AccountDomain returns the domain in the handles of the server c talks to,
// as the server itself names it: the instance document's `domain` (v2) or
// `uri` (v1), else the subject of a WebFinger lookup of username, else the
// host ferry reaches it at. A handle built from the login address instead
// (alice@127.0.0.1:8001 for a server called localhost:8001) names nobody
// other servers know, and a Move or alias to it fails.
func AccountDomain(ctx context.Context, c *Client, username string) string {
	var v2 instanceV2
	if _, err := c.Do(ctx, http.MethodGet, "/api/v2/instance", nil, nil, &v2); err == nil && cleanDomain(v2.Domain) != "" {
		return cleanDomain(v2.Domain)
	}
	var v1 instanceV1
	if _, err := c.Do(ctx, http.MethodGet, "/api/v1/instance", nil, nil, &v1); err == nil && cleanDomain(v1.URI) != "" {
		return cleanDomain(v1.URI)
	}
	if username != "" {
		var wf struct {
			Subject string `json:"subject"`
		}
		q := url.Values{"resource": {"acct:" + username + "@" + c.base.Host}}
		if _, err := c.Do(ctx, http.MethodGet, "/.well-known/webfinger", q, nil, &wf); err == nil {
			subject := strings.TrimPrefix(wf.Subject, "acct:")
			if u, d, ok := strings.Cut(subject, "@"); ok && strings.EqualFold(u, username) && d != "" {
				return strings.ToLower(d)
			}
		}
	}
	return c.base.Host
}
