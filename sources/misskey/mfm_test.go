package misskey

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestRenderMFM(t *testing.T) {
	base, _ := url.Parse("https://mk.example")
	for _, tc := range []struct {
		name, in, text, html string
	}{
		{"plain", "hello world", "hello world", "<p>hello world</p>"},
		{"bold", "a **bold** word", "a bold word", "<p>a <b>bold</b> word</p>"},
		{"bold tag and italic", "<b>B</b> <i>I</i> *it* ~~gone~~", "B I it gone", "<p><b>B</b> <i>I</i> <i>it</i> <del>gone</del></p>"},
		{"fn dropped", "$[spin.speed=2s spinning] and $[x2 $[flip big]]!", "spinning and big!", "<p>spinning and big!</p>"},
		{"fn with color args", "$[fg.color=f00 red] $[font.serif serif]", "red serif", "<p>red serif</p>"},
		{"unclosed fn", "$[tada party", "party", "<p>party</p>"},
		{"empty fn", "$[shake]x", "x", "<p>x</p>"},
		{"not a fn", "costs $[5]", "costs $[5]", "<p>costs $[5]</p>"},
		{"link", "see [the docs](https://docs.example/a) now", "see the docs (https://docs.example/a) now",
			`<p>see <a href="https://docs.example/a" rel="nofollow noopener">the docs</a> now</p>`},
		{"silent link", "?[x](https://a.example)", "x (https://a.example)", `<p><a href="https://a.example" rel="nofollow noopener">x</a></p>`},
		{"url", "go https://a.example/p?q=1. next", "go https://a.example/p?q=1. next",
			`<p>go <a href="https://a.example/p?q=1" rel="nofollow noopener">https://a.example/p?q=1</a>. next</p>`},
		{"mention local and remote", "hi @bob and @carol@other.example!", "hi @bob and @carol@other.example!",
			`<p>hi <a href="https://mk.example/@bob" class="u-url mention">@bob</a> and <a href="https://other.example/@carol" class="u-url mention">@carol@other.example</a>!</p>`},
		{"email is not a mention", "mail me@example.org", "mail me@example.org", "<p>mail me@example.org</p>"},
		{"hashtag", "#ferry is #good. #1", "#ferry is #good. #1",
			`<p><a href="https://mk.example/tags/ferry" rel="tag">#ferry</a> is <a href="https://mk.example/tags/good" rel="tag">#good</a>. #1</p>`},
		{"code keeps markup", "`**not bold** $[x2 y]`", "**not bold** $[x2 y]", "<p><code>**not bold** $[x2 y]</code></p>"},
		{"plain tag", "<plain>**raw** $[x2 y]</plain>", "**raw** $[x2 y]", "<p>**raw** $[x2 y]</p>"},
		{"html escaped", "<script>alert(1)</script> & co", "<script>alert(1)</script> & co", "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</p>"},
		{"quote", "> quoted **b**\nafter", "> quoted b\nafter", "<blockquote><p>quoted <b>b</b></p></blockquote><p><br>after</p>"},
		{"code block", "before\n```\n$[x2 code]\n```\nafter", "before\n$[x2 code]\nafter", "<p>before<br></p><pre><code>$[x2 code]</code></pre><p><br>after</p>"},
		{"center small", "<center><small>tiny</small></center>", "tiny", "<p><small>tiny</small></p>"},
		{"emoji stays", ":blobcat: hi", ":blobcat: hi", "<p>:blobcat: hi</p>"},
		{"math", `\(x^2\)`, "x^2", "<p><code>x^2</code></p>"},
		{"unbalanced bold", "**never closed", "**never closed", "<p>**never closed</p>"},
		{"nested fn in bold in link", "[**$[rainbow hi]**](https://a.example)", "hi (https://a.example)",
			`<p><a href="https://a.example" rel="nofollow noopener"><b>hi</b></a></p>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Render(tc.in, base)
			if r.Text != tc.text {
				t.Errorf("text = %q, want %q", r.Text, tc.text)
			}
			if r.HTML != tc.html {
				t.Errorf("html = %q, want %q", r.HTML, tc.html)
			}
		})
	}
}

func TestRenderNeverLeaksFnSyntax(t *testing.T) {
	base, _ := url.Parse("https://mk.example")
	for _, in := range []string{
		"$[x2 $[x3 $[x4 deep]]]", "$[flip.h,v both]", "$[position.x=1,y=-2 moved]", "$[scale.x=2 $[bg.color=00f blue]",
		"text $[blur hidden] text", "$[ruby 漢字 かんじ]", "$[unixtime 1700000000]", "]]]$[spin",
	} {
		r := Render(in, base)
		if strings.Contains(r.Text, "$[") || strings.Contains(r.HTML, "$[") {
			t.Errorf("%q rendered as %q / %q", in, r.Text, r.HTML)
		}
	}
}

func TestRenderCollects(t *testing.T) {
	base, _ := url.Parse("https://mk.example")
	r := Render("@a @b@x.example #one #two #one https://l.example [y](https://m.example)", base)
	if !slices.Equal(r.Mentions, []string{"a", "b@x.example"}) || !slices.Equal(r.Tags, []string{"one", "two"}) ||
		!slices.Equal(r.Links, []string{"https://l.example", "https://m.example"}) {
		t.Fatalf("%+v", r)
	}
}
