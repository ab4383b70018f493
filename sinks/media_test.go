package sinks_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
)

// ReadMedia refuses, as *MediaRefusal, what would fail again the same way,
// and leaves a fetch without an answer unclassified (it may work later).
func TestReadMedia(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/gone.png" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/png; charset=binary")
		w.Write([]byte("0123456789"))
	}))
	defer ts.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "a.bin")
	if err := os.WriteFile(file, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	hc := ts.Client()

	data, ctype, err := sinks.ReadMedia(ctx, hc, post.Media{URL: ts.URL + "/ok.png"}, 10)
	if err != nil || string(data) != "0123456789" || ctype != "image/png" {
		t.Errorf("fetch: %q %q %v", data, ctype, err)
	}
	if data, ctype, err := sinks.ReadMedia(ctx, hc, post.Media{Path: file, URL: ts.URL + "/gone.png"}, 10); err != nil || string(data) != "abc" || ctype != "" {
		t.Errorf("file first: %q %q %v", data, ctype, err)
	}
	for name, m := range map[string]post.Media{
		"missing file": {Path: filepath.Join(dir, "none")},
		"404":          {URL: ts.URL + "/gone.png"},
		"neither":      {},
		"not web":      {URL: "file:///etc/passwd"},
	} {
		var refused *sinks.MediaRefusal
		if _, _, err := sinks.ReadMedia(ctx, hc, m, 10); !errors.As(err, &refused) {
			t.Errorf("%s: %v, want a MediaRefusal", name, err)
		}
	}
	var refused *sinks.MediaRefusal
	if _, _, err := sinks.ReadMedia(ctx, hc, post.Media{URL: ts.URL + "/ok.png"}, 9); !errors.As(err, &refused) {
		t.Errorf("over the limit: %v, want a MediaRefusal", err)
	}
	ts.Close()
	if _, _, err := sinks.ReadMedia(ctx, hc, post.Media{URL: ts.URL + "/ok.png"}, 10); err == nil || errors.As(err, &refused) {
		t.Errorf("server down: %v, want a plain error", err)
	}
}

// SameText recognises a sink's own copy whose unattachable files went as
// links after the text, and nothing else.
func TestSameText(t *testing.T) {
	media := []post.Media{{URL: "https://example.org/media/a-long-file-name.png"}, {Path: "/x/b.png"}}
	for _, c := range []struct {
		got, want string
		same      bool
	}{
		{"Hello there", "Hello there", true},
		{"Hello there https://example.org/media/a-long-file-name.png", "Hello there", true},
		{"Hello there example.org/media/a-long-fil…", "Hello there", true},
		{"https://example.org/media/a-long-file-name.png", "", true},
		{"Hello there world", "Hello there", false},
		{"Hello therehttps://example.org/media/a-long-file-name.png", "Hello there", false},
		{"Hello there https://example.org/other.png", "Hello there", false},
		{"Hello there https://example.org/media/a-long-file-name.png https://example.org/media/a-long-file-name.png https://example.org/media/a-long-file-name.png", "Hello there", false},
	} {
		if got := sinks.SameText(c.got, c.want, media); got != c.same {
			t.Errorf("SameText(%q, %q) = %v, want %v", c.got, c.want, got, c.same)
		}
	}
}
