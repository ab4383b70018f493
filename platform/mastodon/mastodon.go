// Package mastodon is the platform of servers that speak the Mastodon
// client API: Mastodon, GoToSocial, Akkoma, Pleroma and their forks
// (nodeinfo tells them apart; package fedi is the API client). It provides
// every role of package platform: detection, login (OAuth with PKCE),
// the account source (statuses and streaming), the sink, graph export and
// import, the archiver, the Move side and token revocation.
package mastodon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/migrate"
	"github.com/fedi-ferry/ferry/migrate/move"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/sinks"
	sinkarchive "github.com/fedi-ferry/ferry/sinks/archive"
	sinkmasto "github.com/fedi-ferry/ferry/sinks/mastodon"
	"github.com/fedi-ferry/ferry/sources"
	srcmasto "github.com/fedi-ferry/ferry/sources/mastodon"
	"github.com/fedi-ferry/ferry/state"
)

// Name is the platform's name in the registry and in stored accounts.
const Name = "mastodon"

// requestTimeout bounds one API call made on the person's behalf.
const requestTimeout = 60 * time.Second

// Platform is the Mastodon client API family.
type Platform struct {
	env platform.Env
}

// New returns the platform, reaching servers as env says.
func New(env platform.Env) *Platform {
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	return &Platform{env: env}
}

// Name returns Name.
func (p *Platform) Name() string { return Name }

// httpClient returns a new paced client (one per account or server: the
// pacing follows one server's budget) and its transport.
func (p *Platform) httpClient() (*http.Client, *fedi.Transport) {
	return fedi.NewHTTPClient(fedi.HTTPOptions{
		Roots:     p.env.Roots,
		Transport: fedi.TransportOptions{UserAgent: p.env.UserAgent, Logger: p.env.Logger},
	})
}

// Detect reads the server's nodeinfo and instance document. Every server
// that answers them is taken to speak the Mastodon client API, as ferry
// always has.
func (p *Platform) Detect(ctx context.Context, server string) (platform.Server, error) {
	base, err := fedi.ParseServer(server)
	if err != nil {
		return platform.Server{}, err
	}
	hc, _ := p.httpClient()
	srv, err := fedi.Detect(ctx, fedi.NewClient(base, "", hc))
	if err != nil {
		return platform.Server{}, err
	}
	return toServer(srv), nil
}

func toServer(s fedi.Server) platform.Server {
	return platform.Server{Platform: Name, Base: s.Base.String(), Software: s.Software.Name, Version: s.Software.Version,
		Limits: s.Limits, LimitsFrom: s.LimitsFrom}
}

// Open returns a session for acct with its own paced connection.
func (p *Platform) Open(acct state.Account) (platform.Session, error) {
	base, err := fedi.ParseServer(acct.Server)
	if err != nil {
		return nil, fmt.Errorf("account %s: stored server: %w", acct.Handle, err)
	}
	hc, tr := p.httpClient()
	return &Session{acct: acct, c: fedi.NewClient(base, acct.Token, hc), tr: tr, log: p.env.Logger}, nil
}

// Session is an account on a Mastodon-API server. Safe for concurrent use.
type Session struct {
	acct state.Account
	c    *fedi.Client
	tr   *fedi.Transport
	log  *slog.Logger
}

// Account returns the stored account.
func (s *Session) Account() state.Account { return s.acct }

// Server detects what the account's server runs.
func (s *Session) Server(ctx context.Context) (platform.Server, error) {
	srv, err := fedi.Detect(ctx, s.c)
	if err != nil {
		return platform.Server{}, err
	}
	return toServer(srv), nil
}

// Verify asks the server whose the token is (verify_credentials).
func (s *Session) Verify(ctx context.Context) (platform.Identity, error) {
	me, err := fedi.VerifyCredentials(ctx, s.c)
	if err != nil {
		return platform.Identity{}, err
	}
	return platform.Identity{ID: me.ID, Username: me.Username, Handle: me.Username + "@" + fedi.AccountDomain(ctx, s.c, me.Username)}, nil
}

// Source reads the account's statuses and streams them.
func (s *Session) Source(platform.SourceOptions) sources.Source {
	return srcmasto.New(srcmasto.Options{Client: s.c, AccountID: s.acct.AccountID, Logger: s.log})
}

// Sink publishes as the account. The Mastodon API has no local-only
// posts, so o.LocalOnly is refused.
func (s *Session) Sink(o platform.SinkOptions) (sinks.Sink, error) {
	if o.LocalOnly {
		return nil, errors.New("local_only: the Mastodon API has no local-only posts")
	}
	return sinkmasto.New(sinkmasto.Options{Client: s.c, Logger: s.log}), nil
}

// Export exports the account's graph; o.Client is the session's.
func (s *Session) Export(ctx context.Context, o migrate.ExportOptions) ([]migrate.ExportResult, error) {
	o.Client = s.c
	return migrate.Export(ctx, o)
}

// ImportFiles imports graph files into the account; o.Client and, when
// empty, o.Account and o.Software are the session's.
func (s *Session) ImportFiles(ctx context.Context, o migrate.ImportFilesOptions) (migrate.ImportFilesResult, error) {
	o.Client = s.c
	if o.Account == "" {
		o.Account = s.acct.Handle
	}
	if o.Software == "" {
		o.Software = s.acct.Software
	}
	return migrate.ImportFiles(ctx, o)
}

// Update brings an archive of the account up to date; o.Client and, when
// empty, o.Account are the session's.
func (s *Session) Update(ctx context.Context, o sinkarchive.UpdateOptions) (sinkarchive.UpdateResult, error) {
	o.Client = s.c
	if o.Account == "" {
		o.Account = s.acct.Handle
	}
	return sinkarchive.Update(ctx, o)
}

// MoveSide describes the account for migrate/move.
func (s *Session) MoveSide(ctx context.Context) (*move.Side, error) {
	return move.LoadSide(ctx, s.c, s.acct.Handle)
}

// Revoke revokes the token with the app registration it was issued to.
func (s *Session) Revoke(ctx context.Context, apps platform.AppStore) error {
	app, err := apps.AppByClientID(ctx, s.acct.Server, s.acct.ClientID)
	if err != nil {
		return fmt.Errorf("%w: %w", platform.ErrNoApp, err)
	}
	err = fedi.RevokeToken(ctx, s.c, fedi.App{ClientID: app.ClientID, ClientSecret: app.ClientSecret}, s.acct.Token)
	var ae *fedi.APIError
	if errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusMethodNotAllowed) {
		return fmt.Errorf("%w: %w", platform.ErrCannotRevoke, err)
	}
	return err
}

// Usage reports the session's requests and the server's budgets.
func (s *Session) Usage() platform.Usage {
	st := s.tr.Stats()
	return platform.Usage{Requests: st.Requests, RateLimited: st.RateLimited, Retries: st.Retries, Waited: st.Waited,
		Budgets: s.tr.Budgets()}
}

var (
	_ platform.Platform      = (*Platform)(nil)
	_ platform.Detector      = (*Platform)(nil)
	_ platform.Authenticator = (*Platform)(nil)
	_ platform.SourceOpener  = (*Session)(nil)
	_ platform.SinkOpener    = (*Session)(nil)
	_ platform.GraphPorter   = (*Session)(nil)
	_ platform.Archiver      = (*Session)(nil)
	_ platform.Mover         = (*Session)(nil)
	_ platform.Revoker       = (*Session)(nil)
	_ platform.Metered       = (*Session)(nil)
)
