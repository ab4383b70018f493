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
	"github.com/fedi-ferry/ferry/textfit"
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
		text = textfit.LinkMentions(text, p.Mentions)
	case PolicySkip:
	default:
		text = textfit.NeutraliseMentions(text, nil)
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
	rules := textfit.ForLimits(lim)
	// The content warning counts towards the limit on Mastodon and
	// GoToSocial alike.
	budget := max - rules.Count(summary)
	if budget < 50 {
		budget = 50
	}
	// A cut text ends with a link to the original, unless it has one.
	tail := "…"
	if p.URL != "" && !strings.Contains(text, p.URL) {
		tail = "…\n\n" + p.URL
	}
	var parts []string
	partSummary := summary
	switch {
	case rules.Count(text) <= budget:
		parts = []string{text}
	case pol.Length == PolicyTruncate:
		parts = []string{rules.Truncate(text, tail, budget)}
	default:
		if pol.Length == PolicyCW && partSummary == "" {
			partSummary = "Long post"
			budget = max - rules.Count(partSummary)
		}
		parts = rules.Split(text, budget, textfit.SplitOptions{Number: true, MaxParts: maxParts, Tail: tail})
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
