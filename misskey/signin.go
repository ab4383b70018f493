package misskey

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/fedi-ferry/ferry/httpsonly"
)

// Sign-in failures, told apart by the error ids SigninApiService.ts
// answers (misskey-dev/misskey, packages/backend/src/server/api/).
var (
	// ErrWrongPassword: the password, or the one-time code, is wrong
	// (403, id 932c904e-9460-45b7-9ce6-7ed33be7eb2c: Misskey does not say
	// which of the two).
	ErrWrongPassword = errors.New("the server refused the password or the one-time code")
	// ErrNoSuchUser: no local account of that name (403, id
	// 6cc579cc-885d-43d8-95c2-b8c7fc963280).
	ErrNoSuchUser = errors.New("the server has no local account of that name")
	// ErrSuspended: the account is suspended (403, id
	// e03a5f46-d309-4865-9b69-56282d94e1eb).
	ErrSuspended = errors.New("the account is suspended")
	// ErrCodeNeeded: the account has two-factor authentication on and
	// the server asks for its one-time code (signin-flow's next "totp",
	// or "passkey", which a TOTP code answers as well: Misskey checks a
	// given code before security keys).
	ErrCodeNeeded = errors.New("the account has two-factor authentication: the one-time code is needed")
	// ErrCaptcha: the server wants a captcha answered at sign-in, which
	// only a browser can do (400 from the captcha check, or next
	// "captcha").
	ErrCaptcha = errors.New("the server asks for a captcha at sign-in, which only a browser can answer")
	// ErrPasskey: the server wants a security key (WebAuthn) even with
	// the one-time code given, which only a browser can answer.
	ErrPasskey = errors.New("the server asks for a security key (passkey) at sign-in, which only a browser can answer")
)

// SignInLimitError is the sign-in's own rate limit (429
// RATE_LIMIT_EXCEEDED, info.code TOO_MANY_AUTHENTICATION_FAILURES): 10
// attempts an hour and one a second from one address. Wait is how long
// until the hour's window surely ends.
type SignInLimitError struct {
	Wait time.Duration
}

func (e *SignInLimitError) Error() string {
	return fmt.Sprintf("the server refuses more sign-in attempts for now (at most 10 an hour from one address); try again in up to %s", e.Wait)
}

// Transient: the limit passes.
func (e *SignInLimitError) Transient() bool { return true }

// signinGap is the least time between two sign-in attempts: the server
// refuses a second one within a second (minInterval 1000). A variable
// for this package's tests only.
var signinGap = 1100 * time.Millisecond

// SignIn signs in as the local account username with its password (and
// code, the one-time TOTP code, when not ""), as Misskey's web client
// does, and returns the account's native token: the token of the web
// client's session, which Misskey's "secure" endpoints (i/move) require
// and every app's token is refused. The caller uses it for those calls
// only and keeps it nowhere; it is never part of an error.
//
// It sends POST /api/signin-flow {username, password, token?} (Misskey
// 2024.10 and later) and, when the server has no such route (404),
// POST /api/signin with the same body (Misskey up to 2024.9 and the forks
// based on it). Each is one attempt, never repeated here: the server
// counts every attempt against 10 an hour. Attempts of one Client are
// spaced at least a second apart.
//
// Failures: ErrWrongPassword, ErrNoSuchUser, ErrSuspended, ErrCodeNeeded
// (ask the person for the code, then call again with it), ErrCaptcha and
// ErrPasskey (only a browser can sign in), *SignInLimitError, or the
// request's own failure.
func (c *Client) SignIn(ctx context.Context, username, password, code string) (string, error) {
	body := map[string]string{"username": username, "password": password}
	if code != "" {
		body["token"] = code
	}
	// One sign-in at a time, a second after the last one's answer.
	c.signinMu.Lock()
	defer c.signinMu.Unlock()
	if err := c.paceSignIn(ctx); err != nil {
		return "", err
	}
	defer func() { c.lastSignIn = time.Now() }()
	tok, err := c.signIn(ctx, "signin-flow", body, code != "")
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound && ae.ID == "" {
		// No such route (upstream answers an unknown user with 404 too,
		// but with its error id).
		tok, err = c.signIn(ctx, "signin", body, code != "")
	}
	return tok, err
}

// signinAnswer is both routes' 200 answer: signin-flow's
// SigninFlowResponse {finished, id, i} or {finished: false, next}, the
// older signin's {id, i} (or, for an account with two-factor
// authentication and no code, a WebAuthn challenge without i).
type signinAnswer struct {
	Finished *bool  `json:"finished"`
	Next     string `json:"next"`
	ID       string `json:"id"`
	I        string `json:"i"`
}

func (c *Client) signIn(ctx context.Context, route string, body map[string]string, withCode bool) (string, error) {
	b, _ := json.Marshal(body) // a map of strings always encodes
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.apiURL(route), bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("misskey %s: %w", route, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	c.requests.Add(1)
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("misskey %s: %w", route, ctx.Err())
		}
		var ue *url.Error
		if errors.As(err, &ue) && errors.Is(ue.Err, httpsonly.ErrInsecureURL) {
			return "", fmt.Errorf("misskey %s: %w", route, ue.Err)
		}
		// Signing in again is harmless (one more login notification):
		// not ambiguous, only a failed request.
		return "", &NetworkError{Endpoint: route, Err: err}
	}
	var out signinAnswer
	if err := c.read(resp, route, &out); err != nil {
		return "", signinErr(route, err)
	}
	if out.I != "" {
		return out.I, nil
	}
	switch {
	case out.Finished != nil && *out.Finished:
		return "", fmt.Errorf("misskey %s: the sign-in finished without a token", route)
	case out.Next == "totp":
		return "", ErrCodeNeeded
	case out.Next == "passkey" && !withCode, out.Next == "" && !withCode:
		// A TOTP code comes before security keys in SigninApiService;
		// the older route answers a WebAuthn challenge without i.
		return "", ErrCodeNeeded
	case out.Next == "passkey", out.Next == "":
		return "", ErrPasskey
	case out.Next == "captcha":
		return "", ErrCaptcha
	}
	return "", fmt.Errorf("misskey %s: the server asks for %q, which ferry cannot give", route, out.Next)
}

// signinErr restates the sign-in's error answers.
func signinErr(route string, err error) error {
	var ae *APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch {
	case ae.Status == http.StatusTooManyRequests:
		// The answer carries no time; the window is an hour.
		return &SignInLimitError{Wait: time.Hour}
	case ae.ID == "932c904e-9460-45b7-9ce6-7ed33be7eb2c", ae.ID == "cdf1235b-ac71-46d4-a3a6-84ccce48df6f":
		// The second is upstream Misskey's (2025, SigninFlowApiService.ts)
		// for a wrong one-time code; its fork MisskeyIO answers the first.
		return ErrWrongPassword
	case ae.ID == "6cc579cc-885d-43d8-95c2-b8c7fc963280":
		// 403 on MisskeyIO, 404 on upstream Misskey 2025.
		return ErrNoSuchUser
	case ae.ID == "e03a5f46-d309-4865-9b69-56282d94e1eb":
		return ErrSuspended
	case ae.Status == http.StatusNotFound:
		return err
	case ae.Status == http.StatusBadRequest:
		// A well-formed body (strings only) is refused with 400 only by
		// the captcha checks (FastifyReplyError(400, …)).
		return fmt.Errorf("%w (%s)", ErrCaptcha, ae.Message)
	}
	return err
}

// paceSignIn waits until signinGap has passed since this client's last
// sign-in answer. Called with signinMu held.
func (c *Client) paceSignIn(ctx context.Context) error {
	wait := time.Until(c.lastSignIn.Add(signinGap))
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// WithToken returns a client of the same server, transport and options
// acting with token (a native token from SignIn, for one call).
func (c *Client) WithToken(token string) *Client {
	return &Client{base: c.base, token: token, hc: c.hc, ua: c.ua, wait: c.wait, log: c.log}
}
