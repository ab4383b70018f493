package bluesky

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/atproto"
)

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func noise(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.UintN(256))
	}
	return img
}

func TestShrinkFitsAndKeepsAspect(t *testing.T) {
	data := encodePNG(t, noise(800, 600))
	for _, limit := range []int{len(data) / 2, 100_000, 20_000} {
		out, w, h, err := Shrink(data, limit)
		if err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		}
		if len(out) > limit {
			t.Errorf("limit %d: %d bytes", limit, len(out))
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(out))
		if err != nil || format != "jpeg" || cfg.Width != w || cfg.Height != h || w*3 != h*4 {
			t.Errorf("limit %d: %s %dx%d (reported %dx%d), %v", limit, format, cfg.Width, cfg.Height, w, h, err)
		}
	}
}

func TestShrinkTransparentBecomesWhite(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 200, 200)) // fully transparent
	out, _, _, err := Shrink(encodePNG(t, img), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	got, err := jpeg.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if r, g, b, _ := got.At(100, 100).RGBA(); r>>8 < 250 || g>>8 < 250 || b>>8 < 250 {
		t.Errorf("transparent pixel became %v, want white", got.At(100, 100))
	}
}

func TestShrinkGivesUp(t *testing.T) {
	if _, _, _, err := Shrink(encodePNG(t, noise(300, 300)), 100); err == nil {
		t.Error("a 100-byte limit was met")
	}
	if _, _, _, err := Shrink([]byte("not an image"), 1000); err == nil {
		t.Error("garbage was decoded")
	}
}

func TestHalfAverages(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, color.RGBA{R: 200, A: 255})
	img.Set(1, 1, color.RGBA{R: 100, A: 255})
	img.Set(1, 0, color.RGBA{A: 255})
	img.Set(0, 1, color.RGBA{A: 255})
	if got := half(img).RGBAAt(0, 0); got != (color.RGBA{R: 75, A: 255}) {
		t.Errorf("half = %v", got)
	}
}

func TestComposeTextLimits(t *testing.T) {
	long := strings.Repeat("日本語のテキスト👍🏽 ", 60)
	out := ComposeText("spoilers", long, []string{"https://media.example/1.png"})
	if n := atproto.Graphemes(out); n > atproto.MaxPostGraphemes || len(out) > atproto.MaxPostBytes {
		t.Fatalf("%d graphemes, %d bytes", n, len(out))
	}
	if !strings.HasPrefix(out, "CW: spoilers\n\n") || !strings.HasSuffix(out, "\n\nhttps://media.example/1.png") || !strings.Contains(out, "…") {
		t.Errorf("composed %q", out)
	}
	if got := ComposeText("", " short ", nil); got != "short" {
		t.Errorf("short text = %q", got)
	}
	// Family emoji are many bytes per grapheme: the byte limit binds first.
	fam := strings.Repeat("👩‍👩‍👧‍👦", 290)
	if out := ComposeText("", fam, nil); len(out) > atproto.MaxPostBytes || atproto.Graphemes(out) > atproto.MaxPostGraphemes {
		t.Errorf("families: %d bytes, %d graphemes", len(out), atproto.Graphemes(out))
	}
}

// Facets of a composed text point at the right bytes when a content
// warning line, emoji and CJK characters come before them.
func TestFacetsAfterWarningEmojiAndCJK(t *testing.T) {
	text := ComposeText("⚠️ 注意", "🇯🇵 東京 👨‍👩‍👧 https://例え.jp/パス #タグ and #ferry", []string{"https://m.example/x.jpg"})
	fs, err := atproto.Facets(context.Background(), text, nil)
	if err != nil {
		t.Fatal(err)
	}
	var spans []string
	for _, f := range fs {
		spans = append(spans, text[f.Index.ByteStart:f.Index.ByteEnd])
	}
	want := []string{"https://例え.jp/パス", "#タグ", "#ferry", "https://m.example/x.jpg"}
	if strings.Join(spans, "|") != strings.Join(want, "|") {
		t.Errorf("facet spans %q, want %q", spans, want)
	}
}

func TestSelfLabel(t *testing.T) {
	for summary, want := range map[string]string{
		"NSFW": LabelSexual, "nudity": LabelSexual, "blood, injury": LabelGraphic, "": LabelGraphic, "Sussex": LabelGraphic,
	} {
		if got := SelfLabel(summary); got != want {
			t.Errorf("SelfLabel(%q) = %q, want %q", summary, got, want)
		}
	}
}

func TestClipGraphemes(t *testing.T) {
	if got := clipGraphemes("a👩‍👩‍👧b", 2); got != "a👩‍👩‍👧" {
		t.Errorf("clip = %q", got)
	}
	if got := clipGraphemes("ab", 5); got != "ab" {
		t.Errorf("clip = %q", got)
	}
}

func TestParseCard(t *testing.T) {
	base, _ := url.Parse("https://blog.example/posts/1")
	page := `<!doctype html><html><head><title> Plain title </title>
<meta name="description" content="plain description">
<meta property="og:title" content="The OG title">
<meta property="og:image" content="/img/cover.png">
</head><body><meta property="og:description" content="in the body: ignored"></body></html>`
	c := ParseCard(strings.NewReader(page), base)
	if c.Title != "The OG title" || c.Description != "plain description" || c.Image != "https://blog.example/img/cover.png" {
		t.Errorf("card = %+v", c)
	}
	c = ParseCard(strings.NewReader(`<html><head><title>Only a title</title><meta property="og:image" content="javascript:x"></head></html>`), base)
	if c.Title != "Only a title" || c.Description != "" || c.Image != "" {
		t.Errorf("card = %+v", c)
	}
}
