// Package misskey is the platform of servers that speak Misskey's API:
// Misskey and its forks (Sharkey, Firefish, Iceshrimp, CherryPick …),
// through package misskey. It provides detection (nodeinfo names the
// software; POST /api/meta gives the limits), login (MiAuth, or an
// existing access token), the account check, the account source (package
// sources/misskey, streamed), the sink (package sinks/misskey), graph
// export and import (package migrate through graph.go's translation of
// Misskey's API), archives (archive.go) and the Move side (move.go).
//
// Token revocation is not provided: Misskey lets only its own web client
// revoke an app's token (Settings → Apps).
//
// It must come before the Mastodon-API platform in the registry: that one
// takes every server with nodeinfo.
package misskey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	mk "github.com/fedi-ferry/ferry/misskey"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/sinks"
	sinkmk "github.com/fedi-ferry/ferry/sinks/misskey"
	"github.com/fedi-ferry/ferry/sources"
	srcmk "github.com/fedi-ferry/ferry/sources/misskey"
	"github.com/fedi-ferry/ferry/state"
)

// Name is the platform's name in the registry and in stored accounts.
const Name = "misskey"

// Platform is the Misskey API family. Safe for concurrent use.
type Platform struct {
	env   platform.Env
	hc    *http.Client
	fetch *http.Client // media for the sink: anywhere, plain http too
}

// New returns the platform, reaching servers as env says.
func New(env platform.Env) *Platform {
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	return &Platform{env: env, hc: mk.NewHTTPClient(env.Roots),
		fetch: &http.Client{Transport: fedi.NewBaseTransport(env.Roots), Timeout: 2 * time.Minute}}
}

// Name returns Name.
func (p *Platform) Name() string { return Name }

func (p *Platform) client(base, token string) (*mk.Client, error) {
	u, err := mk.ParseServer(base)
	if err != nil {
		return nil, err
	}
	return mk.NewClient(u, token, mk.Options{HTTPClient: p.hc, UserAgent: p.env.UserAgent, Logger: p.env.Logger}), nil
}

// Detect reads the server's nodeinfo; a server running Misskey or a fork
// is this platform's, and its limits are read from POST /api/meta. Any
// other software is ErrNotMine. A server that names Misskey but answers
// its API with HTML is an error saying so.
func (p *Platform) Detect(ctx context.Context, server string) (platform.Server, error) {
	c, err := p.client(server, "")
	if err != nil {
		return platform.Server{}, err
	}
	srv, err := mk.Detect(ctx, c)
	if errors.Is(err, mk.ErrOtherSoftware) {
		return platform.Server{}, fmt.Errorf("%w: %w", platform.ErrNotMine, err)
	}
	if err != nil {
		return platform.Server{}, err
	}
	return toServer(c, srv), nil
}

func toServer(c *mk.Client, s mk.Server) platform.Server {
	return platform.Server{Platform: Name, Base: c.Base().String(), Software: s.Software, Version: s.Version,
		Limits: s.Limits(), LimitsFrom: "api/meta"}
}

// Open returns a session for acct. It makes no request.
func (p *Platform) Open(acct state.Account) (platform.Session, error) {
	c, err := p.client(acct.Server, acct.Token)
	if err != nil {
		return nil, fmt.Errorf("account %s: stored server: %w", acct.Handle, err)
	}
	anon, _ := p.client(acct.Server, "")
	return &Session{acct: acct, c: c, anon: anon, fetch: p.fetch, log: p.env.Logger}, nil
}

// Session is an account on a Misskey server. Safe for concurrent use.
type Session struct {
	acct  state.Account
	c     *mk.Client
	anon  *mk.Client // for what needs no token: a revoked one would fail it
	fetch *http.Client
	log   *slog.Logger
}

// Account returns the stored account.
func (s *Session) Account() state.Account { return s.acct }

// Client is the account's Misskey client.
func (s *Session) Client() *mk.Client { return s.c }

// Server detects what the account's server runs and its limits.
func (s *Session) Server(ctx context.Context) (platform.Server, error) {
	srv, err := mk.Detect(ctx, s.anon)
	if err != nil {
		return platform.Server{}, err
	}
	return toServer(s.c, srv), nil
}

// Verify asks the server whose the token is (POST /api/i). A revoked or
// unknown token is an error for which platform.IsUnauthorized is true.
func (s *Session) Verify(ctx context.Context) (platform.Identity, error) {
	me, err := s.c.I(ctx)
	if err != nil {
		return platform.Identity{}, err
	}
	return platform.Identity{ID: me.ID, Username: me.Username, Handle: me.Username + "@" + s.c.Base().Host}, nil
}

// Source reads the account's own notes (package sources/misskey); renotes
// are reported as boosts, for the route's boosts policy.
func (s *Session) Source(o platform.SourceOptions) sources.Source {
	q := srcmk.QuoteLink
	if o.SkipQuotes {
		q = srcmk.QuoteSkip
	}
	return srcmk.New(s.c, srcmk.Options{Logger: s.log, Quotes: q})
}

// Sink publishes notes as the account (package sinks/misskey), local-only
// when o says so; it edits where the server's software has notes/edit.
func (s *Session) Sink(o platform.SinkOptions) (sinks.Sink, error) {
	return sinkmk.New(sinkmk.Options{Client: s.c, Fetch: s.fetch, Logger: s.log, LocalOnly: o.LocalOnly,
		CanEdit: mk.Server{Software: s.acct.Software}.CanEdit()}), nil
}

// Usage counts the session's requests and rate limits.
func (s *Session) Usage() platform.Usage {
	st := s.c.Stats()
	return platform.Usage{Requests: st.Requests, RateLimited: st.RateLimited, Retries: st.Retries, Waited: st.Waited}
}

var (
	_ platform.Platform      = (*Platform)(nil)
	_ platform.Detector      = (*Platform)(nil)
	_ platform.Authenticator = (*Platform)(nil)
	_ platform.SourceOpener  = (*Session)(nil)
	_ platform.SinkOpener    = (*Session)(nil)
	_ platform.Metered       = (*Session)(nil)
)
