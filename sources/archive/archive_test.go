package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/post"
)

// member is one file of a fixture archive.
type member struct {
	name     string
	body     []byte
	symlink  string // tar/zip: make it a symbolic link to this target
	hardlink string // tar: make it a hard link
}

// mastodonOutbox writes an outbox.json in Mastodon's documented shape
// (protocols.md §1b) with n notes, a reply, a CW, a poll, media and a boost.
func mastodonOutbox(n int) []byte {
	const actor = "https://old.example/users/me"
	var items []string
	base := time.Date(2023, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("https://old.example/users/me/statuses/%d", 100+i)
		note := map[string]any{
			"id": id, "type": "Note", "summary": nil, "inReplyTo": nil,
			"published": base.Add(time.Duration(i) * time.Hour).Format(time.RFC3339), "url": fmt.Sprintf("https://old.example/@me/%d", 100+i),
			"attributedTo": actor, "to": []string{"https://www.w3.org/ns/activitystreams#Public"}, "cc": []string{actor + "/followers"},
			"sensitive": false, "atomUri": id, "content": fmt.Sprintf("<p>post number %d about gardening</p>", i),
			"contentMap": map[string]string{"en": fmt.Sprintf("<p>post number %d about gardening</p>", i)},
			"attachment": []any{}, "tag": []any{},
		}
		switch i {
		case 1:
			note["inReplyTo"] = "https://old.example/users/me/statuses/100"
			note["content"] = `<p>a reply to myself with <span class="h-card"><a href="https://else.example/@friend" class="u-url mention">@<span>friend</span></a></span></p>`
			note["tag"] = []any{map[string]string{"type": "Mention", "href": "https://else.example/@friend", "name": "@friend@else.example"}}
		case 2:
			note["summary"] = "food"
			note["sensitive"] = true
			note["content"] = "<p>Crème brûlée recipe</p>"
		case 3:
			note["attachment"] = []any{map[string]any{"type": "Document", "mediaType": "image/png",
				"url": "/system/media_attachments/files/000/000/001/original/cat.png", "name": "a sleeping cat", "blurhash": "LEHV6n", "focalPoint": []float64{0.1, -0.2}}}
			note["content"] = "<p>my cat</p>"
		case 4:
			note["type"] = "Question"
			note["content"] = "<p>which?</p>"
			note["oneOf"] = []any{map[string]any{"type": "Note", "name": "tea", "replies": map[string]any{"type": "Collection", "totalItems": 3}},
				map[string]any{"type": "Note", "name": "coffee", "replies": map[string]any{"type": "Collection", "totalItems": 5}}}
			note["endTime"] = base.Format(time.RFC3339)
		case 5:
			note["to"] = []string{actor + "/followers"}
			note["cc"] = []string{}
			note["content"] = "<p>only for followers</p>"
		}
		act := map[string]any{"id": id + "/activity", "type": "Create", "actor": actor, "published": note["published"],
			"to": note["to"], "cc": note["cc"], "object": note}
		b, _ := json.Marshal(act)
		items = append(items, string(b))
	}
	items = append(items, `{"id":"https://old.example/users/me/statuses/999/activity","type":"Announce","actor":"`+actor+
		`","published":"2023-06-01T00:00:00Z","to":["https://www.w3.org/ns/activitystreams#Public"],"cc":[],"object":"https://else.example/notes/1"}`)
	return []byte(`{"@context":["https://www.w3.org/ns/activitystreams"],"id":"outbox.json","type":"OrderedCollection","totalItems":` +
		fmt.Sprint(len(items)) + `,"orderedItems":[` + strings.Join(items, ",") + `]}`)
}

func fixtureMembers() []member {
	return []member{
		{name: "outbox.json", body: mastodonOutbox(8)},
		{name: "actor.json", body: []byte(`{"id":"https://old.example/users/me","type":"Person","icon":{"type":"Image","url":"avatar.png"}}`)},
		{name: "likes.json", body: []byte(`{"id":"likes.json","type":"OrderedCollection","orderedItems":["https://else.example/notes/2"]}`)},
		{name: "bookmarks.json", body: []byte(`{"id":"bookmarks.json","type":"OrderedCollection","orderedItems":[]}`)},
		{name: "avatar.png", body: []byte("\x89PNG fake")},
		{name: "media_attachments/files/000/000/001/original/cat.png", body: []byte("\x89PNG cat")},
	}
}

func writeZip(t *testing.T, members []member) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "archive-20240101000000-0123456789abcdef0123456789abcdef.zip")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate}
		body := m.body
		if m.symlink != "" {
			h.SetMode(os.ModeSymlink | 0o777)
			body = []byte(m.symlink)
		} else {
			h.SetMode(0o644)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func writeTarGz(t *testing.T, members []member) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "archive.tar.gz")
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, m := range members {
		h := &tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.body)), Typeflag: tar.TypeReg}
		switch {
		case m.symlink != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, m.symlink, 0
		case m.hardlink != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, m.hardlink, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(m.body)
		}
	}
	tw.Close()
	gz.Close()
	if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestImportAndSearchMastodonArchive(t *testing.T) {
	ctx := context.Background()
	for name, write := range map[string]func(*testing.T, []member) string{"zip": writeZip, "tar.gz": writeTarGz} {
		t.Run(name, func(t *testing.T) {
			into := filepath.Join(t.TempDir(), "imported")
			sum, err := Import(ctx, write(t, fixtureMembers()), into, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Format != name || sum.Media != 1 || sum.Files != 6 {
				t.Errorf("summary %+v", sum)
			}
			n, err := Reindex(ctx, into)
			if err != nil || n != 9 {
				t.Fatalf("indexed %d: %v", n, err)
			}
			var posts []post.Post
			if err := EachPost(ctx, into, func(p post.Post) error { posts = append(posts, p); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(posts) != 9 {
				t.Fatalf("%d posts", len(posts))
			}
			reply, cw, media, poll, priv, boost := posts[1], posts[2], posts[3], posts[4], posts[5], posts[8]
			if reply.InReplyTo != posts[0].OriginID || len(reply.Mentions) != 1 || reply.Mentions[0].Acct != "friend@else.example" {
				t.Errorf("reply %+v", reply)
			}
			if cw.Summary != "food" || !cw.Sensitive || cw.Visibility != post.Public || cw.Language != "en" {
				t.Errorf("cw %+v", cw)
			}
			if len(media.Media) != 1 || media.Media[0].Description != "a sleeping cat" || media.Media[0].FocusX != 0.1 ||
				media.Media[0].Path != filepath.Join(into, "media_attachments/files/000/000/001/original/cat.png") {
				t.Errorf("media %+v", media.Media)
			}
			if poll.Poll == nil || len(poll.Poll.Options) != 2 || poll.Poll.Votes[1] != 5 {
				t.Errorf("poll %+v", poll.Poll)
			}
			if priv.Visibility != post.Private || boost.BoostOf != "https://else.example/notes/1" {
				t.Errorf("visibility %s, boost %q", priv.Visibility, boost.BoostOf)
			}

			hits, err := Search(ctx, into, Query{Text: "creme brulee"}) // accents folded
			if err != nil || len(hits) != 1 || !strings.Contains(hits[0].Snippet, "[Crème]") {
				t.Errorf("search: %v %+v", err, hits)
			}
			hits, _ = Search(ctx, into, Query{Text: `"post number" gardening`, From: time.Date(2023, 1, 1, 15, 0, 0, 0, time.UTC)})
			if len(hits) != 2 { // posts 6 and 7; 0 is before 15:00, the others have other text
				t.Errorf("phrase + from: %d hits %+v", len(hits), hits)
			}
			hits, _ = Search(ctx, into, Query{Text: "cat", HasMedia: true})
			if len(hits) != 1 {
				t.Errorf("has-media: %+v", hits)
			}
			hits, _ = Search(ctx, into, Query{Text: "followers", Visibility: []post.Visibility{post.Public}})
			if len(hits) != 0 {
				t.Errorf("visibility filter: %+v", hits)
			}
			if _, err := Search(ctx, into, Query{Text: `AND ( NEAR "unbalanced * -`}); err != nil {
				t.Errorf("odd query is an error: %v", err)
			}
		})
	}
}

// TestImportRefusesHostileArchives checks every refusal names the entry and
// nothing lands outside (or stays inside) the target.
func TestImportRefusesHostileArchives(t *testing.T) {
	ctx := context.Background()
	good := fixtureMembers()
	bomb := bytes.Repeat([]byte{0}, 8<<20)
	cases := []struct {
		name    string
		format  string
		extra   []member
		replace *member
		entry   string
	}{
		{"zip slip", "zip", []member{{name: "../../evil.txt", body: []byte("x")}}, nil, "../../evil.txt"},
		{"media slip", "zip", []member{{name: "media_attachments/../../../evil.png", body: []byte("x")}}, nil, "media_attachments/../../../evil.png"},
		{"absolute", "tar.gz", []member{{name: "/tmp/evil.txt", body: []byte("x")}}, nil, "/tmp/evil.txt"},
		{"tar slip", "tar.gz", []member{{name: "a/../../evil.txt", body: []byte("x")}}, nil, "a/../../evil.txt"},
		{"zip symlink", "zip", []member{{name: "media_attachments/files/link.png", symlink: "/etc/passwd"}}, nil, "media_attachments/files/link.png"},
		{"tar symlink", "tar.gz", []member{{name: "media_attachments/files/link.png", symlink: "../../../../etc/passwd"}}, nil, "media_attachments/files/link.png"},
		{"tar hardlink", "tar.gz", []member{{name: "avatar.jpg", hardlink: "/etc/passwd"}}, nil, "avatar.jpg"},
		{"duplicate", "zip", []member{{name: "outbox.json", body: []byte("{}")}}, nil, "outbox.json"},
		{"duplicate media suffix", "zip", []member{{name: "cdn/media_attachments/files/000/000/001/original/cat.png", body: []byte("x")}}, nil, "cdn/media_attachments/files/000/000/001/original/cat.png"},
		{"zip bomb", "zip", []member{{name: "media_attachments/files/bomb.bin", body: bomb}}, nil, "media_attachments/files/bomb.bin"},
		{"tar.gz bomb", "tar.gz", []member{{name: "media_attachments/files/bomb.bin", body: bomb}}, nil, "media_attachments/files/bomb.bin"},
		{"malformed outbox", "zip", nil, &member{name: "outbox.json", body: []byte(`{"orderedItems":[{"id":1,]}`)}, "outbox.json"},
		{"malformed likes", "tar.gz", nil, &member{name: "likes.json", body: []byte(`{"orderedItems":[`)}, "likes.json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			members := append([]member(nil), good...)
			if tc.replace != nil {
				for i := range members {
					if members[i].name == tc.replace.name {
						members[i] = *tc.replace
					}
				}
			}
			members = append(members, tc.extra...)
			parent := t.TempDir()
			into := filepath.Join(parent, "a", "b", "into")
			src := writeZip
			if tc.format == "tar.gz" {
				src = writeTarGz
			}
			_, err := Import(ctx, src(t, members), into, Limits{MaxRatio: 50})
			var ee *EntryError
			if !errors.As(err, &ee) || !errors.Is(err, ErrUnsafe) || ee.Entry != tc.entry {
				t.Fatalf("error %v, want an EntryError naming %q", err, tc.entry)
			}
			// Nothing outside the target, nothing left inside it.
			filepath.Walk(parent, func(p string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() {
					t.Errorf("file left behind: %s", p)
				}
				return nil
			})
		})
	}
	t.Run("oversized member", func(t *testing.T) {
		members := append(append([]member(nil), good...), member{name: "media_attachments/files/big.bin", body: bytes.Repeat([]byte("ab"), 64<<10)})
		_, err := Import(ctx, writeZip(t, members), filepath.Join(t.TempDir(), "x"), Limits{MaxMemberBytes: 64 << 10})
		var ee *EntryError
		if !errors.As(err, &ee) || ee.Entry != "media_attachments/files/big.bin" {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("directory with a symlink", func(t *testing.T) {
		src := t.TempDir()
		os.WriteFile(filepath.Join(src, "outbox.json"), mastodonOutbox(1), 0o644)
		os.Symlink("/etc/passwd", filepath.Join(src, "avatar.png"))
		_, err := Import(ctx, src, filepath.Join(t.TempDir(), "x"), Limits{})
		var ee *EntryError
		if !errors.As(err, &ee) || ee.Entry != "avatar.png" {
			t.Fatalf("error %v", err)
		}
	})
}

func TestFTSQuery(t *testing.T) {
	for in, want := range map[string]string{
		`cats dogs`:          `"cats" "dogs"`,
		`"black cat" OR dog`: `"black cat" OR "dog"`,
		`garden*`:            `"garden"*`,
		`say "hi`:            `"say" "hi"`,
		`a"b`:                `"a" "b"`,
		`OR`:                 `"OR"`,
	} {
		if got := ftsQuery(in); got != want {
			t.Errorf("ftsQuery(%q) = %q, want %q", in, got, want)
		}
	}
}
