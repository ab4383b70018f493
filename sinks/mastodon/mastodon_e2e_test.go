package mastodon_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/sinks/mastodon"
	"github.com/fedi-ferry/ferry/sinks/sinktest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// inspector reads statuses back through the API, independently of the sink.
type inspector struct{ c *fedi.Client }

func (in inspector) Get(ctx context.Context, id string) (sinktest.Published, error) {
	var st fedi.Status
	if _, err := in.c.Do(ctx, http.MethodGet, "/api/v1/statuses/"+id, nil, nil, &st); err != nil {
		if fedi.IsNotFound(err) {
			return sinktest.Published{}, fmt.Errorf("status %s: %w", id, sinktest.ErrGone)
		}
		return sinktest.Published{}, err
	}
	p := sinktest.Published{
		Text: st.Text, Summary: st.SpoilerText, Sensitive: st.Sensitive, Visibility: post.Visibility(st.Visibility),
		Language: st.Language, ReplyTo: st.InReplyToID, CreatedAt: st.CreatedAt,
	}
	if p.Text == "" {
		p.Text = fedi.HTMLText(st.Content, nil)
	}
	for _, m := range st.MediaAttachments {
		pm := post.Media{URL: m.URL, Description: m.Description}
		if m.Meta.Focus != nil {
			pm.FocusX, pm.FocusY = m.Meta.Focus.X, m.Meta.Focus.Y
		}
		p.Media = append(p.Media, pm)
	}
	if st.Poll != nil {
		for _, o := range st.Poll.Options {
			p.Poll = append(p.Poll, o.Title)
		}
	}
	return p, nil
}

// The account sink against a real GoToSocial server: GoToSocial has no
// Idempotency-Key (so that check is off) and supports polls and backdating.
func TestE2ESinkContractGoToSocial(t *testing.T) {
	testenv.Require(t)
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	u, err := in.CreateUser(t.Context(), "", true)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := fedi.LoadRoots(env.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	hc, tr := fedi.NewHTTPClient(fedi.HTTPOptions{Roots: roots})
	base, _ := fedi.ParseServer(in.BaseURL)
	c := fedi.NewClient(base, u.Token, hc)
	sinktest.Run(t, mastodon.New(mastodon.Options{Client: c}), inspector{c}, sinktest.Options{Polls: true})
	t.Logf("requests=%d 429s=%d", tr.Stats().Requests, tr.Stats().RateLimited)
}

// After a crash, a backdated copy must be found even when many newer posts
// hide it from the newest page (the archive publisher relies on this).
func TestE2EFindBackdatedCopyBehindNewerPosts(t *testing.T) {
	testenv.Require(t)
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	ctx := t.Context()
	u, err := in.CreateUser(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	roots, _ := fedi.LoadRoots(env.CAFile)
	hc, _ := fedi.NewHTTPClient(fedi.HTTPOptions{Roots: roots})
	base, _ := fedi.ParseServer(in.BaseURL)
	s := mastodon.New(mastodon.Options{Client: fedi.NewClient(base, u.Token, hc)})

	old := sinks.Draft{Key: "old", PublishedAt: time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC),
		Post: post.Post{Text: "from the archive", Visibility: post.Public}}
	ref, err := s.Publish(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 90; i++ {
		if _, err := s.Publish(ctx, sinks.Draft{Key: fmt.Sprint(i), Post: post.Post{Text: fmt.Sprintf("newer %d", i), Visibility: post.Unlisted}}); err != nil {
			t.Fatal(err)
		}
	}
	got, found, err := s.Find(ctx, old, time.Now().Add(-time.Hour))
	if err != nil || !found || got.ID != ref.ID {
		t.Fatalf("Find = %+v, %v, %v; want %s", got, found, err, ref.ID)
	}
}
