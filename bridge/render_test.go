package bridge

import (
	"regexp"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/textfit"
)

func TestRender(t *testing.T) {
	tmpl := DefaultTemplate(KindAccount)
	base := post.Post{OriginID: "1", Text: "hello @bob@b.example", Visibility: post.Public, Language: "de",
		URL: "https://a.example/@me/1", Mentions: []post.Mention{{Acct: "bob@b.example", URL: "https://b.example/@bob"}}}
	lim := post.Limits{MaxChars: 500, CharsPerURL: 23, MaxMedia: 2, MediaTypes: []string{"image/png"}}

	t.Run("mentions", func(t *testing.T) {
		out, _ := render(tmpl, base, Policy{}, lim, false)
		if got := out.Drafts[0].Post.Text; got != "hello @\u200bbob@b.example" {
			t.Errorf("neutralised = %q", got)
		}
		out, _ = render(tmpl, base, Policy{Mentions: PolicyLink}, lim, false)
		if got := out.Drafts[0].Post.Text; got != "hello https://b.example/@bob" {
			t.Errorf("linked = %q", got)
		}
		out, _ = render(tmpl, base, Policy{Mentions: PolicySkip}, lim, false)
		if out.Skip == "" {
			t.Error("mentions = skip did not skip")
		}
	})
	t.Run("cw", func(t *testing.T) {
		p := base
		p.Summary, p.Sensitive = "spoilers", true
		out, _ := render(tmpl, p, Policy{}, lim, false)
		if d := out.Drafts[0].Post; d.Summary != "spoilers" || !d.Sensitive {
			t.Errorf("keep: %+v", d)
		}
		out, _ = render(tmpl, p, Policy{CW: PolicyPrefix}, lim, false)
		if d := out.Drafts[0].Post; d.Summary != "" || !strings.HasPrefix(d.Text, "CW: spoilers\n\n") {
			t.Errorf("prefix: %+v", d)
		}
		out, _ = render(tmpl, p, Policy{CW: PolicySkip}, lim, false)
		if out.Skip == "" {
			t.Error("cw = skip did not skip")
		}
	})
	t.Run("visibility and threads", func(t *testing.T) {
		pol := Policy{Visibility: map[post.Visibility]post.Visibility{post.Public: post.Unlisted}}
		out, _ := render(tmpl, base, pol, lim, false)
		if v := out.Drafts[0].Post.Visibility; v != post.Unlisted {
			t.Errorf("mapped visibility %s", v)
		}
		p := base
		p.Text = strings.Repeat("abc def ", 100)
		out, _ = render(tmpl, p, Policy{Thread: PolicyFirstOnly}, lim, false)
		if len(out.Drafts) != 2 || out.Drafts[0].Post.Visibility != post.Public || out.Drafts[1].Post.Visibility != post.Unlisted {
			t.Errorf("first-public split: %d drafts", len(out.Drafts))
		}
		out, _ = render(tmpl, base, Policy{Thread: PolicyFirstOnly}, lim, true)
		if v := out.Drafts[0].Post.Visibility; v != post.Unlisted {
			t.Errorf("continuation visibility %s", v)
		}
		p.Visibility = post.Private
		out, _ = render(tmpl, p, Policy{Thread: PolicyFirstOnly}, lim, false)
		if out.Drafts[1].Post.Visibility != post.Private {
			t.Error("first-public widened a followers-only thread")
		}
		if out.Drafts[0].Post.Language != "de" {
			t.Error("language not carried")
		}
	})
	t.Run("length", func(t *testing.T) {
		rules := textfit.Rules{CharsPerURL: 23}
		p := base
		p.Mentions = nil
		p.Text = strings.Repeat("x ", 350) // 700 characters
		for _, tt := range []struct {
			pol   Policy
			parts int
			cw    string
		}{
			{Policy{}, 2, ""},
			{Policy{Length: PolicyTruncate}, 1, ""},
			{Policy{Length: PolicyCW}, 2, "Long post"},
			{Policy{MaxChars: 200}, 4, ""},
			{Policy{MaxChars: 5000}, 2, ""}, // an override never raises the server's limit
		} {
			out, err := render(tmpl, p, tt.pol, lim, false)
			if err != nil || len(out.Drafts) != tt.parts {
				t.Errorf("%+v: %d parts, want %d (%v)", tt.pol, len(out.Drafts), tt.parts, err)
				continue
			}
			max := lim.MaxChars
			if tt.pol.MaxChars > 0 && tt.pol.MaxChars < max {
				max = tt.pol.MaxChars
			}
			for _, d := range out.Drafts {
				if n := rules.Count(d.Post.Text) + rules.Count(d.Post.Summary); n > max {
					t.Errorf("%+v: a part of %d chars", tt.pol, n)
				}
				if d.Post.Summary != tt.cw {
					t.Errorf("%+v: CW %q", tt.pol, d.Post.Summary)
				}
			}
			if tt.pol.Length == PolicyTruncate && !strings.HasSuffix(out.Drafts[0].Post.Text, p.URL) {
				t.Errorf("truncate without link: %q", out.Drafts[0].Post.Text)
			}
		}
	})
	t.Run("media", func(t *testing.T) {
		p := base
		p.Media = []post.Media{
			{URL: "https://a.example/1.png", MIMEType: "image/png", Description: "alt 1"},
			{URL: "https://a.example/2.tiff", MIMEType: "image/tiff"},
			{URL: "https://a.example/3.png", MIMEType: "image/png"},
			{URL: "https://a.example/4.png", MIMEType: "image/png"},
		}
		out, _ := render(tmpl, p, Policy{}, lim, false)
		d := out.Drafts[0].Post
		if len(d.Media) != 2 || d.Media[0].Description != "alt 1" {
			t.Errorf("kept media %+v", d.Media)
		}
		for _, u := range []string{"2.tiff", "4.png"} {
			if !strings.Contains(d.Text, u) {
				t.Errorf("media %s not linked: %q", u, d.Text)
			}
		}
		out, _ = render(tmpl, p, Policy{Media: PolicySkip}, lim, false)
		if len(out.Drafts[0].Post.Media) != 0 || strings.Contains(out.Drafts[0].Post.Text, "png") {
			t.Error("media = skip kept media")
		}
	})
}

func TestFilter(t *testing.T) {
	yes, no := true, false
	p := post.Post{Title: "Go 1.26 released", Text: "release notes", Tags: []string{"Golang"}, Visibility: post.Public,
		Language: "en-GB", Media: []post.Media{{URL: "x"}}}
	tests := []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Include: regexp.MustCompile(`(?i)released`)}, true},
		{Filter{Include: regexp.MustCompile(`beta`)}, false},
		{Filter{Exclude: regexp.MustCompile(`notes`)}, false},
		{Filter{Tags: []string{"#golang"}}, true},
		{Filter{Tags: []string{"rust"}}, false},
		{Filter{ExcludeTag: []string{"golang"}}, false},
		{Filter{Visibility: []post.Visibility{post.Unlisted}}, false},
		{Filter{Language: []string{"en"}}, true},
		{Filter{Language: []string{"de"}}, false},
		{Filter{HasMedia: &yes}, true},
		{Filter{HasMedia: &no}, false},
	}
	for i, tt := range tests {
		if got, why := tt.f.Match(p); got != tt.want {
			t.Errorf("%d: Match = %v (%s), want %v", i, got, why, tt.want)
		}
	}
}

func TestFeedIdentity(t *testing.T) {
	same := []string{
		"https://Blog.Example/posts/1/?utm_source=rss#comments",
		"http://blog.example/posts/1",
		"https://blog.example:443/posts/1/",
	}
	for _, l := range same {
		if got := CanonicalLink(l); got != "https://blog.example/posts/1" {
			t.Errorf("CanonicalLink(%q) = %q", l, got)
		}
	}
	if CanonicalLink("https://blog.example/?p=1") == CanonicalLink("https://blog.example/?p=2") {
		t.Error("query parameters that name the item were dropped")
	}
	a := post.Post{Title: "Hello", Text: "First  post\n"}
	b := post.Post{Title: "hello", Text: "first post"}
	if ContentHash(a) == "" || ContentHash(a) != ContentHash(b) {
		t.Error("content hash is not white-space and case insensitive")
	}
	if ContentHash(post.Post{Title: "only a title"}) != "" {
		t.Error("an item without text must not be matched by content")
	}
	if OriginVersion(a) == OriginVersion(post.Post{Title: "Hello", Text: "First post, edited"}) {
		t.Error("an edit does not change the version")
	}
}

func TestParseTemplate(t *testing.T) {
	if _, err := ParseTemplate("x", "{{.Title}} {{.Link}} {{range .Tags}}#{{.}} {{end}}{{.Hashtags}}"); err != nil {
		t.Error(err)
	}
	if _, err := ParseTemplate("x", "{{.Nope}}"); err == nil {
		t.Error("unknown field accepted")
	}
	if _, err := ParseTemplate("x", "{{.Title"); err == nil {
		t.Error("syntax error accepted")
	}
}
