package textfit

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// The properties every split, truncation and mention rewrite must have,
// checked on generated texts (a seeded generator, so a failure repeats)
// and by the fuzz targets below, whose seed corpus runs in every
// `go test`. Run `go test -fuzz FuzzSplit ./textfit` to search further.

// pieces are what generated texts are made of: words of every length,
// URLs short and long, mentions plain and neutralised, emoji that are
// one grapheme of many code points, and every kind of white space.
var pieces = []string{
	"a", "word", "longerword", "sentence.", "end!", "why?", "comma,", strings.Repeat("z", 70),
	"https://a.example", "http://b.example/path?q=1#frag", "https://c.example/" + strings.Repeat("u", 40),
	"https://d.example/" + strings.Repeat("v", 130), "(https://e.example/x)",
	"@alice", "@bob@b.example", "@carol@c.example:8443", "@\u200bdave@d.example", "me@mail.example",
	"👨‍👩‍👧", "🇩🇪", "e\u0301", "日本語", "\u00a0", "#tag",
	" ", " ", " ", "  ", "\n", "\n\n", "\t", "\r\n",
}

func genText(rng *rand.Rand) string {
	var b strings.Builder
	for range rng.IntN(120) {
		b.WriteString(pieces[rng.IntN(len(pieces))])
		if rng.IntN(3) > 0 {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

func genRules(rng *rand.Rand) Rules {
	r := Rules{Unit: Unit(rng.IntN(2))}
	if rng.IntN(2) == 0 {
		r.CharsPerURL = 1 + rng.IntN(30)
	}
	return r
}

func TestSplitProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 2026))
	for range 500 {
		text, r, limit, number := genText(rng), genRules(rng), 1+rng.IntN(300), rng.IntN(2) == 0
		checkSplit(t, r, text, limit, number)
		if t.Failed() {
			t.Fatalf("text %q, rules %+v, limit %d, number %v", text, r, limit, number)
		}
	}
}

func TestTruncateProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 2026))
	tails := []string{"…", "… https://old.example/@me/1", "…\n\nOriginally posted on 2023-04-05 at https://old.example/@me/1", "…\n\n" + strings.Repeat("n", 90)}
	for range 500 {
		text, r, limit, tail := genText(rng), genRules(rng), 1+rng.IntN(300), tails[rng.IntN(len(tails))]
		checkTruncate(t, r, text, tail, limit)
		if t.Failed() {
			t.Fatalf("text %q, tail %q, rules %+v, limit %d", text, tail, r, limit)
		}
	}
}

func TestMentionProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 2026))
	for range 500 {
		checkNeutralise(t, genText(rng))
		if t.Failed() {
			return
		}
	}
}

// checkSplit checks Split's contract where it promises it: limit at least
// the URL weight (and the numbering).
func checkSplit(t *testing.T, r Rules, text string, limit int, number bool) {
	t.Helper()
	if r.CharsPerURL > 0 && limit < r.CharsPerURL+8 {
		limit = r.CharsPerURL + 8
	}
	parts := r.Split(text, limit, SplitOptions{Number: number})
	checkThread(t, r, text, limit, parts, number && limit-8 >= minNumberedRoom)
}

func checkTruncate(t *testing.T, r Rules, text, tail string, limit int) {
	t.Helper()
	got := r.Truncate(text, tail, limit)
	if n := r.Count(got); n > limit && limit >= 1 {
		t.Errorf("Truncate counts %d > %d: %q", n, limit, got)
	}
	body, ok := strings.CutSuffix(got, tail)
	if !ok {
		body, ok = strings.CutSuffix(got, "…")
	}
	if !ok {
		t.Fatalf("Truncate %q ends with neither the tail nor …", got)
	}
	trimmed := strings.TrimLeftFunc(text, isSpaceRune)
	if !strings.HasPrefix(trimmed, body) {
		t.Fatalf("Truncate kept %q, not the start of the text", body)
	}
	// No URL or mention that fits the room is cut at the end of the body.
	room := limit - r.Count(tail)
	for _, s := range r.protected(trimmed, -1) {
		if s[0] < len(body) && s[1] > len(body) && r.Count(trimmed[s[0]:s[1]]) <= room {
			t.Errorf("Truncate cut %q", trimmed[s[0]:s[1]])
		}
	}
}

func checkNeutralise(t *testing.T, text string) {
	t.Helper()
	if !utf8.ValidString(text) {
		return
	}
	got := NeutraliseMentions(text, nil)
	if strings.ReplaceAll(got, "@"+zwsp, "@") != strings.ReplaceAll(text, "@"+zwsp, "@") {
		t.Errorf("NeutraliseMentions(%q) = %q changed more than the mentions", text, got)
	}
	if again := NeutraliseMentions(got, nil); again != got {
		t.Errorf("NeutraliseMentions is not idempotent on %q: %q then %q", text, got, again)
	}
	left := false
	outsideURLs(got, func(s string) string {
		left = left || mentionRE.MatchString(s)
		return s
	})
	if left {
		t.Errorf("a mention is left in %q", got)
	}
}

func FuzzSplit(f *testing.F) {
	f.Add("The quick brown fox jumps over the lazy dog. Again.", 30, 0, false, true)
	f.Add(words(60), 100, 23, false, true)
	f.Add("see https://old.example/"+strings.Repeat("y", 150)+" and @alice@old.example", 40, 0, false, false)
	f.Add("👨‍👩‍👧🇩🇪e\u0301 "+strings.Repeat("👍🏽", 50), 25, 0, true, true)
	f.Add("para one\n\npara two is longer than the first one\n\nthree", 28, 5, true, false)
	f.Add("", 10, 0, false, true)
	f.Add("   \n\t ", 1, 0, false, false)
	f.Fuzz(func(t *testing.T, text string, limit, perURL int, graphemes, number bool) {
		if !utf8.ValidString(text) || limit < 1 || limit > 5000 || perURL < 0 || perURL > 100 {
			t.Skip()
		}
		r := Rules{CharsPerURL: perURL}
		if graphemes {
			r.Unit = Graphemes
		}
		checkSplit(t, r, text, limit, number)
	})
}

func FuzzTruncate(f *testing.F) {
	f.Add(words(40), "… https://old.example/@me/1", 100, 23, false)
	f.Add(strings.Repeat("lorem ipsum ", 100), "…\n\nhttps://blog.example/post/1", 100, 23, true)
	f.Add(strings.Repeat("a", 30)+",https://blog.example/"+strings.Repeat("p", 30)+" more", "…", 70, 0, false)
	f.Add("x", "…", 1, 0, false)
	f.Fuzz(func(t *testing.T, text, tail string, limit, perURL int, graphemes bool) {
		// The tail is the caller's closing words: it starts with "…" so
		// that it cannot run together with the text it follows.
		if !utf8.ValidString(text) || !utf8.ValidString(tail) || !strings.HasPrefix(tail, "…") ||
			limit < 1 || limit > 5000 || perURL < 0 || perURL > 100 {
			t.Skip()
		}
		r := Rules{CharsPerURL: perURL}
		if graphemes {
			r.Unit = Graphemes
		}
		checkTruncate(t, r, text, tail, limit)
	})
}

func FuzzNeutraliseMentions(f *testing.F) {
	for _, s := range []string{"hi @alice@example.org!", "@bob thanks", "mail me: me@example.org", "see https://x.example/@bob",
		"(@carol@a.example)", "@alice,@bob", "@@x", "a@b @c@d:1", "@\u200balice", "@é@ü.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) { checkNeutralise(t, text) })
}
