package publish

import (
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/textfit"
)

func TestPollText(t *testing.T) {
	for _, tc := range []struct {
		name string
		poll post.Poll
		want string
	}{
		{"closed, with votes", post.Poll{Options: []string{"tea", "coffee"}, Votes: []int{3, 5}, ExpiresAt: time.Date(2024, 5, 6, 7, 0, 0, 0, time.UTC)},
			"\n\n☐ tea (3)\n☐ coffee (5)\n(poll, closed 2024-05-06)"},
		{"no votes known, no end", post.Poll{Options: []string{"yes", "no"}}, "\n\n☐ yes\n☐ no\n(poll)"},
		{"fewer vote counts than options", post.Poll{Options: []string{"a", "b"}, Votes: []int{1}}, "\n\n☐ a (1)\n☐ b\n(poll)"},
	} {
		if got := pollText(&tc.poll); got != tc.want {
			t.Errorf("%s: pollText = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// zwsp is what textfit puts between "@" and a name to neutralise a mention.
const zwsp = "\u200b"

// length counts text as a server with urlWeight per URL does.
func length(text string, urlWeight int) int { return textfit.Rules{CharsPerURL: urlWeight}.Count(text) }

// words returns n distinct words, joined by spaces.
func words(n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = "word" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
	}
	return strings.Join(ws, " ")
}

func TestPrepare(t *testing.T) {
	created := time.Date(2023, 4, 5, 6, 7, 8, 0, time.UTC)
	base := post.Post{OriginID: "https://old.example/users/me/statuses/1", URI: "https://old.example/users/me/statuses/1",
		URL: "https://old.example/@me/1", CreatedAt: created, Visibility: post.Public, Text: "hello @alice #tag",
		Mentions: []post.Mention{{Acct: "alice@old.example"}}}
	lim := post.Limits{MaxChars: 500, CharsPerURL: 23, MaxMedia: 4}
	longText := words(120) // about 1000 characters
	for _, tc := range []struct {
		name  string
		p     func(p *post.Post)
		o     Options
		lim   post.Limits
		check func(t *testing.T, parts []post.Post)
	}{
		{"repost: default note, unlisted, mention neutralised, hashtag kept", nil, Options{Mode: Repost}, lim, func(t *testing.T, ps []post.Post) {
			want := "hello @" + zwsp + "alice@old.example #tag\n\nOriginally posted on 2023-04-05 at https://old.example/@me/1"
			if len(ps) != 1 || ps[0].Text != want || ps[0].Visibility != post.Unlisted {
				t.Errorf("got %q (%s), want %q (unlisted)", ps[0].Text, ps[0].Visibility, want)
			}
		}},
		{"repost: custom note, hashtags stripped, mentions kept", nil,
			Options{Mode: Repost, Note: "from {url} ({date})", StripHashtags: true, KeepMentions: true}, lim, func(t *testing.T, ps []post.Post) {
				if want := "hello @alice tag\n\nfrom https://old.example/@me/1 (2023-04-05)"; ps[0].Text != want {
					t.Errorf("got %q, want %q", ps[0].Text, want)
				}
			}},
		{"repost: no note; a narrower visibility is kept", func(p *post.Post) { p.Visibility = post.Private },
			Options{Mode: Repost, NoNote: true}, lim, func(t *testing.T, ps []post.Post) {
				if ps[0].Text != "hello @"+zwsp+"alice@old.example #tag" || ps[0].Visibility != post.Private {
					t.Errorf("got %q (%s)", ps[0].Text, ps[0].Visibility)
				}
			}},
		{"backdate: no note, visibility kept", nil, Options{Mode: Backdate}, lim, func(t *testing.T, ps []post.Post) {
			if strings.Contains(ps[0].Text, "Originally") || ps[0].Visibility != post.Public {
				t.Errorf("got %q (%s)", ps[0].Text, ps[0].Visibility)
			}
		}},
		{"poll as text", func(p *post.Post) { p.Poll = &post.Poll{Options: []string{"tea", "coffee"}, Votes: []int{1, 2}} },
			Options{Mode: Backdate}, lim, func(t *testing.T, ps []post.Post) {
				if ps[0].Poll != nil || !strings.Contains(ps[0].Text, "☐ coffee (2)") {
					t.Errorf("got %q, poll %v", ps[0].Text, ps[0].Poll)
				}
			}},
		{"native poll in repost mode", func(p *post.Post) {
			p.Poll = &post.Poll{Options: []string{"tea", "coffee"}, ExpiresAt: created}
		}, Options{Mode: Repost, NativePolls: true}, lim, func(t *testing.T, ps []post.Post) {
			if ps[0].Poll == nil || !ps[0].Poll.ExpiresAt.IsZero() || strings.Contains(ps[0].Text, "☐") {
				t.Errorf("got %q, poll %+v", ps[0].Text, ps[0].Poll)
			}
		}},
		{"reply to someone else's post links it", func(p *post.Post) { p.ReplyToURI = "https://else.example/statuses/9" },
			Options{Mode: Backdate}, lim, func(t *testing.T, ps []post.Post) {
				if !strings.HasPrefix(ps[0].Text, "↪ https://else.example/statuses/9\n\nhello") {
					t.Errorf("got %q", ps[0].Text)
				}
			}},
		{"boost as a link", func(p *post.Post) { p.Text, p.BoostOf = "", "https://else.example/statuses/9" },
			Options{Mode: Repost, BoostsAsLinks: true}, lim, func(t *testing.T, ps []post.Post) {
				if want := "🔁 https://else.example/statuses/9\n\nOriginally posted on 2023-04-05 at https://else.example/statuses/9"; ps[0].Text != want {
					t.Errorf("got %q, want %q", ps[0].Text, want)
				}
			}},
		{"empty post", func(p *post.Post) { p.Text = "" }, Options{Mode: Backdate}, lim, func(t *testing.T, ps []post.Post) {
			if ps[0].Text != "." {
				t.Errorf("got %q", ps[0].Text)
			}
		}},
		{"media over the target's limit are left out", func(p *post.Post) {
			for range 3 {
				p.Media = append(p.Media, post.Media{URL: "https://old.example/m.png"})
			}
			p.Media = append(p.Media, post.Media{URL: "media_attachments/gone.png"})
		}, Options{Mode: Backdate}, post.Limits{MaxChars: 500, MaxMedia: 2}, func(t *testing.T, ps []post.Post) {
			if len(ps[0].Media) != 2 {
				t.Errorf("%d media", len(ps[0].Media))
			}
		}},
		{"split into a self-thread, media on the first part, note on the last", func(p *post.Post) {
			p.Text = longText
			p.Summary = "a warning"
			p.Media = []post.Media{{URL: "https://old.example/m.png"}}
		}, Options{Mode: Repost}, lim, func(t *testing.T, ps []post.Post) {
			if len(ps) != 3 {
				t.Fatalf("%d parts", len(ps))
			}
			for i, p := range ps {
				if n := length(p.Text, 23) + length(p.Summary, 0); n > 500 {
					t.Errorf("part %d counts %d with its warning", i+1, n)
				}
				if p.Summary != "a warning" || (i == 0) != (len(p.Media) == 1) {
					t.Errorf("part %d: warning %q, %d media", i+1, p.Summary, len(p.Media))
				}
			}
			if !strings.Contains(ps[2].Text, "Originally posted on") {
				t.Errorf("last part %q has no note", ps[2].Text)
			}
		}},
		{"truncated with a link (backdate)", func(p *post.Post) { p.Text = longText }, Options{Mode: Backdate, Truncate: true}, lim, func(t *testing.T, ps []post.Post) {
			if len(ps) != 1 || length(ps[0].Text, 23) > 500 || !strings.HasSuffix(ps[0].Text, "… https://old.example/@me/1") {
				t.Errorf("got %d parts: %q", len(ps), ps[0].Text)
			}
		}},
		{"truncated keeps the note (repost)", func(p *post.Post) { p.Text = longText }, Options{Mode: Repost, Truncate: true}, lim, func(t *testing.T, ps []post.Post) {
			if len(ps) != 1 || length(ps[0].Text, 23) > 500 || !strings.HasSuffix(ps[0].Text, "…\n\nOriginally posted on 2023-04-05 at https://old.example/@me/1") {
				t.Errorf("got %d parts: %q", len(ps), ps[0].Text)
			}
		}},
		{"a long URL fits where the server counts it as the reserve", func(p *post.Post) {
			p.Text = words(50) + " https://old.example/" + strings.Repeat("u", 300)
		}, Options{Mode: Backdate}, lim, func(t *testing.T, ps []post.Post) {
			if len(ps) != 1 {
				t.Errorf("%d parts", len(ps))
			}
		}},
		{"a long URL splits where the server counts it in full", func(p *post.Post) {
			p.Text = words(50) + " https://old.example/" + strings.Repeat("u", 300)
		}, Options{Mode: Backdate}, post.Limits{MaxChars: 500}, func(t *testing.T, ps []post.Post) {
			if len(ps) != 2 {
				t.Errorf("%d parts", len(ps))
			}
			for i, p := range ps {
				if n := length(p.Text, 0); n > 500 {
					t.Errorf("part %d counts %d", i+1, n)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			if tc.p != nil {
				tc.p(&p)
			}
			parts, _ := prepare(p, tc.o, tc.lim)
			if len(parts) == 0 {
				t.Fatal("no parts")
			}
			tc.check(t, parts)
		})
	}
}

// Plan chains the parts of a split post, attaches a reply to the last part
// of its parent, and keeps replies after their parents even when the
// archive's order disagrees.
func TestPlanThreads(t *testing.T) {
	created := time.Date(2023, 4, 5, 6, 7, 8, 0, time.UTC)
	posts := []post.Post{
		{OriginID: "b", Text: "reply", InReplyTo: "a", ReplyToURI: "a", CreatedAt: created, Visibility: post.Public},
		{OriginID: "a", Text: words(120), CreatedAt: created, Visibility: post.Public},
		{OriginID: "boost", BoostOf: "https://else.example/1", CreatedAt: created, Visibility: post.Public},
		{OriginID: "dm", Text: "secret", CreatedAt: created, Visibility: post.Direct},
	}
	each := func(fn func(post.Post) error) error {
		for _, p := range posts {
			if err := fn(p); err != nil {
				return err
			}
		}
		return nil
	}
	plan, skip, _, err := Plan(t.Context(), each, Options{Mode: Backdate}, post.Limits{MaxChars: 500, CharsPerURL: 23}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range plan {
		got = append(got, p.Key+"<"+p.Payload.ParentKey)
	}
	if want := "a< a#2<a a#3<a#2 b<a#3"; strings.Join(got, " ") != want {
		t.Errorf("plan %q, want %q", strings.Join(got, " "), want)
	}
	if skip.Boosts != 1 || skip.Visibility != 1 {
		t.Errorf("skip %+v", skip)
	}
	if !plan[1].Payload.PublishedAt.Equal(created.Add(time.Second)) {
		t.Errorf("part 2 backdated to %s", plan[1].Payload.PublishedAt)
	}
}
