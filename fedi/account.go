package fedi

import (
	"context"
	"fmt"
	"net/http"
)

// Account is the part of a Mastodon API Account entity ferry needs to know
// who a token belongs to.
type Account struct {
	ID          string   `json:"id"`
	Username    string   `json:"username"`
	Acct        string   `json:"acct"` // "user" for local accounts, "user@host" for remote ones
	DisplayName string   `json:"display_name"`
	URL         string   `json:"url"`
	URI         string   `json:"uri"` // ActivityPub actor ID (Mastodon 4.2+, GoToSocial)
	Locked      bool     `json:"locked"`
	Moved       *Account `json:"moved"`
}

// VerifyCredentials returns the account the client's token belongs to.
// An *APIError with status 401 or 403 (see IsUnauthorized) means the token
// was revoked or never valid.
func VerifyCredentials(ctx context.Context, c *Client) (Account, error) {
	var a Account
	if _, err := c.Do(ctx, http.MethodGet, "/api/v1/accounts/verify_credentials", nil, nil, &a); err != nil {
		return Account{}, fmt.Errorf("verify the token at %s: %w", c.base.Host, err)
	}
	if a.ID == "" || a.Username == "" {
		return Account{}, fmt.Errorf("verify the token at %s: the server returned no account", c.base.Host)
	}
	return a, nil
}
