package atproto

import (
	"context"
	"net/url"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/rivo/uniseg"
)

// MaxPostGraphemes is the length limit of a post's text in app.bsky.feed.post, counted in
// grapheme clusters (what a reader sees as one character).
const MaxPostGraphemes = 300

// MaxPostBytes is the limit of a post's text in UTF-8 bytes, which the lexicon sets beside
// the grapheme limit.
const MaxPostBytes = 3000

// maxTagRunes is the longest hashtag (without the '#') that becomes a tag facet, as in
// Bluesky's own clients.
const maxTagRunes = 64

// Graphemes returns the number of grapheme clusters in s: the unit of Bluesky's
// MaxPostGraphemes limit, so an emoji made of several code points (a flag, a family, a
// skin tone) counts as one.
func Graphemes(s string) int { return uniseg.GraphemeClusterCount(s) }

// HandleResolver returns the DID of a handle, for mention facets. It returns an error when
// the handle does not resolve; Facets then leaves that mention as plain text.
type HandleResolver func(ctx context.Context, handle syntax.Handle) (syntax.DID, error)

// Facets finds the links, mentions and hashtags in text and returns them as rich-text
// facets whose indexes are UTF-8 byte offsets into text, in order and never overlapping.
//
// Links are http and https URLs that start a word (or follow '('); trailing punctuation
// that usually ends a sentence is not part of the link. Mentions are @handle (a full
// domain-style handle such as @alice.example.com) resolved to a DID by resolve; a mention
// that does not resolve, or any mention when resolve is nil, stays plain text.
// Fediverse-style @user@server mentions are not handles and are left alone. Hashtags are
// '#' (or the full-width '＃') followed by up to 64 characters that are not all digits.
// Facets returns an error only when ctx ends while resolving mentions.
func Facets(ctx context.Context, text string, resolve HandleResolver) ([]*bsky.RichtextFacet, error) {
	var facets []*bsky.RichtextFacet
	add := func(start, end int, f *bsky.RichtextFacet_Features_Elem) {
		facets = append(facets, &bsky.RichtextFacet{
			Index:    &bsky.RichtextFacet_ByteSlice{ByteStart: int64(start), ByteEnd: int64(end)},
			Features: []*bsky.RichtextFacet_Features_Elem{f},
		})
	}
	prev := rune(-1) // the rune before i; -1 at the start of the text
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		atWord := prev == -1 || unicode.IsSpace(prev)
		afterParen := prev == '('
		next := i + size
		switch {
		case (atWord || afterParen) && hasURLPrefix(text[i:]):
			if end, ok := linkEnd(text, i); ok {
				add(i, end, &bsky.RichtextFacet_Features_Elem{
					RichtextFacet_Link: &bsky.RichtextFacet_Link{Uri: text[i:end]},
				})
				next = end
			}
		case (atWord || afterParen) && r == '@':
			if end, handle, ok := mentionEnd(text, i+size); ok {
				next = end
				if resolve != nil {
					did, err := resolve(ctx, handle)
					if err != nil && ctx.Err() != nil {
						return nil, ctx.Err()
					}
					if err == nil {
						add(i, end, &bsky.RichtextFacet_Features_Elem{
							RichtextFacet_Mention: &bsky.RichtextFacet_Mention{Did: did.String()},
						})
					}
				}
			}
		case atWord && (r == '#' || r == '＃'):
			if end, tag, ok := tagEnd(text, i+size); ok {
				add(i, end, &bsky.RichtextFacet_Features_Elem{
					RichtextFacet_Tag: &bsky.RichtextFacet_Tag{Tag: tag},
				})
				next = end
			}
		}
		if next != i+size {
			// Skipped over a facet: the rune before the next position is its last rune.
			prev, _ = utf8.DecodeLastRuneInString(text[:next])
		} else {
			prev = r
		}
		i = next
	}
	sort.SliceStable(facets, func(a, b int) bool { return facets[a].Index.ByteStart < facets[b].Index.ByteStart })
	return facets, nil
}

func hasURLPrefix(s string) bool {
	return hasPrefixFold(s, "https://") || hasPrefixFold(s, "http://")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// linkEnd returns the end of the URL starting at start: up to the next white space, minus
// trailing punctuation that ends a sentence rather than the URL (and a closing parenthesis
// without its opening one, as in "(see https://example.com)").
func linkEnd(text string, start int) (int, bool) {
	end := start
	for end < len(text) {
		r, size := utf8.DecodeRuneInString(text[end:])
		if unicode.IsSpace(r) {
			break
		}
		end += size
	}
	for end > start {
		r, size := utf8.DecodeLastRuneInString(text[start:end])
		if strings.ContainsRune(".,;:!?\"'", r) || (r == ')' && !strings.Contains(text[start:end-size], "(")) {
			end -= size
			continue
		}
		break
	}
	u, err := url.Parse(text[start:end])
	if err != nil || u.Host == "" {
		return 0, false
	}
	return end, true
}

// mentionEnd parses a handle starting at start (just after '@') and returns the end of the
// mention. A handle is a run of letters, digits, dots and hyphens that ends at a word
// boundary; a trailing dot or hyphen belongs to the sentence, not the handle.
func mentionEnd(text string, start int) (int, syntax.Handle, bool) {
	end := start
	for end < len(text) {
		c := text[end]
		if c == '.' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			end++
			continue
		}
		break
	}
	for end > start && (text[end-1] == '.' || text[end-1] == '-') {
		end--
	}
	if end < len(text) {
		// A handle followed directly by a word character ("@a.b_c") is not a mention, nor
		// is the first half of a fediverse address ("@user.name@server.example").
		r, _ := utf8.DecodeRuneInString(text[end:])
		if r == '_' || r == '@' || unicode.IsLetter(r) || unicode.IsDigit(r) {
			return 0, "", false
		}
	}
	h, err := syntax.ParseHandle(text[start:end])
	if err != nil {
		return 0, "", false
	}
	return end, h.Normalize(), true
}

// tagEnd parses a hashtag starting at start (just after the '#') and returns the end of
// the facet and the tag without '#'. The tag runs to the next white space or invisible
// separator, loses trailing punctuation, and must contain something other than digits (so
// "#1" stays text); the keycap emoji "#️⃣" is not a tag.
func tagEnd(text string, start int) (int, string, bool) {
	end := start
	for end < len(text) {
		r, size := utf8.DecodeRuneInString(text[end:])
		if unicode.IsSpace(r) || isInvisibleSeparator(r) {
			break
		}
		if end == start && r == '\ufe0f' {
			return 0, "", false
		}
		end += size
	}
	for end > start {
		r, size := utf8.DecodeLastRuneInString(text[start:end])
		if !unicode.IsPunct(r) {
			break
		}
		end -= size
	}
	tag := text[start:end]
	if tag == "" || utf8.RuneCountInString(tag) > maxTagRunes {
		return 0, "", false
	}
	if !strings.ContainsFunc(tag, func(r rune) bool { return !unicode.IsDigit(r) && !unicode.IsPunct(r) }) {
		return 0, "", false
	}
	return end, tag, true
}

// isInvisibleSeparator reports the zero-width and soft-hyphen characters that end a
// hashtag although they are not white space.
func isInvisibleSeparator(r rune) bool {
	switch r {
	case '\u00ad', '\u2060', '\u200a', '\u200b', '\u200c', '\u200d', '\u20e2':
		return true
	}
	return false
}
