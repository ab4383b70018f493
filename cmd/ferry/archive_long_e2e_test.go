package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fedi-ferry/ferry/internal/testenv"
)

// arcLongArchive writes an archive (Mastodon's outbox shape) holding a post
// longer than GoToSocial's 5000 characters (as an archive from a server
// with a higher limit would), with a 300-character URL where the first
// part ends; a reply to it; and a boost. It returns the long post's text.
func arcLongArchive(t *testing.T, dir string) (text, url string) {
	t.Helper()
	const actor = "https://old.example/users/me"
	url = "https://old.example/" + strings.Repeat("u", 280)
	var words []string
	for i := range 680 {
		words = append(words, fmt.Sprintf("word%04d", i))
		if i == 540 {
			words = append(words, url)
		}
	}
	text = strings.Join(words, " ")
	const pub = `"to":["https://www.w3.org/ns/activitystreams#Public"],"cc":["https://old.example/users/me/followers"]`
	note := func(n int, at, inReplyTo, content string) string {
		id := fmt.Sprintf("%s/statuses/%d", actor, n)
		return fmt.Sprintf(`{"id":"%s/activity","type":"Create","actor":"%s","published":"%s",%s,"object":{"id":"%s","type":"Note","summary":null,"inReplyTo":%s,`+
			`"published":"%s","url":"https://old.example/@me/%d","attributedTo":"%s",%s,"sensitive":false,"content":"<p>%s</p>","attachment":[],"tag":[]}}`,
			id, actor, at, pub, id, inReplyTo, at, n, actor, pub, content)
	}
	items := []string{
		note(1000, "2022-03-01T08:00:00Z", "null", text),
		`{"id":"https://old.example/users/me/statuses/1001/activity","type":"Announce","actor":"` + actor + `","published":"2022-03-01T08:01:00Z",` + pub +
			`,"object":"https://else.example/users/them/statuses/42"}`,
		note(1002, "2022-03-01T08:02:00Z", `"`+actor+`/statuses/1000"`, "a reply to the long one"),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := `{"@context":"https://www.w3.org/ns/activitystreams","id":"outbox.json","type":"OrderedCollection","totalItems":3,"orderedItems":[` +
		strings.Join(items, ",\n") + "]}\n"
	if err := os.WriteFile(filepath.Join(dir, "outbox.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return text, url
}

// TestE2EArchivePublishLong publishes a post over the target's limit with
// --long split (a self-thread, the reply continuing from its last part)
// and --long truncate (one post ending with the note), and a boost with
// --boosts link, to GoToSocial, which counts URLs at their full length.
func TestE2EArchivePublishLong(t *testing.T) {
	testenv.Require(t)
	env := testenv.Shared(t, 2)
	b := env.Instances[1]
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "archive")
	text, url := arcLongArchive(t, dir)
	c := newCLI(t, env.CAFile)
	text2 := func(s arcStatus) string {
		if s.Text != "" {
			return s.Text
		}
		return s.Content
	}
	const boosted = "https://else.example/users/them/statuses/42"

	// Split, backdated.
	split, err := b.CreateUser(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	c.run("login", b.BaseURL, "--token-file", writeTokenFile(t, split.Token), "--name", "split").mustSucceed(t)
	c.run("archive", "publish", dir, "--to", "split", "--mode", "backdate", "--long", "split", "--boosts", "link").mustSucceed(t)
	got := arcStatuses(t, ctx, split) // newest first
	if len(got) != 4 {
		t.Fatalf("split: %d posts on the target, want 2 parts, the reply and the boost link", len(got))
	}
	find := func(ss []arcStatus, prefix, suffix string) arcStatus {
		t.Helper()
		for _, s := range ss {
			if strings.HasPrefix(text2(s), prefix) && strings.HasSuffix(text2(s), suffix) {
				return s
			}
		}
		t.Fatalf("no post starting with %q and ending with %q", prefix, suffix)
		return arcStatus{}
	}
	byPrefix := func(ss []arcStatus, prefix string) arcStatus { t.Helper(); return find(ss, prefix, "") }
	p1, p2 := find(got, "word0000 ", " (1/2)"), find(got, "", " (2/2)")
	reply, boost := byPrefix(got, "a reply"), byPrefix(got, "🔁")
	for i, p := range []arcStatus{p1, p2} {
		if n := utf8.RuneCountInString(text2(p)); n > 5000 {
			t.Errorf("part %d has %d characters", i+1, n)
		}
		if suffix := fmt.Sprintf(" (%d/2)", i+1); !strings.HasSuffix(text2(p), suffix) {
			t.Errorf("part %d does not end with %q: …%s", i+1, suffix, text2(p)[max(0, len(text2(p))-40):])
		}
	}
	joined := strings.TrimSuffix(text2(p1), " (1/2)") + " " + strings.TrimSuffix(text2(p2), " (2/2)")
	if joined != text {
		t.Errorf("the parts do not rejoin to the original text")
	}
	if !strings.Contains(text2(p1)+text2(p2), url) {
		t.Errorf("the long URL was cut")
	}
	if p2.InReplyToID != p1.ID || reply.InReplyToID != p2.ID {
		t.Errorf("thread: part 2 → %s (want %s), reply → %s (want %s)", p2.InReplyToID, p1.ID, reply.InReplyToID, p2.ID)
	}
	if text2(boost) != "🔁 "+boosted {
		t.Errorf("boost link %q", text2(boost))
	}

	// Truncated, reposted.
	trunc, err := b.CreateUser(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	c.run("login", b.BaseURL, "--token-file", writeTokenFile(t, trunc.Token), "--name", "trunc").mustSucceed(t)
	c.run("archive", "publish", dir, "--to", "trunc", "--mode", "repost", "--long", "truncate", "--boosts", "link").mustSucceed(t)
	got = arcStatuses(t, ctx, trunc)
	if len(got) != 3 {
		t.Fatalf("truncate: %d posts on the target, want the long post, the reply and the boost link", len(got))
	}
	long := byPrefix(got, "word0000 ")
	if n := utf8.RuneCountInString(text2(long)); n > 5000 || n < 4000 {
		t.Errorf("truncated post has %d characters", n)
	}
	if want := "…\n\nOriginally posted on 2022-03-01 at https://old.example/@me/1000"; !strings.HasSuffix(text2(long), want) {
		t.Errorf("truncated post ends …%q, want %q", text2(long)[max(0, len(text2(long))-80):], want)
	}
	if body := strings.TrimSuffix(text2(long), "…\n\nOriginally posted on 2022-03-01 at https://old.example/@me/1000"); !strings.HasPrefix(text, body) {
		t.Errorf("the truncated post is not a prefix of the original")
	}
	if r := byPrefix(got, "a reply"); r.InReplyToID != long.ID || r.Visibility != "unlisted" {
		t.Errorf("reply → %s (want %s), %s", r.InReplyToID, long.ID, r.Visibility)
	}
	if want := "🔁 " + boosted + "\n\nOriginally posted on 2022-03-01 at " + boosted; text2(byPrefix(got, "🔁")) != want {
		t.Errorf("boost link %q, want %q", text2(byPrefix(got, "🔁")), want)
	}
}
