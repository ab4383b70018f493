package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/sources/archive"
	"github.com/fedi-ferry/ferry/sources/feed"
	"github.com/fedi-ferry/ferry/state"
)

// Registry maps a platform name to its implementation, and a route's
// source type to its constructor. It is built explicitly (see package
// platforms for the list ferry ships); nothing registers itself. A
// Registry is read-only after New and safe for concurrent use.
type Registry struct {
	env       Env
	platforms []Platform // in detection order
	feedHC    *http.Client
}

// New returns a registry of ps, asked in this order when detecting a
// server. Names must be unique and non-empty.
func New(env Env, ps ...Platform) (*Registry, error) {
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	seen := map[string]bool{}
	for _, p := range ps {
		n := p.Name()
		if n == "" || seen[n] {
			return nil, fmt.Errorf("platform registry: platform name %q is empty or repeated", n)
		}
		seen[n] = true
	}
	return &Registry{env: env, platforms: ps,
		// Feeds are fetched by a plain client: a platform's paced API
		// transport refuses plain http, which many feeds still use.
		feedHC: &http.Client{Transport: fedi.NewBaseTransport(env.Roots), Timeout: 60 * time.Second}}, nil
}

// Names lists the registered platforms in detection order.
func (r *Registry) Names() []string {
	out := make([]string, len(r.platforms))
	for i, p := range r.platforms {
		out[i] = p.Name()
	}
	return out
}

// Platform returns the platform called name ("" means state's
// DefaultPlatform, for accounts stored before platforms were recorded).
func (r *Registry) Platform(name string) (Platform, error) {
	if name == "" {
		name = state.DefaultPlatform
	}
	i := slices.IndexFunc(r.platforms, func(p Platform) bool { return p.Name() == name })
	if i < 0 {
		return nil, fmt.Errorf("platform %q is not one this ferry speaks (it speaks %s); upgrade ferry",
			name, strings.Join(r.Names(), ", "))
	}
	return r.platforms[i], nil
}

// Open returns a session for acct on the platform it records.
func (r *Registry) Open(acct state.Account) (Session, error) {
	p, err := r.Platform(acct.Platform)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", acct.Handle, err)
	}
	return p.Open(acct)
}

// Detect asks each platform that can detect, in order, whether server
// speaks it, and returns the first that does.
func (r *Registry) Detect(ctx context.Context, server string) (Platform, Server, error) {
	var tried []error
	for _, p := range r.platforms {
		d, ok := p.(Detector)
		if !ok {
			continue
		}
		srv, err := d.Detect(ctx, server)
		if errors.Is(err, ErrNotMine) {
			tried = append(tried, err)
			continue
		}
		if err != nil {
			return nil, Server{}, err
		}
		srv.Platform = p.Name()
		return p, srv, nil
	}
	if len(tried) > 0 {
		return nil, Server{}, errors.Join(tried...)
	}
	return nil, Server{}, fmt.Errorf("%s: no platform of this ferry can detect servers", server)
}

// Login logs in on p, the platform Detect found srv to speak. The
// returned account records its platform and what its server runs; the
// caller stores it.
func Login(ctx context.Context, p Platform, srv Server, req LoginRequest) (state.Account, error) {
	a, ok := p.(Authenticator)
	if !ok {
		return state.Account{}, fmt.Errorf("ferry cannot log in to %s servers yet", p.Name())
	}
	acct, err := a.Login(ctx, req)
	if err != nil {
		return state.Account{}, err
	}
	acct.Platform, acct.Software, acct.SoftwareVersion = p.Name(), srv.Software, srv.Version
	return acct, nil
}

// The source types of a route.
const (
	SourceFeed    = "feed"    // an RSS, Atom or JSON Feed document
	SourceAccount = "account" // a logged-in account's own posts, on any platform
	SourceArchive = "archive" // an archive directory (Mastodon export or `ferry archive`)
)

// SourceSpec is a route's source as the config file gives it.
type SourceSpec struct {
	// Type is SourceFeed, SourceAccount or SourceArchive.
	Type string
	// URL and UserAgent (feed): the feed's address and the User-Agent to
	// send (the caller's default when empty).
	URL, UserAgent string
	// Session (account) is the source account's session.
	Session Session
	// Stream (account) asks to stream the account too, where its platform
	// can.
	Stream bool
	// Boosts (account): the route mirrors the account's boosts.
	Boosts bool
	// SkipQuotes (account): the route leaves quote posts out.
	SkipQuotes bool
	// Path (archive) is the archive directory.
	Path string
}

// RouteSource is a route's source, built: what the bridge needs to know
// about it beside the Source itself.
type RouteSource struct {
	Source sources.Source
	// Kind is bridge.KindFeed (items identified by GUID, link and content)
	// or bridge.KindAccount (posts identified by their ID at the origin).
	Kind string
	// Account is the source account's handle (account sources): its posts
	// that are copies are never mirrored back.
	Account string
	// Stream reports that the source should also be streamed: asked for,
	// and the source can (sources.Streamer).
	Stream bool
}

// Source builds a route's source from spec.
func (r *Registry) Source(spec SourceSpec) (RouteSource, error) {
	switch spec.Type {
	case SourceFeed:
		ua := spec.UserAgent
		if ua == "" {
			ua = r.env.UserAgent
		}
		src, err := feed.New(feed.Options{URL: spec.URL, Client: r.feedHC, UserAgent: ua})
		if err != nil {
			return RouteSource{}, err
		}
		return RouteSource{Source: src, Kind: bridge.KindFeed}, nil
	case SourceAccount:
		if spec.Session == nil {
			return RouteSource{}, errors.New("account source: no account")
		}
		acct := spec.Session.Account()
		so, ok := spec.Session.(SourceOpener)
		if !ok {
			return RouteSource{}, fmt.Errorf("account %s: ferry cannot read posts from %s accounts yet", acct.Handle, acct.Platform)
		}
		src := so.Source(SourceOptions{Boosts: spec.Boosts, SkipQuotes: spec.SkipQuotes})
		_, streams := src.(sources.Streamer)
		return RouteSource{Source: src, Kind: bridge.KindAccount, Account: acct.Handle, Stream: spec.Stream && streams}, nil
	case SourceArchive:
		if spec.Path == "" {
			return RouteSource{}, errors.New("archive source: no path")
		}
		return RouteSource{Source: archive.NewSource(spec.Path, archive.SourceOptions{}), Kind: bridge.KindAccount}, nil
	}
	return RouteSource{}, fmt.Errorf("source type %q: want %s, %s or %s", spec.Type, SourceFeed, SourceAccount, SourceArchive)
}

// ParseServer checks and normalises a server address a person typed
// ("example.social", "https://example.social/") to its base URL.
func ParseServer(s string) (string, error) {
	u, err := fedi.ParseServer(s)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// Locate asks each platform that can find accounts by name (Locator), in
// order, for the server of the account id, and detects that server. It
// returns the platform, the server and the identifier to log in with.
func (r *Registry) Locate(ctx context.Context, id string) (Platform, Server, string, error) {
	var tried []error
	for _, p := range r.platforms {
		l, ok := p.(Locator)
		if !ok {
			continue
		}
		server, ident, err := l.Locate(ctx, id)
		if errors.Is(err, ErrNotMine) {
			tried = append(tried, err)
			continue
		}
		if err != nil {
			return nil, Server{}, "", err
		}
		d, ok := p.(Detector)
		if !ok {
			return p, Server{Platform: p.Name(), Base: server}, ident, nil
		}
		srv, err := d.Detect(ctx, server)
		if err != nil {
			return nil, Server{}, "", fmt.Errorf("%s is on %s: %w", id, server, err)
		}
		srv.Platform = p.Name()
		return p, srv, ident, nil
	}
	if len(tried) > 0 {
		return nil, Server{}, "", errors.Join(tried...)
	}
	return nil, Server{}, "", fmt.Errorf("%s: no platform of this ferry finds accounts by name", id)
}
