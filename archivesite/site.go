// Package archivesite renders a post archive (a Mastodon "Request your
// archive" export, or a directory `ferry archive` keeps in the same layout)
// as a static site: an index with the profile, the newest posts and search,
// and one page per month, newest first. The site works opened from file://
// and from any static host: its pages, stylesheet, script and media are all
// inside it, and nothing is loaded from elsewhere.
//
// A re-run rewrites only the pages whose content changed, so rebuilding
// after `ferry archive` adds a few posts touches the newest month, the
// index and the search index.
package archivesite

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fedi-ferry/ferry/post"
	srcarchive "github.com/fedi-ferry/ferry/sources/archive"
)

// Options configure Build. The zero value is ready to use.
type Options struct {
	// Latest is how many threads the index shows before the month pages;
	// 0 means 20.
	Latest int
	// Logger receives one line per page written; nil discards.
	Logger *slog.Logger
}

// Result is what Build did.
type Result struct {
	Out          string `json:"out"`
	Posts        int    `json:"posts"`
	Months       int    `json:"months"`
	PagesWritten int    `json:"pages_written"` // files of the site rewritten (pages, search index, assets)
	PagesSkipped int    `json:"pages_skipped"` // files whose content was already there
	PagesRemoved int    `json:"pages_removed"` // month pages of months no longer in the archive
	MediaCopied  int    `json:"media_copied"`
	MediaMissing int    `json:"media_missing"` // attachments whose file is not in the archive
	// Bytes is the size of the site's generated files (pages, search
	// index, stylesheet, script), FirstPageBytes that of index.html and
	// MediaBytes that of the media files copied in.
	Bytes          int64 `json:"bytes"`
	FirstPageBytes int64 `json:"first_page_bytes"`
	MediaBytes     int64 `json:"media_bytes"`
}

// Build renders the archive in dir as a static site in out (created when
// missing). dir and out must be different directories; every file read
// from dir and written to out stays inside them (os.Root), whatever names
// the archive holds.
func Build(ctx context.Context, dir, out string, o Options) (Result, error) {
	res := Result{Out: out}
	if o.Latest <= 0 {
		o.Latest = 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return res, fmt.Errorf("archive html: %w", err)
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return res, fmt.Errorf("archive html: %w", err)
	}
	if absDir == absOut {
		return res, fmt.Errorf("archive html: the site must go into another directory than the archive %s", dir)
	}
	src, err := os.OpenRoot(dir)
	if err != nil {
		return res, fmt.Errorf("archive html: open the archive: %w", err)
	}
	defer src.Close()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return res, fmt.Errorf("archive html: %w", err)
	}
	dst, err := os.OpenRoot(out)
	if err != nil {
		return res, fmt.Errorf("archive html: %w", err)
	}
	defer dst.Close()

	prof, err := readProfile(src)
	if err != nil {
		return res, fmt.Errorf("archive html: %w", err)
	}
	var posts []post.Post
	if err := srcarchive.EachPost(ctx, dir, func(p post.Post) error {
		posts = append(posts, p)
		return nil
	}); err != nil {
		return res, fmt.Errorf("archive html: %w", err)
	}
	res.Posts = len(posts)

	w := &writer{root: dst, log: o.Logger, res: &res}
	if err := w.loadManifest(); err != nil {
		return res, fmt.Errorf("archive html: %w", err)
	}
	media := &mediaCopier{src: src, dst: dst, res: &res}
	s := newSite(prof, posts, media)
	res.Months = len(s.months)
	if err := s.render(ctx, w, o); err != nil {
		return res, fmt.Errorf("archive html: %w", err)
	}
	if err := w.finish(); err != nil {
		return res, fmt.Errorf("archive html: %w", err)
	}
	return res, nil
}

// profile is what the pages show of actor.json.
type profile struct {
	Name     string // display name, or the username
	Acct     string // @user@host when known
	URL      string // the profile's web address, when http(s)
	Bio      string // untrusted HTML
	Avatar   string // site-relative URL of the copied avatar, "" when none
	Header   string
	Fields   []field
	avatarIn string // archive-relative path of the avatar file
	headerIn string
}

type field struct{ Name, Value string }

func readProfile(src *os.Root) (profile, error) {
	b, err := src.ReadFile("actor.json")
	if errors.Is(err, fs.ErrNotExist) {
		return profile{Name: "Archive"}, nil
	}
	if err != nil {
		return profile{}, err
	}
	var a struct {
		ID                string          `json:"id"`
		URL               json.RawMessage `json:"url"`
		PreferredUsername string          `json:"preferredUsername"`
		Name              string          `json:"name"`
		Summary           string          `json:"summary"`
		Icon              json.RawMessage `json:"icon"`
		Image             json.RawMessage `json:"image"`
		Attachment        []struct {
			Type  string `json:"type"`
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"attachment"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return profile{}, fmt.Errorf("actor.json: %w", err)
	}
	p := profile{Name: strings.TrimSpace(a.Name), Bio: a.Summary}
	if p.Name == "" {
		p.Name = a.PreferredUsername
	}
	if p.Name == "" {
		p.Name = "Archive"
	}
	if a.PreferredUsername != "" {
		p.Acct = "@" + a.PreferredUsername
		if u, err := url.Parse(a.ID); err == nil && u.Host != "" {
			p.Acct += "@" + u.Host
		}
	}
	var link string
	if json.Unmarshal(a.URL, &link) == nil {
		if h, ok := safeHref(link); ok && !strings.HasPrefix(h, "mailto:") {
			p.URL = h
		}
	}
	p.avatarIn = imagePath(a.Icon)
	p.headerIn = imagePath(a.Image)
	for _, f := range a.Attachment {
		if f.Type == "PropertyValue" && f.Name != "" {
			p.Fields = append(p.Fields, field{f.Name, f.Value})
		}
	}
	return p, nil
}

// imagePath returns the archive-relative path of an actor's icon or image
// (Mastodon and ferry write "avatar.png"; older exports an absolute
// path with media_attachments or accounts/ in it), "" when unsafe.
func imagePath(raw json.RawMessage) string {
	var img struct {
		URL string `json:"url"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &img) != nil || img.URL == "" {
		return ""
	}
	u, err := url.Parse(img.URL)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return ""
	}
	return safeRel(strings.TrimPrefix(strings.TrimPrefix(u.Path, "/"), "system/"))
}

// safeRel returns rel when it is a clean relative slash path inside its
// directory, else "". os.Root enforces the same again when the file is
// opened; this keeps such names out of the pages too.
func safeRel(rel string) string {
	if rel == "" || !fs.ValidPath(rel) || strings.ContainsAny(rel, "\\\x00") {
		return ""
	}
	return rel
}

// entry is one post as the pages show it.
type entry struct {
	post.Post
	anchor  string // the article's id on its page
	depth   int    // 0 for a thread's root
	replies []*entry
	parent  *entry
}

// thread is a root post and its replies in the archive, in reading order.
type thread struct {
	root  *entry
	posts []*entry // root first, then replies depth first, oldest first
	month string   // the root's month, YYYY-MM
	page  string   // the month page's file name
}

// month is one month page's threads, newest first.
type month struct {
	key     string // YYYY-MM
	page    string
	threads []*thread
	posts   int
}

type site struct {
	prof   profile
	months []*month // newest first
	media  *mediaCopier
}

// newSite groups posts into threads (a reply joins its parent's thread when
// the parent is in the archive) and threads into months by their root's
// date, newest first.
func newSite(prof profile, posts []post.Post, media *mediaCopier) *site {
	s := &site{prof: prof, media: media}
	byID := make(map[string]*entry, len(posts))
	seen := map[string]int{}
	entries := make([]*entry, len(posts))
	for i, p := range posts {
		e := &entry{Post: p}
		a := anchorOf(p.OriginID)
		if n := seen[a]; n > 0 {
			e.anchor = fmt.Sprintf("%s-%d", a, n)
		} else {
			e.anchor = a
		}
		seen[a]++
		entries[i] = e
		if _, dup := byID[p.OriginID]; !dup && p.OriginID != "" {
			byID[p.OriginID] = e
		}
	}
	for _, e := range entries {
		if par := byID[e.InReplyTo]; par != nil && par != e && !ancestor(e, par) {
			e.parent = par
			par.replies = append(par.replies, e)
		}
	}
	byMonth := map[string]*month{}
	for _, e := range entries {
		if e.parent != nil {
			continue
		}
		t := &thread{root: e, month: monthKey(e.CreatedAt)}
		t.page = t.month + ".html"
		// Depth first, replies oldest first, without recursion: a long
		// self-thread is a long chain.
		stack := []*entry{e}
		for len(stack) > 0 {
			cur := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if cur.parent != nil {
				cur.depth = cur.parent.depth + 1
			}
			t.posts = append(t.posts, cur)
			kids := slices.Clone(cur.replies)
			slices.SortStableFunc(kids, func(a, b *entry) int { return b.CreatedAt.Compare(a.CreatedAt) })
			stack = append(stack, kids...)
		}
		m := byMonth[t.month]
		if m == nil {
			m = &month{key: t.month, page: t.page}
			byMonth[t.month] = m
			s.months = append(s.months, m)
		}
		m.threads = append(m.threads, t)
		m.posts += len(t.posts)
	}
	slices.SortFunc(s.months, func(a, b *month) int { return cmp.Compare(b.key, a.key) })
	for _, m := range s.months {
		slices.SortStableFunc(m.threads, func(a, b *thread) int {
			if c := b.root.CreatedAt.Compare(a.root.CreatedAt); c != 0 {
				return c
			}
			return cmp.Compare(b.root.OriginID, a.root.OriginID)
		})
	}
	return s
}

// ancestor reports whether e is par or one of par's ancestors (linking e
// under par would make a cycle; the archive is untrusted).
func ancestor(e, par *entry) bool {
	for p := par; p != nil; p = p.parent {
		if p == e {
			return true
		}
	}
	return false
}

// anchorOf is a post's stable id on its page: short, and free of whatever
// characters the archive's identifiers hold.
func anchorOf(originID string) string {
	sum := sha256.Sum256([]byte(originID))
	return "p" + hex.EncodeToString(sum[:6])
}

func monthKey(t time.Time) string {
	if t.IsZero() {
		return "undated"
	}
	return t.UTC().Format("2006-01")
}
