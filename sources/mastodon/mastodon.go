// Package mastodon is the source for an account's own posts on a server
// that speaks the Mastodon client API (Mastodon, GoToSocial, Akkoma,
// Pleroma). It reads the account's statuses page by page (the cursor is
// the newest status ID handled), can say whether a status still exists
// (to confirm deletes), and streams new, edited and deleted posts through
// the streaming API.
package mastodon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sources"
)

// Options configure a Source.
type Options struct {
	// Client is the account's API client.
	Client *fedi.Client
	// AccountID is the account's ID on its server; "" means ask the
	// server (verify_credentials) on first use.
	AccountID string
	// PageSize is how many statuses one request reads; 0 means 40, the
	// API's maximum.
	PageSize int
	// StreamingURL is the streaming API's base when the server names one
	// (fedi.Server.StreamingURL); "" means the API host.
	StreamingURL string
	// Logger receives debug lines; nil discards.
	Logger *slog.Logger
}

// Source reads one account's own posts. It is safe for concurrent use.
type Source struct {
	c         *fedi.Client
	pageSize  int
	streamURL string
	log       *slog.Logger

	mu   sync.Mutex
	self string
}

// New returns a Source for the account behind o.Client.
func New(o Options) *Source {
	s := &Source{c: o.Client, pageSize: o.PageSize, streamURL: o.StreamingURL, log: o.Logger, self: o.AccountID}
	if s.pageSize <= 0 || s.pageSize > 40 {
		s.pageSize = 40
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

func (s *Source) accountID(ctx context.Context) (string, error) {
	s.mu.Lock()
	id := s.self
	s.mu.Unlock()
	if id != "" {
		return id, nil
	}
	me, err := fedi.VerifyCredentials(ctx, s.c)
	if err != nil {
		return "", fmt.Errorf("source account on %s: %w", s.c.Base().Host, err)
	}
	s.mu.Lock()
	s.self = me.ID
	s.mu.Unlock()
	return me.ID, nil
}

// Fetch returns the account's statuses after cursor (a status ID), oldest
// first; an empty cursor returns the newest page. Next is the newest ID
// returned (or cursor when there is nothing new); More reports a full
// page, after which more may follow.
func (s *Source) Fetch(ctx context.Context, cursor string) (sources.Page, error) {
	id, err := s.accountID(ctx)
	if err != nil {
		return sources.Page{}, err
	}
	q := url.Values{"limit": {fmt.Sprint(s.pageSize)}}
	if cursor != "" {
		q.Set("min_id", cursor)
	}
	sts, _, err := fedi.StatusPage(ctx, s.c, "/api/v1/accounts/"+url.PathEscape(id)+"/statuses", q)
	if err != nil {
		return sources.Page{}, fmt.Errorf("source account on %s: %w", s.c.Base().Host, err)
	}
	page := sources.Page{Next: cursor, More: cursor != "" && len(sts) >= s.pageSize}
	for _, st := range oldestFirst(sts) {
		if st.Account.ID != "" && st.Account.ID != id {
			continue
		}
		page.Posts = append(page.Posts, s.convert(st))
		if cursor == "" || idLess(page.Next, st.ID) {
			page.Next = st.ID
		}
	}
	return page, nil
}

// oldestFirst orders a page of statuses (which servers answer newest
// first, Mastodon even for min_id pages) by created_at, ties in the
// reverse of the server's order, and then moves a post replied to in the
// same page before its replies. IDs do not order posts on every server:
// snac2's ID embeds the second of the last change, so posts of one second
// sort by a hash and an edited post gets a newer ID.
func oldestFirst(sts []fedi.Status) []fedi.Status {
	ordered := slices.Clone(sts)
	slices.Reverse(ordered)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].CreatedAt.Before(ordered[j].CreatedAt) })
	byID := make(map[string]fedi.Status, len(ordered))
	for _, st := range ordered {
		byID[st.ID] = st
	}
	out := make([]fedi.Status, 0, len(ordered))
	placed := make(map[string]bool, len(ordered))
	var place func(st fedi.Status, depth int)
	place = func(st fedi.Status, depth int) {
		if placed[st.ID] {
			return
		}
		placed[st.ID] = true // before the parent: a reply cycle cannot recurse forever
		if p, ok := byID[st.InReplyToID]; ok && depth < len(ordered) {
			place(p, depth+1)
		}
		out = append(out, st)
	}
	for _, st := range ordered {
		place(st, 0)
	}
	return out
}

// idLess orders status IDs: numerically when both are numbers of
// different lengths (Mastodon), else as strings (ULIDs, equal lengths).
func idLess(a, b string) bool {
	if len(a) != len(b) && isDigits(a) && isDigits(b) {
		return len(a) < len(b)
	}
	return a < b
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// Exists reports whether the status id still exists (false on 404).
func (s *Source) Exists(ctx context.Context, id string) (bool, error) {
	_, err := s.c.Do(ctx, http.MethodGet, "/api/v1/statuses/"+url.PathEscape(id), nil, nil, nil)
	switch {
	case err == nil:
		return true, nil
	case fedi.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("check status %s on %s: %w", id, s.c.Base().Host, err)
}

// ExistsURI reports whether a status with the ActivityPub URI uri exists
// on the server (bridge.URIVerifier): on a server that changes a status's
// ID on edit (snac2), the old ID answers 404 while the status, found by
// its URI, is there. It searches without resolve, since the account's own
// posts are local to its server. Any failure, a missing search API
// included, is an error ("do not know"), never a "no".
func (s *Source) ExistsURI(ctx context.Context, uri string) (bool, error) {
	var res struct {
		Statuses []fedi.StatusRef `json:"statuses"`
	}
	q := url.Values{"q": {uri}, "resolve": {"false"}, "type": {"statuses"}, "limit": {"5"}}
	if _, err := s.c.Do(ctx, http.MethodGet, "/api/v2/search", q, nil, &res); err != nil {
		return false, fmt.Errorf("look up status %s on %s: %w", uri, s.c.Base().Host, err)
	}
	for _, st := range res.Statuses {
		if st.URI == uri {
			return true, nil
		}
	}
	return false, nil
}

// Stream pushes the account's new, edited and deleted posts from the
// user stream until ctx ends or the stream fails. Posts by others (the
// user stream carries the home timeline) are dropped; a delete event
// carries only an ID, and the receiver ignores IDs it never mirrored.
func (s *Source) Stream(ctx context.Context, events chan<- sources.Event) error {
	id, err := s.accountID(ctx)
	if err != nil {
		return err
	}
	err = s.c.Stream(ctx, "user", s.streamURL, func(ev fedi.StreamEvent) {
		var out sources.Event
		switch ev.Event {
		case "update", "status.update":
			if ev.Status == nil || ev.Status.Account.ID != id {
				return
			}
			out = sources.Event{Kind: sources.Created, Post: s.convert(*ev.Status)}
			if ev.Event == "status.update" {
				out.Kind = sources.Edited
			}
		case "delete":
			if ev.ID == "" {
				return
			}
			out = sources.Event{Kind: sources.Deleted, Post: post.Post{OriginID: ev.ID, Deleted: true}}
		default:
			return
		}
		select {
		case events <- out:
		case <-ctx.Done():
		}
	})
	if errors.Is(err, fedi.ErrNoStreaming) {
		// Advertised but absent (snac2, Hollo): say so in the terms of
		// every source, so that the caller polls instead.
		return fmt.Errorf("%w: %w", sources.ErrNoStreaming, err)
	}
	return err
}

// convert maps a status to a post. Text is the source text when the
// server returns it, else the HTML rendered as text with mentions written
// in full (@user@host).
func (s *Source) convert(st fedi.Status) post.Post {
	host := s.c.Base().Host
	full := func(acct string) string {
		if acct != "" && !strings.Contains(acct, "@") {
			return acct + "@" + host
		}
		return acct
	}
	p := post.Post{
		OriginID:   st.ID,
		URI:        st.URI,
		URL:        st.URL,
		Author:     post.Author{Acct: full(st.Account.Acct), DisplayName: st.Account.DisplayName, URI: st.Account.URI},
		CreatedAt:  st.CreatedAt,
		Summary:    st.SpoilerText,
		Sensitive:  st.Sensitive,
		Visibility: post.Visibility(st.Visibility),
		Language:   st.Language,
		HTML:       st.Content,
		InReplyTo:  st.InReplyToID,
	}
	if st.EditedAt != nil {
		p.EditedAt = *st.EditedAt
	}
	if st.Reblog != nil {
		p.BoostOf = st.Reblog.URI
		p.URL = st.Reblog.URL
		p.HTML = ""
		return p
	}
	mentions := map[string]string{}
	for _, m := range st.Mentions {
		p.Mentions = append(p.Mentions, post.Mention{Acct: full(m.Acct), URL: m.URL})
		mentions[m.URL] = full(m.Acct)
	}
	p.Text = qualifyMentions(st.Text, st.Mentions, host)
	if p.Text == "" {
		p.Text = fedi.HTMLText(st.Content, mentions)
	}
	for _, t := range st.Tags {
		p.Tags = append(p.Tags, t.Name)
	}
	for _, a := range st.MediaAttachments {
		m := post.Media{URL: a.URL, Description: a.Description, Blurhash: a.Blurhash}
		if a.Meta.Focus != nil {
			m.FocusX, m.FocusY = a.Meta.Focus.X, a.Meta.Focus.Y
		}
		p.Media = append(p.Media, m)
	}
	if st.Poll != nil && len(st.Poll.Options) > 0 {
		pl := &post.Poll{Multiple: st.Poll.Multiple}
		if st.Poll.ExpiresAt != nil {
			pl.ExpiresAt = *st.Poll.ExpiresAt
		}
		for _, o := range st.Poll.Options {
			pl.Options = append(pl.Options, o.Title)
		}
		p.Poll = pl
	}
	return p
}

// qualifyMentions writes the local mentions of a status's source text
// ("@alice", which the author's server resolves to its own user) in full
// ("@alice@host"): on any other server "@alice" would name someone else.
func qualifyMentions(text string, ms []fedi.Mention, host string) string {
	for _, m := range ms {
		if m.Username == "" || strings.Contains(m.Acct, "@") {
			continue
		}
		needle := "@" + m.Username
		var b strings.Builder
		rest := text
		for {
			i := strings.Index(rest, needle)
			if i < 0 {
				b.WriteString(rest)
				break
			}
			end := i + len(needle)
			before := byte(' ')
			if i > 0 {
				before = rest[i-1]
			}
			after := byte(' ')
			if end < len(rest) {
				after = rest[end]
			}
			// "@bob." ends a sentence; "@bob.example" is another name.
			dotName := after == '.' && end+1 < len(rest) && isWordByte(rest[end+1])
			b.WriteString(rest[:end])
			if !isWordByte(before) && before != '@' && after != '@' && !isWordByte(after) && !dotName {
				b.WriteString("@" + host)
			}
			rest = rest[end:]
		}
		text = b.String()
	}
	return text
}

func isWordByte(c byte) bool {
	return c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

var (
	_ sources.Source   = (*Source)(nil)
	_ sources.Streamer = (*Source)(nil)
)
