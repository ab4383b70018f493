package fedi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Profile is the part of the Mastodon API CredentialAccount entity
// (verify_credentials) that an archive keeps: who the account is, its bio,
// fields and pictures.
type Profile struct {
	Account
	Note          string    `json:"note"` // HTML
	Avatar        string    `json:"avatar"`
	Header        string    `json:"header"`
	CreatedAt     time.Time `json:"created_at"`
	Bot           bool      `json:"bot"`
	Fields        []Field   `json:"fields"`
	StatusesCount int       `json:"statuses_count"`
	// CountsDeleted says StatusesCount counts every post ever made,
	// deleted ones included (Misskey never decrements notesCount), so it
	// is only an upper bound of the posts the server lists.
	CountsDeleted bool `json:"-"`
}

// Field is one profile metadata field (name and HTML value).
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// OwnProfile returns the profile of the account the client's token belongs
// to.
func OwnProfile(ctx context.Context, c *Client) (Profile, error) {
	var p Profile
	if _, err := c.Do(ctx, http.MethodGet, "/api/v1/accounts/verify_credentials", nil, nil, &p); err != nil {
		return Profile{}, fmt.Errorf("read the profile at %s: %w", c.base.Host, err)
	}
	if p.ID == "" {
		return Profile{}, fmt.Errorf("read the profile at %s: the server returned no account", c.base.Host)
	}
	return p, nil
}

// GetStatus returns the status with id; IsNotFound(err) is true when it is
// gone (deleted) or not visible to the client.
func GetStatus(ctx context.Context, c *Client, id string) (Status, error) {
	var st Status
	if _, err := c.Do(ctx, http.MethodGet, "/api/v1/statuses/"+url.PathEscape(id), nil, nil, &st); err != nil {
		return Status{}, fmt.Errorf("read status %s at %s: %w", id, c.base.Host, err)
	}
	return st, nil
}
