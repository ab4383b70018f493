package atproto

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// known resolves the handles of a fixed table, like a PDS answering for its accounts.
func known(table map[string]string) HandleResolver {
	return func(_ context.Context, h syntax.Handle) (syntax.DID, error) {
		if did, ok := table[h.String()]; ok {
			return syntax.DID(did), nil
		}
		return "", errors.New("handle not found")
	}
}

// facetSpan is what a test expects of one facet: the text it covers and its feature.
type facetSpan struct {
	text, kind, value string
}

func spans(t *testing.T, text string, facets []*bsky.RichtextFacet) []facetSpan {
	t.Helper()
	var out []facetSpan
	last := int64(-1)
	for _, f := range facets {
		s, e := f.Index.ByteStart, f.Index.ByteEnd
		if s < 0 || e > int64(len(text)) || s >= e {
			t.Fatalf("facet [%d,%d) outside text of %d bytes", s, e, len(text))
		}
		if s < last {
			t.Fatalf("facet [%d,%d) overlaps or is out of order (previous ended at %d)", s, e, last)
		}
		last = e
		if len(f.Features) != 1 {
			t.Fatalf("facet [%d,%d) has %d features", s, e, len(f.Features))
		}
		ft := f.Features[0]
		sp := facetSpan{text: text[s:e]}
		switch {
		case ft.RichtextFacet_Link != nil:
			sp.kind, sp.value = "link", ft.RichtextFacet_Link.Uri
		case ft.RichtextFacet_Mention != nil:
			sp.kind, sp.value = "mention", ft.RichtextFacet_Mention.Did
		case ft.RichtextFacet_Tag != nil:
			sp.kind, sp.value = "tag", ft.RichtextFacet_Tag.Tag
		}
		out = append(out, sp)
	}
	return out
}

func TestFacets(t *testing.T) {
	resolve := known(map[string]string{
		"alice.test":        "did:plc:alice",
		"bob.example.com":   "did:plc:bob",
		"carol.bsky.social": "did:plc:carol",
	})
	tests := []struct {
		name string
		text string
		want []facetSpan
	}{
		{
			name: "plain ASCII",
			text: "read https://example.com/a?b=c#d now, @alice.test #ferry",
			want: []facetSpan{
				{"https://example.com/a?b=c#d", "link", "https://example.com/a?b=c#d"},
				{"@alice.test", "mention", "did:plc:alice"},
				{"#ferry", "tag", "ferry"},
			},
		},
		{
			name: "emoji before every facet",
			text: "🚢👩‍👩‍👧 https://example.com/🙂 👋🏽 @bob.example.com 🇫🇷 #café",
			want: []facetSpan{
				{"https://example.com/🙂", "link", "https://example.com/🙂"},
				{"@bob.example.com", "mention", "did:plc:bob"},
				{"#café", "tag", "café"},
			},
		},
		{
			name: "CJK text and full-width hash",
			text: "日本語のテキスト https://例え.jp/パス 東京 @carol.bsky.social さん ＃東京タワー",
			want: []facetSpan{
				{"https://例え.jp/パス", "link", "https://例え.jp/パス"},
				{"@carol.bsky.social", "mention", "did:plc:carol"},
				{"＃東京タワー", "tag", "東京タワー"},
			},
		},
		{
			name: "sentence punctuation stays outside",
			text: "(see https://example.com/x). Ask @alice.test. Tagged #go!",
			want: []facetSpan{
				{"https://example.com/x", "link", "https://example.com/x"},
				{"@alice.test", "mention", "did:plc:alice"},
				{"#go", "tag", "go"},
			},
		},
		{
			name: "parenthesis inside a URL is kept",
			text: "https://en.wikipedia.org/wiki/Ferry_(disambiguation)",
			want: []facetSpan{
				{"https://en.wikipedia.org/wiki/Ferry_(disambiguation)", "link", "https://en.wikipedia.org/wiki/Ferry_(disambiguation)"},
			},
		},
		{
			name: "what is not a facet",
			text: "mail a@alice.test, @unknown.test, @alice@example.social, #123, #️⃣, x#tag, http://, @x",
			want: nil,
		},
		{
			name: "mention resolves after the fediverse-style form is skipped",
			text: "@alice.test@elsewhere stays text; @alice.test is a mention",
			want: []facetSpan{
				{"@alice.test", "mention", "did:plc:alice"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			facets, err := Facets(context.Background(), tc.text, resolve)
			if err != nil {
				t.Fatal(err)
			}
			got := spans(t, tc.text, facets)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d facets %+v, want %d %+v", len(got), got, len(tc.want), tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("facet %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestFacetsByteOffsets(t *testing.T) {
	// The offsets are UTF-8 bytes, not runes or UTF-16 units: "🚢 " is 5 bytes, 2 runes,
	// 3 UTF-16 units.
	text := "🚢 #tag"
	facets, err := Facets(context.Background(), text, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(facets) != 1 || facets[0].Index.ByteStart != 5 || facets[0].Index.ByteEnd != 9 {
		t.Fatalf("facets = %+v, want one at [5,9)", facets)
	}
}

func TestFacetsNilResolverSkipsMentions(t *testing.T) {
	facets, err := Facets(context.Background(), "hi @alice.test https://example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := spans(t, "hi @alice.test https://example.com", facets)
	if len(got) != 1 || got[0].kind != "link" {
		t.Fatalf("facets = %+v, want only the link", got)
	}
}

func TestFacetsContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	resolve := func(ctx context.Context, _ syntax.Handle) (syntax.DID, error) { return "", ctx.Err() }
	if _, err := Facets(ctx, "@alice.test", resolve); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestFacetsLongTag(t *testing.T) {
	ok := "#" + strings.Repeat("a", maxTagRunes)
	long := "#" + strings.Repeat("a", maxTagRunes+1)
	for text, want := range map[string]int{ok: 1, long: 0} {
		facets, err := Facets(context.Background(), text, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(facets) != want {
			t.Errorf("%d-rune tag: %d facets, want %d", len(text)-1, len(facets), want)
		}
	}
}

func TestGraphemes(t *testing.T) {
	tests := map[string]int{
		"":               0,
		"abc":            3,
		"日本語":            3,
		"👩‍👩‍👧":          1, // a family: five code points joined by ZWJ
		"🇫🇷🇯🇵":           2, // two flags, four regional indicators
		"👋🏽":             1, // skin tone modifier
		"e\u0301":        1, // e + combining acute
		"🚢 ferry ⛴️ 渡し船": 13,
	}
	for s, want := range tests {
		if got := Graphemes(s); got != want {
			t.Errorf("Graphemes(%q) = %d, want %d", s, got, want)
		}
	}
	if n := Graphemes(strings.Repeat("👩‍👩‍👧", MaxPostGraphemes)); n != MaxPostGraphemes {
		t.Errorf("300 families count %d graphemes, want %d", n, MaxPostGraphemes)
	}
}
