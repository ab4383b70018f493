package platform

import "context"

// TokenSaver stores an account's new token when its platform replaces it
// on its own (Bluesky rotates its session tokens at every refresh, and the
// old refresh token stops working). state.Store implements it.
type TokenSaver interface {
	// SaveToken replaces the stored token of the account handle.
	SaveToken(ctx context.Context, handle, token string) error
}

// Locator is implemented by platforms whose accounts can be found from
// the account's own name, without naming a server (a Bluesky handle
// resolves to its DID and the DID to its PDS).
type Locator interface {
	// Locate finds the server of the account id and returns it with the
	// identifier to log in with. An error wrapping ErrNotMine says id is
	// not an account name of this platform.
	Locate(ctx context.Context, id string) (server, identifier string, err error)
}
