package migrate

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/fedi-ferry/ferry/fedi"
)

// API is what graph export and import need of the account's server, in
// the Mastodon client API's vocabulary (package fedi's values and error
// classes: a 404 is fedi.IsNotFound, a missing feature
// fedi.IsMissingEndpoint, a refused token fedi.IsUnauthorized). The
// Mastodon API family's implementation wraps a *fedi.Client (NewFediAPI);
// another platform (Misskey) implements it by translating to its own API,
// so that the plan, journal, apply and report are the same for all.
type API interface {
	// Host is the server's host, the domain of its local accounts in
	// handles.
	Host() string
	VerifyCredentials(ctx context.Context) (fedi.Account, error)
	Following(ctx context.Context, id string, fn func([]fedi.Account) error) error
	Followers(ctx context.Context, id string, fn func([]fedi.Account) error) error
	Blocks(ctx context.Context, fn func([]fedi.Account) error) error
	Mutes(ctx context.Context, fn func([]fedi.Account) error) error
	DomainBlocks(ctx context.Context, fn func([]string) error) error
	Bookmarks(ctx context.Context, fn func([]fedi.StatusRef) error) error
	Lists(ctx context.Context) ([]fedi.List, error)
	ListMembers(ctx context.Context, id string, fn func([]fedi.Account) error) error
	ResolveAccount(ctx context.Context, acct string) (fedi.Account, error)
	Relationships(ctx context.Context, ids []string) ([]fedi.Relationship, error)
	Follow(ctx context.Context, id string, o fedi.FollowOptions) (fedi.Relationship, error)
	// AccountAction is "block", "unblock", "unfollow" or "unmute".
	AccountAction(ctx context.Context, id, action string) (fedi.Relationship, error)
	Mute(ctx context.Context, id string, notifications bool) (fedi.Relationship, error)
	// StatusAction is "bookmark" or "unbookmark".
	StatusAction(ctx context.Context, id, action string) (fedi.StatusRef, error)
	ResolveStatus(ctx context.Context, uri string) (fedi.StatusRef, error)
	// Bookmarked reports whether the account has bookmarked the status,
	// for an item an interrupted run began.
	Bookmarked(ctx context.Context, id string) (bool, error)
	CreateList(ctx context.Context, title string) (fedi.List, error)
	RenameList(ctx context.Context, id, title string) error
	ListMember(ctx context.Context, listID, accountID string, remove bool) error
	BlockDomain(ctx context.Context, domain string, remove bool) error
	// ServerImport hands a CSV file to the server's own importer
	// (GoToSocial's); other servers answer fedi.IsMissingEndpoint.
	ServerImport(ctx context.Context, typ, mode, filename string, data []byte) error
}

// NewFediAPI is the API of a Mastodon-API server, through c.
func NewFediAPI(c *fedi.Client) API { return fediAPI{c} }

// apiOf returns api, or the Mastodon API through c when api is nil.
func apiOf(api API, c *fedi.Client) API {
	if api != nil {
		return api
	}
	if c == nil {
		return nil
	}
	return fediAPI{c}
}

type fediAPI struct{ c *fedi.Client }

func (f fediAPI) Host() string { return f.c.Base().Host }
func (f fediAPI) VerifyCredentials(ctx context.Context) (fedi.Account, error) {
	return fedi.VerifyCredentials(ctx, f.c)
}
func (f fediAPI) Following(ctx context.Context, id string, fn func([]fedi.Account) error) error {
	return fedi.Following(ctx, f.c, id, fn)
}
func (f fediAPI) Followers(ctx context.Context, id string, fn func([]fedi.Account) error) error {
	return fedi.Followers(ctx, f.c, id, fn)
}
func (f fediAPI) Blocks(ctx context.Context, fn func([]fedi.Account) error) error {
	return fedi.Blocks(ctx, f.c, fn)
}
func (f fediAPI) Mutes(ctx context.Context, fn func([]fedi.Account) error) error {
	return fedi.Mutes(ctx, f.c, fn)
}
func (f fediAPI) DomainBlocks(ctx context.Context, fn func([]string) error) error {
	return fedi.DomainBlocks(ctx, f.c, fn)
}
func (f fediAPI) Bookmarks(ctx context.Context, fn func([]fedi.StatusRef) error) error {
	return fedi.Bookmarks(ctx, f.c, fn)
}
func (f fediAPI) Lists(ctx context.Context) ([]fedi.List, error) { return fedi.Lists(ctx, f.c) }
func (f fediAPI) ListMembers(ctx context.Context, id string, fn func([]fedi.Account) error) error {
	return fedi.ListMembers(ctx, f.c, id, fn)
}
func (f fediAPI) ResolveAccount(ctx context.Context, acct string) (fedi.Account, error) {
	return fedi.ResolveAccount(ctx, f.c, acct)
}
func (f fediAPI) Relationships(ctx context.Context, ids []string) ([]fedi.Relationship, error) {
	return fedi.Relationships(ctx, f.c, ids)
}
func (f fediAPI) Follow(ctx context.Context, id string, o fedi.FollowOptions) (fedi.Relationship, error) {
	return fedi.Follow(ctx, f.c, id, o)
}
func (f fediAPI) AccountAction(ctx context.Context, id, action string) (fedi.Relationship, error) {
	return fedi.AccountAction(ctx, f.c, id, action)
}
func (f fediAPI) Mute(ctx context.Context, id string, notifications bool) (fedi.Relationship, error) {
	return fedi.Mute(ctx, f.c, id, notifications)
}
func (f fediAPI) StatusAction(ctx context.Context, id, action string) (fedi.StatusRef, error) {
	return fedi.StatusAction(ctx, f.c, id, action)
}
func (f fediAPI) ResolveStatus(ctx context.Context, uri string) (fedi.StatusRef, error) {
	return fedi.ResolveStatus(ctx, f.c, uri)
}
func (f fediAPI) CreateList(ctx context.Context, title string) (fedi.List, error) {
	return fedi.CreateList(ctx, f.c, title)
}
func (f fediAPI) RenameList(ctx context.Context, id, title string) error {
	return fedi.RenameList(ctx, f.c, id, title)
}
func (f fediAPI) ListMember(ctx context.Context, listID, accountID string, remove bool) error {
	return fedi.ListMember(ctx, f.c, listID, accountID, remove)
}
func (f fediAPI) BlockDomain(ctx context.Context, domain string, remove bool) error {
	return fedi.BlockDomain(ctx, f.c, domain, remove)
}
func (f fediAPI) ServerImport(ctx context.Context, typ, mode, filename string, data []byte) error {
	return fedi.ServerImport(ctx, f.c, typ, mode, filename, data)
}

// Bookmarked reads the status's own flag, which can lag behind a bookmark
// made a moment ago (GoToSocial answers it from a cache), and a bookmark
// made twice is stored twice, so the newest bookmarks, where a bookmark
// from the interrupted run must be, are read as well.
func (f fediAPI) Bookmarked(ctx context.Context, id string) (bool, error) {
	var s fedi.StatusRef
	if _, err := f.c.Do(ctx, http.MethodGet, "/api/v1/statuses/"+url.PathEscape(id), nil, nil, &s); err != nil {
		return false, fmt.Errorf("check the bookmark of status %s: %w", id, err)
	}
	if s.Bookmarked {
		return true, nil
	}
	var recent []fedi.StatusRef
	if _, err := f.c.Do(ctx, http.MethodGet, "/api/v1/bookmarks", url.Values{"limit": {"40"}}, nil, &recent); err != nil {
		return false, fmt.Errorf("check the newest bookmarks: %w", err)
	}
	for _, r := range recent {
		if r.ID == id {
			return true, nil
		}
	}
	return false, nil
}
