package misskey

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/migrate/move"
	mk "github.com/fedi-ferry/ferry/misskey"
	"github.com/fedi-ferry/ferry/platform"
)

// moveSide is a Misskey account as a side of a migration (move.SideAPI):
// aliases through i/update's alsoKnownAs (Misskey takes handles and shows
// the aliased users' IDs), the account's state through i (movedTo), its
// followers through users/followers. The Move itself is sent from
// Misskey's web client (Settings → Account migration): i/move accepts
// only the web client's own session token, never an app's, so
// fedi.Abilities says the API cannot, and migrate/move guides the person
// and waits until the account shows the Move.
type moveSide struct {
	c *mk.Client
	g graphAPI
}

func (m moveSide) Base() *url.URL { return m.c.Base() }

// localURI is the ActivityPub ID of a local user (Misskey's
// <base>/users/<id>).
func (m moveSide) localURI(id string) string { return m.c.Base().JoinPath("users", id).String() }

// user reads a user by ID, with the handle it has on this server's view.
func (m moveSide) user(ctx context.Context, id string) (fedi.Account, error) {
	var u struct {
		mk.User
		URI *string `json:"uri"`
	}
	if err := m.g.call(ctx, "users/show", map[string]string{"userId": id}, &u, false); err != nil {
		return fedi.Account{}, err
	}
	a := account(u.User)
	a.URI = mk.Str(u.URI)
	if a.URI == "" {
		a.URI = m.localURI(u.ID)
	}
	if !strings.Contains(a.Acct, "@") {
		a.Acct += "@" + m.c.Base().Host
	}
	return a, nil
}

type me struct {
	mk.User
	AlsoKnownAs []string `json:"alsoKnownAs"`
	MovedTo     *string  `json:"movedTo"`
}

func (m moveSide) me(ctx context.Context) (me, error) {
	var out me
	return out, m.g.call(ctx, "i", nil, &out, false)
}

func (m moveSide) Me(ctx context.Context) (fedi.Account, error) {
	u, err := m.me(ctx)
	if err != nil {
		return fedi.Account{}, err
	}
	a := account(u.User)
	a.URI = m.localURI(u.ID)
	a.Moved = nil
	if id := mk.Str(u.MovedTo); id != "" {
		to, err := m.user(ctx, id)
		if err != nil {
			return fedi.Account{}, fmt.Errorf("the account moved to user %s, who cannot be read: %w", id, err)
		}
		a.Moved = &to
	}
	return a, nil
}

// Aliases are the handles (user@host) of the users the account lists as
// also known as.
func (m moveSide) Aliases(ctx context.Context) ([]string, error) {
	u, err := m.me(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range u.AlsoKnownAs {
		a, err := m.user(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, a.Acct, a.URI)
	}
	return out, nil
}

// AddAlias adds oldHandle to the account's aliases, keeping those it has
// (i/update replaces the list; Misskey keeps at most 10).
func (m moveSide) AddAlias(ctx context.Context, oldURI, oldHandle string) error {
	u, err := m.me(ctx)
	if err != nil {
		return err
	}
	var accts []string
	for _, id := range u.AlsoKnownAs {
		a, err := m.user(ctx, id)
		if err != nil {
			return err
		}
		accts = append(accts, a.Acct)
	}
	accts = append(accts, strings.TrimPrefix(oldHandle, "@"))
	if len(accts) > 10 {
		return fmt.Errorf("the account already has %d aliases, Misskey's most; remove one in its settings first", len(accts)-1)
	}
	return m.g.call(ctx, "i/update", map[string]any{"alsoKnownAs": accts}, nil, true)
}

// errMoveInWebClient is MoveAccount's answer: migrate/move never calls it
// for Misskey (fedi.Abilities), the person moves in the web client.
var errMoveInWebClient = errors.New("Misskey sends a Move only from its web client (i/move refuses apps' tokens)")

func (m moveSide) MoveAccount(ctx context.Context, newURI, newHandle, password string) error {
	return errMoveInWebClient
}

// Refresh asks the server to fetch the actor again (ap/show).
func (m moveSide) Refresh(ctx context.Context, uri string) error {
	return m.g.call(ctx, "ap/show", map[string]string{"uri": uri}, nil, false)
}

// Followers are the handles following the account, user@host in lower
// case (this server's users with its host).
func (m moveSide) Followers(ctx context.Context, id string) (map[string]bool, error) {
	out := map[string]bool{}
	host := strings.ToLower(m.c.Base().Host)
	err := m.g.Followers(ctx, id, func(page []fedi.Account) error {
		for _, a := range page {
			acct := strings.ToLower(a.Acct)
			if !strings.Contains(acct, "@") {
				acct += "@" + host
			}
			out[acct] = true
		}
		return nil
	})
	return out, err
}

// MoveSide describes the account for migrate/move: its software from
// nodeinfo, the account from i, its actor URI, and Misskey's graph and
// side APIs.
func (s *Session) MoveSide(ctx context.Context) (*move.Side, error) {
	name, version, err := mk.NodeInfo(ctx, s.anon)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", s.acct.Handle, err)
	}
	side := moveSide{c: s.c, g: graphAPI{s.c}}
	acct, err := side.Me(ctx)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", s.acct.Handle, err)
	}
	return &move.Side{Handle: s.acct.Handle, API: side, Graph: side.g, Archive: s.archiveAPI(), Software: fedi.Software{Name: name, Version: version},
		Account: acct, URI: acct.URI}, nil
}

var (
	_ move.SideAPI   = moveSide{}
	_ platform.Mover = (*Session)(nil)
)
