package sinks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/fedi-ferry/ferry/post"
)

// MediaRefusal is a media file a sink will not attach, for a reason the
// same attempt would meet again: the file cannot be opened, its address
// answers other than 200 or is not an address, the media has neither, or
// it is larger than the destination takes. Sinks attach the post's other
// files and carry this one as its address in the text, so the post and
// the route go on.
type MediaRefusal struct {
	Media string // where it was read from (post.Media.Source)
	Err   error
}

func (e *MediaRefusal) Error() string { return fmt.Sprintf("media %s: %v", e.Media, e.Err) }
func (e *MediaRefusal) Unwrap() error { return e.Err }

// AppendLink appends m's address to links, if it has one: what a sink
// posts in the text for a file it does not attach.
func AppendLink(links []string, m post.Media) []string {
	if m.URL != "" {
		return append(links, m.URL)
	}
	return links
}

// ReadMedia returns the bytes of m, read from its Path or fetched from its
// URL with hc, at most limit of them, and the Content-Type the fetch was
// answered with ("" for a file). Its failures are *MediaRefusal, except a
// fetch that got no answer (the network, the context), which may work
// later and is returned as it is.
func ReadMedia(ctx context.Context, hc *http.Client, m post.Media, limit int64) (data []byte, ctype string, err error) {
	refuse := func(err error) ([]byte, string, error) { return nil, "", &MediaRefusal{Media: m.Source(), Err: err} }
	var r io.Reader
	switch {
	case m.Path != "":
		f, err := os.Open(m.Path)
		if err != nil {
			return refuse(err)
		}
		defer f.Close()
		r = f
	case m.URL != "":
		u, err := url.Parse(m.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
			return refuse(fmt.Errorf("not a web address"))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return refuse(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, "", fmt.Errorf("download media %s: %w", u.Redacted(), err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return refuse(fmt.Errorf("download: %s", resp.Status))
		}
		r = resp.Body
		ctype, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
	default:
		return refuse(errors.New("the media has neither a file nor an address"))
	}
	data, err = io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, "", fmt.Errorf("read media %s: %w", m.Source(), err)
	}
	if int64(len(data)) > limit {
		return refuse(fmt.Errorf("larger than the %d bytes the destination takes", limit))
	}
	return data, ctype, nil
}

// SameText reports whether got, the text of a published post with its
// white space collapsed, is want (the draft's, collapsed the same way),
// or want followed by the addresses of files of media, which is what a
// sink publishes for files it could not attach. Servers may show an
// address without its scheme and shortened with "…"; each such word must
// still begin one of the files' addresses. Finders use it to recognise
// their own earlier copy.
func SameText(got, want string, media []post.Media) bool {
	if got == want {
		return true
	}
	rest, ok := strings.CutPrefix(got, want)
	if !ok || (want != "" && !strings.HasPrefix(rest, " ")) {
		return false
	}
	words := strings.Fields(rest)
	if len(words) == 0 || len(words) > len(media) {
		return false
	}
	bare := func(s string) string {
		return strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	}
	for _, w := range words {
		w = strings.TrimSuffix(bare(w), "…")
		found := false
		for _, m := range media {
			if m.URL != "" && w != "" && strings.HasPrefix(bare(m.URL), w) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
