package main

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/post"
)

// A GoToSocial account mirrored to Bluesky with edits = "repost": editing
// the origin post replaces its young copy with one record holding the new
// text, in the same place of the thread.
func TestE2EMirrorGoToSocialToBlueskyEditRepost(t *testing.T) {
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	a := mirUser(t, in)
	c := newCLI(t, env.CAFile)
	ha := mirLogin(t, c, in, a)
	u, pwFile := bskyAccount(t, "reposted")
	c.run("login", u.PDS.URL, "--handle", u.Handle, "--password-file", pwFile, "--name", "sky").mustSucceed(t)
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "gts-to-bluesky"
source = { type = "account", account = "%s" }

[[route.sink]]
account = "sky"
edits = "repost"
repost_within = "1h"
`, ha))
	mirror := func() { t.Helper(); c.run("--config", cfg, "mirror").mustSucceed(t) }
	origin := mirSinkFor(t, env, in, a)
	mirror()

	root := mirPublish(t, origin, post.Post{Text: "A thread about ferries", Visibility: post.Public}, "")
	reply := mirPublish(t, origin, post.Post{Text: "They cary cars", Visibility: post.Public}, root)
	mirror()
	before := map[string]bskyPost{}
	for _, p := range bskyPosts(t, u) {
		before[p.Text] = p
	}
	rootCopy, oldReply := before["A thread about ferries"], before["They cary cars"]
	if len(before) != 2 || rootCopy.FeedPost == nil || oldReply.FeedPost == nil {
		t.Fatalf("before the edit Bluesky has %v", before)
	}

	if err := a.API(t.Context(), http.MethodPut, "/api/v1/statuses/"+reply,
		url.Values{"status": {"They carry cars"}}, nil); err != nil {
		t.Fatal(err)
	}
	mirror()
	mirror() // a second run finds nothing more to do

	ps := bskyPosts(t, u)
	if len(ps) != 2 {
		t.Fatalf("after the edit Bluesky has %d records, want 2: %+v", len(ps), ps)
	}
	var newReply bskyPost
	for _, p := range ps {
		switch p.Text {
		case "They carry cars":
			newReply = p
		case "A thread about ferries":
			if p.URI != rootCopy.URI {
				t.Errorf("the thread's first post was replaced: %s, was %s", p.URI, rootCopy.URI)
			}
		default:
			t.Errorf("an unexpected record %s: %q", p.URI, p.Text)
		}
	}
	if newReply.FeedPost == nil || newReply.URI == oldReply.URI {
		t.Fatalf("the edited copy: %+v (old %s)", newReply, oldReply.URI)
	}
	if newReply.Reply == nil || newReply.Reply.Parent.Uri != rootCopy.URI || newReply.Reply.Root.Uri != rootCopy.URI {
		t.Errorf("the new copy does not answer the thread's first post: %+v", newReply.Reply)
	}

	// The route's state points at the new copy: a delete at the origin
	// deletes it. (A later post keeps the deleted one within the window
	// that `ferry mirror` reads again to notice deletes.)
	mirPublish(t, origin, post.Post{Text: "A later post", Visibility: post.Public}, "")
	mirror()
	if err := a.API(t.Context(), http.MethodDelete, "/api/v1/statuses/"+reply, nil, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delete on GoToSocial to take effect", func() bool {
		return a.API(t.Context(), http.MethodGet, "/api/v1/statuses/"+reply, nil, nil) != nil
	})
	mirror()
	after := map[string]bool{}
	for _, p := range bskyPosts(t, u) {
		after[p.URI] = true
		if p.URI == newReply.URI {
			t.Errorf("the new copy %s outlived the delete of its origin", p.URI)
		}
	}
	if len(after) != 2 || !after[rootCopy.URI] {
		t.Errorf("after the delete Bluesky has %v, want the thread's first post and the later post", after)
	}
}
