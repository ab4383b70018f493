// Package textfit fits a post's text to what a server accepts: it counts
// text by the server's rules, splits a long text into a thread, truncates
// it with a closing link, and rewrites mentions so that nobody is notified.
// Every caller that posts text (the bridge, archive publish, every sink)
// uses this one implementation, so all of them agree on what fits.
//
// Two things are never cut: a URL and a mention. They are kept whole in one
// part (or left out of a truncated text whole), unless one alone counts
// more than a part may hold; only then is it cut, at a grapheme boundary.
// Every function is linear in the length of the text (splitting adds a
// logarithmic factor per part).
package textfit

import (
	"regexp"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"

	"github.com/fedi-ferry/ferry/post"
)

// Unit is what a server counts when it measures text.
type Unit int

// The units servers count in.
const (
	// Characters are Unicode code points: Mastodon, GoToSocial, Misskey.
	Characters Unit = iota
	// Graphemes are user-perceived characters (an emoji with its skin
	// tone is one): Bluesky.
	Graphemes
)

// Rules are how one server measures a post's text. The zero value counts
// code points with every URL at its own length.
type Rules struct {
	Unit Unit
	// CharsPerURL is what every URL counts, whatever its length, when it
	// is positive (Mastodon: 23); zero means a URL counts its own length.
	CharsPerURL int
}

// ForLimits returns the rules a server with limits lim counts by:
// Graphemes when lim.CountGraphemes, Characters otherwise.
func ForLimits(lim post.Limits) Rules {
	u := Characters
	if lim.CountGraphemes {
		u = Graphemes
	}
	return Rules{Unit: u, CharsPerURL: lim.CharsPerURL}
}

// urlRE finds the URLs a server turns into links (and may weigh as
// CharsPerURL): http or https up to white space, angle brackets or a quote.
var urlRE = regexp.MustCompile(`https?://[^\s<>"]+`)

// Count measures text as the server does: in r.Unit, with every URL
// counted as r.CharsPerURL when that is positive.
func (r Rules) Count(text string) int {
	n, last := 0, 0
	for _, loc := range urlRE.FindAllStringIndex(text, -1) {
		n += r.units(text[last:loc[0]])
		if r.CharsPerURL > 0 {
			n += r.CharsPerURL
		} else {
			n += r.units(text[loc[0]:loc[1]])
		}
		last = loc[1]
	}
	return n + r.units(text[last:])
}

// units counts s in r.Unit, ignoring URL weight.
func (r Rules) units(s string) int {
	if r.Unit == Graphemes {
		return uniseg.GraphemeClusterCount(s)
	}
	return utf8.RuneCountInString(s)
}

// atom is the smallest piece of text a split or a truncation may cut
// around: one grapheme cluster, or a whole URL or mention together with
// any grapheme it shares a boundary with.
type atom struct {
	start, end int  // byte offsets in the text
	weight     int  // what the atom counts, by the rules
	space      bool // white space a part may end or start at
}

// atomize cuts text into atoms. A URL or mention that counts more than
// limit is not kept whole, since no part of at most limit could hold it,
// except a URL when URLs have a fixed weight: any piece of it would still
// be a URL, weighing as much. Counting the atoms one by one gives the same
// total as Count on the text, and on any run of whole atoms.
func (r Rules) atomize(text string, limit int) []atom {
	spans := r.protected(text, limit)
	atoms := make([]atom, 0, len(text))
	state := -1
	rest := text
	pos := 0
	for rest != "" {
		var cluster string
		cluster, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		a := atom{start: pos, end: pos + len(cluster)}
		pos = a.end
		// A cluster inside a protected span joins it: the atom grows to
		// the span's end and to the cluster that holds that end.
		for len(spans) > 0 && spans[0][1] <= a.start {
			spans = spans[1:]
		}
		if len(spans) > 0 && spans[0][0] < a.end {
			// Spans that start inside the grown atom join it too.
			for len(spans) > 0 && spans[0][0] < a.end {
				for a.end < spans[0][1] && rest != "" {
					cluster, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
					a.end += len(cluster)
				}
				spans = spans[1:]
			}
			pos = a.end
			a.weight = r.Count(text[a.start:a.end])
			atoms = append(atoms, a)
			continue
		}
		a.space = isBreakSpace(cluster)
		switch n := utf8.RuneCountInString(cluster); {
		case r.Unit == Graphemes:
			a.weight = 1
		case n > limit:
			// A cluster of more code points than a part holds (a family
			// emoji in a tiny limit) can only be cut between them.
			for rest := cluster; rest != ""; {
				_, w := utf8.DecodeRuneInString(rest)
				rest = rest[w:]
				atoms = append(atoms, atom{start: a.start, end: a.start + w, weight: 1, space: a.space})
				a.start += w
			}
			continue
		default:
			a.weight = n
		}
		atoms = append(atoms, a)
	}
	return atoms
}

// isBreakSpace reports whether a cluster is white space a line may break
// at: no-break spaces keep their words together.
func isBreakSpace(cluster string) bool {
	for _, c := range cluster {
		if !unicode.IsSpace(c) || c == '\u00a0' || c == '\u2007' || c == '\u202f' {
			return false
		}
	}
	return true
}

// protected returns the byte spans, in order, of the URLs in text and of
// the mentions that overlap no URL, leaving out those that count more than
// limit (see atomize). A limit below 0 keeps them all.
func (r Rules) protected(text string, limit int) [][2]int {
	var spans [][2]int
	urls := urlRE.FindAllStringIndex(text, -1)
	ms := mentionSpanRE.FindAllStringSubmatchIndex(text, -1)
	keep := func(s [2]int) bool { return limit < 0 || r.Count(text[s[0]:s[1]]) <= limit }
	for _, m := range ms {
		s := [2]int{m[2], m[3]}
		for len(urls) > 0 && urls[0][1] <= s[0] {
			u := [2]int{urls[0][0], urls[0][1]}
			if r.CharsPerURL > 0 || keep(u) {
				spans = append(spans, u)
			}
			urls = urls[1:]
		}
		if (len(urls) == 0 || s[1] <= urls[0][0]) && keep(s) {
			spans = append(spans, s)
		}
	}
	for _, u := range urls {
		if s := [2]int{u[0], u[1]}; r.CharsPerURL > 0 || keep(s) {
			spans = append(spans, s)
		}
	}
	return spans
}
