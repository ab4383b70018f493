package archive

import (
	"context"
	"net/http"
	"net/url"

	"github.com/fedi-ferry/ferry/fedi"
)

// API is what the archiver needs of the archived account's server, in the
// Mastodon client API's vocabulary (fedi.Status, fedi.Profile, fedi's
// error classes: a gone post is fedi.IsNotFound). The Mastodon API
// family's implementation wraps Options.Client; another platform
// (Misskey) sets Options.API to its translation, so that the archive's
// store, cursor, media and files are one implementation.
type API interface {
	// Host is the server's host.
	Host() string
	// OwnProfile is the archived account's profile.
	OwnProfile(ctx context.Context) (fedi.Profile, error)
	// Statuses pages the account's posts newest first (q: limit, and
	// since_id after a cursor; an implementation may ignore since_id and
	// rely on fn, which returns false once it reaches the cursor).
	Statuses(ctx context.Context, accountID string, q url.Values, fn func([]fedi.Status) (bool, error)) error
	// GetStatus reads one post; a gone one is fedi.IsNotFound.
	GetStatus(ctx context.Context, id string) (fedi.Status, error)
	// Collection pages the account's "likes" or "bookmarks".
	Collection(ctx context.Context, name string, fn func(fedi.Status)) error
	// HTTP downloads media files.
	HTTP() *http.Client
}

// apiOf returns o.API, or the Mastodon API through o.Client.
func apiOf(o Options) API {
	if o.API != nil {
		return o.API
	}
	return fediAPI{o.Client}
}

type fediAPI struct{ c *fedi.Client }

func (f fediAPI) Host() string       { return f.c.Base().Host }
func (f fediAPI) HTTP() *http.Client { return f.c.HTTP() }
func (f fediAPI) OwnProfile(ctx context.Context) (fedi.Profile, error) {
	return fedi.OwnProfile(ctx, f.c)
}
func (f fediAPI) GetStatus(ctx context.Context, id string) (fedi.Status, error) {
	return fedi.GetStatus(ctx, f.c, id)
}
func (f fediAPI) Statuses(ctx context.Context, accountID string, q url.Values, fn func([]fedi.Status) (bool, error)) error {
	return fedi.EachStatusPage(ctx, f.c, "/api/v1/accounts/"+url.PathEscape(accountID)+"/statuses", q, fn)
}

// collectionPaths are the Mastodon API's lists of statuses whose cursors
// are not status IDs.
var collectionPaths = map[string]string{"likes": "/api/v1/favourites", "bookmarks": "/api/v1/bookmarks"}

func (f fediAPI) Collection(ctx context.Context, name string, fn func(fedi.Status)) error {
	return walkCollection(ctx, f.c, collectionPaths[name], url.Values{"limit": {"40"}}, fn)
}
