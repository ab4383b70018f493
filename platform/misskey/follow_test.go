package misskey

import (
	"fmt"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/fakemisskey"
	mk "github.com/fedi-ferry/ferry/misskey"
)

// A follow of a remote user is a request until the remote server
// accepts it; Misskey keeps notify only on an accepted follow, so Follow
// must not call following/update on the request (the real server answers
// NOT_FOLLOWING), and must set what differs once the follow is accepted.
func TestFollowRemoteRequestThenAccepted(t *testing.T) {
	for _, accept := range []time.Duration{-1, 30 * time.Millisecond} {
		t.Run(fmt.Sprint("accept=", accept), func(t *testing.T) {
			srv := fakemisskey.Start(fakemisskey.Config{RemoteAccept: accept})
			defer srv.Close()
			base, _ := mk.ParseServer(srv.URL)
			g := graphAPI{mk.NewClient(base, srv.AddToken(srv.AddUser("me", "pw"), mk.Permissions), mk.Options{})}
			far := srv.AddRemoteUser("far", "remote.example")
			yes, no := true, false
			rel, err := g.Follow(t.Context(), far, fedi.FollowOptions{Notify: &yes, Reblogs: &no})
			if err != nil {
				t.Fatalf("follow of a remote user: %v", err)
			}
			if !rel.Requested || rel.Following || rel.ShowingReblogs {
				t.Errorf("relationship %+v, want a pending request with boosts hidden", rel)
			}
			if n := srv.Calls("following/update"); n != 0 {
				t.Errorf("following/update called %d times on a follow request", n)
			}
			if accept < 0 {
				return
			}
			deadline := time.Now().Add(5 * time.Second)
			for !rel.Following && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				if rel, err = g.relationship(t.Context(), far); err != nil {
					t.Fatal(err)
				}
			}
			if !rel.Following || rel.Notifying {
				t.Fatalf("after the Accept: %+v, want following without notify", rel)
			}
			creates := srv.Calls("renote-mute/create")
			rel, err = g.Follow(t.Context(), far, fedi.FollowOptions{Notify: &yes, Reblogs: &no})
			if err != nil || !rel.Following || !rel.Notifying || rel.ShowingReblogs {
				t.Fatalf("follow again once accepted: %+v %v", rel, err)
			}
			if u, c := srv.Calls("following/update"), srv.Calls("renote-mute/create"); u != 1 || c != creates {
				t.Errorf("following/update %d (want 1), renote-mute/create again %d (want 0)", u, c-creates)
			}
		})
	}
}
