package textfit

import (
	"regexp"
	"strings"

	"github.com/fedi-ferry/ferry/post"
)

// zwsp goes between "@" and a name so that no server reads a mention (and
// nobody is notified) while people still read "@name@host".
const zwsp = "\u200b"

// word is a word character as Mastodon's mention pattern means it
// (Ruby's [[:word:]], which is Unicode-aware, unlike RE2's \w).
const word = `\p{L}\p{M}\p{N}_`

var (
	// mentionRE finds a mention: "@" not preceded by a word character, "@"
	// or "/" (so e-mail addresses and profile paths stay untouched), a
	// name, and optionally "@host" with a port. Group 1 is what precedes
	// the "@", group 2 the name, group 3 the "@host".
	mentionRE = regexp.MustCompile(`(^|[^` + word + `@/` + zwsp + `])@([` + word + `.-]*[` + word + `])(@[` + word + `.-]*[` + word + `](?::\d+)?)?`)
	// mentionSpanRE finds a mention as a split must keep it whole,
	// including one already neutralised; group 1 is the mention.
	mentionSpanRE = regexp.MustCompile(`(?:^|[^` + word + `@/])(@` + zwsp + `?[` + word + `.-]*[` + word + `](?:@[` + word + `.-]*[` + word + `](?::\d+)?)?)`)
	hashtagRE     = regexp.MustCompile(`(^|[^` + word + `&#])#([` + word + `]+)`)
)

// NeutraliseMentions rewrites every mention outside URLs as
// "@\u200bname@host", which reads the same but which no server parses as a
// mention, so nobody is notified. A mention written without its host
// ("@name", as servers render mentions in HTML) gets the host of the first
// account in known with that user name (compared case-insensitively), so
// the text still says who was meant. Text that is already neutralised,
// e-mail addresses and URLs are left as they are.
func NeutraliseMentions(text string, known []post.Mention) string {
	hosts := map[string]string{}
	for _, m := range known {
		if user, host, ok := strings.Cut(m.Acct, "@"); ok {
			if _, dup := hosts[strings.ToLower(user)]; !dup {
				hosts[strings.ToLower(user)] = host
			}
		}
	}
	return outsideURLs(text, func(s string) string {
		return mentionRE.ReplaceAllStringFunc(s, func(m string) string {
			sub := mentionRE.FindStringSubmatch(m)
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

// LinkMentions replaces every mention outside URLs of an account in known
// that has a profile URL by that URL (a link notifies nobody), matching
// "@user@host" by the whole address and "@user" by the user name, both
// case-insensitively. Every other mention is neutralised as by
// NeutraliseMentions, without a host lookup.
func LinkMentions(text string, known []post.Mention) string {
	return outsideURLs(text, func(s string) string {
		return mentionRE.ReplaceAllStringFunc(s, func(m string) string {
			sub := mentionRE.FindStringSubmatch(m)
			lead, name := sub[1], sub[2]+sub[3]
			for _, x := range known {
				user, _, _ := strings.Cut(x.Acct, "@")
				if x.URL != "" && (strings.EqualFold(x.Acct, name) || strings.EqualFold(user, name)) {
					return lead + x.URL
				}
			}
			return lead + "@" + zwsp + name
		})
	})
}

// StripHashtags turns every "#tag" outside URLs into "tag", so that the
// text reads the same but files the post under no tag. Fragments such as
// "page#part" and "C#" are not hashtags and stay.
func StripHashtags(text string) string {
	return outsideURLs(text, func(s string) string { return hashtagRE.ReplaceAllString(s, "$1$2") })
}

// outsideURLs applies f to the stretches of text between URLs, so that
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
