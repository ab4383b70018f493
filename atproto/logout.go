package atproto

import (
	"context"
	"errors"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
)

// DeleteSession ends the session on the PDS (com.atproto.server.deleteSession
// with the refresh token), so its tokens no longer work: what logging out
// or revoking ferry's access means on Bluesky. A session the PDS no longer
// knows is not an error.
func (c *Client) DeleteSession(ctx context.Context) error {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	const op = "com.atproto.server.deleteSession"
	err := wrap(op, comatproto.ServerDeleteSession(ctx, c.authed(c.Session().RefreshJWT)))
	if errors.Is(err, ErrAuth) {
		return nil
	}
	return err
}
