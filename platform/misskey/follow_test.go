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
// accepts it, and Misskey keeps notify only on an accepted follow: Follow
// must not call following/update on the request (the real server answers
// NOT_FOLLOWING), waits a moment for the Accept when notify is asked for,
// and then sets only what differs.
func TestFollowRemoteRequestThenAccepted(t *testing.T) {
	defer func(w time.Duration) { acceptWait = w }(acceptWait)
	acceptWait = 300 * time.Millisecond
	yes, no := true, false
	for _, accept := range []time.Duration{-1, 30 * time.Millisecond} {
		t.Run(fmt.Sprint("accept=", accept), func(t *testing.T) {
			srv := fakemisskey.Start(fakemisskey.Config{RemoteAccept: accept})
			defer srv.Close()
			base, _ := mk.ParseServer(srv.URL)
			g := graphAPI{mk.NewClient(base, srv.AddToken(srv.AddUser("me", "pw"), mk.Permissions), mk.Options{})}
			far := srv.AddRemoteUser("far", "remote.example")
			rel, err := g.Follow(t.Context(), far, fedi.FollowOptions{Notify: &yes, Reblogs: &no})
			if err != nil {
				t.Fatalf("follow of a remote user: %v", err)
			}
			if accept < 0 {
				// Never accepted: a pending request, boosts hidden, no
				// following/update.
				if !rel.Requested || rel.Following || rel.ShowingReblogs {
					t.Errorf("relationship %+v, want a pending request with boosts hidden", rel)
				}
				if n := srv.Calls("following/update"); n != 0 {
					t.Errorf("following/update called %d times on a follow request", n)
				}
				return
			}
			if !rel.Following || !rel.Notifying || rel.ShowingReblogs {
				t.Fatalf("after the Accept: %+v, want following with notify and boosts hidden", rel)
			}
			updates, mutes := srv.Calls("following/update"), srv.Calls("renote-mute/create")
			if updates != 1 || mutes != 1 {
				t.Errorf("following/update %d, renote-mute/create %d; want 1 each", updates, mutes)
			}
			// Again: nothing differs, nothing is written but the create
			// (ALREADY_FOLLOWING).
			if rel, err = g.Follow(t.Context(), far, fedi.FollowOptions{Notify: &yes, Reblogs: &no}); err != nil || !rel.Notifying {
				t.Fatalf("follow again: %+v %v", rel, err)
			}
			if u, m := srv.Calls("following/update"), srv.Calls("renote-mute/create"); u != updates || m != mutes {
				t.Errorf("the second Follow wrote again: following/update +%d, renote-mute/create +%d", u-updates, m-mutes)
			}
		})
	}
}
