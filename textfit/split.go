package textfit

import (
	"fmt"
	"sort"
	"strings"
)

// SplitOptions shape a thread.
type SplitOptions struct {
	// Number appends " (i/n)" to every part when there is more than one;
	// the numbering counts towards the limit.
	Number bool
	// MaxParts bounds the thread; 0 means no bound. A text that needs
	// more parts is truncated in the last one, closed by Tail.
	MaxParts int
	// Tail closes a last part truncated because of MaxParts (see
	// Truncate); "" means "…".
	Tail string
}

// minNumberedRoom is the least text a numbered part carries. When the
// limit leaves less beside the numbering, parts go unnumbered: a thread of
// posts that are mostly "(3/40)" helps nobody.
const minNumberedRoom = 20

// Split cuts text into the parts of a thread, each counting at most limit by
// r (numbering included). A text that fits is one part, unnumbered. Parts
// end at white space, by preference at a paragraph break and otherwise at
// the end of a sentence when one of those is in the second half of the
// part; a word too long for a part is cut at a grapheme boundary, never
// inside a URL or a mention that fits in a part.
//
// Without MaxParts truncation, text = w0 + p1 + w1 + p2 + … + pn + wn,
// where p1…pn are the parts without their " (i/n)" numbering, each wi is
// white space (empty where a word was cut), and no pi is empty or starts
// or ends with white space. A text of only white space gives no parts.
//
// A URL or mention is cut (at grapheme boundaries) only when it alone counts
// more than a part may hold. The guarantee "each part counts at most limit"
// holds for every limit ≥ 1 when r.CharsPerURL is 0, and for limit ≥
// r.CharsPerURL (plus the numbering) otherwise.
func (r Rules) Split(text string, limit int, o SplitOptions) []string {
	limit = max(limit, 1)
	f := r.newFitter(text, limit)
	if f.fits(f.first(0), limit) {
		if s := f.trimmed(0); s != "" {
			return []string{s}
		}
		return nil
	}
	if !o.Number {
		return f.split(limit, o)
	}
	// Reserve room for the numbering of the longest part count this
	// reserve allows: " (99/99)", then " (999/999)", and so on.
	for digits := 2; ; digits++ {
		reserve := 4 + 2*digits
		if limit-reserve < minNumberedRoom {
			return f.split(limit, o)
		}
		parts := r.newFitter(text, limit-reserve).split(limit-reserve, o)
		if len(parts) < pow10(digits) {
			for i := range parts {
				parts[i] = fmt.Sprintf("%s (%d/%d)", parts[i], i+1, len(parts))
			}
			return parts
		}
	}
}

// Truncate returns the start of text that fits in limit together with tail,
// followed by tail. The cut is at the end of a word when that keeps at
// least half of the room, and never inside a URL or a mention unless it
// alone is larger than the room. A tail that
// would leave less than a quarter of limit for the text is replaced by "…".
// Leading and trailing white space of text is dropped. The result counts
// at most limit when limit ≥ 1 and the tail is not chosen to merge with the
// text (it starts with white space or punctuation such as "…").
func (r Rules) Truncate(text, tail string, limit int) string {
	tail, room := r.closing(tail, limit)
	f := r.newFitter(text, room)
	return f.truncate(f.first(0), room, tail)
}

// closing returns the tail a truncation to limit ends with, and the room
// it leaves for the text.
func (r Rules) closing(tail string, limit int) (string, int) {
	room := limit - r.Count(tail)
	if room < limit/4 || room < 0 {
		return "…", max(limit-1, 0)
	}
	return tail, room
}

// fitter holds a text cut into atoms, with prefix sums of their weights
// and, for each atom, where the nearest break before it is.
type fitter struct {
	r     Rules
	text  string
	atoms []atom
	sum   []int // sum[i] = weight of atoms[:i]
	// wordEnd[i] is the largest k ≤ i such that atoms[k-1] ends a word
	// (is not space, and atoms[k] is space or k = len); 0 if none.
	wordEnd []int
	// paraEnd and sentEnd are the same for word ends followed by a
	// paragraph break ("\n\n") and for sentence ends (".", "!" or "?"
	// followed by a space).
	paraEnd, sentEnd []int
}

// newFitter cuts text into atoms no URL or mention of which counts more
// than limit (see atomize).
func (r Rules) newFitter(text string, limit int) *fitter {
	f := &fitter{r: r, text: text, atoms: r.atomize(text, limit)}
	n := len(f.atoms)
	f.sum = make([]int, n+1)
	for i, a := range f.atoms {
		f.sum[i+1] = f.sum[i] + a.weight
	}
	f.wordEnd, f.paraEnd, f.sentEnd = make([]int, n+1), make([]int, n+1), make([]int, n+1)
	for k := 1; k <= n; k++ {
		f.wordEnd[k], f.paraEnd[k], f.sentEnd[k] = f.wordEnd[k-1], f.paraEnd[k-1], f.sentEnd[k-1]
		if f.atoms[k-1].space || (k < n && !f.atoms[k].space) {
			continue
		}
		f.wordEnd[k] = k
		if k == n {
			continue
		}
		if c := text[f.atoms[k-1].end-1]; (c == '.' || c == '!' || c == '?') && text[f.atoms[k].start] == ' ' {
			f.sentEnd[k] = k
		}
		j := k
		for j < n && f.atoms[j].space {
			j++
		}
		if strings.Count(text[f.atoms[k].start:f.atoms[j-1].end], "\n") >= 2 {
			f.paraEnd[k] = k
		}
	}
	return f
}

// first returns the index of the first atom at or after i that is not
// white space.
func (f *fitter) first(i int) int {
	for i < len(f.atoms) && f.atoms[i].space {
		i++
	}
	return i
}

// last returns the end of the text's last word (an atom index).
func (f *fitter) last() int { return f.wordEnd[len(f.atoms)] }

// fits reports whether the rest of the text from atom i fits in room.
func (f *fitter) fits(i, room int) bool { return f.sum[max(f.last(), i)]-f.sum[i] <= room }

// trimmed is the text from atom i to its last word.
func (f *fitter) trimmed(i int) string {
	i = f.first(i)
	if e := f.last(); e > i {
		return f.text[f.atoms[i].start:f.atoms[e-1].end]
	}
	return ""
}

// reach returns the largest j ≥ i such that atoms[i:j] weigh at most room.
func (f *fitter) reach(i, room int) int {
	limit := f.sum[i] + room
	return i + sort.Search(len(f.atoms)-i, func(k int) bool { return f.sum[i+k+1] > limit })
}

// split cuts the text into parts of at most room each.
func (f *fitter) split(room int, o SplitOptions) []string {
	var parts []string
	for i := f.first(0); i < f.last(); i = f.first(i) {
		if f.fits(i, room) {
			parts = append(parts, f.trimmed(i))
			break
		}
		if o.MaxParts > 0 && len(parts) == o.MaxParts-1 {
			tail := o.Tail
			if tail == "" {
				tail = "…"
			}
			tail, left := f.r.closing(tail, room)
			parts = append(parts, f.truncate(i, left, tail))
			break
		}
		j := f.reach(i, room)
		end := f.wordEnd[j]
		if end <= i { // the first word alone is too long: cut it
			end = max(j, i+1)
		} else {
			half := f.sum[i] + (f.sum[end]-f.sum[i])/2
			if p := f.paraEnd[end]; p > i && f.sum[p] > half {
				end = p
			} else if s := f.sentEnd[end]; s > i && f.sum[s] > half {
				end = s
			}
		}
		parts = append(parts, f.text[f.atoms[i].start:f.atoms[end-1].end])
		i = end
	}
	return parts
}

// truncate cuts the text from atom i (not white space) to fit room and
// appends tail.
func (f *fitter) truncate(i, room int, tail string) string {
	end := f.reach(i, room)
	if e := f.wordEnd[end]; e > i && 2*(f.sum[e]-f.sum[i]) >= room {
		end = e
	}
	// A hard cut may stop after white space; the text ends at its word.
	for end > i && f.atoms[end-1].space {
		end--
	}
	if end <= i {
		return tail
	}
	return f.text[f.atoms[i].start:f.atoms[end-1].end] + tail
}

func pow10(n int) int {
	p := 1
	for range n {
		p *= 10
	}
	return p
}

// WithLinks returns text followed by a blank line and links, one a line
// (the addresses of files a destination would not take), within limit as
// r counts when it can: the links stay whole and the text before them is
// shortened with "…". limit ≤ 0 means no limit.
func (r Rules) WithLinks(text string, links []string, limit int) string {
	text = strings.TrimSpace(text)
	if len(links) == 0 {
		return text
	}
	tail := "\n\n" + strings.Join(links, "\n")
	if text == "" {
		return strings.TrimSpace(tail)
	}
	if limit <= 0 || r.Count(text+tail) <= limit {
		return text + tail
	}
	return r.Truncate(text, "…", max(limit-r.Count(tail), 1)) + tail
}
