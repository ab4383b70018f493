package bridge

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
)

// TemplateData is what a route's template sees.
type TemplateData struct {
	Title    string    // feed entry title
	Link     string    // the post's or entry's URL
	Summary  string    // the content warning, if any
	Content  string    // plain text
	HTML     string    // the original HTML, if any
	Author   string    // acct or feed author
	Language string    // BCP 47 tag, "" if unknown
	Tags     []string  // hashtags without '#'
	Hashtags string    // the tags as "#a #b", for appending
	Created  time.Time // when the origin post was made
	Post     post.Post // everything else
}

// Default templates per source kind.
const (
	DefaultFeedTemplate    = "{{if .Title}}{{.Title}}{{else}}{{.Content}}{{end}}{{with .Link}}\n\n{{.}}{{end}}"
	DefaultAccountTemplate = "{{.Content}}"
)

// DefaultTemplate returns the template used when a route sets none.
func DefaultTemplate(kind string) *template.Template {
	text := DefaultAccountTemplate
	if kind == KindFeed {
		text = DefaultFeedTemplate
	}
	return template.Must(template.New(kind).Parse(text))
}

// ParseTemplate parses a route's template text.
func ParseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	// Execute once on empty data so that a reference to an unknown field
	// fails at start-up, not on the first post.
	if err := t.Execute(&bytes.Buffer{}, TemplateData{}); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	return t, nil
}

func templateData(p post.Post) TemplateData {
	d := TemplateData{Title: p.Title, Link: p.URL, Summary: p.Summary, Content: p.Text, HTML: p.HTML,
		Author: p.Author.Acct, Language: p.Language, Created: p.CreatedAt, Post: p}
	for _, t := range p.Tags {
		t = strings.TrimPrefix(t, "#")
		if t == "" {
			continue
		}
		d.Tags = append(d.Tags, t)
		d.Hashtags = strings.TrimSpace(d.Hashtags + " #" + hashtagSafe(t))
	}
	return d
}

var nonTag = regexp.MustCompile(`[^\p{L}\p{N}_]+`)

func hashtagSafe(t string) string { return nonTag.ReplaceAllString(t, "") }

// OriginVersion hashes what an edit of the origin can change. Copies record
// it, and a different version means the origin was edited. It does not
// depend on the route's template or policies, so changing the config never
// edits posts already mirrored.
func OriginVersion(p post.Post) string {
	h := sha256.New()
	for _, s := range []string{p.Title, p.Text, p.Summary, p.URL, p.Language, fmt.Sprint(p.Sensitive)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	for _, m := range p.Media {
		h.Write([]byte(m.Description))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// rendered is a post made ready for one sink.
type rendered struct {
	Drafts []sinks.Draft // one per part; more than one for a split post
	Skip   string        // why the post is left out for this sink, if it is
}

// defaultMaxChars is assumed when a sink knows no limit: Mastodon's.
const defaultMaxChars = 500

// maxParts bounds a split; a longer text is truncated in its last part.
const maxParts = 20

// render applies the template and the policy. continuation marks a post
// that answers an earlier post of the same thread.
func render(tmpl *template.Template, p post.Post, pol Policy, lim post.Limits, continuation bool) (rendered, error) {
	if p.Summary != "" && pol.CW == PolicySkip {
		return rendered{Skip: "has a content warning (cw = skip)"}, nil
	}
	if len(p.Mentions) > 0 && pol.Mentions == PolicySkip {
		return rendered{Skip: "mentions someone (mentions = skip)"}, nil
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, templateData(p)); err != nil {
		return rendered{}, fmt.Errorf("template: %w", err)
	}
	text := strings.TrimSpace(buf.String())
	summary := p.Summary
	if summary != "" && pol.CW == PolicyPrefix {
		text = "CW: " + summary + "\n\n" + text
		summary = ""
	}
	switch pol.Mentions {
	case PolicyLink:
		text = linkMentions(text, p.Mentions)
	case PolicySkip:
	default:
		text = NeutraliseMentions(text)
	}

	media, links := fitMedia(p.Media, pol.Media, lim)
	if len(links) > 0 {
		text = strings.TrimSpace(text + "\n\n" + strings.Join(links, "\n"))
	}
	if text == "" && len(media) == 0 {
		return rendered{Skip: "nothing to post (empty text)"}, nil
	}

	vis := p.Visibility
	if vis == "" {
		vis = pol.DefaultVisibility
	}
	if vis == "" {
		vis = post.Public
	}
	if to, ok := pol.Visibility[vis]; ok {
		vis = to
	}
	rest := vis
	if pol.Thread == PolicyFirstOnly && vis.Rank() < post.Unlisted.Rank() {
		rest = post.Unlisted
	}
	if continuation {
		vis = rest
	}

	max := lim.MaxChars
	if max <= 0 {
		max = defaultMaxChars
	}
	if pol.MaxChars > 0 && pol.MaxChars < max {
		max = pol.MaxChars
	}
	// The content warning counts towards the limit on Mastodon and
	// GoToSocial alike.
	budget := max - Count(summary, lim.CharsPerURL)
	if budget < 50 {
		budget = 50
	}
	var parts []string
	partSummary := summary
	switch {
	case Count(text, lim.CharsPerURL) <= budget:
		parts = []string{text}
	case pol.Length == PolicyTruncate:
		parts = []string{Truncate(text, p.URL, budget, lim.CharsPerURL)}
	default:
		if pol.Length == PolicyCW && partSummary == "" {
			partSummary = "Long post"
			budget = max - Count(partSummary, lim.CharsPerURL)
		}
		parts = Split(text, budget, lim.CharsPerURL, p.URL)
	}

	base := p
	base.Text, base.Summary, base.Visibility, base.Media = "", partSummary, vis, nil
	out := rendered{}
	for i, t := range parts {
		q := base
		q.Text = t
		if i == 0 {
			q.Media = media
			q.Poll = p.Poll
		} else {
			q.Visibility = rest
			q.Poll = nil
		}
		out.Drafts = append(out.Drafts, sinks.Draft{Post: q})
	}
	return out, nil
}

// fitMedia keeps the attachments the policy and the sink allow and returns
// links for the others.
func fitMedia(ms []post.Media, policy string, lim post.Limits) (keep []post.Media, links []string) {
	if policy == PolicySkip {
		return nil, nil
	}
	max := lim.MaxMedia
	if max <= 0 {
		max = 4
	}
	for _, m := range ms {
		ok := policy != PolicyLink && len(keep) < max && (m.MIMEType == "" || len(lim.MediaTypes) == 0 ||
			slices.Contains(lim.MediaTypes, m.MIMEType))
		switch {
		case ok:
			keep = append(keep, m)
		case m.URL != "":
			links = append(links, m.URL)
		}
	}
	return keep, links
}

var (
	// mentionRE finds @user and @user@host not preceded by a word
	// character (so e-mail addresses are left alone).
	mentionRE = regexp.MustCompile(`(^|[^\w@/])@([\w.-]*\w(?:@[\w.-]*\w)?)`)
	urlRE     = regexp.MustCompile(`https?://[^\s<>"]+`)
)

// NeutraliseMentions inserts a zero-width space after every mention's '@'
// so that the text still reads "@user@host" but no server parses it as a
// mention, and nobody is notified.
func NeutraliseMentions(text string) string {
	return mentionRE.ReplaceAllString(text, "$1@\u200b$2")
}

// linkMentions replaces mentions of known accounts with their profile
// URL, and neutralises any other.
func linkMentions(text string, ms []post.Mention) string {
	return mentionRE.ReplaceAllStringFunc(text, func(m string) string {
		sub := mentionRE.FindStringSubmatch(m)
		name := sub[2]
		for _, x := range ms {
			user, _, _ := strings.Cut(x.Acct, "@")
			if x.URL != "" && (strings.EqualFold(x.Acct, name) || strings.EqualFold(user, name)) {
				return sub[1] + x.URL
			}
		}
		return sub[1] + "@\u200b" + name
	})
}

// Count measures text as Mastodon-API servers do: in characters (runes),
// with every URL counted as perURL characters when perURL > 0.
func Count(text string, perURL int) int {
	if perURL <= 0 {
		return len([]rune(text))
	}
	n := 0
	last := 0
	for _, loc := range urlRE.FindAllStringIndex(text, -1) {
		n += len([]rune(text[last:loc[0]])) + perURL
		last = loc[1]
	}
	return n + len([]rune(text[last:]))
}

// Truncate cuts text to fit budget with "…" and, when link is set, a link
// to the original after it. Words are not cut unless one is longer than
// the budget.
func Truncate(text, link string, budget, perURL int) string {
	suffix := "…"
	if link != "" && !strings.Contains(text, link) {
		suffix = "…\n\n" + link
	}
	room := budget - Count(suffix, perURL)
	if room < 1 {
		room = 1
	}
	return strings.TrimRight(fitPrefix(text, room, perURL), " \t\n") + suffix
}

// fitPrefix returns the longest prefix of text, ending at a word boundary
// when possible, that counts at most room.
func fitPrefix(text string, room, perURL int) string {
	tokens := tokenRE.FindAllString(text, -1)
	var b strings.Builder
	n := 0
	for _, tok := range tokens {
		c := Count(tok, perURL)
		if n+c > room {
			if n == 0 { // one token longer than the room: cut it
				r := []rune(tok)
				if len(r) > room {
					r = r[:room]
				}
				return string(r)
			}
			break
		}
		b.WriteString(tok)
		n += c
	}
	return b.String()
}

var tokenRE = regexp.MustCompile(`\S+\s*|\s+`)

// Split breaks text into parts of at most budget characters each,
// including a " (i/n)" marker, preferring paragraph, then word boundaries.
// A text that needs more than maxParts parts is truncated in the last one,
// with link.
func Split(text string, budget, perURL int, link string) []string {
	const marker = 8 // " (12/20)"
	room := budget - marker
	if room < 20 {
		room = 20
	}
	var parts []string
	rest := text
	for rest != "" {
		if len(parts) == maxParts-1 {
			parts = append(parts, Truncate(rest, link, room, perURL))
			break
		}
		if Count(rest, perURL) <= room {
			parts = append(parts, rest)
			break
		}
		chunk := fitPrefix(rest, room, perURL)
		// Prefer to end at a paragraph or sentence break in the second
		// half of the chunk.
		if i := strings.LastIndex(chunk, "\n\n"); i > len(chunk)/2 {
			chunk = chunk[:i+2]
		} else if i := strings.LastIndexAny(chunk, ".!?"); i > len(chunk)/2 && i+1 < len(chunk) && chunk[i+1] == ' ' {
			chunk = chunk[:i+2]
		}
		if chunk == "" {
			break
		}
		parts = append(parts, strings.TrimSpace(chunk))
		rest = strings.TrimLeft(rest[len(chunk):], " \t\n")
	}
	if len(parts) > 1 {
		for i := range parts {
			parts[i] = fmt.Sprintf("%s (%d/%d)", parts[i], i+1, len(parts))
		}
	}
	return parts
}
