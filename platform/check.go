package platform

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/state"
)

// requestTimeout bounds one API call made on the person's behalf.
const requestTimeout = 60 * time.Second

// AccountCheck is what checking one account found (`ferry accounts
// check`): what its server runs, its limits, and whether its token works.
type AccountCheck struct {
	Handle     string      `json:"handle"`
	Name       string      `json:"name,omitempty"`
	Server     string      `json:"server"`
	Software   string      `json:"software,omitempty"`
	Version    string      `json:"version,omitempty"`
	Limits     post.Limits `json:"limits"`
	LimitsFrom string      `json:"limits_from,omitempty"`
	TokenOK    bool        `json:"token_ok"`
	// Problem says what is wrong and what to do, when TokenOK is false.
	Problem string `json:"problem,omitempty"`
	// Revoked reports that the server refused the token.
	Revoked bool `json:"-"`
}

// AccountStore stores accounts (state.Store implements it).
type AccountStore interface {
	PutAccount(ctx context.Context, a state.Account) error
}

// Check asks a's server what it runs and whether a's token still works.
// Problems are reported in the result, not as errors, so that one dead
// server does not hide the others. When the server's software or version
// changed since a was stored, the new ones are recorded in st (servers
// upgrade; later commands read them); failing to is logged.
func (r *Registry) Check(ctx context.Context, a state.Account, st AccountStore) AccountCheck {
	c := AccountCheck{Handle: a.Handle, Name: a.Name, Server: a.Server, Software: a.Software, Version: a.SoftwareVersion}
	sess, err := r.Open(a)
	if err != nil {
		c.Problem = err.Error()
		return c
	}
	cctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	srv, err := sess.Server(cctx)
	if err != nil {
		c.Problem = err.Error()
		return c
	}
	c.Software, c.Version, c.Limits, c.LimitsFrom = srv.Software, srv.Version, srv.Limits, srv.LimitsFrom
	me, err := sess.Verify(cctx)
	switch {
	case IsUnauthorized(err):
		c.Problem = fmt.Sprintf("the server no longer accepts ferry's token (revoked or expired); run `ferry login %s` again", a.Server)
		c.Revoked = true
		return c
	case err != nil:
		c.Problem = err.Error()
		return c
	case me.ID != a.AccountID && a.AccountID != "":
		c.Problem = fmt.Sprintf("the token now belongs to another account (%s); run `ferry login %s` again", me.Username, a.Server)
		return c
	}
	c.TokenOK = true
	if srv.Software != a.Software || srv.Version != a.SoftwareVersion {
		a.Software, a.SoftwareVersion = srv.Software, srv.Version
		if err := st.PutAccount(ctx, a); err != nil {
			r.env.Logger.Warn("could not record the server's new version", "account", a.Handle, "err", err)
		}
	}
	return c
}

// RevokeToken revokes a's token where its platform and server can
// (Revoker) and describes the outcome for the person. A failure is an
// outcome, not an error: the caller goes on to forget the account, and
// the outcome says what is left to do.
func (r *Registry) RevokeToken(ctx context.Context, a state.Account, apps AppStore) string {
	sess, err := r.Open(a)
	if err != nil {
		return "not revoked: " + err.Error()
	}
	rv, ok := sess.(Revoker)
	if !ok {
		return "ferry cannot revoke tokens of " + a.Platform + " accounts; revoke it in the server's settings"
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	err = rv.Revoke(rctx, apps)
	switch {
	case err == nil:
		return "token revoked"
	case errors.Is(err, ErrNoApp):
		return "the app registration is gone, so the token could not be revoked; revoke it in the server's settings"
	case errors.Is(err, ErrCannotRevoke):
		return "the server cannot revoke tokens; revoke it in the server's settings"
	default:
		return "not revoked: " + err.Error()
	}
}
