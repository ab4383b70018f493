package mastodon

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
)

// upload sends one media file with its alt text and focal point and waits
// until the server has processed it (Mastodon answers 202 for video and
// audio and processes them in the background; a post cannot attach them
// before that).
func (s *Sink) upload(ctx context.Context, m post.Media) (string, error) {
	data, name, ctype, err := s.readMedia(ctx, m)
	if err != nil {
		return "", err
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, name))
	h.Set("Content-Type", ctype)
	part, err := w.CreatePart(h)
	if err != nil {
		return "", fmt.Errorf("build upload: %w", err)
	}
	if _, err := part.Write(data); err != nil {
		return "", fmt.Errorf("build upload: %w", err)
	}
	if m.Description != "" {
		_ = w.WriteField("description", m.Description)
	}
	if m.FocusX != 0 || m.FocusY != 0 {
		_ = w.WriteField("focus", strconv.FormatFloat(m.FocusX, 'f', 2, 64)+","+strconv.FormatFloat(m.FocusY, 'f', 2, 64))
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("build upload: %w", err)
	}

	// A 429 on an upload means nothing was stored, so it may be repeated;
	// at worst a repeat leaves an unattached file the server cleans up.
	uctx := fedi.WithRetrySafe(ctx)
	var out struct {
		ID  string `json:"id"`
		URL string `json:"url"`
	}
	resp, err := s.c.DoRaw(uctx, http.MethodPost, "/api/v2/media", bytes.NewReader(body.Bytes()), w.FormDataContentType(), &out)
	if fedi.IsNotFound(err) { // servers from before Mastodon 3.1.3 only have v1
		resp, err = s.c.DoRaw(uctx, http.MethodPost, "/api/v1/media", bytes.NewReader(body.Bytes()), w.FormDataContentType(), &out)
	}
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", name, err)
	}
	if out.ID == "" {
		return "", fmt.Errorf("upload %s: the server returned no media id", name)
	}
	if resp.StatusCode == http.StatusAccepted || out.URL == "" {
		if err := s.waitProcessed(ctx, out.ID); err != nil {
			return "", fmt.Errorf("upload %s: %w", name, err)
		}
	}
	return out.ID, nil
}

// waitProcessed polls GET /api/v1/media/:id until it answers 200 (206 means
// still processing), for up to five minutes.
func (s *Sink) waitProcessed(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	delay := 250 * time.Millisecond
	for {
		resp, err := s.c.Do(ctx, http.MethodGet, "/api/v1/media/"+url.PathEscape(id), nil, nil, nil)
		if err != nil {
			return fmt.Errorf("wait for media %s to be processed: %w", id, err)
		}
		if resp.StatusCode != http.StatusPartialContent {
			return nil
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("wait for media %s to be processed: %w", id, ctx.Err())
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// readMedia loads a media file from m.Path or m.URL, bounded by maxMedia,
// with the name and content type the upload sends.
func (s *Sink) readMedia(ctx context.Context, m post.Media) (data []byte, name, ctype string, err error) {
	data, ctype, err = sinks.ReadMedia(ctx, s.fetch, m, s.maxMedia)
	if err != nil {
		return nil, "", "", err
	}
	if m.MIMEType != "" {
		ctype = m.MIMEType
	}
	if ctype == "" || ctype == "application/octet-stream" {
		ctype = http.DetectContentType(data)
	}
	name = path.Base(m.Source())
	if m.Path == "" {
		if u, err := url.Parse(m.URL); err == nil {
			name = path.Base(u.Path)
		}
	}
	if name == "" || name == "." || name == "/" {
		name = "media"
	}
	return data, name, ctype, nil
}

var (
	spaceRE   = regexp.MustCompile(`\s+`)
	mentionRE = regexp.MustCompile(`(^|\s)@([\w.-]+)@[\w.:-]+`)
)

// normalize makes a draft's text and a server's rendering of it comparable:
// white space collapsed, and mentions reduced to @user (servers render
// @user@host as a link showing @user).
func normalize(s string) string {
	s = mentionRE.ReplaceAllString(s, "$1@$2")
	return strings.TrimSpace(spaceRE.ReplaceAllString(s, " "))
}
