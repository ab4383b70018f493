package archivesite

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/fedi-ferry/ferry/post"
	srcarchive "github.com/fedi-ferry/ferry/sources/archive"
)

//go:embed templates/site.html
var templateFS embed.FS

//go:embed assets/style.css assets/search.js
var assetFS embed.FS

var pages = template.Must(template.New("site.html").Funcs(template.FuncMap{
	"indent":   func(d int) int { return min(d, 4) },
	"sanitize": sanitize,
	"postIn":   func(page string, p postView) postIn { return postIn{Page: page, Post: p} },
	"rfc3339": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "undated"
		}
		return t.UTC().Format("2 Jan 2006 15:04 UTC")
	},
}).ParseFS(templateFS, "templates/site.html"))

// pageView is what one page template renders.
type pageView struct {
	Title   string
	Index   bool
	Prof    profile
	Heading string
	Years   []yearView // index: every month
	Newer   *monthLink // month pages: the neighbours
	Older   *monthLink
	Threads []threadView
	More    *monthLink // index: where the latest posts continue
	Posts   int
}

// postIn is a post with the page it is on ("" for the page being
// rendered), for its own link.
type postIn struct {
	Page string
	Post postView
}

type yearView struct {
	Year   string
	Months []monthLink
}

type monthLink struct {
	Page, Label string
	Posts       int
}

type threadView struct {
	Page  string // the month page holding the thread (index only)
	Posts []postView
}

type postView struct {
	Anchor     string
	Origin     string // the post's OriginID, for tools that check the site
	Depth      int
	Lang       string
	Time       time.Time
	Edited     time.Time
	Permalink  string
	Visibility string
	Summary    string
	Sensitive  bool
	HTML       template.HTML
	BoostOf    string // safe link to the boosted post
	BoostText  string // the boosted post's address as text
	ReplyTo    string // safe link to a parent outside the archive
	Deleted    bool
	Media      []mediaView
	Poll       *pollView
}

type mediaView struct {
	Kind string // image, video, audio, or missing
	URL  string
	Alt  string
}

type pollView struct {
	Multiple bool
	Closes   time.Time
	Total    int
	Options  []pollOption
}

type pollOption struct {
	Name    string
	Votes   int
	Percent int
}

func monthLabel(key string) string {
	t, err := time.Parse("2006-01", key)
	if err != nil {
		return "Undated"
	}
	return t.Format("January 2006")
}

func linkOf(m *month) *monthLink {
	if m == nil {
		return nil
	}
	return &monthLink{Page: m.page, Label: monthLabel(m.key), Posts: m.posts}
}

// render writes every page, the search index and the assets.
func (s *site) render(ctx context.Context, w *writer, o Options) error {
	if err := s.copyProfileImages(); err != nil {
		return err
	}
	var latest []threadView
	for _, m := range s.months {
		for _, t := range m.threads {
			if len(latest) == o.Latest {
				break
			}
			tv, err := s.threadView(t, true)
			if err != nil {
				return err
			}
			latest = append(latest, tv)
		}
	}
	index := pageView{Title: s.prof.Name, Index: true, Prof: s.prof, Heading: "Latest posts", Threads: latest}
	for _, m := range s.months {
		index.Posts += m.posts
		year := strings.SplitN(m.key, "-", 2)[0]
		if n := len(index.Years); n == 0 || index.Years[n-1].Year != year {
			index.Years = append(index.Years, yearView{Year: year})
		}
		y := &index.Years[len(index.Years)-1]
		y.Months = append(y.Months, *linkOf(m))
	}
	if len(s.months) > 0 {
		index.More = linkOf(s.months[0])
	}
	if err := s.page(w, "index.html", index); err != nil {
		return err
	}
	for i, m := range s.months {
		if err := ctx.Err(); err != nil {
			return err
		}
		v := pageView{Title: monthLabel(m.key) + " · " + s.prof.Name, Prof: s.prof, Heading: monthLabel(m.key), Posts: m.posts}
		if i > 0 {
			v.Newer = linkOf(s.months[i-1])
		}
		if i+1 < len(s.months) {
			v.Older = linkOf(s.months[i+1])
		}
		for _, t := range m.threads {
			tv, err := s.threadView(t, false)
			if err != nil {
				return err
			}
			v.Threads = append(v.Threads, tv)
		}
		if err := s.page(w, m.page, v); err != nil {
			return err
		}
	}
	idx, err := s.searchIndex()
	if err != nil {
		return err
	}
	if err := w.write("search-index.js", idx); err != nil {
		return err
	}
	for _, name := range []string{"style.css", "search.js"} {
		b, err := assetFS.ReadFile("assets/" + name)
		if err != nil {
			return err
		}
		if err := w.write(name, b); err != nil {
			return err
		}
	}
	return nil
}

func (s *site) page(w *writer, name string, v pageView) error {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, "page", v); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	return w.write(name, b.Bytes())
}

func (s *site) copyProfileImages() error {
	var err error
	if s.prof.avatarIn != "" {
		if s.prof.Avatar, err = s.media.url(s.prof.avatarIn); err != nil {
			return err
		}
	}
	if s.prof.headerIn != "" {
		if s.prof.Header, err = s.media.url(s.prof.headerIn); err != nil {
			return err
		}
	}
	return nil
}

func (s *site) threadView(t *thread, withPage bool) (threadView, error) {
	tv := threadView{}
	if withPage {
		tv.Page = t.page
	}
	for _, e := range t.posts {
		pv, err := s.postView(e)
		if err != nil {
			return tv, err
		}
		tv.Posts = append(tv.Posts, pv)
	}
	return tv, nil
}

func (s *site) postView(e *entry) (postView, error) {
	p := e.Post
	v := postView{Anchor: e.anchor, Origin: p.OriginID, Depth: e.depth, Lang: langTag(p.Language), Time: p.CreatedAt, Edited: p.EditedAt,
		Summary: strings.TrimSpace(p.Summary), Sensitive: p.Sensitive, Deleted: p.Deleted}
	if h, ok := safeHref(p.URL); ok {
		v.Permalink = h
	} else if h, ok := safeHref(p.URI); ok {
		v.Permalink = h
	}
	switch p.Visibility {
	case post.Unlisted:
		v.Visibility = "unlisted"
	case post.Private:
		v.Visibility = "followers only"
	case post.Direct:
		v.Visibility = "direct"
	}
	if p.IsBoost() {
		v.BoostText = p.BoostOf
		if h, ok := safeHref(p.BoostOf); ok {
			v.BoostOf = h
		}
		return v, nil
	}
	if p.HTML != "" {
		v.HTML = sanitize(p.HTML)
	} else {
		v.HTML = textHTML(p.Text)
	}
	if e.parent == nil && p.ReplyToURI != "" {
		if h, ok := safeHref(p.ReplyToURI); ok {
			v.ReplyTo = h
		}
	}
	for _, m := range p.Media {
		mv := mediaView{Alt: strings.TrimSpace(m.Description), Kind: "missing"}
		if rel := srcarchive.MediaRel(m.URL); rel != "" {
			u, err := s.media.url(rel)
			if err != nil {
				return v, err
			}
			if u != "" {
				mv.URL = u
				mv.Kind = mediaKind(m.MIMEType, rel)
			}
		}
		v.Media = append(v.Media, mv)
	}
	if p.Poll != nil {
		pv := &pollView{Multiple: p.Poll.Multiple, Closes: p.Poll.ExpiresAt}
		for i, name := range p.Poll.Options {
			votes := 0
			if i < len(p.Poll.Votes) {
				votes = max(p.Poll.Votes[i], 0)
			}
			pv.Total += votes
			pv.Options = append(pv.Options, pollOption{Name: name, Votes: votes})
		}
		for i := range pv.Options {
			if pv.Total > 0 {
				pv.Options[i].Percent = (pv.Options[i].Votes*100 + pv.Total/2) / pv.Total
			}
		}
		v.Poll = pv
	}
	return v, nil
}

// textHTML shows plain text as paragraphs.
func textHTML(text string) template.HTML {
	var b strings.Builder
	for _, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		if para == "" {
			continue
		}
		b.WriteString("<p>")
		for i, line := range strings.Split(para, "\n") {
			if i > 0 {
				b.WriteString("<br>")
			}
			b.WriteString(template.HTMLEscapeString(line))
		}
		b.WriteString("</p>")
	}
	return template.HTML(b.String()) //nolint:gosec // every line escaped above
}

func mediaKind(mime, rel string) string {
	switch {
	case strings.HasPrefix(mime, "image/"):
		return "image"
	case strings.HasPrefix(mime, "video/"):
		return "video"
	case strings.HasPrefix(mime, "audio/"):
		return "audio"
	}
	low := strings.ToLower(rel)
	for _, ext := range []string{".mp4", ".webm", ".mov", ".m4v"} {
		if strings.HasSuffix(low, ext) {
			return "video"
		}
	}
	for _, ext := range []string{".mp3", ".ogg", ".oga", ".opus", ".wav", ".flac", ".m4a"} {
		if strings.HasSuffix(low, ext) {
			return "audio"
		}
	}
	return "image"
}

// langTag keeps a BCP 47 tag only when it looks like one (it lands in a
// lang attribute).
func langTag(s string) string {
	if s == "" || len(s) > 35 {
		return ""
	}
	for _, r := range s {
		if !(r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return ""
		}
	}
	return s
}

// searchIndex is search-index.js: a script that sets one variable, because
// pages opened from file:// may load scripts but not fetch JSON. Each post
// is [link, published (RFC 3339), media count, deleted (0/1), content
// warning, text], newest first.
func (s *site) searchIndex() ([]byte, error) {
	var rows [][]any
	for _, m := range s.months {
		for _, t := range m.threads {
			for _, e := range t.posts {
				text := e.Text
				if e.IsBoost() {
					text = "boosted " + e.BoostOf
				}
				if e.Poll != nil {
					text += "\n" + strings.Join(e.Poll.Options, "\n")
				}
				for _, md := range e.Media {
					if md.Description != "" {
						text += "\n" + md.Description
					}
				}
				date := ""
				if !e.CreatedAt.IsZero() {
					date = e.CreatedAt.UTC().Format(time.RFC3339)
				}
				deleted := 0
				if e.Deleted {
					deleted = 1
				}
				rows = append(rows, []any{t.page + "#" + e.anchor, date, len(e.Media), deleted, strings.TrimSpace(e.Summary), strings.TrimSpace(text)})
			}
		}
	}
	// Newest first across threads too: a thread's replies sort by their
	// own date.
	sortRows(rows)
	var b bytes.Buffer
	b.WriteString("window.ferrySearchIndex=")
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(true) // "</script>" and friends stay inert
	if err := enc.Encode(map[string]any{"version": 1, "posts": rows}); err != nil {
		return nil, err
	}
	b.Truncate(b.Len() - 1)
	b.WriteString(";\n")
	return b.Bytes(), nil
}

func sortRows(rows [][]any) {
	slices.SortStableFunc(rows, func(a, b []any) int { return cmp.Compare(b[1].(string), a[1].(string)) })
}
