package textfit

import (
	"strconv"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/post"
)

var mastodon = Rules{CharsPerURL: 23}

func TestCount(t *testing.T) {
	long := "https://old.example/" + strings.Repeat("x", 100)
	for _, tc := range []struct {
		text string
		r    Rules
		want int
	}{
		{"hello", mastodon, 5},
		{"héllo wörld", Rules{}, 11},
		{"see https://example.com/a/very/long/path?with=query", mastodon, 4 + 23},
		{"see https://example.com/a/very/long/path?with=query", Rules{}, 51},
		{"two https://a.example and http://b.example/x", Rules{CharsPerURL: 25}, 4 + 25 + 5 + 25},
		{"see " + long, Rules{}, 4 + len(long)},
		{"a http://s.example b " + long, mastodon, 2 + 23 + 3 + 23}, // short URLs count as the reserve too, as Mastodon does
		{"@" + zwsp + "alice", mastodon, 7},
		// A family emoji is 5 code points and one grapheme; a flag is two
		// code points, one grapheme; e + combining accent is two, one.
		{"👨‍👩‍👧 🇩🇪 e\u0301", Rules{}, 5 + 1 + 2 + 1 + 2},
		{"👨‍👩‍👧 🇩🇪 e\u0301", Rules{Unit: Graphemes}, 1 + 1 + 1 + 1 + 1},
		{"👍🏽 https://x.example/" + strings.Repeat("y", 50), Rules{Unit: Graphemes, CharsPerURL: 10}, 1 + 1 + 10},
	} {
		if got := tc.r.Count(tc.text); got != tc.want {
			t.Errorf("%+v.Count(%.40q) = %d, want %d", tc.r, tc.text, got, tc.want)
		}
	}
}

func TestForLimits(t *testing.T) {
	if got := ForLimits(post.Limits{MaxChars: 500, CharsPerURL: 23}); got != (Rules{Unit: Characters, CharsPerURL: 23}) {
		t.Errorf("ForLimits = %+v", got)
	}
	if got := ForLimits(post.Limits{MaxChars: 300, CountGraphemes: true}); got != (Rules{Unit: Graphemes}) {
		t.Errorf("ForLimits(graphemes) = %+v", got)
	}
}

// words returns n distinct words, joined by spaces.
func words(n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = "word" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
	}
	return strings.Join(ws, " ")
}

func TestSplitSentencesAndMarkers(t *testing.T) {
	text := strings.TrimSpace(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 16)) // 720 chars
	parts := mastodon.Split(text, 500, SplitOptions{Number: true, MaxParts: 20, Tail: "…\n\nhttps://example.com/p/1"})
	if len(parts) != 2 {
		t.Fatalf("%d parts: %q", len(parts), parts)
	}
	for i, p := range parts {
		if n := mastodon.Count(p); n > 500 {
			t.Errorf("part %d has %d chars", i, n)
		}
		if !strings.HasSuffix(p, []string{" (1/2)", " (2/2)"}[i]) {
			t.Errorf("part %d lacks its marker: %q", i, p)
		}
	}
	if got := strings.TrimSuffix(parts[0], " (1/2)") + " " + strings.TrimSuffix(parts[1], " (2/2)"); got != text {
		t.Errorf("the parts do not rejoin to the text")
	}
	// Parts end at a sentence when one is in reach.
	if !strings.HasSuffix(strings.TrimSuffix(parts[0], " (1/2)"), ".") {
		t.Errorf("first part does not end at a sentence: %q", parts[0])
	}
	// A URL is never cut, and counts as the server counts it.
	long := strings.Repeat("word ", 90) + "https://example.com/" + strings.Repeat("x", 300)
	checkThread(t, mastodon, long, 500, mastodon.Split(long, 500, SplitOptions{Number: true}), true)
	if got := mastodon.Split("short", 500, SplitOptions{Number: true}); len(got) != 1 || got[0] != "short" {
		t.Errorf("short text split: %q", got)
	}
	if got := mastodon.Split(" \n ", 500, SplitOptions{Number: true}); len(got) != 0 {
		t.Errorf("white space split: %q", got)
	}
}

func TestSplitParagraphs(t *testing.T) {
	text := words(30) + "\n\n" + words(30)
	parts := Rules{}.Split(text, 300, SplitOptions{})
	if len(parts) != 2 || parts[0] != words(30) || parts[1] != words(30) {
		t.Errorf("the split does not end at the paragraph: %q", parts)
	}
}

func TestSplitCounts(t *testing.T) {
	long := "https://old.example/" + strings.Repeat("y", 150)
	for _, tc := range []struct {
		name  string
		text  string
		limit int
		r     Rules
		parts int
	}{
		{"fits", "short text", 100, mastodon, 1},
		{"words", words(60), 100, mastodon, 6},
		{"a URL counts as the reserve", words(10) + " " + long + " " + words(10), 120, mastodon, 2},
		{"a URL longer than a part is cut", words(10) + " " + long + " " + words(10), 120, Rules{}, 4},
		{"one huge word", strings.Repeat("z", 250), 100, Rules{}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts := tc.r.Split(tc.text, tc.limit, SplitOptions{Number: true})
			if len(parts) != tc.parts {
				t.Errorf("%d parts, want %d: %q", len(parts), tc.parts, parts)
			}
			checkThread(t, tc.r, tc.text, tc.limit, parts, true)
		})
	}
}

// A thread longer than MaxParts ends with a truncated part and its tail.
func TestSplitMaxParts(t *testing.T) {
	parts := mastodon.Split(words(200), 100, SplitOptions{Number: true, MaxParts: 3, Tail: "…\n\nhttps://blog.example/1"})
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	for i, p := range parts {
		if n := mastodon.Count(p); n > 100 {
			t.Errorf("part %d counts %d", i+1, n)
		}
	}
	if !strings.HasSuffix(parts[2], "…\n\nhttps://blog.example/1 (3/3)") {
		t.Errorf("last part %q", parts[2])
	}
}

func TestTruncate(t *testing.T) {
	link := "https://old.example/@me/1"
	for _, tc := range []struct {
		name       string
		text, tail string
		limit      int
		r          Rules
		wantPrefix string
	}{
		{"cut at a word", words(40), "… " + link, 100, mastodon, "worda wordxb"},
		{"URL counted as the reserve", words(40), "… " + link, 60, mastodon, "worda"},
		{"URL counted in full", words(40), "… " + link, 60, Rules{}, "worda"},
		{"tail too long for the limit", words(40), "…\n\n" + strings.Repeat("n", 90), 100, Rules{}, "worda"},
		{"lorem", strings.Repeat("lorem ipsum ", 100), "…\n\nhttps://blog.example/post/1", 100, mastodon, "lorem ipsum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.r.Truncate(tc.text, tc.tail, tc.limit)
			if n := tc.r.Count(got); n > tc.limit {
				t.Errorf("truncated text counts %d > %d: %q", n, tc.limit, got)
			}
			if !strings.HasPrefix(got, tc.wantPrefix) {
				t.Errorf("truncated text %q does not start with %q", got, tc.wantPrefix)
			}
			tail := tc.tail
			if tc.r.Count(tail) > tc.limit*3/4 {
				tail = "…"
			}
			if !strings.HasSuffix(got, tail) {
				t.Errorf("truncated text %q does not end with %q", got, tail)
			}
			body := strings.TrimSuffix(got, tail)
			if !strings.HasPrefix(tc.text, body) || strings.HasSuffix(body, " ") {
				t.Errorf("the kept text %q is not a prefix of the original cut at a word", body)
			}
			if rest := tc.text[len(body):]; rest != "" && !strings.HasPrefix(rest, " ") {
				t.Errorf("cut inside a word: …%q|%.10q", body[max(0, len(body)-10):], rest)
			}
		})
	}
}

// A URL at the cut is left out whole, never cut.
func TestTruncateKeepsURLWhole(t *testing.T) {
	url := "https://blog.example/" + strings.Repeat("p", 30)
	text := strings.Repeat("a", 30) + "," + url + " more"
	got := Rules{}.Truncate(text, "…", 70)
	if got != strings.Repeat("a", 30)+",…" {
		t.Errorf("Truncate = %q", got)
	}
}

func TestNeutraliseMentions(t *testing.T) {
	known := []post.Mention{{Acct: "alice@old.example"}, {Acct: "Bob@other.example"}}
	for _, tc := range []struct {
		name, in, want string
		known          []post.Mention
	}{
		{"full form", "hi @alice@example.org!", "hi @" + zwsp + "alice@example.org!", nil},
		{"local form, nothing known", "@bob thanks", "@" + zwsp + "bob thanks", nil},
		{"e-mail address", "mail me: me@example.org", "mail me: me@example.org", nil},
		{"in a URL", "see https://x.example/@bob", "see https://x.example/@bob", nil},
		{"in brackets", "(@carol@a.example)", "(@" + zwsp + "carol@a.example)", nil},
		{"local form gets its host back", "hello @alice how are you", "hello @" + zwsp + "alice@old.example how are you", known},
		{"case-insensitive host lookup", "@bob hi", "@" + zwsp + "bob@other.example hi", known},
		{"port", "cc @carol@third.example:8443.", "cc @" + zwsp + "carol@third.example:8443.", known},
		{"unknown local name", "(@dave)", "(@" + zwsp + "dave)", known},
		{"line starts and ends", "@alice\n@bob", "@" + zwsp + "alice@old.example\n@" + zwsp + "bob@other.example", known},
		{"adjacent", "@alice,@bob", "@" + zwsp + "alice@old.example,@" + zwsp + "bob@other.example", known},
		{"URL with @ and a mention", "see https://old.example/@alice/123 and @alice", "see https://old.example/@alice/123 and @" + zwsp + "alice@old.example", known},
		{"already neutralised", "@" + zwsp + "alice@old.example", "@" + zwsp + "alice@old.example", known},
		{"lone at sign", "meet @ 5", "meet @ 5", known},
		{"profile path", "x.example/@alice", "x.example/@alice", known},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NeutraliseMentions(tc.in, tc.known); got != tc.want {
				t.Errorf("NeutraliseMentions(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestLinkMentions(t *testing.T) {
	known := []post.Mention{{Acct: "bob@b.example", URL: "https://b.example/@bob"}, {Acct: "eve@e.example"}}
	for in, want := range map[string]string{
		"hello @bob@b.example":       "hello https://b.example/@bob",
		"hello @Bob":                 "hello https://b.example/@bob",
		"hi @eve@e.example":          "hi @" + zwsp + "eve@e.example",
		"hi @carol":                  "hi @" + zwsp + "carol",
		"see https://x.example/@bob": "see https://x.example/@bob",
	} {
		if got := LinkMentions(in, known); got != want {
			t.Errorf("LinkMentions(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStripHashtags(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"#hello world #Go2", "hello world Go2"},
		{"(#tag) #tag.", "(tag) tag."},
		{"C# and F#", "C# and F#"},
		{"##double", "##double"},
		{"https://old.example/page#part #tag", "https://old.example/page#part tag"},
		{"https://old.example/#/route", "https://old.example/#/route"},
	} {
		if got := StripHashtags(tc.in); got != tc.want {
			t.Errorf("StripHashtags(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// checkThread checks the contract of Split on parts of text: every part
// within limit, numbered when asked and there are several, the parts
// (without numbering) found in text in order with only white space
// between them, and every URL and mention that fits a part kept whole.
func checkThread(t *testing.T, r Rules, text string, limit int, parts []string, number bool) {
	t.Helper()
	rest := text
	for i, p := range parts {
		if n := r.Count(p); n > limit {
			t.Errorf("part %d counts %d > %d: %q", i+1, n, limit, p)
		}
		if number && len(parts) > 1 {
			suffix := " (" + strconv.Itoa(i+1) + "/" + strconv.Itoa(len(parts)) + ")"
			if !strings.HasSuffix(p, suffix) {
				t.Fatalf("part %d %q does not end with %q", i+1, p, suffix)
			}
			p = strings.TrimSuffix(p, suffix)
		}
		if p == "" || p != strings.TrimFunc(p, isSpaceRune) {
			t.Errorf("part %d is empty or not trimmed: %q", i+1, p)
		}
		gap := strings.TrimLeftFunc(rest, isSpaceRune)
		if !strings.HasPrefix(gap, p) {
			t.Fatalf("part %d %q is not the next text after part %d:\n%q", i+1, p, i, gap[:min(len(gap), 200)])
		}
		rest = gap[len(p):]
	}
	if strings.TrimFunc(rest, isSpaceRune) != "" {
		t.Errorf("text left over after the parts: %q", rest)
	}
	// URLs and mentions that fit a part are in one part whole.
	room := limit
	if number && len(parts) > 1 {
		room -= 8
	}
	spans := r.protected(text, -1)
	whole := strings.Join(parts, "\x00")
	for _, s := range spans {
		piece := text[s[0]:s[1]]
		if r.Count(piece) <= room && !strings.Contains(whole, piece) {
			t.Errorf("%q was cut", piece)
		}
	}
}

func isSpaceRune(c rune) bool { return isBreakSpace(string(c)) }
