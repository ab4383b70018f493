// Package mastodon is the sink for accounts on servers that speak the
// Mastodon client API: Mastodon, GoToSocial, Akkoma, Pleroma.
package mastodon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/textfit"
)

// Options configure a Sink.
type Options struct {
	// Client is the destination account's API client.
	Client *fedi.Client
	// Fetch downloads media given by URL; nil means Client.HTTP().
	Fetch *http.Client
	// MaxMediaBytes bounds one downloaded media file; 0 means 100 MiB.
	MaxMediaBytes int64
	// Logger receives debug lines; nil discards.
	Logger *slog.Logger
}

// Sink publishes to one account. It is safe for concurrent use.
type Sink struct {
	c        *fedi.Client
	fetch    *http.Client
	maxMedia int64
	log      *slog.Logger

	mu     sync.Mutex
	server *fedi.Server // detected on first need
	selfID string
}

// New returns a Sink for the account behind o.Client.
func New(o Options) *Sink {
	s := &Sink{c: o.Client, fetch: o.Fetch, maxMedia: o.MaxMediaBytes, log: o.Logger}
	if s.fetch == nil {
		s.fetch = o.Client.HTTP()
	}
	if s.maxMedia <= 0 {
		s.maxMedia = 100 << 20
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// detect learns (once) what the server runs and accepts.
func (s *Sink) detect(ctx context.Context) (fedi.Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.server != nil {
		return *s.server, nil
	}
	srv, err := fedi.Detect(ctx, s.c)
	if err != nil {
		return fedi.Server{}, err
	}
	s.server = &srv
	return srv, nil
}

// Limits returns the server's limits (see fedi.Detect).
func (s *Sink) Limits(ctx context.Context) (post.Limits, error) {
	srv, err := s.detect(ctx)
	return srv.Limits, err
}

// CanBackdate reports whether the server creates posts with a past
// scheduled_at as backdated, quiet posts: GoToSocial since 0.18 ("backfill":
// no federation push, no notifications). Mastodon refuses past dates.
func (s *Sink) CanBackdate(ctx context.Context) (bool, error) {
	srv, err := s.detect(ctx)
	if err != nil {
		return false, err
	}
	return srv.Software.Name == "gotosocial" && versionAtLeast(srv.Software.Version, 0, 18), nil
}

// versionAtLeast compares the leading major.minor of a version string.
func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// statusRequest is the JSON body of POST /api/v1/statuses and PUT
// /api/v1/statuses/:id (docs: methods/statuses.md).
type statusRequest struct {
	Status      string       `json:"status"`
	MediaIDs    []string     `json:"media_ids,omitempty"`
	InReplyToID string       `json:"in_reply_to_id,omitempty"`
	Sensitive   bool         `json:"sensitive"`
	SpoilerText string       `json:"spoiler_text"`
	Visibility  string       `json:"visibility,omitempty"`
	Language    string       `json:"language,omitempty"`
	ScheduledAt string       `json:"scheduled_at,omitempty"`
	Poll        *pollRequest `json:"poll,omitempty"`
}

type pollRequest struct {
	Options   []string `json:"options"`
	ExpiresIn int      `json:"expires_in"`
	Multiple  bool     `json:"multiple"`
}

// Publish uploads the draft's media (with alt text and focus) and creates
// the post, sending d.Key as Idempotency-Key to servers that honour it. A
// failure that leaves unknown whether the post was made is
// fedi.IsAmbiguous: look for it with Find before publishing again.
func (s *Sink) Publish(ctx context.Context, d sinks.Draft) (post.Ref, error) {
	req := statusRequest{
		Status:      d.Post.Text,
		InReplyToID: d.ReplyTo,
		Sensitive:   d.Post.Sensitive,
		SpoilerText: d.Post.Summary,
		Visibility:  string(d.Post.Visibility),
		Language:    d.Post.Language,
	}
	if !d.PublishedAt.IsZero() {
		ok, err := s.CanBackdate(ctx)
		if err != nil {
			return post.Ref{}, err
		}
		if !ok {
			return post.Ref{}, &sinks.PermanentError{Err: sinks.ErrNoBackdate}
		}
		req.ScheduledAt = d.PublishedAt.UTC().Format(time.RFC3339)
	}
	if p := d.Post.Poll; p != nil && len(p.Options) > 0 {
		expires := int(time.Until(p.ExpiresAt).Seconds())
		if p.ExpiresAt.IsZero() || expires < 300 {
			expires = 24 * 3600 // servers require a future expiry; a day is Mastodon's default
		}
		req.Poll = &pollRequest{Options: p.Options, ExpiresIn: expires, Multiple: p.Multiple}
	}
	var links []string
	for i, m := range d.Post.Media {
		id, err := s.upload(ctx, m)
		var refused *sinks.MediaRefusal
		if errors.As(err, &refused) || err != nil && sinks.IsPermanent(err) && !fedi.IsUnauthorized(err) {
			// A file that cannot be read, or that the server will not
			// take: the post goes with its address instead.
			s.log.Warn("posting a file as a link: it cannot be attached", "media", m.Source(), "n", i+1, "err", err)
			links = sinks.AppendLink(links, m)
			continue
		}
		if err != nil {
			return post.Ref{}, fmt.Errorf("publish %s: media %d of %d: %w", d.Key, i+1, len(d.Post.Media), err)
		}
		req.MediaIDs = append(req.MediaIDs, id)
	}
	if len(links) > 0 {
		lim, err := s.Limits(ctx)
		if err != nil {
			return post.Ref{}, fmt.Errorf("publish %s: %w", d.Key, err)
		}
		req.Status = textfit.ForLimits(lim).WithLinks(req.Status, links, lim.MaxChars)
	}
	if req.Status == "" && len(req.MediaIDs) == 0 && req.Poll == nil {
		return post.Ref{}, &sinks.PermanentError{Err: errors.New("the post has no text, no file that could be attached and no poll")}
	}
	if d.Key != "" {
		// Detection tells the transport whether this server honours
		// idempotency keys; only then is the key sent, and only then may
		// a write whose answer was lost be sent again (fedi/resend.go).
		// Elsewhere such a failure is fedi.IsAmbiguous and the caller
		// reconciles through Find.
		if _, err := s.detect(ctx); err != nil {
			return post.Ref{}, fmt.Errorf("publish %s: %w", d.Key, err)
		}
		ctx = fedi.WithIdempotencyKey(ctx, d.Key)
	}
	var st fedi.Status
	if _, err := s.c.Do(ctx, http.MethodPost, "/api/v1/statuses", nil, req, &st); err != nil {
		return post.Ref{}, fmt.Errorf("publish %s: %w", d.Key, err)
	}
	if st.ID == "" {
		return post.Ref{}, fmt.Errorf("publish %s: the server returned no post id", d.Key)
	}
	return post.Ref{ID: st.ID, URL: st.URL}, nil
}

// Edit replaces the post's text, content warning, sensitivity and language.
// The post's media are sent back unchanged: servers drop attachments that an
// edit does not list.
func (s *Sink) Edit(ctx context.Context, id string, d sinks.Draft) error {
	var cur fedi.Status
	if _, err := s.c.Do(ctx, http.MethodGet, "/api/v1/statuses/"+url.PathEscape(id), nil, nil, &cur); err != nil {
		return fmt.Errorf("edit %s: read the current post: %w", id, err)
	}
	req := statusRequest{
		Status:      d.Post.Text,
		Sensitive:   d.Post.Sensitive,
		SpoilerText: d.Post.Summary,
		Language:    d.Post.Language,
	}
	for _, m := range cur.MediaAttachments {
		req.MediaIDs = append(req.MediaIDs, m.ID)
	}
	if _, err := s.c.Do(ctx, http.MethodPut, "/api/v1/statuses/"+url.PathEscape(id), nil, req, nil); err != nil {
		return fmt.Errorf("edit %s: %w", id, err)
	}
	return nil
}

// Delete removes the post; a post already gone is not an error.
func (s *Sink) Delete(ctx context.Context, id string) error {
	_, err := s.c.Do(ctx, http.MethodDelete, "/api/v1/statuses/"+url.PathEscape(id), nil, nil, nil)
	if err != nil && !fedi.IsNotFound(err) {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	return nil
}

// Find looks through the account's newest posts (up to 80) for one that
// matches d: same parent, same content warning and the same text once both
// are normalised (servers turn plain text into HTML with links).
func (s *Sink) Find(ctx context.Context, d sinks.Draft, since time.Time) (post.Ref, bool, error) {
	self, err := s.self(ctx)
	if err != nil {
		return post.Ref{}, false, err
	}
	want := normalize(d.Post.Text)
	path := "/api/v1/accounts/" + url.PathEscape(self) + "/statuses"
	q := url.Values{"limit": {"40"}}
	if !d.PublishedAt.IsZero() {
		// A backdated copy sorts among the posts of its original date, not
		// among the newest. GoToSocial's IDs are ULIDs, whose first ten
		// characters are the creation time, so min_id can start the scan
		// just before that date.
		q.Set("min_id", ulidPrefix(d.PublishedAt.Add(-time.Second))+"0000000000000000")
	}
	for page := 0; page < 2 && path != ""; page++ {
		sts, next, err := fedi.StatusPage(ctx, s.c, path, q)
		if err != nil {
			return post.Ref{}, false, fmt.Errorf("look for an earlier copy of %s: %w", d.Key, err)
		}
		for _, st := range sts {
			if !d.PublishedAt.IsZero() {
				if !st.CreatedAt.Equal(d.PublishedAt.UTC().Truncate(time.Second)) && !st.CreatedAt.Equal(d.PublishedAt) {
					continue
				}
			} else if st.CreatedAt.Before(since.Add(-time.Minute)) {
				return post.Ref{}, false, nil // newest first: nothing older can match
			}
			if st.InReplyToID != d.ReplyTo || st.SpoilerText != d.Post.Summary {
				continue
			}
			got := st.Text
			if got == "" {
				got = fedi.HTMLText(st.Content, nil)
			}
			// A file that could not be attached went as a link after
			// the text.
			if sinks.SameText(normalize(got), want, d.Post.Media) {
				return post.Ref{ID: st.ID, URL: st.URL}, true, nil
			}
		}
		path, q = next, nil
	}
	return post.Ref{}, false, nil
}

// ulidPrefix encodes t's Unix milliseconds as the 10-character Crockford
// base32 time part of a ULID (https://github.com/ulid/spec).
func ulidPrefix(t time.Time) string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	ms := uint64(t.UnixMilli())
	var b [10]byte
	for i := 9; i >= 0; i-- {
		b[i] = alphabet[ms&31]
		ms >>= 5
	}
	return string(b[:])
}

// self returns (once) the sink account's ID.
func (s *Sink) self(ctx context.Context) (string, error) {
	s.mu.Lock()
	id := s.selfID
	s.mu.Unlock()
	if id != "" {
		return id, nil
	}
	me, err := fedi.VerifyCredentials(ctx, s.c)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.selfID = me.ID
	s.mu.Unlock()
	return me.ID, nil
}

var (
	_ sinks.Sink      = (*Sink)(nil)
	_ sinks.Editor    = (*Sink)(nil)
	_ sinks.Deleter   = (*Sink)(nil)
	_ sinks.Limiter   = (*Sink)(nil)
	_ sinks.Backdater = (*Sink)(nil)
	_ sinks.Finder    = (*Sink)(nil)
)
