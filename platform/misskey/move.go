package misskey

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/migrate/move"
	mk "github.com/fedi-ferry/ferry/misskey"
	"github.com/fedi-ferry/ferry/platform"
)

// moveSide is a Misskey account as a side of a migration (move.SideAPI):
// aliases through i/update's alsoKnownAs (Misskey takes handles and shows
// the aliased users' IDs), the account's state through i (movedTo), its
// followers through users/followers, and the Move through i/move. i/move is
// a "secure" endpoint that refuses every app's token (the session's, from
// MiAuth): MoveAccount signs in with the account's password, as the web
// client does, for the native token i/move takes, and forgets it after the
// one call.
type moveSide struct {
	c *mk.Client
	g graphAPI
}

func (m moveSide) Base() *url.URL { return m.c.Base() }

// localURI is the ActivityPub ID of a local user (Misskey's
// <base>/users/<id>).
func (m moveSide) localURI(id string) string { return m.c.Base().JoinPath("users", id).String() }

// user reads a user by ID, with the handle it has on this server's view.
func (m moveSide) user(ctx context.Context, id string) (fedi.Account, error) {
	var u struct {
		mk.User
		URI *string `json:"uri"`
	}
	if err := m.g.call(ctx, "users/show", map[string]string{"userId": id}, &u, false); err != nil {
		return fedi.Account{}, err
	}
	a := account(u.User)
	a.URI = mk.Str(u.URI)
	if a.URI == "" {
		a.URI = m.localURI(u.ID)
	}
	if !strings.Contains(a.Acct, "@") {
		a.Acct += "@" + m.c.Base().Host
	}
	return a, nil
}

type me struct {
	mk.User
	AlsoKnownAs []string `json:"alsoKnownAs"`
	MovedTo     *string  `json:"movedTo"`
}

func (m moveSide) me(ctx context.Context) (me, error) {
	var out me
	return out, m.g.call(ctx, "i", nil, &out, false)
}

func (m moveSide) Me(ctx context.Context) (fedi.Account, error) {
	u, err := m.me(ctx)
	if err != nil {
		return fedi.Account{}, err
	}
	a := account(u.User)
	a.URI = m.localURI(u.ID)
	a.Moved = nil
	if id := mk.Str(u.MovedTo); id != "" {
		to, err := m.user(ctx, id)
		if err != nil {
			return fedi.Account{}, fmt.Errorf("the account moved to user %s, who cannot be read: %w", id, err)
		}
		a.Moved = &to
	}
	return a, nil
}

// Aliases are the handles (user@host) of the users the account lists as
// also known as.
func (m moveSide) Aliases(ctx context.Context) ([]string, error) {
	u, err := m.me(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range u.AlsoKnownAs {
		a, err := m.user(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, a.Acct, a.URI)
	}
	return out, nil
}

// AddAlias adds oldHandle to the account's aliases, keeping those it has
// (i/update replaces the list; Misskey keeps at most 10).
func (m moveSide) AddAlias(ctx context.Context, oldURI, oldHandle string) error {
	u, err := m.me(ctx)
	if err != nil {
		return err
	}
	var accts []string
	for _, id := range u.AlsoKnownAs {
		a, err := m.user(ctx, id)
		if err != nil {
			return err
		}
		accts = append(accts, a.Acct)
	}
	accts = append(accts, strings.TrimPrefix(oldHandle, "@"))
	if len(accts) > 10 {
		return fmt.Errorf("the account already has %d aliases, Misskey's most; remove one in its settings first", len(accts)-1)
	}
	return m.g.call(ctx, "i/update", map[string]any{"alsoKnownAs": accts}, nil, true)
}

// MoveAccount sends the Move to newHandle (user@host) from Misskey's API:
//
//  1. i (the session's token) says whether two-factor authentication is on;
//     anonymous meta says whether the server wants a captcha at sign-in.
//     A captcha for an account without two-factor authentication (Misskey
//     checks it only then) is a *move.GuidedError: only a browser can sign
//     in, so the person sends the Move in the web client;
//  2. the password (and, with two-factor authentication, the one-time code)
//     from s sign in as the account: POST /api/signin-flow {username,
//     password, token?}, or /api/signin on older servers (misskey.SignIn);
//     a server that asks for the code although i did not say so gets it on
//     a second attempt;
//  3. POST /api/i/move {moveToAccount: newHandle} with the native token the
//     sign-in answered; the token is forgotten then, stored and shown
//     nowhere.
//
// A wrong password or code is an error for which platform.IsUnauthorized
// holds, sent before anything changed. The sign-in leaves a "login"
// notification on the account (and an email where it has an address).
func (m moveSide) MoveAccount(ctx context.Context, newURI, newHandle string, s move.Secrets) error {
	var me struct {
		Username         string `json:"username"`
		TwoFactorEnabled bool   `json:"twoFactorEnabled"`
	}
	if err := m.g.call(ctx, "i", nil, &me, false); err != nil {
		return err
	}
	handle := me.Username + "@" + m.c.Base().Host
	srv, err := mk.Meta(ctx, m.c.WithToken(""))
	if err != nil {
		return fmt.Errorf("read %s's settings before signing in: %w", m.c.Base().Host, err)
	}
	if len(srv.Captchas) > 0 && !me.TwoFactorEnabled {
		return &move.GuidedError{Reason: fmt.Sprintf("%s asks for a captcha (%s) when %s signs in with a password, which only a browser can answer",
			m.c.Base().Host, strings.Join(srv.Captchas, ", "), handle)}
	}
	password, err := s.Password()
	if err != nil {
		return err
	}
	code := ""
	if me.TwoFactorEnabled {
		if code, err = oneTimeCode(s, handle); err != nil {
			return err
		}
	}
	tok, err := m.c.SignIn(ctx, me.Username, password, code)
	if errors.Is(err, mk.ErrCodeNeeded) && code == "" {
		if code, err = oneTimeCode(s, handle); err != nil {
			return err
		}
		tok, err = m.c.SignIn(ctx, me.Username, password, code)
	}
	switch {
	case errors.Is(err, mk.ErrCaptcha), errors.Is(err, mk.ErrPasskey):
		return &move.GuidedError{Reason: err.Error()}
	case errors.Is(err, mk.ErrWrongPassword) && code != "":
		return fmt.Errorf("sign in as %s to send the Move: %w: the password or the one-time code is wrong (Misskey does not say which)",
			handle, platform.ErrUnauthorized)
	case errors.Is(err, mk.ErrWrongPassword):
		return fmt.Errorf("sign in as %s to send the Move: %w: the password is wrong", handle, platform.ErrUnauthorized)
	case errors.Is(err, mk.ErrSuspended), errors.Is(err, mk.ErrNoSuchUser):
		return fmt.Errorf("sign in as %s to send the Move: %w: %w", handle, platform.ErrUnauthorized, err)
	case err != nil:
		return fmt.Errorf("sign in as %s to send the Move: %w", handle, err)
	}
	// tok is used for this one call and goes out of scope with it.
	err = m.c.WithToken(tok).Call(ctx, "i/move", map[string]string{"moveToAccount": strings.TrimPrefix(newHandle, "@")}, nil, true)
	switch {
	case err == nil:
		return nil
	case mk.IsCode(err, "DESTINATION_ACCOUNT_FORBIDS"):
		// i/move fetches the target's actor again before it checks the
		// alias, so this refusal is final, not a stale copy to wait
		// for; and every call counts against 5 a day.
		return fmt.Errorf("%s refused the Move: %s does not list %s as an alias (alsoKnownAs), or has moved itself: %w",
			m.c.Base().Host, newHandle, handle, err)
	case mk.IsCode(err, "YOUR_ACCOUNT_MOVED"), mk.IsCode(err, "ALREADY_MOVED"):
		return fmt.Errorf("%s has already moved (to another account than %s?): %w", handle, newHandle, err)
	}
	return fediErr(err)
}

// oneTimeCode asks s for the account's one-time code.
func oneTimeCode(s move.Secrets, handle string) (string, error) {
	if s.Code == nil {
		return "", fmt.Errorf("%s has two-factor authentication: the Move needs its one-time code, and there is no way to ask for it", handle)
	}
	return s.Code()
}

// Refresh asks the server to fetch the actor again (ap/show).
func (m moveSide) Refresh(ctx context.Context, uri string) error {
	return m.g.call(ctx, "ap/show", map[string]string{"uri": uri}, nil, false)
}

// Followers are the handles following the account, user@host in lower
// case (this server's users with its host).
func (m moveSide) Followers(ctx context.Context, id string) (map[string]bool, error) {
	out := map[string]bool{}
	host := strings.ToLower(m.c.Base().Host)
	err := m.g.Followers(ctx, id, func(page []fedi.Account) error {
		for _, a := range page {
			acct := strings.ToLower(a.Acct)
			if !strings.Contains(acct, "@") {
				acct += "@" + host
			}
			out[acct] = true
		}
		return nil
	})
	return out, err
}

// MoveSide describes the account for migrate/move: its software from
// nodeinfo, the account from i, its actor URI, and Misskey's graph and
// side APIs.
func (s *Session) MoveSide(ctx context.Context) (*move.Side, error) {
	name, version, err := mk.NodeInfo(ctx, s.anon)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", s.acct.Handle, err)
	}
	side := moveSide{c: s.c, g: graphAPI{s.c}}
	acct, err := side.Me(ctx)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", s.acct.Handle, err)
	}
	return &move.Side{Handle: s.acct.Handle, API: side, Graph: side.g, Archive: s.archiveAPI(), Software: fedi.Software{Name: name, Version: version},
		Account: acct, URI: acct.URI}, nil
}

var (
	_ move.SideAPI   = moveSide{}
	_ platform.Mover = (*Session)(nil)
)
