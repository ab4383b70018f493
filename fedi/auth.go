package fedi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// OOBRedirect is the out-of-band redirect URI: the server shows the
// authorization code on a page and the person pastes it into ferry.
const OOBRedirect = "urn:ietf:wg:oauth:2.0:oob"

// Scopes is what ferry asks for: everything later commands need (reading
// and writing posts, the social graph, lists, bookmarks; accounts for aliases
// and Move). Granular scopes are not used because servers disagree on them.
const Scopes = "read write"

// App is a client registration at one server (POST /api/v1/apps).
type App struct {
	ClientID     string
	ClientSecret string
	RedirectURI  string
	Scopes       string
}

// RegisterApp registers ferry as an OAuth client at the server. Apps are
// cheap to create but servers keep every one, so callers cache the result
// per server and redirect URI.
func RegisterApp(ctx context.Context, c *Client, name, website, redirectURI, scopes string) (App, error) {
	form := url.Values{"client_name": {name}, "redirect_uris": {redirectURI}, "scopes": {scopes}}
	if website != "" {
		form.Set("website", website)
	}
	var out struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if _, err := c.DoForm(ctx, http.MethodPost, "/api/v1/apps", form, &out); err != nil {
		return App{}, fmt.Errorf("register ferry at %s: %w", c.base.Host, err)
	}
	if out.ClientID == "" {
		return App{}, fmt.Errorf("register ferry at %s: the server returned no client_id", c.base.Host)
	}
	return App{ClientID: out.ClientID, ClientSecret: out.ClientSecret, RedirectURI: redirectURI, Scopes: scopes}, nil
}

// PKCE is a proof key for one authorization (RFC 7636, method S256).
type PKCE struct {
	Verifier  string
	Challenge string
}

// NewPKCE returns a fresh random verifier and its S256 challenge.
func NewPKCE() PKCE {
	v := randomString(32)
	sum := sha256.Sum256([]byte(v))
	return PKCE{Verifier: v, Challenge: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// NewState returns a random OAuth state value.
func NewState() string { return randomString(16) }

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// SupportsPKCE reports whether the server advertises S256 PKCE in its
// OAuth metadata (RFC 8414; Mastodon 4.3+). Servers without the metadata
// document may still support it (GoToSocial does); sending a challenge to a
// server that ignores it is harmless, so callers send one unless this
// returns a definite no (metadata present without S256).
func SupportsPKCE(ctx context.Context, c *Client) (supported, known bool) {
	var meta struct {
		Methods []string `json:"code_challenge_methods_supported"`
	}
	if _, err := c.Do(ctx, http.MethodGet, "/.well-known/oauth-authorization-server", nil, nil, &meta); err != nil {
		return false, false
	}
	for _, m := range meta.Methods {
		if m == "S256" {
			return true, true
		}
	}
	return false, true
}

// AuthorizeURL is the page a person opens to grant ferry access. pkce may
// be nil for servers that refuse PKCE.
func AuthorizeURL(base *url.URL, app App, state string, pkce *PKCE) string {
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {app.ClientID},
		"redirect_uri":  {app.RedirectURI},
		"scope":         {app.Scopes},
		"state":         {state},
		// A second account on the same server must not silently reuse the
		// browser's current session.
		"force_login": {"true"},
	}
	if pkce != nil {
		q.Set("code_challenge", pkce.Challenge)
		q.Set("code_challenge_method", "S256")
	}
	u := base.JoinPath("/oauth/authorize")
	u.RawQuery = q.Encode()
	return u.String()
}

// ExchangeCode trades an authorization code for an access token. verifier
// is the PKCE verifier, or "" when none was sent.
func ExchangeCode(ctx context.Context, c *Client, app App, code, verifier string) (token, scope string, err error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {strings.TrimSpace(code)},
		"client_id":     {app.ClientID},
		"client_secret": {app.ClientSecret},
		"redirect_uri":  {app.RedirectURI},
		"scope":         {app.Scopes},
	}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	var out struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	if _, err := c.DoForm(ctx, http.MethodPost, "/oauth/token", form, &out); err != nil {
		return "", "", fmt.Errorf("exchange the authorization code at %s: %w", c.base.Host, err)
	}
	if out.AccessToken == "" {
		return "", "", fmt.Errorf("exchange the authorization code at %s: the server returned no token", c.base.Host)
	}
	return out.AccessToken, out.Scope, nil
}

// RevokeToken asks the server to invalidate token (POST /oauth/revoke).
// Servers that do not implement revocation answer 404; that is reported as
// an error the caller may choose to ignore.
func RevokeToken(ctx context.Context, c *Client, app App, token string) error {
	form := url.Values{"client_id": {app.ClientID}, "client_secret": {app.ClientSecret}, "token": {token}}
	if _, err := c.DoForm(ctx, http.MethodPost, "/oauth/revoke", form, nil); err != nil {
		return fmt.Errorf("revoke the token at %s: %w", c.base.Host, err)
	}
	return nil
}

// Callback is a one-shot HTTP listener on 127.0.0.1 that receives the
// OAuth redirect, so a person need not copy the code by hand.
type Callback struct {
	RedirectURI string
	ln          net.Listener
	srv         *http.Server
	result      chan callbackResult
}

type callbackResult struct {
	code string
	err  error
}

// ListenCallback starts a Callback on 127.0.0.1:port (0 = any free port)
// that accepts one redirect carrying state. Close it when done.
func ListenCallback(port int, state string) (*Callback, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("listen for the login redirect: %w", err)
	}
	cb := &Callback{
		RedirectURI: fmt.Sprintf("http://%s/callback", ln.Addr()),
		ln:          ln,
		result:      make(chan callbackResult, 1),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var res callbackResult
		switch {
		case q.Get("error") != "":
			res.err = fmt.Errorf("the server refused the authorization: %s %s", q.Get("error"), q.Get("error_description"))
		case q.Get("state") != state:
			// Not our redirect (or a forged one): keep waiting.
			http.Error(w, "unexpected state parameter", http.StatusBadRequest)
			return
		case q.Get("code") == "":
			res.err = errors.New("the redirect carried no authorization code")
		default:
			res.code = q.Get("code")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		msg := "ferry is now authorized. You can close this tab."
		if res.err != nil {
			msg = "ferry was not authorized: " + res.err.Error()
		}
		fmt.Fprintf(w, "<!doctype html><title>ferry</title><p>%s</p>\n", html.EscapeString(msg))
		select {
		case cb.result <- res:
		default: // a second redirect after the first is ignored
		}
	})
	cb.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = cb.srv.Serve(ln) }()
	return cb, nil
}

// Wait returns the code from the first valid redirect, or ctx's error.
func (cb *Callback) Wait(ctx context.Context) (string, error) {
	select {
	case r := <-cb.result:
		return r.code, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Close stops the listener.
func (cb *Callback) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return cb.srv.Shutdown(ctx)
}
