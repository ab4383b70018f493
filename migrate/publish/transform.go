package publish

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/fedi-ferry/ferry/post"
)

// zwsp is put between "@" and a name so that no server reads a mention
// (and nobody is notified) while people still read "@name@host".
const zwsp = "\u200b"

var (
	// A mention: "@" not preceded by a word character (e-mail addresses
	// stay untouched), then a name, then optionally "@host".
	mentionRE = regexp.MustCompile(`(^|[^\w@` + zwsp + `])@([\w.-]*\w)(@[\w.-]+\w(?::\d+)?)?`)
	hashtagRE = regexp.MustCompile(`(^|[^\w&#])#(\w+)`)
	urlRE     = regexp.MustCompile(`https?://[^\s<>"]+`)
)

// neutralizeMentions rewrites every mention in text as "@\u200bname@host":
// local-form mentions ("@name", as a server renders a mention in HTML) get
// their host back from the post's mention list, so the text still says
// who was meant without pinging anyone.
func neutralizeMentions(text string, mentions []post.Mention) string {
	hosts := map[string]string{}
	for _, m := range mentions {
		if user, host, ok := strings.Cut(m.Acct, "@"); ok {
			if _, dup := hosts[strings.ToLower(user)]; !dup {
				hosts[strings.ToLower(user)] = host
			}
		}
	}
	return outsideURLs(text, func(text string) string {
		return mentionRE.ReplaceAllStringFunc(text, func(s string) string {
			sub := mentionRE.FindStringSubmatch(s)
			lead, name, host := sub[1], sub[2], sub[3]
			if host == "" {
				if h, ok := hosts[strings.ToLower(name)]; ok {
					host = "@" + h
				}
			}
			return lead + "@" + zwsp + name + host
		})
	})
}

// stripHashtags turns "#tag" into "tag".
func stripHashtags(text string) string {
	return outsideURLs(text, func(text string) string { return hashtagRE.ReplaceAllString(text, "$1$2") })
}

// outsideURLs applies f to the parts of text that are not URLs, so that
// "https://host/@name" and "https://host/page#part" stay working links.
func outsideURLs(text string, f func(string) string) string {
	var b strings.Builder
	last := 0
	for _, loc := range urlRE.FindAllStringIndex(text, -1) {
		b.WriteString(f(text[last:loc[0]]))
		b.WriteString(text[loc[0]:loc[1]])
		last = loc[1]
	}
	b.WriteString(f(text[last:]))
	return b.String()
}

// pollText renders a poll as text, with the original results.
func pollText(p *post.Poll) string {
	var b strings.Builder
	b.WriteString("\n\n")
	for i, o := range p.Options {
		votes := ""
		if i < len(p.Votes) {
			votes = fmt.Sprintf(" (%d)", p.Votes[i])
		}
		fmt.Fprintf(&b, "☐ %s%s\n", o, votes)
	}
	if !p.ExpiresAt.IsZero() {
		fmt.Fprintf(&b, "(poll, closed %s)", p.ExpiresAt.UTC().Format("2006-01-02"))
	} else {
		b.WriteString("(poll)")
	}
	return b.String()
}

// length counts text as the server does: characters, with every URL
// counted as charsPerURL when that is set.
func length(text string, charsPerURL int) int {
	n := utf8.RuneCountInString(text)
	if charsPerURL <= 0 {
		return n
	}
	for _, u := range urlRE.FindAllString(text, -1) {
		n += charsPerURL - utf8.RuneCountInString(u)
	}
	return n
}

// splitText cuts text into parts of at most limit (as length counts),
// at white space where possible, numbering them " (i/n)".
func splitText(text string, limit, charsPerURL int) []string {
	budget := limit - len(" (99/99)")
	if budget < 20 {
		budget = max(limit, 1)
	}
	var parts []string
	var cur strings.Builder
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			parts = append(parts, s)
		}
		cur.Reset()
	}
	for _, word := range splitKeep(text) {
		if length(cur.String()+word, charsPerURL) <= budget {
			cur.WriteString(word)
			continue
		}
		flush()
		for length(word, charsPerURL) > budget { // one huge word
			rs := []rune(strings.TrimLeft(word, " \t\n"))
			parts = append(parts, string(rs[:budget]))
			word = string(rs[budget:])
		}
		cur.WriteString(strings.TrimLeft(word, " \t\n"))
	}
	flush()
	if len(parts) > 1 {
		for i := range parts {
			parts[i] += fmt.Sprintf(" (%d/%d)", i+1, len(parts))
		}
	}
	return parts
}

// splitKeep splits text into words, each keeping the white space before it.
func splitKeep(text string) []string {
	var out []string
	start := 0
	inSpace := false
	for i, r := range text {
		sp := r == ' ' || r == '\n' || r == '\t'
		if !sp && inSpace && i > start {
			out = append(out, text[start:i])
			start = i
		}
		inSpace = sp
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}

// truncate cuts text at a word boundary so that it fits limit (as length
// counts) with tail appended. A tail too long to leave room for text is
// not the caller's intent: the text is then cut hard with "…".
func truncate(text, tail string, limit, charsPerURL int) string {
	budget := limit - length(tail, charsPerURL)
	if budget < limit/4 {
		tail = "…"
		budget = limit - 1
	}
	rs := []rune(text)
	lo, hi := 0, len(rs)
	for lo < hi { // the longest prefix that fits
		mid := (lo + hi + 1) / 2
		if length(string(rs[:mid]), charsPerURL) <= budget {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	cut := string(rs[:lo])
	if lo < len(rs) {
		if i := strings.LastIndexAny(cut, " \n"); i > len(cut)/2 {
			cut = cut[:i]
		}
	}
	return strings.TrimSpace(cut) + tail
}
