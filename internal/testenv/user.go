package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync/atomic"
)

// OOB is the out-of-band OAuth redirect URI; GoToSocial shows the code at /oauth/oob.
const OOB = "urn:ietf:wg:oauth:2.0:oob"

// Scopes are the OAuth scopes of the tokens CreateUser obtains.
const Scopes = "read write"

// User is an account on an Instance, with a user token obtained through the OAuth flow.
type User struct {
	// Username is the local username ("alice").
	Username string
	// Email is the sign-in email (username@example.org).
	Email string
	// Password is the account password (also needed by e.g. the Move API).
	Password string
	// ID is the account ID on its own instance (a ULID).
	ID string
	// Acct is the fediverse address without leading "@": "alice@localhost:PORT".
	Acct string
	// URI is the ActivityPub actor URI ("https://localhost:PORT/users/alice").
	URI string
	// Token is an access token with scopes "read write".
	Token string
	// Instance is the instance the account lives on.
	Instance *Instance
}

var userSeq atomic.Int64

// CreateUser creates a confirmed, approved account with `gotosocial admin account create`
// (the server keeps running) and signs it in through the real OAuth flow (register app →
// /oauth/authorize → /auth/sign_in → approve → /oauth/token) to get a token. An empty
// username picks a unique one ("user1", "user2", …). New GoToSocial accounts are locked
// (follows become requests); unlocked=true unlocks it via update_credentials.
// Usernames must be unique per instance; the shared Env is reused by many tests, so prefer
// "" or a per-test name.
func (in *Instance) CreateUser(ctx context.Context, username string, unlocked bool) (*User, error) {
	if username == "" {
		username = fmt.Sprintf("user%d", userSeq.Add(1))
	}
	u := &User{
		Username: username,
		Email:    username + "@example.org",
		Password: "Ferry-" + randomHex(12) + "!",
		Acct:     username + "@" + in.Host,
		Instance: in,
	}
	err := in.runCLI(ctx, "admin", "account", "create",
		"--username", u.Username, "--email", u.Email, "--password", u.Password)
	if err != nil {
		return nil, fmt.Errorf("testenv: %s: create user %q: %w", in.Name, username, err)
	}
	if u.Token, err = in.userToken(ctx, u); err != nil {
		return nil, fmt.Errorf("testenv: %s: get a token for %q: %w", in.Name, username, err)
	}
	var acct struct {
		ID       string `json:"id"`
		Username string `json:"username"`
	}
	if err := u.API(ctx, http.MethodGet, "/api/v1/accounts/verify_credentials", nil, &acct); err != nil {
		return nil, fmt.Errorf("testenv: %s: verify credentials of %q: %w", in.Name, username, err)
	}
	u.ID = acct.ID
	if u.URI, err = in.actorURI(ctx, u.Acct); err != nil {
		return nil, fmt.Errorf("testenv: %s: webfinger %q: %w", in.Name, u.Acct, err)
	}
	if unlocked {
		form := url.Values{"locked": {"false"}}
		if err := u.API(ctx, http.MethodPatch, "/api/v1/accounts/update_credentials", form, nil); err != nil {
			return nil, fmt.Errorf("testenv: %s: unlock %q: %w", in.Name, username, err)
		}
	}
	return u, nil
}

// userToken registers (once per instance) an OOB app and runs the authorization-code flow.
func (in *Instance) userToken(ctx context.Context, u *User) (string, error) {
	clientID, clientSecret, err := in.app(ctx)
	if err != nil {
		return "", err
	}
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {clientID},
		"redirect_uri":  {OOB},
		"scope":         {Scopes},
	}
	_, code, err := in.Authorize(ctx, in.BaseURL+"/oauth/authorize?"+q.Encode(), u)
	if err != nil {
		return "", err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"client_id":     {clientID},
		"client_secret": {clientSecret},
		"redirect_uri":  {OOB},
	}
	if err := in.call(ctx, "", http.MethodPost, "/oauth/token", form, &tok); err != nil {
		return "", fmt.Errorf("exchange code: %w", err)
	}
	if tok.AccessToken == "" {
		return "", errors.New("exchange code: empty access_token")
	}
	return tok.AccessToken, nil
}

// app returns the instance's testenv OAuth app, registering it on first use.
func (in *Instance) app(ctx context.Context) (id, secret string, err error) {
	in.appMu.Lock()
	defer in.appMu.Unlock()
	if in.clientID != "" {
		return in.clientID, in.clientSecret, nil
	}
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	form := url.Values{"client_name": {"ferry-testenv"}, "redirect_uris": {OOB}, "scopes": {Scopes}}
	if err := in.call(ctx, "", http.MethodPost, "/api/v1/apps", form, &app); err != nil {
		return "", "", fmt.Errorf("register app: %w", err)
	}
	in.clientID, in.clientSecret = app.ClientID, app.ClientSecret
	return in.clientID, in.clientSecret, nil
}

// actorURI resolves acct to its ActivityPub actor URI through WebFinger.
func (in *Instance) actorURI(ctx context.Context, acct string) (string, error) {
	var wf struct {
		Links []struct {
			Rel  string `json:"rel"`
			Type string `json:"type"`
			Href string `json:"href"`
		} `json:"links"`
	}
	path := "/.well-known/webfinger?" + url.Values{"resource": {"acct:" + acct}}.Encode()
	if err := in.call(ctx, "", http.MethodGet, path, nil, &wf); err != nil {
		return "", err
	}
	for _, l := range wf.Links {
		if l.Rel == "self" && strings.Contains(l.Type, "activity+json") {
			return l.Href, nil
		}
	}
	return "", errors.New("no self link of type application/activity+json")
}

// Authorize acts like a person's browser on an authorization URL (for example one printed
// by ferry's interactive login): it GETs authURL with a fresh cookie jar, signs in at
// /auth/sign_in with u's email and password, approves at /oauth/authorize, and returns the
// redirect the server answers with, without following it off the instance. For the OOB
// redirect URI GoToSocial redirects to its own /oauth/oob?code=…; that URL is returned as
// well. code is the "code" query parameter of the redirect. If the redirect carries an
// OAuth error instead, redirect is returned together with an error. authURL must point to
// this instance.
func (in *Instance) Authorize(ctx context.Context, authURL string, u *User) (redirect *url.URL, code string, err error) {
	start, err := url.Parse(authURL)
	if err != nil {
		return nil, "", fmt.Errorf("testenv: authorize: parse %q: %w", authURL, err)
	}
	if start.Host != in.Host {
		return nil, "", fmt.Errorf("testenv: authorize: %q is not on %s", authURL, in.Host)
	}
	b, err := in.newBrowser()
	if err != nil {
		return nil, "", err
	}
	signedIn, approved := false, false
	req := func() (*http.Request, error) { return b.get(ctx, start) }
	for step := 0; step < 12; step++ {
		r, err := req()
		if err != nil {
			return nil, "", fmt.Errorf("testenv: authorize: %w", err)
		}
		resp, err := b.client.Do(r)
		if err != nil {
			return nil, "", fmt.Errorf("testenv: authorize: %s %s: %w", r.Method, r.URL, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		cur := r.URL
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			next, err := cur.Parse(resp.Header.Get("Location"))
			if err != nil {
				return nil, "", fmt.Errorf("testenv: authorize: bad Location %q: %w", resp.Header.Get("Location"), err)
			}
			if next.Host != in.Host || approved {
				return finishAuthorize(next)
			}
			req = func() (*http.Request, error) { return b.get(ctx, next) }
		case resp.StatusCode == http.StatusOK && cur.Path == "/auth/sign_in" && !signedIn:
			signedIn = true
			form := url.Values{"username": {u.Email}, "password": {u.Password}}
			req = func() (*http.Request, error) { return b.post(ctx, cur, form) }
		case resp.StatusCode == http.StatusOK && cur.Path == "/oauth/authorize" && !approved:
			approved = true
			req = func() (*http.Request, error) { return b.post(ctx, cur, url.Values{}) }
		default:
			return nil, "", fmt.Errorf("testenv: authorize: unexpected %s on %s %s: %s",
				resp.Status, r.Method, cur.Path, snippet(body))
		}
	}
	return nil, "", errors.New("testenv: authorize: too many steps")
}

func finishAuthorize(redirect *url.URL) (*url.URL, string, error) {
	q := redirect.Query()
	if e := q.Get("error"); e != "" {
		return redirect, "", fmt.Errorf("testenv: authorize: redirected with error %q: %s", e, q.Get("error_description"))
	}
	code := q.Get("code")
	if code == "" {
		return redirect, "", fmt.Errorf("testenv: authorize: redirect %s carries no code", redirect)
	}
	return redirect, code, nil
}

// browser is an HTTP client with a cookie jar that does not follow redirects itself.
type browser struct{ client *http.Client }

func (in *Instance) newBrowser() (*browser, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("testenv: cookie jar: %w", err)
	}
	c := in.HTTPClient()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{client: c}, nil
}

const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

func (b *browser) get(ctx context.Context, u *url.URL) (*http.Request, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err == nil {
		r.Header.Set("Accept", browserAccept)
	}
	return r, err
}

func (b *browser) post(ctx context.Context, u *url.URL, form url.Values) (*http.Request, error) {
	target := *u
	target.RawQuery = ""
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(form.Encode()))
	if err == nil {
		r.Header.Set("Accept", browserAccept)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return r, err
}

// APIError is returned by User.API for a non-2xx answer.
type APIError struct {
	Method, Path string      // the request, Path relative to BaseURL and including the query
	StatusCode   int         // the HTTP status, e.g. 429
	Header       http.Header // the response headers (X-Ratelimit-*, Retry-After, …)
	Body         string      // the response body
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.StatusCode, snippet([]byte(e.Body)))
}

// API calls the instance's REST API as u: path is relative to BaseURL (it may carry a
// query); params go into the query for GET and DELETE, else into a form-encoded body
// (nil for none). A User with an empty Token sends unauthenticated requests. A 2xx JSON answer is decoded into out unless out is nil; any other status
// is returned as an *APIError.
func (u *User) API(ctx context.Context, method, path string, params url.Values, out any) error {
	return u.Instance.call(ctx, u.Token, method, path, params, out)
}

func (in *Instance) call(ctx context.Context, token, method, path string, params url.Values, out any) error {
	var body io.Reader
	if len(params) > 0 {
		if method == http.MethodGet || method == http.MethodDelete {
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			path += sep + params.Encode()
		} else {
			body = strings.NewReader(params.Encode())
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, in.BaseURL+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := in.HTTPClient().Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &APIError{Method: method, Path: path, StatusCode: resp.StatusCode, Header: resp.Header, Body: string(data)}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode %s: %w", method, path, snippet(data), err)
		}
	}
	return nil
}

// Resolve looks acct ("name@host", with or without leading "@") up through
// /api/v2/search with resolve=true (WebFinger + fetch for remote accounts) and returns the
// account ID on u's instance.
func (u *User) Resolve(ctx context.Context, acct string) (string, error) {
	acct = strings.TrimPrefix(acct, "@")
	var res struct {
		Accounts []struct {
			ID   string `json:"id"`
			Acct string `json:"acct"`
		} `json:"accounts"`
	}
	q := url.Values{"q": {"@" + acct}, "resolve": {"true"}, "type": {"accounts"}, "limit": {"1"}}
	if err := u.API(ctx, http.MethodGet, "/api/v2/search", q, &res); err != nil {
		return "", fmt.Errorf("testenv: resolve %s: %w", acct, err)
	}
	if len(res.Accounts) == 0 {
		return "", fmt.Errorf("testenv: resolve %s: no account found", acct)
	}
	return res.Accounts[0].ID, nil
}

// Follow makes u follow other (resolving it first) and returns the relationship GoToSocial
// answers with. Following a locked account yields requested=true instead of following=true;
// across instances following may turn true only after the Accept has been delivered.
func (u *User) Follow(ctx context.Context, other *User) (*Relationship, error) {
	id, err := u.Resolve(ctx, other.Acct)
	if err != nil {
		return nil, err
	}
	var rel Relationship
	if err := u.API(ctx, http.MethodPost, "/api/v1/accounts/"+id+"/follow", nil, &rel); err != nil {
		return nil, fmt.Errorf("testenv: %s follow %s: %w", u.Acct, other.Acct, err)
	}
	return &rel, nil
}

// Relationship is the subset of the Mastodon Relationship entity the harness uses; see
// GET /api/v1/accounts/relationships for the meaning of each field.
type Relationship struct {
	ID         string `json:"id"`          // the other account's ID
	Following  bool   `json:"following"`   // the user follows the account
	Requested  bool   `json:"requested"`   // a follow request is pending
	FollowedBy bool   `json:"followed_by"` // the account follows the user
	Blocking   bool   `json:"blocking"`    // the user blocks the account
	Muting     bool   `json:"muting"`      // the user mutes the account
}

// Relationship returns u's relationship to the account with the given ID (on u's instance).
func (u *User) Relationship(ctx context.Context, id string) (*Relationship, error) {
	var rels []Relationship
	if err := u.API(ctx, http.MethodGet, "/api/v1/accounts/relationships", url.Values{"id[]": {id}}, &rels); err != nil {
		return nil, fmt.Errorf("testenv: relationship %s: %w", id, err)
	}
	if len(rels) != 1 {
		return nil, fmt.Errorf("testenv: relationship %s: got %d entries", id, len(rels))
	}
	return &rels[0], nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// snippet shortens a response body for error messages.
func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
