package bluesky_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/platform/bluesky"
	"github.com/fedi-ferry/ferry/platform/mastodon"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/state"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func password(pw string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return pw, nil }
}

// The Bluesky platform against a real PDS: detection through the registry
// (before the Mastodon API), login by PDS and handle, a wrong password,
// the session's roles, a refresh whose rotated tokens are saved, and
// finding the PDS from the account's DID.
func TestE2EPlatformBluesky(t *testing.T) {
	env := testenv.SharedPDS(t, 1)
	ctx := t.Context()
	pds := env.PDSes[0]
	u, err := pds.CreateAccount(ctx, "plat")
	if err != nil {
		t.Fatal(err)
	}
	store := state.TestStore(t)
	penv := platform.Env{UserAgent: "ferry-test", Tokens: store}
	reg, err := platform.New(penv, bluesky.New(penv, bluesky.Options{PLCURL: env.PLCURL}), mastodon.New(penv))
	if err != nil {
		t.Fatal(err)
	}

	p, srv, err := reg.Detect(ctx, pds.URL)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != bluesky.Name || srv.Base != pds.URL || srv.Software != bluesky.Software || srv.Version == "" ||
		srv.Limits.MaxChars != 300 || !srv.Limits.CountGraphemes || srv.Limits.MaxMedia != 4 || srv.Limits.MaxImageBytes <= 0 {
		t.Fatalf("detected %s: %+v", p.Name(), srv)
	}

	// A web site is not a PDS: the next platform is asked.
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html>a blog</html>"))
	}))
	defer site.Close()
	if _, err := bluesky.New(penv, bluesky.Options{}).Detect(ctx, site.URL); !errors.Is(err, platform.ErrNotMine) {
		t.Fatalf("a web site detected as a PDS: %v", err)
	}

	_, err = platform.Login(ctx, p, srv, platform.LoginRequest{Server: pds.URL, Identifier: u.Handle, Password: password("wrong-password-123")})
	if !platform.IsUnauthorized(err) || !strings.Contains(err.Error(), "does not accept this handle and password") ||
		strings.Contains(err.Error(), "wrong-password-123") {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := platform.Login(ctx, p, srv, platform.LoginRequest{Server: pds.URL, Password: password(u.Password)}); err == nil ||
		!strings.Contains(err.Error(), "--handle") {
		t.Fatalf("login without a handle: %v", err)
	}

	acct, err := platform.Login(ctx, p, srv, platform.LoginRequest{Server: pds.URL, Identifier: "@" + u.Handle, Password: password(u.Password)})
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(pds.URL, "http://")
	if acct.Handle != u.Handle+"@"+host || acct.Platform != bluesky.Name || acct.AccountID != u.DID || acct.Username != u.Handle ||
		acct.Server != pds.URL || acct.Software != bluesky.Software || !strings.Contains(acct.Token, "refreshJwt") {
		t.Fatalf("login: %v", acct)
	}
	if strings.Contains(acct.Token, u.Password) || strings.Contains(acct.String(), "Jwt") {
		t.Fatal("the password is stored, or the tokens are printed")
	}
	if err := store.PutAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}

	sess, err := reg.Open(acct)
	if err != nil {
		t.Fatal(err)
	}
	id, err := sess.Verify(ctx)
	if err != nil || id.ID != u.DID || id.Username != u.Handle || id.Handle != acct.Handle {
		t.Fatalf("Verify = %+v, %v", id, err)
	}
	if s2, err := sess.Server(ctx); err != nil || s2.Limits.MaxChars != 300 {
		t.Fatalf("Server = %+v, %v", s2, err)
	}
	sink, err := sess.(platform.SinkOpener).Sink(platform.SinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.(platform.SinkOpener).Sink(platform.SinkOptions{LocalOnly: true}); err == nil {
		t.Error("a Bluesky sink took local_only")
	}
	ref, err := sink.Publish(ctx, sinks.Draft{Key: "platform-test", Post: post.Post{Text: "hello from the platform test"}})
	if err != nil || !strings.HasPrefix(ref.ID, "at://"+u.DID+"/") {
		t.Fatalf("publish through the session's sink: %+v, %v", ref, err)
	}
	// The account is a route source too, streamed when asked, and reads
	// what the sink wrote.
	rs, err := reg.Source(platform.SourceSpec{Type: platform.SourceAccount, Session: sess, Stream: true})
	if err != nil || rs.Kind != bridge.KindAccount || rs.Account != acct.Handle || !rs.Stream {
		t.Fatalf("account source = %+v, %v", rs, err)
	}
	page, err := rs.Source.Fetch(ctx, "")
	if err != nil || len(page.Posts) != 1 || page.Posts[0].OriginID != ref.ID || page.Posts[0].Text != "hello from the platform test" {
		t.Fatalf("the account source's newest page: %+v, %v", page, err)
	}

	// A refresh rotates the tokens: the new ones are saved, and a later
	// run (a new platform, from the stored account) works with them.
	if err := sess.(*bluesky.Session).Client().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	stored, err := store.Account(ctx, acct.Handle)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Token == acct.Token || !strings.Contains(stored.Token, sess.(*bluesky.Session).Client().Session().RefreshJWT) {
		t.Fatal("the rotated tokens were not saved")
	}
	later, err := bluesky.New(penv, bluesky.Options{}).Open(stored)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := later.Verify(ctx); err != nil || id.ID != u.DID {
		t.Fatalf("Verify with the saved tokens = %+v, %v", id, err)
	}

	// Two sessions of one account share a client: one refresh serves both.
	again, err := reg.Open(stored)
	if err != nil || again.(*bluesky.Session).Client() != sess.(*bluesky.Session).Client() {
		t.Fatalf("a second session of the account has its own client (%v)", err)
	}

	// Logging in by the account's name alone: its DID leads to its PDS
	// through the PLC directory (.test handles do not resolve by DNS).
	lp, lsrv, ident, err := reg.Locate(ctx, u.DID)
	if err != nil {
		t.Fatal(err)
	}
	if lp.Name() != bluesky.Name || lsrv.Base != pds.URL || (ident != u.DID && ident != u.Handle) {
		t.Fatalf("Locate(%s) = %s %+v %q", u.DID, lp.Name(), lsrv, ident)
	}
	if _, _, _, err := reg.Locate(ctx, "not a handle"); !errors.Is(err, platform.ErrNotMine) {
		t.Fatalf("Locate of a non-name: %v", err)
	}
	if _, _, _, err := reg.Locate(ctx, "nobody-here.test"); !errors.Is(err, atproto.ErrUnresolved) || errors.Is(err, platform.ErrNotMine) {
		t.Fatalf("Locate of a handle that does not resolve: %v", err)
	}

	// Revoking ends the session: its refresh token stops working (the
	// access token lives until it expires, as the PDS checks it by its
	// signature).
	if err := later.(platform.Revoker).Revoke(ctx, store); err != nil {
		t.Fatal(err)
	}
	if err := later.(*bluesky.Session).Client().Refresh(ctx); !errors.Is(err, atproto.ErrAuth) {
		t.Fatalf("refresh after revoking = %v", err)
	}
	if err := later.(platform.Revoker).Revoke(ctx, store); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
}
