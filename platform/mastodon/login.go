package mastodon

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/state"
)

// Login authorizes ferry for an account (OAuth 2 with PKCE where the
// server supports it, through a loopback redirect or a code the server
// shows), or checks req.Token, and returns the account. The app
// registration is cached in req.Apps per server and redirect address, so
// that repeated logins reuse it; one the server has forgotten is dropped.
func (p *Platform) Login(ctx context.Context, req platform.LoginRequest) (state.Account, error) {
	base, err := fedi.ParseServer(req.Server)
	if err != nil {
		return state.Account{}, err
	}
	hc, _ := p.httpClient()
	anon := fedi.NewClient(base, "", hc)
	token, scopes, clientID := strings.TrimSpace(req.Token), "", ""
	if token == "" {
		var app fedi.App
		token, scopes, app, err = p.authorize(ctx, anon, req)
		if err != nil {
			return state.Account{}, err
		}
		clientID = app.ClientID
	}
	client := fedi.NewClient(base, token, hc)
	vctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	me, err := fedi.VerifyCredentials(vctx, client)
	if err != nil {
		if fedi.IsUnauthorized(err) {
			return state.Account{}, fmt.Errorf("the server does not accept this token (%w); check it, or log in without --token", err)
		}
		return state.Account{}, err
	}
	return state.Account{
		// The handle carries the server's own domain, not the address it
		// was reached at: it becomes an alias or a Move target later.
		Handle: me.Username + "@" + fedi.AccountDomain(vctx, client, me.Username), Server: base.String(), AccountID: me.ID, Username: me.Username,
		Token: token, Scopes: scopes, ClientID: clientID, Platform: Name,
	}, nil
}

// authorize runs the interactive OAuth flow and returns the token.
func (p *Platform) authorize(ctx context.Context, anon *fedi.Client, req platform.LoginRequest) (token, scopes string, app fedi.App, err error) {
	state := fedi.NewState()
	redirect := fedi.OOBRedirect
	var cb *fedi.Callback
	if !req.OOB {
		cb, err = fedi.ListenCallback(req.CallbackPort, state)
		if err != nil && req.CallbackPort != 0 {
			cb, err = fedi.ListenCallback(0, state)
		}
		if err != nil {
			return "", "", app, err
		}
		defer cb.Close()
		redirect = cb.RedirectURI
	}

	app, err = cachedApp(ctx, req.Apps, anon, redirect)
	if err != nil {
		return "", "", app, err
	}
	var pkce *fedi.PKCE
	pctx, cancel := context.WithTimeout(ctx, requestTimeout)
	if supported, known := fedi.SupportsPKCE(pctx, anon); supported || !known {
		pk := fedi.NewPKCE()
		pkce = &pk
	}
	cancel()

	var redirected func(context.Context) (string, error)
	if cb != nil {
		redirected = cb.Wait
	}
	answer, err := req.Prompt.Authorize(ctx, fedi.AuthorizeURL(anon.Base(), app, state, pkce), redirected)
	if err != nil {
		return "", "", app, err
	}
	code, err := codeFromInput(answer, state)
	if err != nil {
		return "", "", app, err
	}
	verifier := ""
	if pkce != nil {
		verifier = pkce.Verifier
	}
	ectx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	token, scopes, err = fedi.ExchangeCode(ectx, anon, app, code, verifier)
	if err != nil && fedi.StatusCode(err) == 401 {
		// The server forgot the cached app (deleted, or vacuumed as old
		// Mastodon versions do): drop it so the next run registers anew.
		_ = req.Apps.DeleteApp(ctx, anon.Base().String(), app.RedirectURI, app.Scopes)
		return "", "", app, fmt.Errorf("%w\n  ferry's app registration is no longer known to the server; it has been forgotten, run the command again", err)
	}
	return token, scopes, app, err
}

// cachedApp returns ferry's app registration for this server and redirect,
// registering one the first time.
func cachedApp(ctx context.Context, apps platform.AppStore, c *fedi.Client, redirect string) (fedi.App, error) {
	server := c.Base().String()
	if a, err := apps.App(ctx, server, redirect, fedi.Scopes); err == nil {
		return fedi.App{ClientID: a.ClientID, ClientSecret: a.ClientSecret, RedirectURI: a.RedirectURI, Scopes: a.Scopes}, nil
	} else if !errors.Is(err, state.ErrNotFound) {
		return fedi.App{}, fmt.Errorf("load app registration: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	app, err := fedi.RegisterApp(rctx, c, "ferry", "https://github.com/fedi-ferry/ferry", redirect, fedi.Scopes)
	if err != nil {
		return fedi.App{}, err
	}
	err = apps.PutApp(ctx, state.App{Server: server, RedirectURI: redirect, ClientID: app.ClientID,
		ClientSecret: app.ClientSecret, Scopes: app.Scopes})
	if err != nil {
		return fedi.App{}, fmt.Errorf("save app registration: %w", err)
	}
	return app, nil
}

// codeFromInput accepts the code from the redirect, a pasted code, or a
// pasted redirect address (whose state must be this login's).
func codeFromInput(line, state string) (string, error) {
	if !strings.Contains(line, "code=") {
		return line, nil
	}
	u, err := url.Parse(line)
	if err != nil {
		return "", fmt.Errorf("the pasted address is not a URL: %w", err)
	}
	q := u.Query()
	if s := q.Get("state"); s != "" && s != state {
		return "", errors.New("the pasted address belongs to another login attempt (state does not match)")
	}
	if q.Get("code") == "" {
		return "", errors.New("the pasted address carries no code")
	}
	return q.Get("code"), nil
}
