package mastodon_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/platform/mastodon"
	"github.com/fedi-ferry/ferry/state"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// elsewhere is a platform whose servers answer differently from every
// server here (as a second protocol family's would): the registry must
// pass over it to the next platform.
type elsewhere struct{}

func (elsewhere) Name() string { return "elsewhere" }
func (elsewhere) Open(a state.Account) (platform.Session, error) {
	return nil, fmt.Errorf("account %s is not an elsewhere account", a.Handle)
}
func (elsewhere) Detect(ctx context.Context, server string) (platform.Server, error) {
	return platform.Server{}, fmt.Errorf("%s: %w", server, platform.ErrNotMine)
}

// person approves ferry in the server's web pages, as someone at a
// browser would, and pastes the address the browser ends on.
type person struct {
	in *testenv.Instance
	u  *testenv.User
}

func (p person) Authorize(ctx context.Context, authURL string, redirected func(context.Context) (string, error)) (string, error) {
	redirect, _, err := p.in.Authorize(ctx, authURL, p.u)
	if err != nil {
		return "", err
	}
	return redirect.String(), nil
}

// The Mastodon platform against a real GoToSocial: detection through the
// registry (after a platform that does not recognise the server), login
// with a token and interactively, the session's roles, and revocation.
func TestE2EPlatformGoToSocial(t *testing.T) {
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	ctx := t.Context()
	u, err := in.CreateUser(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := fedi.LoadRoots(env.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	penv := platform.Env{Roots: roots, UserAgent: "ferry-test"}
	reg, err := platform.New(penv, elsewhere{}, mastodon.New(penv))
	if err != nil {
		t.Fatal(err)
	}
	p, srv, err := reg.Detect(ctx, in.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != mastodon.Name || srv.Platform != mastodon.Name || srv.Software != "gotosocial" || srv.Limits.MaxChars <= 0 {
		t.Fatalf("detected %s: %+v", p.Name(), srv)
	}

	store := state.TestStore(t)
	acct, err := platform.Login(ctx, p, srv, platform.LoginRequest{Server: in.BaseURL, Token: u.Token, Apps: store})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(acct.Handle, u.Acct) || acct.Platform != mastodon.Name || acct.Software != "gotosocial" || acct.AccountID != u.ID {
		t.Fatalf("token login: %#v", acct)
	}
	_, err = platform.Login(ctx, p, srv, platform.LoginRequest{Server: in.BaseURL, Token: "not-a-token", Apps: store})
	if !platform.IsUnauthorized(err) || !strings.Contains(err.Error(), "does not accept this token") || strings.Contains(err.Error(), "not-a-token") {
		t.Fatalf("bad token: %v", err)
	}

	oauth, err := platform.Login(ctx, p, srv, platform.LoginRequest{Server: in.BaseURL, Apps: store, OOB: true, Prompt: person{in, u}})
	if err != nil {
		t.Fatal(err)
	}
	if oauth.ClientID == "" || oauth.Token == "" || oauth.Token == u.Token || !strings.EqualFold(oauth.Handle, u.Acct) {
		t.Fatalf("interactive login: %#v", oauth)
	}
	if _, err := store.AppByClientID(ctx, oauth.Server, oauth.ClientID); err != nil {
		t.Fatalf("the app registration was not kept: %v", err)
	}

	sess, err := reg.Open(oauth)
	if err != nil {
		t.Fatal(err)
	}
	id, err := sess.Verify(ctx)
	if err != nil || id.ID != u.ID || !strings.EqualFold(id.Handle, u.Acct) {
		t.Fatalf("Verify = %+v, %v", id, err)
	}
	rs, err := reg.Source(platform.SourceSpec{Type: platform.SourceAccount, Session: sess, Stream: true})
	if err != nil || rs.Kind != "account" || !rs.Stream || rs.Account != oauth.Handle {
		t.Fatalf("account source: %+v, %v", rs, err)
	}
	if page, err := rs.Source.Fetch(ctx, ""); err != nil || len(page.Posts) != 0 {
		t.Fatalf("a new account's posts: %+v, %v", page, err)
	}
	if _, ok := sess.(platform.SinkOpener); !ok {
		t.Error("no sink")
	}
	for name, ok := range map[string]bool{
		"graph":   is[platform.GraphPorter](sess),
		"archive": is[platform.Archiver](sess),
		"move":    is[platform.Mover](sess),
	} {
		if !ok {
			t.Errorf("the Mastodon session lacks the %s role", name)
		}
	}
	if u := sess.(platform.Metered).Usage(); u.Requests < 2 {
		t.Errorf("usage %+v after two requests", u)
	}

	if err := sess.(platform.Revoker).Revoke(ctx, store); err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Verify(ctx); !platform.IsUnauthorized(err) {
		t.Fatalf("after revoking, Verify = %v", err)
	}
	gone := oauth
	gone.ClientID = "no-such-client"
	sess, _ = reg.Open(gone)
	if err := sess.(platform.Revoker).Revoke(ctx, store); !errors.Is(err, platform.ErrNoApp) {
		t.Fatalf("revoke without the app: %v", err)
	}
}

func is[T any](v any) bool { _, ok := v.(T); return ok }
