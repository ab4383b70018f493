package fedi

// Calls for the social graph (follows, blocks, mutes, domain blocks, lists,
// bookmarks), with what generic client libraries lack or get subtly wrong: follow settings
// (reblogs, notify, languages), mute notifications, user domain blocks,
// Link-header paging with a per-page callback (flat memory for 10 000+
// entries), and GoToSocial's bulk CSV import.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Relationship is the Mastodon API Relationship entity: how the client's
// account relates to the account with ID.
type Relationship struct {
	ID                  string   `json:"id"`
	Following           bool     `json:"following"`
	ShowingReblogs      bool     `json:"showing_reblogs"`
	Notifying           bool     `json:"notifying"`
	Languages           []string `json:"languages"`
	Requested           bool     `json:"requested"`
	Blocking            bool     `json:"blocking"`
	Muting              bool     `json:"muting"`
	MutingNotifications bool     `json:"muting_notifications"`
}

// StatusRef is the part of a Mastodon API Status entity the graph tools use.
type StatusRef struct {
	ID         string `json:"id"`
	URI        string `json:"uri"`
	URL        string `json:"url"`
	Bookmarked bool   `json:"bookmarked"`
}

// List is a Mastodon API List entity.
type List struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// FollowOptions are the settings of a follow. Nil pointers leave the
// server's default (reblogs on, notify off); nil Languages means all.
type FollowOptions struct {
	Reblogs   *bool
	Notify    *bool
	Languages []string
}

// Follow follows the account with id (an ID on the client's server), or
// updates the settings of an existing follow. The server treats it
// idempotently, so the request is marked safe to retry after a 429.
// The result has Requested set instead of Following for locked accounts.
func Follow(ctx context.Context, c *Client, id string, o FollowOptions) (Relationship, error) {
	body := map[string]any{}
	if o.Reblogs != nil {
		body["reblogs"] = *o.Reblogs
	}
	if o.Notify != nil {
		body["notify"] = *o.Notify
	}
	if len(o.Languages) > 0 {
		body["languages"] = o.Languages
	}
	var rel Relationship
	_, err := c.Do(WithRetrySafe(ctx), http.MethodPost, "/api/v1/accounts/"+url.PathEscape(id)+"/follow", nil, body, &rel)
	if err != nil {
		return Relationship{}, fmt.Errorf("follow account %s at %s: %w", id, c.base.Host, err)
	}
	return rel, nil
}

// Mute mutes the account with id; notifications says whether its
// notifications are hidden too (Mastodon's default is true). Idempotent.
func Mute(ctx context.Context, c *Client, id string, notifications bool) (Relationship, error) {
	var rel Relationship
	body := map[string]any{"notifications": notifications}
	_, err := c.Do(WithRetrySafe(ctx), http.MethodPost, "/api/v1/accounts/"+url.PathEscape(id)+"/mute", nil, body, &rel)
	if err != nil {
		return Relationship{}, fmt.Errorf("mute account %s at %s: %w", id, c.base.Host, err)
	}
	return rel, nil
}

// AccountAction posts one of the body-less account actions ("block",
// "unblock", "unfollow", "unmute") for the account with id. All of them are
// idempotent on Mastodon-compatible servers.
func AccountAction(ctx context.Context, c *Client, id, action string) (Relationship, error) {
	var rel Relationship
	_, err := c.Do(WithRetrySafe(ctx), http.MethodPost, "/api/v1/accounts/"+url.PathEscape(id)+"/"+action, nil, nil, &rel)
	if err != nil {
		return Relationship{}, fmt.Errorf("%s account %s at %s: %w", action, id, c.base.Host, err)
	}
	return rel, nil
}

// Relationships returns the client account's relationships to the accounts
// with ids, in one request per 40 ids (Mastodon's page size for id lists).
func Relationships(ctx context.Context, c *Client, ids []string) ([]Relationship, error) {
	var out []Relationship
	for len(ids) > 0 {
		n := min(len(ids), 40)
		q := url.Values{"id[]": ids[:n]}
		var rels []Relationship
		if _, err := c.Do(ctx, http.MethodGet, "/api/v1/accounts/relationships", q, nil, &rels); err != nil {
			return nil, fmt.Errorf("relationships at %s: %w", c.base.Host, err)
		}
		out = append(out, rels...)
		ids = ids[n:]
	}
	return out, nil
}

// htmlAnswer is APIError.Message for an error answered with a web page.
const htmlAnswer = "an HTML page instead of an API answer"

// IsMissingEndpoint reports whether err is a 404 for an API path the server
// does not have, as opposed to a record it does not have: the answer was a
// web page or an empty body, not the API's JSON error (snac2 has no mute
// API and answers its mute calls this way). Callers report such an error
// as a missing feature, not as "account not found".
func IsMissingEndpoint(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound && (ae.Message == "" || ae.Message == htmlAnswer)
}

// ResolveAccount finds the account acct ("user@host", with or without a
// leading "@") through /api/v2/search with resolve=true: one request that
// answers from the server's database for known accounts and does the
// WebFinger lookup for unknown ones. It returns an error for which
// IsNotFound is true when the server found no account with exactly that
// address (search can return near matches; they are not accepted).
func ResolveAccount(ctx context.Context, c *Client, acct string) (Account, error) {
	acct = strings.TrimPrefix(strings.TrimSpace(acct), "@")
	var res struct {
		Accounts []Account `json:"accounts"`
	}
	q := url.Values{"q": {"@" + acct}, "resolve": {"true"}, "type": {"accounts"}, "limit": {"5"}}
	if _, err := c.Do(ctx, http.MethodGet, "/api/v2/search", q, nil, &res); err != nil {
		return Account{}, fmt.Errorf("resolve %s at %s: %w", acct, c.base.Host, err)
	}
	for _, a := range res.Accounts {
		if SameAcct(a.Acct, acct, c.base.Host) {
			return a, nil
		}
	}
	return Account{}, fmt.Errorf("resolve %s at %s: %w", acct, c.base.Host,
		&APIError{Method: http.MethodGet, URL: c.base.JoinPath("/api/v2/search").String(), Status: http.StatusNotFound, Message: "no such account"})
}

// SameAcct reports whether the acct a server returned ("user" for its own
// accounts, "user@domain" for others) names the same account as want
// ("user@domain"). localHost is the server's host, which is the domain of
// its own accounts. Comparison ignores case, as WebFinger does.
func SameAcct(got, want, localHost string) bool {
	got = strings.ToLower(strings.TrimPrefix(got, "@"))
	want = strings.ToLower(strings.TrimPrefix(want, "@"))
	if !strings.Contains(got, "@") {
		got += "@" + strings.ToLower(localHost)
	}
	return got == want
}

// ResolveStatus finds the status with the ActivityPub URI (or web URL) uri
// through /api/v2/search with resolve=true, fetching it from its server
// when needed. IsNotFound is true for the error when nothing was found.
func ResolveStatus(ctx context.Context, c *Client, uri string) (StatusRef, error) {
	var res struct {
		Statuses []StatusRef `json:"statuses"`
	}
	q := url.Values{"q": {uri}, "resolve": {"true"}, "type": {"statuses"}, "limit": {"1"}}
	if _, err := c.Do(ctx, http.MethodGet, "/api/v2/search", q, nil, &res); err != nil {
		return StatusRef{}, fmt.Errorf("resolve status %s at %s: %w", uri, c.base.Host, err)
	}
	if len(res.Statuses) == 0 {
		return StatusRef{}, fmt.Errorf("resolve status %s at %s: %w", uri, c.base.Host,
			&APIError{Method: http.MethodGet, URL: c.base.JoinPath("/api/v2/search").String(), Status: http.StatusNotFound, Message: "no such status"})
	}
	return res.Statuses[0], nil
}

// StatusAction posts a body-less status action ("bookmark", "unbookmark")
// for the status with id. It is not marked safe to resend: GoToSocial
// stores a bookmark made twice twice, so an ambiguous failure is
// reconciled by the caller.
func StatusAction(ctx context.Context, c *Client, id, action string) (StatusRef, error) {
	var s StatusRef
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/statuses/"+url.PathEscape(id)+"/"+action, nil, nil, &s)
	if err != nil {
		return StatusRef{}, fmt.Errorf("%s status %s at %s: %w", action, id, c.base.Host, err)
	}
	return s, nil
}

// EachPage calls fn with every page of the list at path (a Mastodon API
// collection paged by Link headers), decoding each page into a []T. Memory
// stays at one page however long the list. fn's error stops the walk and is
// returned as is.
func EachPage[T any](ctx context.Context, c *Client, path string, query url.Values, fn func([]T) error) error {
	next := path
	q := query
	for next != "" {
		var page []T
		resp, err := c.Do(ctx, http.MethodGet, next, q, nil, &page)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		if err := fn(page); err != nil {
			return err
		}
		next, q = NextLink(resp.Header), nil
		if next != "" {
			// Link targets are absolute; keep path and query only so the
			// request stays on this client's server and scheme.
			u, err := url.Parse(next)
			if err != nil {
				return fmt.Errorf("page %s at %s: bad Link header: %w", path, c.base.Host, err)
			}
			next = u.RequestURI()
		}
	}
	return nil
}

// DomainBlocks calls fn with every page of the account's own domain blocks.
// Servers without user-level domain blocks (GoToSocial) answer 404, for
// which IsNotFound is true.
func DomainBlocks(ctx context.Context, c *Client, fn func([]string) error) error {
	err := EachPage(ctx, c, "/api/v1/domain_blocks", url.Values{"limit": {"200"}}, fn)
	if err != nil {
		return fmt.Errorf("list domain blocks at %s: %w", c.base.Host, err)
	}
	return nil
}

// BlockDomain adds (or with remove, lifts) a user-level domain block.
func BlockDomain(ctx context.Context, c *Client, domain string, remove bool) error {
	method := http.MethodPost
	if remove {
		method = http.MethodDelete
	}
	_, err := c.DoForm(WithRetrySafe(ctx), method, "/api/v1/domain_blocks", url.Values{"domain": {domain}}, nil)
	if err != nil {
		return fmt.Errorf("block domain %s at %s: %w", domain, c.base.Host, err)
	}
	return nil
}

// Lists returns the account's lists.
func Lists(ctx context.Context, c *Client) ([]List, error) {
	var ls []List
	if _, err := c.Do(ctx, http.MethodGet, "/api/v1/lists", nil, nil, &ls); err != nil {
		return nil, fmt.Errorf("get lists at %s: %w", c.base.Host, err)
	}
	return ls, nil
}

// CreateList creates a list. It is not idempotent: a second call makes a
// second list with the same title, so callers journal it.
func CreateList(ctx context.Context, c *Client, title string) (List, error) {
	var l List
	if _, err := c.Do(ctx, http.MethodPost, "/api/v1/lists", nil, map[string]string{"title": title}, &l); err != nil {
		return List{}, fmt.Errorf("create list %q at %s: %w", title, c.base.Host, err)
	}
	return l, nil
}

// RenameList sets the title of list id.
func RenameList(ctx context.Context, c *Client, id, title string) error {
	if _, err := c.Do(WithRetrySafe(ctx), http.MethodPut, "/api/v1/lists/"+url.PathEscape(id), nil, map[string]string{"title": title}, nil); err != nil {
		return fmt.Errorf("rename list %s at %s: %w", id, c.base.Host, err)
	}
	return nil
}

// ListMembers calls fn with every page of the members of list id.
func ListMembers(ctx context.Context, c *Client, id string, fn func([]Account) error) error {
	err := EachPage(ctx, c, "/api/v1/lists/"+url.PathEscape(id)+"/accounts", url.Values{"limit": {"80"}}, fn)
	if err != nil {
		return fmt.Errorf("list members of list %s at %s: %w", id, c.base.Host, err)
	}
	return nil
}

// ListMember adds (or with remove, removes) the account accountID to the
// list id. Mastodon requires that the account is followed first, and
// answers 422 when it is already a member (see IsAlreadyMember).
func ListMember(ctx context.Context, c *Client, listID, accountID string, remove bool) error {
	method := http.MethodPost
	if remove {
		method = http.MethodDelete
	}
	_, err := c.Do(WithRetrySafe(ctx), method, "/api/v1/lists/"+url.PathEscape(listID)+"/accounts", nil,
		map[string][]string{"account_ids": {accountID}}, nil)
	if err != nil {
		return fmt.Errorf("list %s: add account %s at %s: %w", listID, accountID, c.base.Host, err)
	}
	return nil
}

// IsAlreadyMember reports whether err is the 422 a server gives when an
// account added to a list is already in it.
func IsAlreadyMember(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity {
		return false
	}
	m := strings.ToLower(ae.Message)
	return strings.Contains(m, "already") || strings.Contains(m, "taken")
}

// ServerImport uploads a Mastodon-format CSV to GoToSocial's bulk importer
// (POST /api/v1/import, multipart data/type/mode). typ is "following",
// "blocks" or "mutes"; mode "merge" or "overwrite". The server answers 202
// and works in the background: callers verify the outcome through the API.
// Servers without the endpoint answer 404 (IsNotFound).
func ServerImport(ctx context.Context, c *Client, typ, mode, filename string, data []byte) error {
	if typ != "following" && typ != "blocks" && typ != "mutes" {
		return fmt.Errorf("server import at %s: type %q is not one of following, blocks, mutes", c.base.Host, typ)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("type", typ)
	_ = mw.WriteField("mode", mode)
	fw, err := mw.CreateFormFile("data", filename)
	if err != nil {
		return fmt.Errorf("server import at %s: %w", c.base.Host, err)
	}
	if _, err := fw.Write(data); err != nil {
		return fmt.Errorf("server import at %s: %w", c.base.Host, err)
	}
	if err := mw.Close(); err != nil {
		return fmt.Errorf("server import at %s: %w", c.base.Host, err)
	}
	body := bytes.NewReader(buf.Bytes())
	// A repeated merge import changes nothing, so a 429 may be retried.
	if _, err := c.DoRaw(WithRetrySafe(ctx), http.MethodPost, "/api/v1/import", io.NopCloser(body), mw.FormDataContentType(), nil); err != nil {
		return fmt.Errorf("server import of %s (%d bytes) at %s: %w", typ, len(data), c.base.Host, err)
	}
	return nil
}

// limitParam is the page size ferry asks for; servers cap it at their max.
func limitParam(n int) url.Values { return url.Values{"limit": {strconv.Itoa(n)}} }

// Following calls fn with every page of the accounts that account id follows.
func Following(ctx context.Context, c *Client, id string, fn func([]Account) error) error {
	if err := EachPage(ctx, c, "/api/v1/accounts/"+url.PathEscape(id)+"/following", limitParam(80), fn); err != nil {
		return fmt.Errorf("list the accounts %s follows at %s: %w", id, c.base.Host, err)
	}
	return nil
}

// Followers calls fn with every page of the accounts following account id.
func Followers(ctx context.Context, c *Client, id string, fn func([]Account) error) error {
	if err := EachPage(ctx, c, "/api/v1/accounts/"+url.PathEscape(id)+"/followers", limitParam(80), fn); err != nil {
		return fmt.Errorf("list the followers of %s at %s: %w", id, c.base.Host, err)
	}
	return nil
}

// Blocks calls fn with every page of the accounts the client blocks.
func Blocks(ctx context.Context, c *Client, fn func([]Account) error) error {
	if err := EachPage(ctx, c, "/api/v1/blocks", limitParam(80), fn); err != nil {
		return fmt.Errorf("list blocks at %s: %w", c.base.Host, err)
	}
	return nil
}

// Mutes calls fn with every page of the accounts the client mutes.
func Mutes(ctx context.Context, c *Client, fn func([]Account) error) error {
	if err := EachPage(ctx, c, "/api/v1/mutes", limitParam(80), fn); err != nil {
		return fmt.Errorf("list mutes at %s: %w", c.base.Host, err)
	}
	return nil
}

// Bookmarks calls fn with every page of the client's bookmarks, newest first.
func Bookmarks(ctx context.Context, c *Client, fn func([]StatusRef) error) error {
	if err := EachPage(ctx, c, "/api/v1/bookmarks", limitParam(40), fn); err != nil {
		return fmt.Errorf("list bookmarks at %s: %w", c.base.Host, err)
	}
	return nil
}
