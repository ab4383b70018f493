package move

import (
	"context"
	"net/http"
	"net/url"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/migrate"
)

// SideAPI is what a migration needs of one account's server beyond its
// graph, in the Mastodon client API's vocabulary. A Side of the Mastodon
// API family uses its Client (Side.API nil); another platform (Misskey)
// sets API to its translation.
type SideAPI interface {
	// Base is the server's base URL, for the pages a person is sent to.
	Base() *url.URL
	// Me is the account as the server shows it now (Moved set once it
	// has moved).
	Me(ctx context.Context) (fedi.Account, error)
	// Aliases are the account's aliases (alsoKnownAs): actor URIs or
	// user@host handles.
	Aliases(ctx context.Context) ([]string, error)
	// AddAlias adds the old account to the account's aliases.
	AddAlias(ctx context.Context, oldURI, oldHandle string) error
	// MoveAccount sends the Move to the new account (only called where
	// fedi.Abilities says the API can), reading the secrets it needs
	// from s. A *GuidedError says the API cannot do it for this account
	// after all (and nothing was sent): the person does it on the web
	// page.
	MoveAccount(ctx context.Context, newURI, newHandle string, s Secrets) error
	// Refresh asks the server to fetch its copy of the actor uri again,
	// so that it sees a new alias; failures are not errors of the
	// migration.
	Refresh(ctx context.Context, uri string) error
	// Followers are the handles (user@host, lower case) following the
	// account id.
	Followers(ctx context.Context, id string) (map[string]bool, error)
}

// Secrets are where the Move's secrets come from. Each is read when it is
// needed, at most once a run, and kept nowhere.
type Secrets struct {
	// Password returns the old account's password.
	Password func() (string, error)
	// Code returns the old account's one-time code of two-factor
	// authentication (TOTP), asked only when the server wants one; nil
	// when there is no way to ask.
	Code func() (string, error)
}

// GuidedError is a side's answer that its API cannot send this account's
// Move (a server that wants a captcha at sign-in, a security key): ferry
// guides the person through the web page instead. Reason says why, for
// the person.
type GuidedError struct {
	Reason string
}

func (e *GuidedError) Error() string {
	return "the Move must be sent from the web interface: " + e.Reason
}

// api returns the side's SideAPI.
func (s *Side) api() SideAPI {
	if s.API != nil {
		return s.API
	}
	return fediSide{s.Client, s.Software.Name}
}

// Base is the side's server's base URL.
func (s *Side) Base() *url.URL { return s.api().Base() }

// GraphAPI is the side's graph in migrate's terms: Graph, or the
// Mastodon API through Client.
func (s *Side) GraphAPI() migrate.API {
	if s.Graph != nil {
		return s.Graph
	}
	return migrate.NewFediAPI(s.Client)
}

// fediSide is a Mastodon-API side.
type fediSide struct {
	c        *fedi.Client
	software string
}

func (f fediSide) Base() *url.URL { return f.c.Base() }
func (f fediSide) Me(ctx context.Context) (fedi.Account, error) {
	return fedi.VerifyCredentials(ctx, f.c)
}
func (f fediSide) Aliases(ctx context.Context) ([]string, error) {
	return fedi.Aliases(ctx, f.c, f.software)
}
func (f fediSide) AddAlias(ctx context.Context, oldURI, oldHandle string) error {
	return fedi.AddAlias(ctx, f.c, f.software, oldURI, oldHandle)
}
func (f fediSide) MoveAccount(ctx context.Context, newURI, newHandle string, s Secrets) error {
	password, err := s.Password()
	if err != nil {
		return err
	}
	return fedi.MoveAccount(ctx, f.c, f.software, newURI, newHandle, password)
}
func (f fediSide) Refresh(ctx context.Context, uri string) error {
	q := url.Values{"q": {uri}, "resolve": {"true"}, "type": {"accounts"}, "limit": {"1"}}
	_, err := f.c.Do(ctx, http.MethodGet, "/api/v2/search", q, nil, nil)
	return err
}
func (f fediSide) Followers(ctx context.Context, id string) (map[string]bool, error) {
	return Followers(ctx, f.c, id)
}
