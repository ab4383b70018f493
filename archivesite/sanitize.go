package archivesite

import (
	"html"
	"html/template"
	"net/url"
	"strings"

	xhtml "golang.org/x/net/html"
)

// allowedTag reports whether an element is kept from a post's or a bio's
// HTML; every other element is dropped and its text kept, except those of
// dropContent.
func allowedTag(name string) bool {
	switch name {
	case "p", "br", "a", "span", "strong", "em", "ul", "ol", "li", "blockquote", "code", "pre":
		return true
	}
	return false
}

// dropContent reports whether an element's content is not text a reader
// should see (scripts, styles, embedded documents): it is dropped with
// everything inside.
func dropContent(name string) bool {
	switch name {
	case "script", "style", "iframe", "object", "embed", "template", "noscript", "textarea", "title",
		"svg", "math", "select", "head", "noembed", "noframes", "xmp":
		return true
	}
	return false
}

// spanClass reports whether a class on a span is kept: Mastodon's classes
// for shortened links (the stylesheet hides "invisible" and adds an
// ellipsis after "ellipsis").
func spanClass(c string) bool { return c == "invisible" || c == "ellipsis" }

// sanitize returns the untrusted HTML s reduced to an allow-list: the tags
// of allowedTag, a[href] only for http, https and mailto links (with
// rel="nofollow noopener noreferrer ugc"), span[class] only for Mastodon's
// link-shortening classes; no other attribute survives. Text is
// re-escaped, unclosed elements are closed and stray end tags dropped, so
// the result is well-formed and can be embedded in a page as is.
func sanitize(s string) template.HTML {
	if s == "" {
		return ""
	}
	z := xhtml.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	var open []string // allowed elements open in the output
	skip := ""        // inside a dropContent element: its name
	depth := 0        // nesting of skip inside itself
	for {
		tt := z.Next()
		if tt == xhtml.ErrorToken {
			break
		}
		tok := z.Token()
		name := strings.ToLower(tok.Data)
		if skip != "" {
			switch {
			case tt == xhtml.StartTagToken && name == skip:
				depth++
			case tt == xhtml.EndTagToken && name == skip:
				depth--
				if depth == 0 {
					skip = ""
				}
			}
			continue
		}
		switch tt {
		case xhtml.TextToken:
			b.WriteString(html.EscapeString(tok.Data))
		case xhtml.StartTagToken, xhtml.SelfClosingTagToken:
			if dropContent(name) {
				if tt == xhtml.StartTagToken {
					skip, depth = name, 1
				}
				continue
			}
			if !allowedTag(name) {
				continue
			}
			attrs := attrsOf(name, tok.Attr)
			if name == "a" && attrs == "" {
				continue // a link to nowhere safe is just its text
			}
			b.WriteString("<" + name + attrs + ">")
			if name != "br" && tt == xhtml.StartTagToken {
				open = append(open, name)
			} else if name != "br" {
				b.WriteString("</" + name + ">")
			}
		case xhtml.EndTagToken:
			for i := len(open) - 1; i >= 0; i-- {
				if open[i] == name {
					for j := len(open) - 1; j >= i; j-- {
						b.WriteString("</" + open[j] + ">")
					}
					open = open[:i]
					break
				}
			}
		}
	}
	for j := len(open) - 1; j >= 0; j-- {
		b.WriteString("</" + open[j] + ">")
	}
	return template.HTML(b.String()) //nolint:gosec // built above from an allow-list, every text and attribute escaped
}

// attrsOf returns the attributes kept on tag, written out with a leading
// space ("" for none).
func attrsOf(tag string, attrs []xhtml.Attribute) string {
	switch tag {
	case "a":
		for _, a := range attrs {
			if strings.ToLower(a.Key) == "href" {
				if href, ok := safeHref(a.Val); ok {
					return ` href="` + html.EscapeString(href) + `" rel="nofollow noopener noreferrer ugc"`
				}
				return ""
			}
		}
	case "span":
		for _, a := range attrs {
			if strings.ToLower(a.Key) != "class" {
				continue
			}
			var keep []string
			for _, c := range strings.Fields(a.Val) {
				if spanClass(c) {
					keep = append(keep, c)
				}
			}
			if len(keep) > 0 {
				return ` class="` + strings.Join(keep, " ") + `"`
			}
			return ""
		}
	}
	return ""
}

// safeHref returns href when it is an absolute http, https or mailto URL.
func safeHref(href string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(href))
	if err != nil {
		return "", false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" {
			return "", false
		}
	case "mailto":
	default:
		return "", false
	}
	return u.String(), true
}
