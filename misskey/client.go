// Package misskey is a client of Misskey's API, which Misskey's forks
// (Sharkey, Firefish, Iceshrimp, CherryPick …) share: every call is
// POST /api/<endpoint> with a JSON body carrying the access token as "i",
// answered with JSON or 204, and failures as {"error":{"message","code",
// "id","kind","info"}} (https://misskey-hub.net/en/docs/for-developers/api/).
//
// The client sends https only, plain http only to loopback (httpsonly),
// waits out a 429 RATE_LIMIT_EXCEEDED (Misskey refuses before acting, so
// the call is sent again) up to a bound, and turns every failure into an
// *APIError carrying Misskey's error code, or an *AmbiguousError for a
// write whose answer was lost. It knows nothing of ferry's other packages
// but post (for limits).
package misskey

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedi-ferry/ferry/httpsonly"
)

// Options configure a Client. The zero value is usable.
type Options struct {
	// HTTPClient performs the requests; nil means one with ferry's
	// connection timeouts and the system's certificates (see NewHTTPClient).
	HTTPClient *http.Client
	// UserAgent is sent with every request; "" means "ferry".
	UserAgent string
	// MaxWait bounds one wait for a rate limit to pass; a longer one fails
	// the call with the 429's *APIError. 0 means 2 minutes.
	MaxWait time.Duration
	// Logger receives a debug line per wait; nil discards.
	Logger *slog.Logger
}

// Client talks to one Misskey server as one account (or anonymously, with
// an empty token). Safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
	ua    string
	wait  time.Duration
	log   *slog.Logger

	requests, rateLimited, retries atomic.Int64
	waited                         atomic.Int64

	signinMu   sync.Mutex // spaces sign-in attempts (SignIn)
	lastSignIn time.Time
}

// NewHTTPClient returns an *http.Client with ferry's connection timeouts,
// trusting roots beyond the system's (nil: the system's only), that
// refuses plain http off loopback on every request and redirect. It has no
// overall timeout: every call carries a context deadline.
func NewHTTPClient(roots *x509.CertPool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.ResponseHeaderTimeout = 60 * time.Second
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	return &http.Client{Transport: checked{tr}, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		return nil
	}}
}

// checked refuses what httpsonly.Check refuses, each redirect hop included.
type checked struct{ base http.RoundTripper }

func (t checked) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := httpsonly.Check(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(req)
}

// ParseServer turns what a person types for a server into the server's
// base URL: httpsonly.ParseServer, the one rule for every client.
func ParseServer(raw string) (*url.URL, error) { return httpsonly.ParseServer(raw) }

// NewClient returns a client of the server at base (a base URL as
// ParseServer returns) acting with token ("" for anonymous calls).
func NewClient(base *url.URL, token string, o Options) *Client {
	c := &Client{base: base, token: token, hc: o.HTTPClient, ua: o.UserAgent, wait: o.MaxWait, log: o.Logger}
	if c.hc == nil {
		c.hc = NewHTTPClient(nil)
	}
	if c.ua == "" {
		c.ua = "ferry"
	}
	if c.wait <= 0 {
		c.wait = 2 * time.Minute
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Base is the server's base URL.
func (c *Client) Base() *url.URL { u := *c.base; return &u }

// Stats are a client's counters so far.
type Stats struct {
	Requests    int64         // requests sent, retries included
	RateLimited int64         // 429 answers received
	Retries     int64         // requests sent again after a 429
	Waited      time.Duration // time spent waiting for rate limits
}

// Stats returns the counters so far.
func (c *Client) Stats() Stats {
	return Stats{Requests: c.requests.Load(), RateLimited: c.rateLimited.Load(), Retries: c.retries.Load(),
		Waited: time.Duration(c.waited.Load())}
}

// maxTries bounds the attempts of one call through rate limits.
const maxTries = 4

// Call calls endpoint (e.g. "notes/create") with params (a struct or map
// marshalled to the JSON body; nil for none) and decodes the answer into
// out (nil to discard it). write says the call changes something: its
// failure after the request left is then an *AmbiguousError.
func (c *Client) Call(ctx context.Context, endpoint string, params any, out any, write bool) error {
	body := map[string]any{}
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return fmt.Errorf("misskey %s: encode: %w", endpoint, err)
		}
		if err := json.Unmarshal(b, &body); err != nil {
			return fmt.Errorf("misskey %s: parameters must be an object: %w", endpoint, err)
		}
	}
	if c.token != "" {
		body["i"] = c.token
	}
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("misskey %s: encode: %w", endpoint, err)
	}
	return c.do(ctx, endpoint, write, out, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.apiURL(endpoint), bytes.NewReader(b))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	})
}

// Upload calls a multipart endpoint (drive/files/create) with fields and
// the file's content under the form name "file".
func (c *Client) Upload(ctx context.Context, endpoint string, fields map[string]string, filename string, data []byte, out any) error {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if c.token != "" {
		_ = mw.WriteField("i", c.token)
	}
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	fw, err := mw.CreateFormFile("file", filename)
	if err != nil {
		return err
	}
	if _, err := fw.Write(data); err != nil {
		return err
	}
	if err := mw.Close(); err != nil {
		return err
	}
	b, ct := buf.Bytes(), mw.FormDataContentType()
	return c.do(ctx, endpoint, true, out, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.apiURL(endpoint), bytes.NewReader(b))
		if err == nil {
			req.Header.Set("Content-Type", ct)
		}
		return req, err
	})
}

func (c *Client) apiURL(endpoint string) string {
	return c.base.JoinPath("api", endpoint).String()
}

func (c *Client) do(ctx context.Context, endpoint string, write bool, out any, mk func() (*http.Request, error)) error {
	for try := 1; ; try++ {
		req, err := mk()
		if err != nil {
			return fmt.Errorf("misskey %s: %w", endpoint, err)
		}
		req.Header.Set("User-Agent", c.ua)
		req.Header.Set("Accept", "application/json")
		c.requests.Add(1)
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("misskey %s: %w", endpoint, ctx.Err())
			}
			var ue *url.Error
			if errors.As(err, &ue) && errors.Is(ue.Err, httpsonly.ErrInsecureURL) {
				return fmt.Errorf("misskey %s: %w", endpoint, ue.Err)
			}
			if write {
				return &AmbiguousError{Endpoint: endpoint, Err: err}
			}
			return &NetworkError{Endpoint: endpoint, Err: err}
		}
		err = c.read(resp, endpoint, out)
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests {
			c.rateLimited.Add(1)
			wait := ae.Wait
			if wait <= 0 {
				wait = time.Second
			}
			if try >= maxTries || wait > c.wait {
				return err
			}
			c.log.Debug("misskey rate limit: waiting", "endpoint", endpoint, "wait", wait)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("misskey %s: %w", endpoint, ctx.Err())
			case <-t.C:
			}
			c.waited.Add(int64(wait))
			c.retries.Add(1)
			continue
		}
		if err != nil && write && errors.As(err, &ae) && ae.Status >= 500 && ae.Status != http.StatusNotImplemented {
			// A gateway or server failure after the request left: the
			// note may or may not exist.
			return &AmbiguousError{Endpoint: endpoint, Err: err}
		}
		return err
	}
}

// maxBody bounds an answer read into memory.
const maxBody = 32 << 20

func (c *Client) read(resp *http.Response, endpoint string, out any) error {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return &NetworkError{Endpoint: endpoint, Err: err}
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if mt != "application/json" && len(body) > 0 {
		return &NotAPIError{URL: resp.Request.URL.String(), Status: resp.StatusCode, ContentType: mt}
	}
	if resp.StatusCode >= 300 {
		ae := &APIError{Endpoint: endpoint, Status: resp.StatusCode}
		var e struct {
			Error struct {
				Message, Code, ID, Kind string
				Info                    json.RawMessage
			} `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil {
			ae.Message, ae.Code, ae.ID, ae.Kind, ae.Info = e.Error.Message, e.Error.Code, e.Error.ID, e.Error.Kind, e.Error.Info
		}
		if ae.Code == "" {
			// Not Misskey's own error (Fastify's, a proxy's).
			var f struct{ Message string }
			_ = json.Unmarshal(body, &f)
			ae.Message = f.Message
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			ae.Wait = retryAfter(resp.Header.Get("Retry-After"), ae.Info)
		}
		return ae
	}
	if out == nil || len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("misskey %s: the answer is not what Misskey answers: %w", endpoint, err)
	}
	return nil
}

// retryAfter reads the wait of a 429: the Retry-After header (seconds)
// when sent, else the error's info.resetMs: a wait in upstream Misskey,
// but an absolute time (epoch milliseconds) in the MisskeyIO fork
// (checked against Misskey 2025.4.x, MisskeyIO fork, on loopback), told
// apart by its size.
func retryAfter(h string, info json.RawMessage) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	var i struct {
		ResetMs float64 `json:"resetMs"`
	}
	if json.Unmarshal(info, &i) == nil && i.ResetMs > 1e12 {
		return max(time.Until(time.UnixMilli(int64(i.ResetMs))), 0)
	}
	if json.Unmarshal(info, &i) == nil && i.ResetMs > 0 {
		return time.Duration(i.ResetMs * float64(time.Millisecond))
	}
	return 0
}
