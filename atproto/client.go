// Package atproto is ferry's client for Bluesky and other AT Protocol servers (PDSes): log
// in with a password and keep the session tokens fresh, resolve handles and DIDs, write,
// read, list and delete records, upload blobs, and compute rich-text facets.
//
// It is the AT Protocol counterpart of package fedi and is built on Bluesky's own Go
// library, indigo: its XRPC client carries the calls, its lexicon types (api/atproto,
// api/bsky) are the records and answers, atproto/syntax parses identifiers and makes TIDs,
// and atproto/identity resolves handles and DID documents. Nothing here encodes CBOR, CAR
// or DIDs by hand.
//
// Transport rule, as in fedi: https everywhere, plain http only to loopback addresses.
// Every call carries a deadline (Options.CallTimeout when the caller's context has none).
// Passwords are used once and never kept; tokens never appear in errors or logs.
package atproto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/bluesky-social/indigo/xrpc"

	"github.com/fedi-ferry/ferry/httpsonly"
)

// DefaultCallTimeout bounds one XRPC call whose context has no deadline.
const DefaultCallTimeout = 60 * time.Second

// Session is what ferry keeps of a logged-in account: where it lives, who it is, and the
// session tokens (never the password). Its String and LogValue leave the tokens out; its
// JSON form carries them, for the caller's 0600 session store only (never print it).
type Session struct {
	// PDS is the base URL of the account's server, like "https://pds.example".
	PDS string `json:"pds"`
	// DID is the account's permanent identifier.
	DID string `json:"did"`
	// Handle is the account's handle at the time of the last login or refresh.
	Handle string `json:"handle"`
	// AccessJWT authorises calls; it expires after minutes to hours.
	AccessJWT string `json:"accessJwt"`
	// RefreshJWT obtains a new AccessJWT (and a new RefreshJWT) when it expires.
	RefreshJWT string `json:"refreshJwt"`
}

// String describes the session without its tokens.
func (s Session) String() string { return fmt.Sprintf("%s (%s) on %s", s.Handle, s.DID, s.PDS) }

// LogValue logs the session without its tokens.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(slog.String("pds", s.PDS), slog.String("did", s.DID), slog.String("handle", s.Handle))
}

// Options configure a Client.
type Options struct {
	// HTTPClient carries every request. Nil means a client with ferry's defaults. Either
	// way, requests (and redirects) to plain http outside loopback are refused.
	HTTPClient *http.Client
	// CallTimeout bounds each call whose context has no deadline; 0 means
	// DefaultCallTimeout.
	CallTimeout time.Duration
	// AllowInactive lets Login log in to a deactivated account (the new
	// or the old side of a PDS move); otherwise that is an error.
	AllowInactive bool
	// OnRefresh, if set, is called with the new session after the tokens were refreshed,
	// so the caller can store them (the old refresh token no longer works). It runs
	// while the client holds its session lock: it must not call the client.
	OnRefresh func(Session)
	// UserAgent is sent with every request; empty means "ferry".
	UserAgent string
}

// Client talks to one account's PDS. It is safe for concurrent use; a refresh of the
// session happens at most once for a given expired token.
type Client struct {
	host    string
	http    *http.Client
	timeout time.Duration
	agent   string
	onRef   func(Session)

	mu   sync.Mutex // guards sess
	sess Session
}

// NewClient returns a client for an existing session (one returned by Login and stored).
// It makes no call; the session's tokens are checked by the first call that needs them.
func NewClient(sess Session, opts Options) (*Client, error) {
	host, err := CheckPDS(sess.PDS)
	if err != nil {
		return nil, err
	}
	if _, err := syntax.ParseDID(sess.DID); err != nil {
		return nil, fmt.Errorf("session DID %q: %w", sess.DID, err)
	}
	sess.PDS = host
	c := newClient(host, opts)
	c.sess = sess
	return c, nil
}

func newClient(host string, opts Options) *Client {
	c := &Client{host: host, timeout: opts.CallTimeout, agent: opts.UserAgent, onRef: opts.OnRefresh}
	if c.timeout <= 0 {
		c.timeout = DefaultCallTimeout
	}
	if c.agent == "" {
		c.agent = "ferry"
	}
	c.http = secureClient(opts.HTTPClient)
	return c
}

// Login creates a session on the PDS at pdsURL with an identifier (handle, DID or email)
// and a password (an app password is best), and returns a client holding the session.
// The password is sent once and not kept. A wrong identifier or password is an error
// matching ErrAuth.
func Login(ctx context.Context, pdsURL, identifier, password string, opts Options) (*Client, error) {
	host, err := CheckPDS(pdsURL)
	if err != nil {
		return nil, err
	}
	c := newClient(host, opts)
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	const op = "com.atproto.server.createSession"
	out, err := comatproto.ServerCreateSession(ctx, c.anon(), &comatproto.ServerCreateSession_Input{
		Identifier: identifier,
		Password:   password,
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	if out.Active != nil && !*out.Active && !opts.AllowInactive {
		status := "inactive"
		if out.Status != nil {
			status = *out.Status
		}
		return nil, fmt.Errorf("%s: the account %s is %s", op, out.Handle, status)
	}
	c.sess = Session{PDS: host, DID: out.Did, Handle: out.Handle, AccessJWT: out.AccessJwt, RefreshJWT: out.RefreshJwt}
	return c, nil
}

// Session returns the current session, with the tokens of the latest refresh.
func (c *Client) Session() Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

// DID returns the account's DID.
func (c *Client) DID() string { return c.Session().DID }

// PDS returns the base URL of the account's PDS.
func (c *Client) PDS() string { return c.host }

// CheckPDS validates a PDS base URL ("https://pds.example", or http on loopback) and
// returns it without a trailing slash. A URL with a path, query or credentials is refused.
func CheckPDS(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("PDS address %q: want a URL like https://pds.example", raw)
	}
	if err := httpsonly.Check(u); err != nil {
		return "", err
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("PDS address %q must be just the server (like https://pds.example)", u.Redacted())
	}
	return u.Scheme + "://" + u.Host, nil
}

// deadline returns ctx with the client's call timeout unless it already has a deadline.
func (c *Client) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

// anon returns an XRPC client without credentials.
func (c *Client) anon() *xrpc.Client {
	return &xrpc.Client{Client: c.http, Host: c.host, UserAgent: &c.agent}
}

// authed returns an XRPC client that sends token as its bearer token.
func (c *Client) authed(token string) *xrpc.Client {
	x := c.anon()
	x.Auth = &xrpc.AuthInfo{AccessJwt: token}
	return x
}

// LexDo implements indigo's lexutil.LexClient with the session's access token, so the
// generated api/atproto and api/bsky functions can be called with the client. When the
// PDS answers that the access token expired or is invalid, LexDo refreshes the session
// once and repeats the call (an io.Reader body must then be an io.Seeker). Errors are
// returned as indigo's xrpc errors; the methods of Client wrap them into *Error.
func (c *Client) LexDo(ctx context.Context, method, inputEncoding, endpoint string, params map[string]any, body, out any) error {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	tok := c.Session().AccessJWT
	err := c.authed(tok).LexDo(ctx, method, inputEncoding, endpoint, params, body, out)
	var xe *xrpc.Error
	var xb *xrpc.XRPCError
	if !errors.As(err, &xe) || !errors.As(xe.Wrapped, &xb) || !isTokenError(xb.ErrStr) {
		return err
	}
	if rerr := c.refresh(ctx, tok); rerr != nil {
		return rerr
	}
	if s, ok := body.(io.Seeker); ok {
		if _, serr := s.Seek(0, io.SeekStart); serr != nil {
			return fmt.Errorf("rewind request body for retry: %w", serr)
		}
	} else if _, isReader := body.(io.Reader); isReader {
		return err
	}
	return c.authed(c.Session().AccessJWT).LexDo(ctx, method, inputEncoding, endpoint, params, body, out)
}

// Refresh obtains new session tokens with the refresh token now, as LexDo does when the
// access token has expired. A refresh token the PDS no longer accepts is an error
// matching ErrAuth: the account must log in again.
func (c *Client) Refresh(ctx context.Context) error {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	return c.refresh(ctx, c.Session().AccessJWT)
}

// refresh replaces the session's tokens, unless another call already did since the
// access token stale was read.
func (c *Client) refresh(ctx context.Context, stale string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess.AccessJWT != stale {
		return nil
	}
	const op = "com.atproto.server.refreshSession"
	out, err := comatproto.ServerRefreshSession(ctx, c.authed(c.sess.RefreshJWT))
	if err != nil {
		return wrap(op, err)
	}
	if out.Did != c.sess.DID {
		return fmt.Errorf("%s: the PDS answered for %s, not %s", op, out.Did, c.sess.DID)
	}
	c.sess.AccessJWT, c.sess.RefreshJWT, c.sess.Handle = out.AccessJwt, out.RefreshJwt, out.Handle
	if c.onRef != nil {
		c.onRef(c.sess)
	}
	return nil
}

// GetSession asks the PDS who the session belongs to; it proves the tokens work (after a
// refresh if needed) and reports the current handle.
func (c *Client) GetSession(ctx context.Context) (*comatproto.ServerGetSession_Output, error) {
	out, err := comatproto.ServerGetSession(ctx, c)
	return out, wrap("com.atproto.server.getSession", err)
}

// DescribeServer returns the PDS's self-description (its DID, the handle domains it
// offers, whether sign-up needs an invite, its policy links). It needs no session.
func (c *Client) DescribeServer(ctx context.Context) (*comatproto.ServerDescribeServer_Output, error) {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	out, err := comatproto.ServerDescribeServer(ctx, c.anon())
	return out, wrap("com.atproto.server.describeServer", err)
}

// ResolveHandle asks the PDS for the DID of handle (a PDS answers for its own accounts
// from its database and resolves others through DNS or HTTPS). It has the signature of a
// HandleResolver, for Facets.
func (c *Client) ResolveHandle(ctx context.Context, handle syntax.Handle) (syntax.DID, error) {
	out, err := comatproto.IdentityResolveHandle(ctx, c, handle.String())
	if err != nil {
		return "", wrap("com.atproto.identity.resolveHandle", err)
	}
	did, err := syntax.ParseDID(out.Did)
	if err != nil {
		return "", fmt.Errorf("com.atproto.identity.resolveHandle: %s: %w", handle, err)
	}
	return did, nil
}

// UploadBlob stores data as a blob of the given MIME type ("image/jpeg") and returns the
// reference a record embeds. Blobs that no record references are removed by the PDS
// after a while. Data over the PDS's upload limit is refused with an error matching
// ErrBlobTooLarge (images embedded in posts have their own limit, MaxImageBytes).
func (c *Client) UploadBlob(ctx context.Context, data []byte, mimeType string) (*lexutil.LexBlob, error) {
	const op = "com.atproto.repo.uploadBlob"
	if mimeType == "" {
		return nil, fmt.Errorf("%s: no MIME type", op)
	}
	var out comatproto.RepoUploadBlob_Output
	err := c.LexDo(ctx, lexutil.Procedure, mimeType, op, nil, bytes.NewReader(data), &out)
	if err != nil {
		return nil, wrap(op, err)
	}
	if out.Blob == nil {
		return nil, fmt.Errorf("%s: the answer has no blob", op)
	}
	return out.Blob, nil
}

// MaxImageBytes is the largest image app.bsky.embed.images accepts (the lexicon's maxSize,
// raised from 1 MB), whatever the PDS's own upload limit.
const MaxImageBytes = 2_000_000
