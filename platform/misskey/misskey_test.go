package misskey_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/internal/fakemastodon"
	"github.com/fedi-ferry/ferry/internal/fakemisskey"
	"github.com/fedi-ferry/ferry/platform"
	pmk "github.com/fedi-ferry/ferry/platform/misskey"
	"github.com/fedi-ferry/ferry/platform/platforms"
	"github.com/fedi-ferry/ferry/sinks"
)

// person plays the person at the MiAuth page: opens it, presses Allow as
// user, and lets the browser return to ferry (or, with paste, types the
// address instead).
type person struct {
	srv   *fakemisskey.Server
	user  string
	paste bool
}

func (p person) Authorize(ctx context.Context, authURL string, redirected func(context.Context) (string, error)) (string, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return "", err
	}
	resp, err := http.Get(authURL)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	back, err := p.srv.Approve(strings.TrimPrefix(u.Path, "/miauth/"), p.user)
	if err != nil {
		return "", err
	}
	if p.paste || redirected == nil {
		return authURL, nil
	}
	resp, err = http.Get(back)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return "", errors.New("callback answered " + resp.Status)
	}
	return redirected(ctx)
}

func registry(t *testing.T) *platform.Registry {
	t.Helper()
	r, err := platforms.Registry(platform.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDetectAndMiAuthLogin(t *testing.T) {
	for _, oob := range []bool{false, true} {
		srv := fakemisskey.Start(fakemisskey.Config{Flavour: "sharkey", MaxNoteTextLength: 8000})
		defer srv.Close()
		srv.AddUser("alice", "pw")
		ctx := t.Context()
		p, info, err := registry(t).Detect(ctx, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		if p.Name() != pmk.Name || info.Software != "sharkey" || info.Limits.MaxChars != 8000 || info.LimitsFrom != "api/meta" {
			t.Fatalf("detected %s %+v", p.Name(), info)
		}
		acct, err := platform.Login(ctx, p, info, platform.LoginRequest{Server: srv.URL, OOB: oob, Prompt: person{srv: srv, user: "alice", paste: oob}})
		if err != nil {
			t.Fatalf("oob=%v: %v", oob, err)
		}
		if acct.Handle != "alice@"+srv.Host || acct.Platform != pmk.Name || acct.Software != "sharkey" || acct.Token == "" {
			t.Fatalf("account %+v", acct)
		}
		sess, err := p.Open(acct)
		if err != nil {
			t.Fatal(err)
		}
		if id, err := sess.Verify(ctx); err != nil || id.Handle != acct.Handle {
			t.Fatalf("Verify = %+v, %v", id, err)
		}
		// On Sharkey the sink edits.
		if s, err := sess.(platform.SinkOpener).Sink(platform.SinkOptions{}); err != nil {
			t.Fatal(err)
		} else if _, ok := s.(sinks.Editor); !ok {
			t.Error("a Sharkey account's sink does not edit")
		}
	}
}

func TestLoginRefusesUnapproved(t *testing.T) {
	srv := fakemisskey.Start(fakemisskey.Config{})
	defer srv.Close()
	p, info, err := registry(t).Detect(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = platform.Login(t.Context(), p, info, platform.LoginRequest{Server: srv.URL, OOB: true, Prompt: typesOK{}})
	if err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("login without approval = %v", err)
	}
}

type typesOK struct{}

func (typesOK) Authorize(context.Context, string, func(context.Context) (string, error)) (string, error) {
	return "ok", nil
}

func TestTokenLoginAndRevokedToken(t *testing.T) {
	srv := fakemisskey.Start(fakemisskey.Config{})
	defer srv.Close()
	uid := srv.AddUser("alice", "pw")
	tok := srv.AddToken(uid, nil)
	ctx := t.Context()
	reg := registry(t)
	p, info, err := reg.Detect(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := platform.Login(ctx, p, info, platform.LoginRequest{Server: srv.URL, Token: tok})
	if err != nil || acct.AccountID != uid {
		t.Fatalf("token login = %+v, %v", acct, err)
	}
	if _, err := platform.Login(ctx, p, info, platform.LoginRequest{Server: srv.URL, Token: "wrong"}); !platform.IsUnauthorized(err) {
		t.Fatalf("wrong token = %v", err)
	}
	sess, _ := reg.Open(acct)
	srv.RevokeToken(tok)
	if _, err := sess.Verify(ctx); !platform.IsUnauthorized(err) {
		t.Fatalf("revoked token: Verify = %v", err)
	}
}

func TestDetectLeavesOtherServersAndRefusesHTML(t *testing.T) {
	masto := fakemastodon.Start(fakemastodon.Config{Software: "gotosocial", Version: "0.20.0"})
	defer masto.Close()
	p, _, err := registry(t).Detect(t.Context(), masto.URL)
	if err != nil || p.Name() != "mastodon" {
		t.Fatalf("a GoToSocial server detected as %v (%v)", p, err)
	}
	html := fakemisskey.Start(fakemisskey.Config{HTMLAPI: true})
	defer html.Close()
	_, _, err = registry(t).Detect(t.Context(), html.URL)
	if err == nil || !strings.Contains(err.Error(), "text/html") || !strings.Contains(err.Error(), "misskey") {
		t.Fatalf("HTML-answering server: %v", err)
	}
}
