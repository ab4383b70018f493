package bluesky

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/state"
)

// appPasswordHint is where a person makes an app password.
const appPasswordHint = "an app password (Settings → Privacy and security → App passwords) is recommended"

// Login logs in to the PDS req.Server as req.Identifier (a handle, DID or
// email) with the password req.Password returns, and returns the account
// with its session tokens as its token. A wrong identifier or password is
// an error for which platform.IsUnauthorized is true; the password appears
// in no error.
func (p *Platform) Login(ctx context.Context, req platform.LoginRequest) (state.Account, error) {
	pds, err := atproto.CheckPDS(req.Server)
	if err != nil {
		return state.Account{}, err
	}
	ident := strings.TrimPrefix(strings.TrimSpace(req.Identifier), "@")
	if ident == "" {
		return state.Account{}, fmt.Errorf("%s is a Bluesky server (PDS): name the account with --handle", pds)
	}
	if req.Password == nil {
		return state.Account{}, errors.New("a Bluesky login needs a password: " + appPasswordHint)
	}
	pw, err := req.Password(ctx)
	if err != nil {
		return state.Account{}, err
	}
	if pw == "" {
		return state.Account{}, errors.New("the password is empty")
	}
	c, err := atproto.Login(ctx, pds, ident, pw, p.options())
	if errors.Is(err, atproto.ErrAuth) {
		return state.Account{}, unauthorized{fmt.Errorf("%s does not accept this handle and password (%w); %s",
			pds, err, appPasswordHint)}
	}
	if err != nil {
		return state.Account{}, err
	}
	s := c.Session()
	return state.Account{
		Handle: accountHandle(s.Handle, s.PDS), Server: s.PDS, AccountID: s.DID, Username: s.Handle,
		Token: sessionJSON(s), Platform: Name,
	}, nil
}

// Locate resolves id, a Bluesky handle ("alice.bsky.social", also typed
// as https://alice.bsky.social) or a DID, to the account's PDS through DNS,
// HTTPS and the PLC directory, and returns the PDS with the identifier to
// log in with (the handle, or the DID when the handle does not verify).
// Anything that is not a handle or DID is ErrNotMine; a handle or DID that
// does not resolve is an error matching atproto.ErrUnresolved.
func (p *Platform) Locate(ctx context.Context, id string) (string, string, error) {
	name := strings.TrimPrefix(strings.TrimSpace(id), "@")
	if u, err := url.Parse(name); err == nil && u.Host != "" && (u.Path == "" || u.Path == "/") && u.User == nil {
		name = u.Hostname()
	}
	if _, err := syntax.ParseAtIdentifier(name); err != nil {
		return "", "", fmt.Errorf("%s: %w: not a handle or DID", id, platform.ErrNotMine)
	}
	who, err := atproto.Resolver{PLCURL: p.plc, HTTPClient: p.hc}.Resolve(ctx, name)
	if err != nil {
		// A name that does not resolve (atproto.ErrUnresolved) is worth
		// saying: it may be a mistyped handle.
		return "", "", err
	}
	ident := who.Handle.String()
	if who.Handle.IsInvalidHandle() {
		ident = who.DID.String()
	}
	return who.PDS, ident, nil
}
