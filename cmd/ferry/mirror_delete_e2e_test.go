package main

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/post"
)

// Deleting the newest mirrored post on GoToSocial deletes its copy on the
// next run (issue 16): the delete check used to cover only the copies
// between the oldest and the newest post still present, so the copy of a
// deleted newest post stayed until a newer post appeared.
func TestE2EMirrorDeleteNewestPost(t *testing.T) {
	env := testenv.Shared(t, 2)
	a, b := mirUser(t, env.Instances[0]), mirUser(t, env.Instances[1])
	c := newCLI(t, env.CAFile)
	ha, hb := mirLogin(t, c, env.Instances[0], a), mirLogin(t, c, env.Instances[1], b)
	cfg := mirWriteConfig(t, fmt.Sprintf(`
[[route]]
name = "a-to-b"
source = { type = "account", account = "%s" }

[[route.sink]]
account = "%s"
`, ha, hb))
	mirror := func() { t.Helper(); c.run("--config", cfg, "mirror").mustSucceed(t) }
	mirror() // the first run: nothing to mirror yet

	origin := mirSinkFor(t, env, env.Instances[0], a)
	older := mirPublish(t, origin, post.Post{Text: "an older post", Visibility: post.Public}, "")
	newest := mirPublish(t, origin, post.Post{Text: "the newest post", Visibility: post.Public}, "")
	mirror()
	if n := len(mirStatuses(t, b)); n != 2 {
		t.Fatalf("B has %d posts after mirroring, want 2", n)
	}

	if err := a.API(t.Context(), http.MethodDelete, "/api/v1/statuses/"+url.PathEscape(newest), nil, nil); err != nil {
		t.Fatal(err)
	}
	mirror()
	sts := mirStatuses(t, b)
	if len(sts) != 1 || mirText(sts[0]) != "an older post" {
		for _, s := range sts {
			t.Logf("B: %q", mirText(s))
		}
		t.Fatalf("B has %d posts after the newest was deleted, want only the older one", len(sts))
	}

	// The last post too: the window is then empty, and the copy is
	// deleted after the post's ID and its URI (GoToSocial's search) both
	// came up empty.
	if err := a.API(t.Context(), http.MethodDelete, "/api/v1/statuses/"+url.PathEscape(older), nil, nil); err != nil {
		t.Fatal(err)
	}
	mirror()
	if sts := mirStatuses(t, b); len(sts) != 0 {
		t.Fatalf("B has %d posts after every origin post was deleted, want none", len(sts))
	}
}
