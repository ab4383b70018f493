// Package fedi talks to fediverse servers: it detects what a server runs
// (nodeinfo) and what it accepts (instance limits), performs the OAuth login
// flows, paces every request inside the server's rate limits, and offers the
// calls of the Mastodon client API that ferry uses (ARCHITECTURE.md says why
// this is not go-mastodon).
//
// Every request goes through a Transport (see transport.go); every call takes
// a context, and callers are expected to give it a deadline.
package fedi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxJSONBody bounds how much of a response ferry reads as JSON; no API
// object ferry uses comes near it, so a larger body is a misbehaving server.
const maxJSONBody = 32 << 20

// Client calls one server's Mastodon-compatible API as one account.
type Client struct {
	base  *url.URL
	http  *http.Client
	token string
}

// NewClient returns a client for the server at base (see ParseServer) that
// authenticates with token ("" for public endpoints) and sends its requests
// through hc, which should come from NewHTTPClient.
func NewClient(base *url.URL, token string, hc *http.Client) *Client {
	return &Client{base: base, http: hc, token: token}
}

// Base returns the server's base URL.
func (c *Client) Base() *url.URL { u := *c.base; return &u }

// HTTP returns the paced HTTP client the Client uses.
func (c *Client) HTTP() *http.Client { return c.http }

// APIError is a non-success answer from a server's API.
type APIError struct {
	Method  string
	URL     string // without query string
	Status  int
	Message string // the server's "error" field, or a short description of the body
}

// Permanent reports whether repeating the request would fail the same way:
// the server refused the request itself (4xx other than 408 and 429).
// Callers outside fedi classify errors through this method
// (sinks.IsPermanent) without knowing the platform.
func (e *APIError) Permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// Transient reports whether the failure may pass if the request is made
// again later: a timeout, a rate limit or a server error.
func (e *APIError) Transient() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, msg)
}

// ErrNotJSON is wrapped by errors for responses that should have been JSON
// but were not (typically an HTML page from a proxy or a non-fediverse site).
var ErrNotJSON = errors.New("the server answered with something other than JSON")

// StatusCode returns the HTTP status of an API error from this package, or
// 0 when err is not one.
func StatusCode(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// IsUnauthorized reports whether err means the token is not (or no longer)
// accepted: revoked, expired, or lacking a scope.
func IsUnauthorized(err error) bool {
	s := StatusCode(err)
	return s == http.StatusUnauthorized || s == http.StatusForbidden
}

// IsNotFound reports whether err is a 404 from the server.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// Do sends one API request and decodes a JSON answer into out (when out is
// not nil). body, when not nil, is sent as JSON; form values as
// application/x-www-form-urlencoded are sent with DoForm. A non-2xx answer is
// an *APIError; a 2xx answer that is not JSON wraps ErrNotJSON.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body, out any) (*http.Response, error) {
	var rd io.Reader
	ctype := ""
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd, ctype = bytes.NewReader(b), "application/json"
	}
	return c.send(ctx, method, path, query, rd, ctype, out)
}

// DoForm is Do with form-encoded parameters.
func (c *Client) DoForm(ctx context.Context, method, path string, form url.Values, out any) (*http.Response, error) {
	return c.send(ctx, method, path, nil, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", out)
}

// DoRaw sends body with the given content type (multipart uploads).
func (c *Client) DoRaw(ctx context.Context, method, path string, body io.Reader, contentType string, out any) (*http.Response, error) {
	return c.send(ctx, method, path, nil, body, contentType, out)
}

func (c *Client) send(ctx context.Context, method, path string, query url.Values, body io.Reader, ctype string, out any) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		resp, err := c.sendOnce(ctx, method, path, query, body, ctype, out)
		var re *readError
		if !errors.As(err, &re) || isWrite(method) || body != nil || attempt >= maxAttempts || ctx.Err() != nil {
			return resp, err
		}
		// A read whose answer was cut off is asked again (the transport
		// already resends reads whose connection failed before an answer).
	}
}

// readError marks a failure to read an answer's body after its headers
// arrived; send asks again for reads.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

func (c *Client) sendOnce(ctx context.Context, method, path string, query url.Values, body io.Reader, ctype string, out any) (*http.Response, error) {
	u := c.base.JoinPath(path)
	if strings.Contains(path, "?") {
		// Paths taken from Link headers already carry their query.
		ref, err := url.Parse(path)
		if err != nil {
			return nil, fmt.Errorf("parse path %q: %w", path, err)
		}
		u = c.base.ResolveReference(ref)
		if u.Host != c.base.Host {
			// A Link header pointing elsewhere would carry the token off-site.
			return nil, fmt.Errorf("%s %s: refusing to follow a link to another host", method, redactURL(u))
		}
	}
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error repeats the method and the full URL (query included);
		// keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s: %w", method, redactURL(u), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := apiError(req, resp)
		if isWrite(method) && resp.StatusCode >= 500 {
			// A 5xx can come from the server after it acted, or from a
			// gateway that passed the request on before giving up.
			err = &AmbiguousError{Method: method, URL: redactURL(u), Err: err}
		}
		return resp, err
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxJSONBody)); err != nil && isWrite(method) {
			return resp, &AmbiguousError{Method: method, URL: redactURL(u), Err: fmt.Errorf("read answer: %w", err)}
		}
		return resp, nil
	}
	if err := decodeJSON(resp, out); err != nil {
		if isWrite(method) {
			// The server accepted the write (2xx) but its answer, which
			// names what it made, did not arrive whole.
			return resp, &AmbiguousError{Method: method, URL: redactURL(u), Err: err}
		}
		return resp, fmt.Errorf("%s %s: %w", method, redactURL(u), err)
	}
	return resp, nil
}

// decodeJSON decodes resp's body into out, turning HTML and other non-JSON
// answers into an error that says so instead of "invalid character '<'".
func decodeJSON(resp *http.Response, out any) error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBody+1))
	if err != nil {
		return &readError{fmt.Errorf("read response: %w", err)}
	}
	if len(data) > maxJSONBody {
		return fmt.Errorf("response larger than %d MiB", maxJSONBody>>20)
	}
	if err := json.Unmarshal(data, out); err != nil {
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		trimmed := bytes.TrimSpace(data)
		if mt == "text/html" || bytes.HasPrefix(trimmed, []byte("<")) {
			return fmt.Errorf("%w (got %s, status %d): is this a fediverse server?", ErrNotJSON, orUnknown(mt), resp.StatusCode)
		}
		return fmt.Errorf("decode JSON: %w", err)
	}
	return nil
}

func apiError(req *http.Request, resp *http.Response) error {
	e := &APIError{Method: req.Method, URL: redactURL(req.URL), Status: resp.StatusCode}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(data, &body) == nil && body.Error != "" {
		e.Message = body.Error
		if body.ErrorDescription != "" && body.ErrorDescription != body.Error {
			e.Message += ": " + body.ErrorDescription
		}
	} else if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/html" {
		e.Message = htmlAnswer
	}
	return e
}

// redactURL drops the query string, which can carry codes or tokens.
func redactURL(u *url.URL) string {
	v := *u
	v.RawQuery, v.User, v.Fragment = "", nil, ""
	return v.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "no content type"
	}
	return s
}

type idempotencyKeyCtx struct{}

// WithIdempotencyKey gives requests sent with ctx an idempotency key. The
// Transport sends it as the Idempotency-Key header only to a server known to
// honour it (Mastodon keeps keys for about an hour and answers a repeated
// create with the post it already made), and only then resends such a
// request after an ambiguous failure; see resend.go.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyCtx{}, key)
}

func idempotencyKey(ctx context.Context) string {
	k, _ := ctx.Value(idempotencyKeyCtx{}).(string)
	return k
}

// NextLink returns the rel="next" target of a Link header, or "" when there
// is none. Mastodon-compatible servers page lists this way.
func NextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			segs := strings.Split(part, ";")
			if len(segs) < 2 {
				continue
			}
			target := strings.Trim(strings.TrimSpace(segs[0]), "<>")
			for _, p := range segs[1:] {
				p = strings.ReplaceAll(strings.TrimSpace(p), " ", "")
				if p == `rel="next"` || p == "rel=next" {
					return target
				}
			}
		}
	}
	return ""
}
