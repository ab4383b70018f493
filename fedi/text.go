package fedi

import (
	"regexp"
	"strings"

	"golang.org/x/net/html"
)

// HTMLText turns the HTML of a post or a feed entry into the plain text a
// person would post: paragraphs become blank lines, <br> a line break,
// list items lines starting with "• ", links their text (servers render
// URLs as links whose text, including hidden parts, is the full URL), and
// images their alt text in brackets. mentions maps a mention link's href
// to the account it names ("user@host"); such links are written
// "@user@host", since servers show only "@user". Scripts and styles are
// dropped. It never fails: malformed HTML is read as browsers read it.
func HTMLText(s string, mentions map[string]string) string {
	if !strings.ContainsAny(s, "<&") {
		return strings.TrimSpace(s)
	}
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		return strings.TrimSpace(s)
	}
	var b strings.Builder
	var walk func(n *html.Node, pre bool)
	block := func() {
		str := b.String()
		if str == "" || strings.HasSuffix(str, "\n\n") {
			return
		}
		if strings.HasSuffix(str, "\n") {
			b.WriteString("\n")
			return
		}
		b.WriteString("\n\n")
	}
	walk = func(n *html.Node, pre bool) {
		switch n.Type {
		case html.TextNode:
			t := n.Data
			if !pre {
				t = spaceRun.ReplaceAllString(t, " ")
				str := b.String()
				if str == "" || strings.HasSuffix(str, "\n") || strings.HasSuffix(str, " ") {
					t = strings.TrimLeft(t, " ")
				}
			}
			b.WriteString(t)
			return
		case html.ElementNode:
			switch n.Data {
			case "script", "style", "head", "template":
				return
			case "br":
				b.WriteString("\n")
				return
			case "img":
				if alt := attr(n, "alt"); alt != "" {
					b.WriteString("[" + alt + "]")
				}
				return
			case "a":
				if acct, ok := mentions[attr(n, "href")]; ok && acct != "" {
					b.WriteString("@" + acct)
					return
				}
			case "li":
				if s := b.String(); s != "" && !strings.HasSuffix(s, "\n") {
					b.WriteString("\n")
				}
				b.WriteString("• ")
			case "p", "div", "blockquote", "pre", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "figure", "table", "tr":
				block()
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, pre || (n.Type == html.ElementNode && n.Data == "pre"))
		}
		if n.Type == html.ElementNode {
			switch n.Data {
			case "p", "div", "blockquote", "pre", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "figure", "table":
				block()
			case "li", "tr":
				b.WriteString("\n")
			}
		}
	}
	walk(doc, false)
	out := trailingSpace.ReplaceAllString(b.String(), "\n")
	out = manyBreaks.ReplaceAllString(out, "\n\n")
	return strings.TrimSpace(out)
}

var (
	spaceRun      = regexp.MustCompile(`[ \t\r\n\f]+`)
	trailingSpace = regexp.MustCompile(`[ \t]+\n`)
	manyBreaks    = regexp.MustCompile(`\n{3,}`)
)

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
