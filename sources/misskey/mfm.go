package misskey

import (
	"html"
	"net/url"
	"strings"
	"unicode"
)

// MFM is Misskey's markup (https://misskey-hub.net/en/docs/for-users/features/mfm/).
// The other platforms ferry writes to show plain text or a little HTML, so
// a note's MFM becomes both (Render): bold, italic and strike become
// <b>, <i> and <del> in HTML and their bare text in plain text; links,
// mentions and hashtags become links; code keeps its text; quotes stay
// quotes; every $[fn …] decoration (flip, spin, x2, font, color …) is
// dropped and only its text kept, so no "$[" syntax ever leaks to
// readers elsewhere. Custom emoji (:name:) stay as their text.

// node is one piece of parsed MFM.
type node struct {
	kind     string // text, bold, italic, strike, small, center, code, pre, quote, link, mention, hashtag, url, fn
	text     string // text, code, pre: the text; link: the URL; mention: user@host or user; hashtag: the tag; url: the URL
	children []node
}

// parser reads MFM inline markup.
type parser struct {
	s   []rune
	pos int
}

// parseMFM parses src into nodes: first the block structure (code blocks
// and quote lines), then inline markup.
func parseMFM(src string) []node {
	var out []node
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	var para []string
	flush := func() {
		if para == nil {
			return
		}
		out = append(out, inline(strings.Join(para, "\n"))...)
		para = nil
	}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "```"):
			// A code block runs to the closing fence (or the end).
			var code []string
			j := i + 1
			for ; j < len(lines) && !strings.HasPrefix(lines[j], "```"); j++ {
				code = append(code, lines[j])
			}
			if j == len(lines) {
				// No closing fence: MFM shows the text as it is.
				para = append(para, l)
				continue
			}
			if para != nil {
				para = append(para, "")
				flush()
			} else if len(out) > 0 {
				out = append(out, node{kind: "text", text: "\n"})
			}
			out = append(out, node{kind: "pre", text: strings.Join(code, "\n")})
			i = j
			if i+1 < len(lines) {
				out = append(out, node{kind: "text", text: "\n"})
			}
		case strings.HasPrefix(l, ">"):
			var q []string
			for ; i < len(lines) && strings.HasPrefix(lines[i], ">"); i++ {
				q = append(q, strings.TrimPrefix(strings.TrimPrefix(lines[i], ">"), " "))
			}
			i--
			if para != nil {
				para = append(para, "")
				flush()
			}
			out = append(out, node{kind: "quote", children: inline(strings.Join(q, "\n"))})
			if i+1 < len(lines) {
				out = append(out, node{kind: "text", text: "\n"})
			}
		default:
			para = append(para, l)
		}
	}
	flush()
	return out
}

func inline(s string) []node {
	p := &parser{s: []rune(s)}
	return p.until("")
}

func (p *parser) has(prefix string) bool {
	r := []rune(prefix)
	if p.pos+len(r) > len(p.s) {
		return false
	}
	for i, c := range r {
		if p.s[p.pos+i] != c {
			return false
		}
	}
	return true
}

// find returns the index of the next end after pos, -1 if none.
func (p *parser) find(end string) int {
	r := []rune(end)
	for i := p.pos; i+len(r) <= len(p.s); i++ {
		if string(p.s[i:i+len(r)]) == end {
			return i
		}
	}
	return -1
}

// until parses inline nodes up to end (not consumed by until; "" means
// the end of input).
func (p *parser) until(end string) []node {
	var out []node
	var text []rune
	emit := func(n node) {
		if len(text) > 0 {
			out = append(out, node{kind: "text", text: string(text)})
			text = nil
		}
		out = append(out, n)
	}
	for p.pos < len(p.s) {
		if end != "" && p.has(end) {
			break
		}
		if n, ok := p.element(); ok {
			emit(n)
			continue
		}
		text = append(text, p.s[p.pos])
		p.pos++
	}
	if len(text) > 0 {
		out = append(out, node{kind: "text", text: string(text)})
	}
	return out
}

// wrapped parses open … close around inline content as kind.
func (p *parser) wrapped(open, close, kind string) (node, bool) {
	if !p.has(open) {
		return node{}, false
	}
	start := p.pos
	p.pos += len([]rune(open))
	if p.find(close) < 0 {
		p.pos = start
		return node{}, false
	}
	children := p.until(close)
	if !p.has(close) {
		p.pos = start
		return node{}, false
	}
	p.pos += len([]rune(close))
	return node{kind: kind, children: children}, true
}

// raw parses open … close whose content is not markup.
func (p *parser) raw(open, close, kind string, oneLine bool) (node, bool) {
	if !p.has(open) {
		return node{}, false
	}
	start := p.pos
	p.pos += len([]rune(open))
	i := p.find(close)
	if i < 0 || i == p.pos || (oneLine && strings.ContainsRune(string(p.s[p.pos:i]), '\n')) {
		p.pos = start
		return node{}, false
	}
	n := node{kind: kind, text: string(p.s[p.pos:i])}
	p.pos = i + len([]rune(close))
	return n, true
}

func (p *parser) prevIsWordChar() bool {
	if p.pos == 0 {
		return false
	}
	c := p.s[p.pos-1]
	return unicode.IsLetter(c) || unicode.IsDigit(c) || c == '_'
}

func (p *parser) element() (node, bool) {
	c := p.s[p.pos]
	switch c {
	case '$':
		return p.fn()
	case '*':
		if n, ok := p.wrapped("**", "**", "bold"); ok {
			return n, true
		}
		return p.simpleItalic('*')
	case '_':
		if n, ok := p.wrapped("__", "__", "bold"); ok {
			return n, true
		}
		return p.simpleItalic('_')
	case '~':
		return p.wrapped("~~", "~~", "strike")
	case '<':
		for _, t := range [][2]string{{"b", "bold"}, {"i", "italic"}, {"s", "strike"}, {"small", "small"}, {"center", "center"}} {
			if n, ok := p.wrapped("<"+t[0]+">", "</"+t[0]+">", t[1]); ok {
				return n, true
			}
		}
		if n, ok := p.raw("<plain>", "</plain>", "text", false); ok {
			return n, true
		}
		if p.has("<http") {
			if n, ok := p.raw("<", ">", "url", true); ok && isURL(n.text) {
				return n, true
			}
		}
	case '`':
		return p.raw("`", "`", "code", true)
	case '\\':
		if n, ok := p.raw(`\(`, `\)`, "code", true); ok {
			return n, true
		}
		return p.raw(`\[`, `\]`, "code", false)
	case '[', '?':
		return p.link()
	case 'h':
		return p.url()
	case '@':
		return p.mention()
	case '#':
		return p.hashtag()
	}
	return node{}, false
}

// simpleItalic is MFM's *text* / _text_: letters, digits and spaces only.
func (p *parser) simpleItalic(mark rune) (node, bool) {
	if p.prevIsWordChar() {
		return node{}, false
	}
	i := p.pos + 1
	for i < len(p.s) && p.s[i] != mark {
		c := p.s[i]
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && c != ' ' {
			return node{}, false
		}
		i++
	}
	if i >= len(p.s) || i == p.pos+1 {
		return node{}, false
	}
	n := node{kind: "italic", children: []node{{kind: "text", text: string(p.s[p.pos+1 : i])}}}
	p.pos = i + 1
	return n, true
}

// fn is $[name.args content]: the content is kept, the decoration
// dropped. A "$[name" without its closing bracket loses its head, so its
// syntax does not leak either.
func (p *parser) fn() (node, bool) {
	if !p.has("$[") {
		return node{}, false
	}
	i := p.pos + 2
	for i < len(p.s) && (unicode.IsLetter(p.s[i]) || unicode.IsDigit(p.s[i]) || strings.ContainsRune("._=,-+#", p.s[i])) {
		i++
	}
	if i == p.pos+2 || !unicode.IsLetter(p.s[p.pos+2]) {
		return node{}, false
	}
	if i >= len(p.s) {
		// "$[name" at the very end: drop the head.
		p.pos = i
		return node{kind: "fn"}, true
	}
	if p.s[i] != ' ' && p.s[i] != ']' {
		return node{}, false
	}
	p.pos = i
	if p.s[i] == ' ' {
		p.pos++
	}
	children := p.until("]")
	if p.has("]") {
		p.pos++
	}
	return node{kind: "fn", children: children}, true
}

// link is [label](url) or ?[label](url) (a link without preview).
func (p *parser) link() (node, bool) {
	start := p.pos
	if p.s[p.pos] == '?' {
		if !p.has("?[") {
			return node{}, false
		}
		p.pos++
	}
	p.pos++ // [
	label := p.until("]")
	if !p.has("](") {
		p.pos = start
		return node{}, false
	}
	p.pos += 2
	j := p.find(")")
	if j < 0 || !isURL(string(p.s[p.pos:j])) {
		p.pos = start
		return node{}, false
	}
	n := node{kind: "link", text: string(p.s[p.pos:j]), children: label}
	p.pos = j + 1
	return n, true
}

func isURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && !strings.ContainsAny(s, " \n\t")
}

// url is a bare https?:// address, ending before white space and the
// punctuation that usually follows one.
func (p *parser) url() (node, bool) {
	if !p.has("https://") && !p.has("http://") {
		return node{}, false
	}
	i := p.pos
	depth := 0
	for i < len(p.s) {
		c := p.s[i]
		if unicode.IsSpace(c) || strings.ContainsRune("<>\"「」（）", c) {
			break
		}
		if c == '(' {
			depth++
		}
		if c == ')' {
			if depth == 0 {
				break
			}
			depth--
		}
		i++
	}
	for i > p.pos && strings.ContainsRune(".,!?:;'", p.s[i-1]) {
		i--
	}
	u := string(p.s[p.pos:i])
	if !isURL(u) {
		return node{}, false
	}
	p.pos = i
	return node{kind: "url", text: u}, true
}

func isNameChar(c rune) bool {
	return c < 128 && (unicode.IsLetter(c) || unicode.IsDigit(c) || c == '_')
}

// mention is @user or @user@host.
func (p *parser) mention() (node, bool) {
	if p.prevIsWordChar() {
		return node{}, false
	}
	i := p.pos + 1
	for i < len(p.s) && (isNameChar(p.s[i]) || p.s[i] == '-') {
		i++
	}
	if i == p.pos+1 {
		return node{}, false
	}
	acct := string(p.s[p.pos+1 : i])
	if i+1 < len(p.s) && p.s[i] == '@' && isNameChar(p.s[i+1]) {
		j := i + 1
		for j < len(p.s) && (isNameChar(p.s[j]) || p.s[j] == '-' || p.s[j] == '.' || p.s[j] == ':') {
			j++
		}
		for j > i+1 && (p.s[j-1] == '.' || p.s[j-1] == ':') {
			j--
		}
		acct += "@" + string(p.s[i+1:j])
		i = j
	}
	p.pos = i
	return node{kind: "mention", text: acct}, true
}

// hashtag is #tag after white space or the start, ending at white space
// or punctuation.
func (p *parser) hashtag() (node, bool) {
	if p.pos > 0 && !unicode.IsSpace(p.s[p.pos-1]) && !strings.ContainsRune("(（「[", p.s[p.pos-1]) {
		return node{}, false
	}
	i := p.pos + 1
	for i < len(p.s) && !unicode.IsSpace(p.s[i]) && !strings.ContainsRune(".,!?'\"#:/[]()<>「」（）【】、。$*~`", p.s[i]) {
		i++
	}
	tag := string(p.s[p.pos+1 : i])
	if tag == "" || strings.IndexFunc(tag, func(r rune) bool { return !unicode.IsDigit(r) }) < 0 {
		return node{}, false // "#1" is not a tag
	}
	p.pos = i
	return node{kind: "hashtag", text: tag}, true
}

// Rendered is a note's text in the forms other platforms take.
type Rendered struct {
	Text     string   // plain text
	HTML     string   // simple HTML: <p>, <br>, <b>, <i>, <del>, <small>, <code>, <pre>, <blockquote>, <a>
	Mentions []string // user or user@host, in order, once each
	Tags     []string // hashtags, in order, once each
	Links    []string // link targets, in order
}

// Render turns MFM into plain text and simple HTML. base is the note's
// server, to which local mentions (@user) and hashtags link.
func Render(src string, base *url.URL) Rendered {
	nodes := parseMFM(src)
	var r Rendered
	seenM, seenT := map[string]bool{}, map[string]bool{}
	var walk func([]node)
	walk = func(ns []node) {
		for _, n := range ns {
			switch n.kind {
			case "mention":
				if !seenM[n.text] {
					seenM[n.text] = true
					r.Mentions = append(r.Mentions, n.text)
				}
			case "hashtag":
				if !seenT[n.text] {
					seenT[n.text] = true
					r.Tags = append(r.Tags, n.text)
				}
			case "link", "url":
				r.Links = append(r.Links, n.text)
			}
			walk(n.children)
		}
	}
	walk(nodes)
	var t, h strings.Builder
	plain(&t, nodes)
	r.Text = strings.TrimSpace(t.String())
	h.WriteString("<p>")
	toHTML(&h, nodes, base)
	h.WriteString("</p>")
	r.HTML = strings.ReplaceAll(h.String(), "<p></p>", "")
	return r
}

func plain(b *strings.Builder, ns []node) {
	for _, n := range ns {
		switch n.kind {
		case "text", "code", "pre", "url":
			b.WriteString(n.text)
		case "mention":
			b.WriteString("@" + n.text)
		case "hashtag":
			b.WriteString("#" + n.text)
		case "link":
			var l strings.Builder
			plain(&l, n.children)
			label := strings.TrimSpace(l.String())
			if label == "" || label == n.text {
				b.WriteString(n.text)
			} else {
				b.WriteString(label + " (" + n.text + ")")
			}
		case "quote":
			var q strings.Builder
			plain(&q, n.children)
			for i, l := range strings.Split(q.String(), "\n") {
				if i > 0 {
					b.WriteString("\n")
				}
				b.WriteString("> " + l)
			}
		default:
			plain(b, n.children)
		}
	}
}

func esc(s string) string { return html.EscapeString(s) }

func textHTML(s string) string {
	return strings.ReplaceAll(esc(s), "\n", "<br>")
}

func toHTML(b *strings.Builder, ns []node, base *url.URL) {
	for _, n := range ns {
		switch n.kind {
		case "text":
			b.WriteString(textHTML(n.text))
		case "bold":
			b.WriteString("<b>")
			toHTML(b, n.children, base)
			b.WriteString("</b>")
		case "italic":
			b.WriteString("<i>")
			toHTML(b, n.children, base)
			b.WriteString("</i>")
		case "strike":
			b.WriteString("<del>")
			toHTML(b, n.children, base)
			b.WriteString("</del>")
		case "small":
			b.WriteString("<small>")
			toHTML(b, n.children, base)
			b.WriteString("</small>")
		case "code":
			b.WriteString("<code>" + esc(n.text) + "</code>")
		case "pre":
			b.WriteString("</p><pre><code>" + esc(n.text) + "</code></pre><p>")
		case "quote":
			b.WriteString("</p><blockquote><p>")
			toHTML(b, n.children, base)
			b.WriteString("</p></blockquote><p>")
		case "url":
			b.WriteString(`<a href="` + esc(n.text) + `" rel="nofollow noopener">` + esc(n.text) + "</a>")
		case "link":
			b.WriteString(`<a href="` + esc(n.text) + `" rel="nofollow noopener">`)
			toHTML(b, n.children, base)
			b.WriteString("</a>")
		case "mention":
			b.WriteString(`<a href="` + esc(MentionURL(n.text, base)) + `" class="u-url mention">@` + esc(n.text) + "</a>")
		case "hashtag":
			b.WriteString(`<a href="` + esc(base.JoinPath("tags", n.text).String()) + `" rel="tag">#` + esc(n.text) + "</a>")
		default: // center, fn: their content only
			toHTML(b, n.children, base)
		}
	}
}

// MentionURL is the profile address of a mentioned user@host (or local
// user) as Misskey links it: https://host/@user.
func MentionURL(acct string, base *url.URL) string {
	user, host, ok := strings.Cut(acct, "@")
	if !ok {
		return base.JoinPath("@" + user).String()
	}
	return (&url.URL{Scheme: "https", Host: host, Path: "/@" + user}).String()
}
