// Package bluesky is the platform of AT Protocol servers (Bluesky's PDSes
// and compatible ones), through package atproto. It provides detection (a
// PDS answers com.atproto.server.describeServer), login with a handle and a
// password (an app password is best) or by handle alone (the handle
// resolves to its DID and the DID to its PDS), the account check, the
// account source (package sources/bluesky: listRecords pages and the PDS's
// repository event stream) and the sink (package sinks/bluesky).
//
// The password is used once and never stored: the account's token field
// (0600 in the database, never printed) holds the session tokens as
// atproto.Session JSON. The PDS rotates them at every refresh and the old
// refresh token stops working, so each new pair is saved through
// platform.Env.Tokens at once. Sessions of one Platform share one client
// per account, so two routes of one account never refresh against each
// other.
//
// Revoking ends the session on the PDS. The graph role (export and import
// of follows, blocks, lists and mutes) is package migrate/bskygraph's, the
// archive package bskyarchive's, and the move to another PDS
// (PDSMoveOptions) package migrate/pdsmove's. The request budget
// (Metered) is left out: a PDS announces none.
package bluesky

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/sinks"
	sinkbsky "github.com/fedi-ferry/ferry/sinks/bluesky"
	"github.com/fedi-ferry/ferry/sources"
	srcbsky "github.com/fedi-ferry/ferry/sources/bluesky"
	"github.com/fedi-ferry/ferry/state"
)

// Name is the platform's name in the registry and in stored accounts.
const Name = "bluesky"

// Software is what detection reports a PDS to run: describeServer does not
// name the implementation.
const Software = "atproto-pds"

// saveTimeout bounds saving a rotated token.
const saveTimeout = 30 * time.Second

// Options tune the platform beyond platform.Env.
type Options struct {
	// PLCURL is the PLC directory that resolves did:plc identities when
	// logging in by handle; "" means atproto.DefaultPLCURL.
	PLCURL string
}

// Platform is the AT Protocol family. Safe for concurrent use.
type Platform struct {
	env   platform.Env
	plc   string
	hc    *http.Client // the PDS and identity lookups
	fetch *http.Client // media and link pages for the sink

	mu      sync.Mutex
	clients map[string]*openClient // by account handle
}

// openClient is an account's client and the stored token it was opened from.
type openClient struct {
	c    *atproto.Client
	from string
}

// New returns the platform, reaching servers as env says.
func New(env platform.Env, o Options) *Platform {
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	// Timeouts per call are atproto's (a deadline on every call).
	tr := fedi.NewBaseTransport(env.Roots)
	return &Platform{env: env, plc: o.PLCURL, hc: &http.Client{Transport: tr},
		fetch: &http.Client{Transport: tr, Timeout: 2 * time.Minute}, clients: map[string]*openClient{}}
}

// Name returns Name.
func (p *Platform) Name() string { return Name }

func (p *Platform) options() atproto.Options {
	return atproto.Options{HTTPClient: p.hc, UserAgent: p.env.UserAgent}
}

// Detect asks server to describe itself as a PDS does; a server that
// answers otherwise is not this platform's (ErrNotMine). No other
// platform's server answers describeServer with a DID, so this detection
// is unambiguous and may come first.
func (p *Platform) Detect(ctx context.Context, server string) (platform.Server, error) {
	info, err := atproto.Describe(ctx, server, p.options())
	if errors.Is(err, atproto.ErrNotPDS) {
		return platform.Server{}, fmt.Errorf("%w: %w", platform.ErrNotMine, err)
	}
	if err != nil {
		return platform.Server{}, err
	}
	return toServer(info), nil
}

func toServer(info atproto.ServerInfo) platform.Server {
	return platform.Server{Platform: Name, Base: info.PDS, Software: Software, Version: info.Version,
		Limits: sinkbsky.Limits(), LimitsFrom: "Bluesky's post record (app.bsky.feed.post)"}
}

// Open returns a session for acct. It makes no request.
func (p *Platform) Open(acct state.Account) (platform.Session, error) {
	c, err := p.client(acct)
	if err != nil {
		return nil, err
	}
	return &Session{acct: acct, c: c, opts: p.options(), fetch: p.fetch, log: p.env.Logger, plc: p.plc}, nil
}

// client returns the account's shared client, opening it from the stored
// session when there is none yet or the stored token changed (a new login).
func (p *Platform) client(acct state.Account) (*atproto.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if oc, ok := p.clients[acct.Handle]; ok {
		if oc.from == acct.Token || sessionJSON(oc.c.Session()) == acct.Token {
			return oc.c, nil
		}
	}
	var sess atproto.Session
	if err := json.Unmarshal([]byte(acct.Token), &sess); err != nil || sess.RefreshJWT == "" {
		return nil, fmt.Errorf("account %s: the stored session is unreadable; run `ferry login %s --handle %s` again",
			acct.Handle, acct.Server, acct.Username)
	}
	opts := p.options()
	handle, log, tokens := acct.Handle, p.env.Logger, p.env.Tokens
	opts.OnRefresh = func(s atproto.Session) {
		if tokens == nil {
			log.Warn("the session was refreshed but cannot be saved; the next run may have to log in again", "account", handle)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), saveTimeout)
		defer cancel()
		if err := tokens.SaveToken(ctx, handle, sessionJSON(s)); err != nil {
			log.Error("could not save the refreshed session; the next run may have to log in again", "account", handle, "err", err)
			return
		}
		log.Debug("saved the refreshed session", "account", handle)
	}
	c, err := atproto.NewClient(sess, opts)
	if err != nil {
		return nil, fmt.Errorf("account %s: stored session: %w", acct.Handle, err)
	}
	p.clients[acct.Handle] = &openClient{c: c, from: acct.Token}
	return c, nil
}

// sessionJSON is the token field's form of a session.
func sessionJSON(s atproto.Session) string {
	b, err := json.Marshal(s)
	if err != nil {
		return ""
	}
	return string(b)
}

// accountHandle is the handle ferry stores a Bluesky account under:
// "HANDLE@PDS-HOST", like user@host for other platforms (a Bluesky handle
// always has a dot, a Mastodon user name never does).
func accountHandle(handle, pds string) string {
	host := pds
	if u, err := url.Parse(pds); err == nil && u.Host != "" {
		host = u.Host
	}
	return handle + "@" + host
}

// Session is a Bluesky account. Safe for concurrent use.
type Session struct {
	acct  state.Account
	c     *atproto.Client
	opts  atproto.Options
	fetch *http.Client
	log   *slog.Logger
	plc   string // the PLC directory ("" is atproto's default)
}

// Account returns the stored account.
func (s *Session) Account() state.Account { return s.acct }

// Client is the account's AT Protocol client, for the account source.
func (s *Session) Client() *atproto.Client { return s.c }

// Server describes the account's PDS and Bluesky's posting limits.
func (s *Session) Server(ctx context.Context) (platform.Server, error) {
	info, err := atproto.Describe(ctx, s.c.PDS(), s.opts)
	if err != nil {
		return platform.Server{}, err
	}
	return toServer(info), nil
}

// Verify asks the PDS whose the session is (refreshing it if needed):
// ID is the DID, Username the Bluesky handle.
func (s *Session) Verify(ctx context.Context) (platform.Identity, error) {
	out, err := s.c.GetSession(ctx)
	if err != nil {
		return platform.Identity{}, authError(err)
	}
	return platform.Identity{ID: out.Did, Username: out.Handle, Handle: accountHandle(out.Handle, s.c.PDS())}, nil
}

// Source reads the account's own posts and streams them from the PDS's
// repository event stream (package sources/bluesky). Reposts are read only
// when the route mirrors boosts (o.Boosts); quote posts come as links.
func (s *Session) Source(o platform.SourceOptions) sources.Source {
	q := srcbsky.QuoteLink
	if o.SkipQuotes {
		q = srcbsky.QuoteSkip
	}
	return srcbsky.New(s.c, srcbsky.Options{Logger: s.log, Reposts: o.Boosts, Quotes: q})
}

// Sink publishes as the account (package sinks/bluesky). Bluesky has no
// local-only posts, so o.LocalOnly is refused.
func (s *Session) Sink(o platform.SinkOptions) (sinks.Sink, error) {
	if o.LocalOnly {
		return nil, errors.New("local_only: Bluesky has no local-only posts")
	}
	return sinkbsky.New(sinkbsky.Options{Client: s.c, Fetch: s.fetch, Logger: s.log}), nil
}

// Revoke ends the session on the PDS (deleteSession): the refresh token
// stops working at once, the access token when it expires (the PDS checks
// it by its signature alone). Bluesky has no app registrations: apps is
// unused.
func (s *Session) Revoke(ctx context.Context, apps platform.AppStore) error {
	return s.c.DeleteSession(ctx)
}

// authError makes atproto's ErrAuth match platform.ErrUnauthorized too.
func authError(err error) error {
	if errors.Is(err, atproto.ErrAuth) {
		return unauthorized{err}
	}
	return err
}

// unauthorized is an error of credentials the PDS does not accept.
type unauthorized struct{ err error }

func (e unauthorized) Error() string        { return e.err.Error() }
func (e unauthorized) Unwrap() error        { return e.err }
func (e unauthorized) Is(target error) bool { return target == platform.ErrUnauthorized }

var (
	_ platform.Platform      = (*Platform)(nil)
	_ platform.Detector      = (*Platform)(nil)
	_ platform.Authenticator = (*Platform)(nil)
	_ platform.Locator       = (*Platform)(nil)
	_ platform.SourceOpener  = (*Session)(nil)
	_ platform.SinkOpener    = (*Session)(nil)
	_ platform.Revoker       = (*Session)(nil)
	_ platform.GraphPorter   = (*Session)(nil)
	_ platform.Archiver      = (*Session)(nil)
)
