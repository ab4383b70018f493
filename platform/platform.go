package platform

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/migrate"
	"github.com/fedi-ferry/ferry/migrate/move"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	sinkarchive "github.com/fedi-ferry/ferry/sinks/archive"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/state"
)

// Env is what the caller gives every platform: how to reach servers and
// where to log. A platform builds its own paced HTTP clients from it.
type Env struct {
	// Roots are the certificates to trust beyond the system's (--ca-file);
	// nil means the system's only.
	Roots *x509.CertPool
	// UserAgent is sent with every request.
	UserAgent string
	// Logger receives the platforms' log lines; nil discards them.
	Logger *slog.Logger
	// Tokens stores the new token of an account whose platform rotates
	// tokens (Bluesky's session tokens change at every refresh); nil
	// keeps them for the life of the session only.
	Tokens TokenSaver
}

// Platform is one protocol family (the Mastodon client API; later the AT
// Protocol, Misskey's API). Its Name is what state.Account.Platform
// records. Every platform can open sessions for its accounts; what else it
// can do, it says by implementing Detector and Authenticator.
type Platform interface {
	// Name is the platform's key in the registry and in stored accounts.
	Name() string
	// Open returns a session acting for acct, an account of this platform.
	// It makes no request: the first call that needs the server does.
	Open(acct state.Account) (Session, error)
}

// Detector is implemented by platforms that can tell whether a server
// speaks them.
type Detector interface {
	// Detect asks server what it runs. An error wrapping ErrNotMine says
	// the server answers but speaks another platform, so the registry asks
	// the next one; any other error stops detection.
	Detect(ctx context.Context, server string) (Server, error)
}

// Authenticator is implemented by platforms ferry can log in to.
type Authenticator interface {
	// Login authorizes ferry for an account on req.Server (or checks
	// req.Token) and returns the account to store: handle, server, ID,
	// token and what the server runs. It does not store the account; it
	// does store app registrations in req.Apps.
	Login(ctx context.Context, req LoginRequest) (state.Account, error)
}

// ErrNotMine is wrapped by Detector.Detect for a server that speaks
// another platform.
var ErrNotMine = errors.New("the server does not speak this platform")

// Server is what a server runs, as detection found it.
type Server struct {
	// Platform is the registry name of the platform it speaks.
	Platform string
	// Base is the server's base URL, e.g. https://host.
	Base string
	// Software and Version name the server software (nodeinfo), e.g.
	// "gotosocial" and "0.20.0".
	Software, Version string
	// Limits are its posting limits; LimitsFrom says where they came from.
	Limits     post.Limits
	LimitsFrom string
}

// Identity is whom a session's token acts for, as the server says.
type Identity struct {
	ID       string // the account's ID on its server
	Username string // the local part of the handle
	Handle   string // user@host
}

// Session is one account on its platform, with its own paced connection.
// Every session can ask what its server runs and whose its token is; the
// roles below are optional abilities (rclone's Features): callers assert
// them and say plainly when an account's platform lacks one.
type Session interface {
	// Account is the stored account the session acts for.
	Account() state.Account
	// Server asks the account's server what it runs and its limits.
	Server(ctx context.Context) (Server, error)
	// Verify asks whose the token is. An error for which
	// IsUnauthorized is true means the token is no longer accepted.
	Verify(ctx context.Context) (Identity, error)
}

// SourceOpener is a Session whose account's posts can be read (the
// account source of a route).
type SourceOpener interface {
	// Source reads the account's own posts; Streamer too when the
	// platform can push them.
	Source(o SourceOptions) sources.Source
}

// SourceOptions say what a route wants of an account source.
type SourceOptions struct {
	// Boosts is true when the route mirrors the account's boosts (as
	// links): a platform that reads them separately from posts (Bluesky's
	// reposts) reads them only then.
	Boosts bool
	// SkipQuotes is true when the route leaves the account's quote posts
	// out; otherwise a quote comes as its text ending with a link to the
	// quoted post. Platforms whose sources do not tell quotes apart (the
	// Mastodon API) ignore it.
	SkipQuotes bool
}

// SinkOpener is a Session that can publish posts as its account.
type SinkOpener interface {
	// Sink publishes as the account with o; an error says the platform
	// cannot do what o asks (local-only posts where there are none).
	Sink(o SinkOptions) (sinks.Sink, error)
}

// SinkOptions say what a route wants of an account sink.
type SinkOptions struct {
	// LocalOnly publishes every post local-only: seen on the account's
	// own server, never federated (Misskey's localOnly). A platform
	// without local-only posts refuses it.
	LocalOnly bool
}

// GraphPorter is a Session that can export and import the social graph
// (follows, blocks, mutes, lists, bookmarks …) through package migrate.
// The session supplies the connection; the caller the rest of the options.
type GraphPorter interface {
	Export(ctx context.Context, o migrate.ExportOptions) ([]migrate.ExportResult, error)
	// ImportFiles plans and applies a graph import (migrate.ImportFiles):
	// the session supplies the connection and, when empty, the account and
	// its software.
	ImportFiles(ctx context.Context, o migrate.ImportFilesOptions) (migrate.ImportFilesResult, error)
}

// Archiver is a Session whose account's posts, favourites, bookmarks,
// profile and media ferry can keep in an archive (package sinks/archive).
type Archiver interface {
	// Update brings the archive in o.Dir up to date (sinkarchive.Update):
	// the session supplies the connection and, when empty, the account.
	Update(ctx context.Context, o sinkarchive.UpdateOptions) (sinkarchive.UpdateResult, error)
}

// Mover is a Session that can take part in an account migration (package
// migrate/move): alias, Move, follower checks.
type Mover interface {
	// MoveSide describes the account for migrate/move: its server's
	// software, the account as verify_credentials returns it, its actor URI.
	MoveSide(ctx context.Context) (*move.Side, error)
}

// Revoker is a Session whose token ferry can revoke.
type Revoker interface {
	// Revoke revokes the account's token with the app registration it was
	// issued to (found in apps). It returns an error wrapping ErrNoApp when
	// the registration is gone, ErrCannotRevoke when the server has no way
	// to revoke, or the server's error.
	Revoke(ctx context.Context, apps AppStore) error
}

// Metered is a Session that counts its requests.
type Metered interface {
	Usage() Usage
}

// Usage is what a session's connection has done so far.
type Usage struct {
	Requests    int64         // requests sent, retries included
	RateLimited int64         // 429 answers received
	Retries     int64         // requests sent again after a 429 or 503
	Waited      time.Duration // time spent waiting for the rate-limit budget
	// Budgets are the rate-limit budgets as the server last announced them.
	Budgets []fedi.Budget
}

// Errors of Revoker.Revoke.
var (
	ErrNoApp        = errors.New("the app registration the token was issued to is gone")
	ErrCannotRevoke = errors.New("the server cannot revoke tokens")
)

// AppStore keeps OAuth app registrations, so that one registration serves
// every login at a server (state.Store implements it).
type AppStore interface {
	App(ctx context.Context, server, redirectURI, scopes string) (state.App, error)
	AppByClientID(ctx context.Context, server, clientID string) (state.App, error)
	PutApp(ctx context.Context, a state.App) error
	DeleteApp(ctx context.Context, server, redirectURI, scopes string) error
}

// LoginRequest is one `ferry login`.
type LoginRequest struct {
	// Server is the server as the person typed it.
	Server string
	// Token, when set, is an existing access token to check and store
	// instead of authorizing interactively.
	Token string
	// Apps caches app registrations.
	Apps AppStore
	// OOB asks the server to show the code instead of redirecting to a
	// loopback listener.
	OOB bool
	// CallbackPort is the loopback port to try first (0 = any); another
	// free port is used when it is busy.
	CallbackPort int
	// Prompt is the person's side of the authorization.
	Prompt Prompter
	// Identifier is the account to log in as, for platforms that log in
	// with a name and a password (a Bluesky handle); "" when the server
	// alone is named.
	Identifier string
	// Password, for platforms that log in with one, returns it (from a
	// file, the environment or a prompt); it is called only by them, at
	// most once, and the password is never stored.
	Password func(ctx context.Context) (string, error)
}

// Prompter is the person's side of an interactive login; the command
// line implements it (printing, opening a browser, reading the terminal).
type Prompter interface {
	// Authorize shows authURL, where the person allows ferry, and waits
	// for them. redirected, when not nil, waits for the browser to come
	// back to ferry and returns the code it carried. Authorize returns
	// that code, or the first line the person types instead (a code, or
	// the address the browser ended on), whichever comes first. ctx's
	// deadline is the person's time to answer.
	Authorize(ctx context.Context, authURL string, redirected func(context.Context) (string, error)) (string, error)
}

// IsUnauthorized reports whether err means the server does not accept
// the account's token or credentials (revoked, expired, missing a scope, a
// wrong password).
//
// A client's error says so itself through an Unauthorized() bool method
// (misskey.APIError), so this needs to know no platform's errors.
func IsUnauthorized(err error) bool {
	var u interface{ Unauthorized() bool }
	return errors.Is(err, ErrUnauthorized) || fedi.IsUnauthorized(err) || (errors.As(err, &u) && u.Unauthorized())
}

// ErrUnauthorized is matched by the errors of platforms other than the
// Mastodon API for credentials or tokens their server does not accept.
var ErrUnauthorized = errors.New("the server does not accept the credentials")
