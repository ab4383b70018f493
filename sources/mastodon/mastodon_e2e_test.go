package mastodon

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/sources"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Contract tests of the account source against a real GoToSocial server:
// oldest first, resuming from Next neither loses nor repeats, repeating a
// cursor is safe, Exists confirms deletes, and the stream reports
// created, edited and deleted posts.

func newSource(t *testing.T, env *testenv.Env, in *testenv.Instance, u *testenv.User, pageSize int) *Source {
	t.Helper()
	roots, err := fedi.LoadRoots(env.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	base, err := fedi.ParseServer(in.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	hc, _ := fedi.NewHTTPClient(fedi.HTTPOptions{Roots: roots})
	return New(Options{Client: fedi.NewClient(base, u.Token, hc), PageSize: pageSize})
}

func postStatus(t *testing.T, u *testenv.User, params url.Values) fedi.Status {
	t.Helper()
	var st fedi.Status
	if err := u.API(t.Context(), http.MethodPost, "/api/v1/statuses", params, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestE2EAccountSourceContract(t *testing.T) {
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	ctx := t.Context()
	u, err := in.CreateUser(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	other, err := in.CreateUser(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 5 {
		ids = append(ids, postStatus(t, u, url.Values{"status": {fmt.Sprintf("post %d", i)}, "visibility": {"public"}}).ID)
	}
	withCW := postStatus(t, u, url.Values{"status": {"hello @" + other.Username + " <b>not html</b>"}, "spoiler_text": {"cw"},
		"visibility": {"unlisted"}, "language": {"en"}})
	ids = append(ids, withCW.ID)

	src := newSource(t, env, in, u, 0)
	first, err := src.Fetch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Posts) != 6 || first.Next != withCW.ID || first.More {
		t.Fatalf("newest page: %d posts, next %s, more %v", len(first.Posts), first.Next, first.More)
	}
	for i, p := range first.Posts {
		if p.OriginID != ids[i] {
			t.Errorf("position %d: %s, want %s (oldest first)", i, p.OriginID, ids[i])
		}
	}
	p := first.Posts[5]
	if p.Summary != "cw" || p.Visibility != "unlisted" || p.Language != "en" || len(p.Mentions) != 1 ||
		p.Text != "hello @"+other.Username+"@"+in.Host+" <b>not html</b>" || p.Mentions[0].Acct != other.Username+"@"+in.Host {
		t.Errorf("converted post: %+v", p)
	}
	if again, err := src.Fetch(ctx, first.Next); err != nil || len(again.Posts) != 0 || again.Next != first.Next {
		t.Errorf("nothing new: %+v %v", again, err)
	}

	// Resume from a cursor in small pages: nothing lost, nothing repeated.
	small := newSource(t, env, in, u, 2)
	cursor, seen := ids[0], []string{}
	for range 10 {
		page, err := small.Fetch(ctx, cursor)
		if err != nil {
			t.Fatal(err)
		}
		repeat, err := small.Fetch(ctx, cursor)
		if err != nil || len(repeat.Posts) != len(page.Posts) || repeat.Next != page.Next {
			t.Fatalf("repeating cursor %s differs: %v", cursor, err)
		}
		for _, p := range page.Posts {
			seen = append(seen, p.OriginID)
		}
		cursor = page.Next
		if !page.More {
			break
		}
	}
	if fmt.Sprint(seen) != fmt.Sprint(ids[1:]) {
		t.Errorf("paged from the first: %v, want %v", seen, ids[1:])
	}

	// Exists confirms a delete.
	if ok, err := src.Exists(ctx, ids[0]); !ok || err != nil {
		t.Errorf("Exists(live) = %v, %v", ok, err)
	}
	if err := u.API(ctx, http.MethodDelete, "/api/v1/statuses/"+ids[0], nil, nil); err != nil {
		t.Fatal(err)
	}
	// GoToSocial finishes a delete in the background: give it a moment.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ok, err := src.Exists(ctx, ids[0])
		if !ok && err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Exists(deleted) = %v, %v", ok, err)
		}
	}
}

func TestE2EAccountSourceStream(t *testing.T) {
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	u, err := in.CreateUser(t.Context(), "", true)
	if err != nil {
		t.Fatal(err)
	}
	src := newSource(t, env, in, u, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	events := make(chan sources.Event, 8)
	errc := make(chan error, 1)
	go func() { errc <- src.Stream(ctx, events) }()
	time.Sleep(time.Second) // connected
	st := postStatus(t, u, url.Values{"status": {"streamed"}, "visibility": {"public"}})
	next := func() sources.Event {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case err := <-errc:
			t.Fatalf("stream ended: %v", err)
		case <-ctx.Done():
			t.Fatal("no event")
		}
		return sources.Event{}
	}
	if ev := next(); ev.Kind != sources.Created || ev.Post.OriginID != st.ID || ev.Post.Text != "streamed" {
		t.Fatalf("created: %+v", ev)
	}
	if err := u.API(t.Context(), http.MethodPut, "/api/v1/statuses/"+st.ID, url.Values{"status": {"streamed, edited"}}, nil); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Kind != sources.Edited || ev.Post.Text != "streamed, edited" || ev.Post.EditedAt.IsZero() {
		t.Fatalf("edited: %+v", ev)
	}
	if err := u.API(t.Context(), http.MethodDelete, "/api/v1/statuses/"+st.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Kind != sources.Deleted || ev.Post.OriginID != st.ID {
		t.Fatalf("deleted: %+v", ev)
	}
	cancel()
	if err := <-errc; err != context.Canceled && err != context.DeadlineExceeded {
		t.Errorf("Stream returned %v after cancel", err)
	}
}

func TestQualifyMentions(t *testing.T) {
	ms := []fedi.Mention{{Username: "bob", Acct: "bob"}, {Username: "carol", Acct: "carol@elsewhere.example"}}
	tests := map[string]string{
		"hi @bob!":                 "hi @bob@a.example!",
		"@bob":                     "@bob@a.example",
		"@bobby and @bob":          "@bobby and @bob@a.example",
		"mail bob@x @bob@x":        "mail bob@x @bob@x",
		"@carol@elsewhere.example": "@carol@elsewhere.example",
		"@bob.":                    "@bob@a.example.",
		"@bob.example":             "@bob.example",
	}
	for in, want := range tests {
		if got := qualifyMentions(in, ms, "a.example"); got != want {
			t.Errorf("qualifyMentions(%q) = %q, want %q", in, got, want)
		}
	}
}
