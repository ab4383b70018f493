package misskey_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/fakemisskey"
	"github.com/fedi-ferry/ferry/migrate"
	"github.com/fedi-ferry/ferry/migrate/graphtest"
	mk "github.com/fedi-ferry/ferry/misskey"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/state"
)

// peer is a user of the fake server acting through Misskey's API
// directly, as a person's client would.
type peer struct {
	srv *fakemisskey.Server
	c   *mk.Client
	me  string
}

func (p peer) Handle() string { return p.me + "@" + p.srv.Host }

func (p peer) Follow(ctx context.Context, handle string) error {
	user, _, _ := strings.Cut(handle, "@")
	var u mk.User
	if err := p.c.Call(ctx, "users/show", map[string]any{"username": user, "host": nil}, &u, false); err != nil {
		return err
	}
	return p.c.Call(ctx, "following/create", map[string]string{"userId": u.ID}, nil, true)
}

func (p peer) Post(ctx context.Context, text string) (string, error) {
	n, err := p.c.CreateNote(ctx, mk.NoteParams{Text: text, Visibility: "public"})
	return p.srv.URL + "/notes/" + n.ID, err
}

// The graph contract suite on the Misskey platform, against the fake:
// source, target and peers on one server (the fake does not federate).
func TestGraphContractFakeMisskey(t *testing.T) {
	srv := fakemisskey.Start(fakemisskey.Config{})
	defer srv.Close()
	reg := registry(t)
	ctx := t.Context()
	p, info, err := reg.Detect(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := mk.ParseServer(srv.URL)
	n := 0
	newUser := func() (string, string) {
		n++
		name := fmt.Sprintf("user%d", n)
		return name, srv.AddToken(srv.AddUser(name, "pw"), mk.Permissions)
	}
	account := func() graphtest.Account {
		name, tok := newUser()
		acct, err := platform.Login(ctx, p, info, platform.LoginRequest{Server: srv.URL, Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		sess, err := p.Open(acct)
		if err != nil {
			t.Fatal(err)
		}
		return graphtest.Account{Handle: name + "@" + srv.Host, Porter: sess.(platform.GraphPorter)}
	}
	start := time.Now()
	graphtest.Run(t, graphtest.Env{
		Source: account(),
		Target: account(),
		NewPeer: func(ctx context.Context) (graphtest.Peer, error) {
			name, tok := newUser()
			return peer{srv: srv, c: mk.NewClient(base, tok, mk.Options{}), me: name}, nil
		},
		Journal:                state.TestStore(t),
		Unsupported:            map[migrate.Type]string{migrate.DomainBlocks: "Misskey has no user-level domain blocks"},
		NoFollowLanguages:      "Misskey keeps no languages on a follow",
		MutesHideNotifications: "a Misskey mute always hides the muted account's notifications",
		Settle:                 10 * time.Second,
	})
	t.Logf("graph suite on the fake: %v", time.Since(start).Round(time.Millisecond))
}
