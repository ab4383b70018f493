package mastodon_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/migrate"
	"github.com/fedi-ferry/ferry/migrate/graphtest"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/platform/mastodon"
	"github.com/fedi-ferry/ferry/state"
)

// peer is a GoToSocial account acting through the client API directly,
// as a person's app would: the suite's independent channel.
type peer struct{ u *testenv.User }

func (p peer) Handle() string { return p.u.Acct }

func (p peer) Follow(ctx context.Context, handle string) error {
	id, err := p.u.Resolve(ctx, handle)
	if err != nil {
		return err
	}
	return p.u.API(ctx, http.MethodPost, "/api/v1/accounts/"+id+"/follow", nil, nil)
}

func (p peer) Post(ctx context.Context, text string) (string, error) {
	var st struct{ URI string }
	err := p.u.API(ctx, http.MethodPost, "/api/v1/statuses", url.Values{"status": {text}, "visibility": {"public"}}, &st)
	if err == nil && st.URI == "" {
		err = fmt.Errorf("post of %s has no URI", p.u.Acct)
	}
	return st.URI, err
}

// The graph contract suite on the Mastodon platform, against two
// federating GoToSocial servers: the source and its peers on one, the
// target on the other, so that the import follows, blocks and bookmarks
// across servers; then again with GoToSocial's own importer doing the
// following, blocks and mutes.
func TestE2EGraphContractGoToSocial(t *testing.T) {
	env := testenv.Shared(t, 2)
	A, B := env.Instances[0], env.Instances[1]
	ctx := t.Context()
	roots, err := fedi.LoadRoots(env.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	penv := platform.Env{Roots: roots, UserAgent: "ferry-test"}
	p := mastodon.New(penv)
	store := state.TestStore(t)
	session := func(in *testenv.Instance) (graphtest.Account, platform.Metered) {
		t.Helper()
		u, err := in.CreateUser(ctx, "", true)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := p.Detect(ctx, in.BaseURL)
		if err != nil {
			t.Fatal(err)
		}
		acct, err := platform.Login(ctx, p, srv, platform.LoginRequest{Server: in.BaseURL, Token: u.Token, Apps: store})
		if err != nil {
			t.Fatal(err)
		}
		sess, err := p.Open(acct)
		if err != nil {
			t.Fatal(err)
		}
		return graphtest.Account{Handle: u.Acct, Porter: sess.(platform.GraphPorter)}, sess.(platform.Metered)
	}
	for _, c := range []struct {
		method migrate.Method
		target *testenv.Instance
	}{
		{migrate.MethodAuto, B},
		// GoToSocial's own importer fetches a remote account it blocks or
		// mutes as its instance actor, and in this environment (hosts with
		// ports) that fetch times out and the row is skipped; the server
		// method therefore imports onto the peers' server.
		{migrate.MethodServer, A},
	} {
		t.Run(string(c.method), func(t *testing.T) {
			src, srcUse := session(A)
			dst, dstUse := session(c.target)

			start := time.Now()
			graphtest.Run(t, graphtest.Env{
				Method: c.method,
				Source: src,
				Target: dst,
				NewPeer: func(ctx context.Context) (graphtest.Peer, error) {
					u, err := A.CreateUser(ctx, "", true)
					return peer{u}, err
				},
				Journal:     store,
				Unsupported: map[migrate.Type]string{migrate.DomainBlocks: "GoToSocial has no user-level domain blocks"},
				// GoToSocial's follow takes reblogs and notify only.
				NoFollowLanguages: "GoToSocial keeps no languages on a follow",
			})
			if t.Failed() {
				logImportErrors(t, A, B)
			}
			s, d := srcUse.Usage(), dstUse.Usage()
			t.Logf("graph suite: %v; requests: source %d, target %d (rate-limited %d, waited %v)",
				time.Since(start).Round(time.Millisecond), s.Requests, d.Requests, s.RateLimited+d.RateLimited, s.Waited+d.Waited)
		})
	}
}

// logImportErrors logs what the servers' own importers logged about
// rows they skipped (they say so only in their logs).
func logImportErrors(t *testing.T, ins ...*testenv.Instance) {
	for _, in := range ins {
		b, err := os.ReadFile(in.LogFile)
		if err != nil {
			t.Log(err)
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "import") && strings.Contains(l, "level=ERROR") {
				t.Logf("%s: %s", in.Name, l)
			}
		}
	}
}
