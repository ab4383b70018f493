package misskey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/migrate"
	mk "github.com/fedi-ferry/ferry/misskey"
	"github.com/fedi-ferry/ferry/platform"
)

// graphAPI is Misskey's API in the terms of package migrate (migrate.API),
// so that graph export and import (their plan, journal, apply, report and
// CSV files) are the same as on the Mastodon API:
//
//   - following: users/following, following/create, following/delete;
//     a follow's "Notify on new posts" is following/update's notify, its
//     "Show boosts" the absence of a renote mute (renote-mute/*); Misskey
//     keeps no languages on a follow;
//   - followers: users/followers;
//   - blocks: blocking/*; mutes: mute/* (a Misskey mute always hides the
//     muted account's notifications, so "Hide notifications" is true);
//   - lists: users/lists/* (a list's title is its name);
//   - bookmarks: Misskey's favourites (i/favorites, notes/favorites/*,
//     notes/state), notes found by their URI with ap/show;
//   - domain blocks: Misskey has none for users (only instance mutes), so
//     they are reported as unsupported.
//
// Misskey's errors are given to migrate as *fedi.APIError with a status
// that says the same: a refused token 401/403, NO_SUCH_* 404, a row the
// server refuses 422, a rate limit 429; a lost write keeps
// fedi.ErrAmbiguous.
type graphAPI struct{ c *mk.Client }

func (g graphAPI) Host() string { return g.c.Base().Host }

// fediErr restates a Misskey error in migrate's vocabulary.
func fediErr(err error) error {
	if err == nil {
		return nil
	}
	var amb *mk.AmbiguousError
	if errors.As(err, &amb) {
		return fmt.Errorf("%w: %w", fedi.ErrAmbiguous, err)
	}
	var ae *mk.APIError
	if !errors.As(err, &ae) {
		return err
	}
	status := ae.Status
	switch {
	case ae.Code == "AUTHENTICATION_FAILED" || ae.Code == "CREDENTIAL_REQUIRED":
		status = http.StatusUnauthorized
	case ae.Code == "PERMISSION_DENIED":
		status = http.StatusForbidden
	case strings.HasPrefix(ae.Code, "NO_SUCH_"), ae.Code == "FAILED_TO_RESOLVE_REMOTE_USER", entityNotFound(ae):
		// A remote account whose server does not answer is as good as
		// unknown for a row (Misskey answers 500, which would be retried);
		// notes/state of a missing note is Misskey's 500 INTERNAL_ERROR
		// with info.code EntityNotFoundError (both checked against
		// Misskey 2025.4.x, MisskeyIO fork, on loopback).
		status = http.StatusNotFound
	case ae.Status == http.StatusBadRequest:
		status = http.StatusUnprocessableEntity
	}
	msg := ae.Code + ": " + ae.Message
	if ae.Code == "" {
		msg = ae.Error()
	}
	out := &fedi.APIError{Method: http.MethodPost, URL: g0(ae.Endpoint), Status: status, Message: msg}
	if ae.Status == http.StatusTooManyRequests && ae.Wait > 0 {
		// The client waited out the short ones (MaxWait); this one is an
		// hourly quota. Carry its wait so an import stops and resumes
		// later instead of retrying the row in a loop.
		q := &fedi.QuotaError{Endpoint: ae.Endpoint, Reset: time.Now().Add(ae.Wait), Err: out}
		var info struct {
			Total int `json:"total"`
		}
		if json.Unmarshal(ae.Info, &info) == nil && info.Total > 0 {
			q.Limit, q.Per = info.Total, time.Hour
		} else if n, ok := hourlyLimits[ae.Endpoint]; ok {
			q.Limit, q.Per = n, time.Hour
		}
		return q
	}
	return out
}

// hourlyLimits are the meta.limit (calls per hour) of the endpoints the
// graph porter writes with, from Misskey's endpoint definitions; used
// to name the quota when the 429 does not (upstream Misskey's info has
// no "total"; the MisskeyIO fork's has).
var hourlyLimits = map[string]int{
	"mute/create": 20, "blocking/create": 20, "renote-mute/create": 20, "notes/favorites/create": 20, "i/update": 20,
	"ap/show": 30, "users/lists/push": 30,
	"following/create": 100, "following/update": 100, "following/delete": 100,
}

// entityNotFound reports whether ae is Misskey's answer to a lookup of a
// missing row by an endpoint that does not check first (findOneByOrFail).
func entityNotFound(ae *mk.APIError) bool {
	if ae.Code != "INTERNAL_ERROR" {
		return false
	}
	var info struct {
		Code string `json:"code"`
	}
	return json.Unmarshal(ae.Info, &info) == nil && info.Code == "EntityNotFoundError"
}

func g0(endpoint string) string { return "/api/" + endpoint }

// ignore reports whether err is one of codes: a state already reached
// (ALREADY_FOLLOWING on a follow, NOT_BLOCKING on an unblock).
func ignore(err error, codes ...string) bool {
	for _, c := range codes {
		if mk.IsCode(err, c) {
			return true
		}
	}
	return false
}

func (g graphAPI) call(ctx context.Context, endpoint string, params, out any, write bool) error {
	return fediErr(g.c.Call(ctx, endpoint, params, out, write))
}

// account is a Misskey user as a Mastodon API account: Acct is "user" for
// the server's own users, "user@host" for others.
func account(u mk.User) fedi.Account {
	acct := u.Username
	if h := mk.Str(u.Host); h != "" {
		acct += "@" + h
	}
	a := fedi.Account{ID: u.ID, Username: u.Username, Acct: acct, DisplayName: u.Name}
	if u.MovedTo != nil && *u.MovedTo != "" {
		a.Moved = &fedi.Account{ID: *u.MovedTo}
	}
	return a
}

func (g graphAPI) VerifyCredentials(ctx context.Context) (fedi.Account, error) {
	u, err := g.c.I(ctx)
	if err != nil {
		return fedi.Account{}, fediErr(err)
	}
	return account(u), nil
}

// pageSize is the most Misskey's list endpoints return at once.
const pageSize = 100

// pages calls a list endpoint of records {id, <field>: User} page by page,
// newest first, and hands each page's users to fn.
func (g graphAPI) pages(ctx context.Context, endpoint string, params map[string]any, field string, fn func([]fedi.Account) error) error {
	until := ""
	for {
		p := map[string]any{"limit": pageSize}
		for k, v := range params {
			p[k] = v
		}
		if until != "" {
			p["untilId"] = until
		}
		var recs []map[string]any
		if err := g.call(ctx, endpoint, p, &recs, false); err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		var accts []fedi.Account
		for _, r := range recs {
			id, _ := r["id"].(string)
			until = id
			u, ok := r[field].(map[string]any)
			if !ok {
				continue
			}
			accts = append(accts, account(userOf(u)))
		}
		if err := fn(accts); err != nil {
			return err
		}
		if len(recs) < pageSize {
			return nil
		}
	}
}

func userOf(m map[string]any) mk.User {
	u := mk.User{}
	u.ID, _ = m["id"].(string)
	u.Username, _ = m["username"].(string)
	u.Name, _ = m["name"].(string)
	if h, ok := m["host"].(string); ok && h != "" {
		u.Host = &h
	}
	return u
}

func (g graphAPI) Following(ctx context.Context, id string, fn func([]fedi.Account) error) error {
	return g.pages(ctx, "users/following", map[string]any{"userId": id}, "followee", fn)
}

func (g graphAPI) Followers(ctx context.Context, id string, fn func([]fedi.Account) error) error {
	return g.pages(ctx, "users/followers", map[string]any{"userId": id}, "follower", fn)
}

func (g graphAPI) Blocks(ctx context.Context, fn func([]fedi.Account) error) error {
	return g.pages(ctx, "blocking/list", nil, "blockee", fn)
}

func (g graphAPI) Mutes(ctx context.Context, fn func([]fedi.Account) error) error {
	return g.pages(ctx, "mute/list", nil, "mutee", fn)
}

// errNoDomainBlocks is how migrate hears that a server has no user-level
// domain blocks: a 404 without a message.
var errNoDomainBlocks = &fedi.APIError{Method: http.MethodPost, URL: "(Misskey has no user-level domain blocks)", Status: http.StatusNotFound}

func (g graphAPI) DomainBlocks(ctx context.Context, fn func([]string) error) error {
	return errNoDomainBlocks
}

func (g graphAPI) BlockDomain(ctx context.Context, domain string, remove bool) error {
	return errNoDomainBlocks
}

func (g graphAPI) ServerImport(ctx context.Context, typ, mode, filename string, data []byte) error {
	return &fedi.APIError{Method: http.MethodPost, URL: "(Misskey's importer takes its own formats)", Status: http.StatusNotFound}
}

func (g graphAPI) noteRef(n mk.Note) fedi.StatusRef {
	uri := mk.Str(n.URI)
	if uri == "" {
		uri = g.c.Base().JoinPath("notes", n.ID).String()
	}
	return fedi.StatusRef{ID: n.ID, URI: uri, URL: mk.Str(n.URL)}
}

func (g graphAPI) Bookmarks(ctx context.Context, fn func([]fedi.StatusRef) error) error {
	until := ""
	for {
		p := map[string]any{"limit": pageSize}
		if until != "" {
			p["untilId"] = until
		}
		var favs []struct {
			ID   string  `json:"id"`
			Note mk.Note `json:"note"`
		}
		if err := g.call(ctx, "i/favorites", p, &favs, false); err != nil {
			return err
		}
		if len(favs) == 0 {
			return nil
		}
		var refs []fedi.StatusRef
		for _, f := range favs {
			until = f.ID
			refs = append(refs, g.noteRef(f.Note))
		}
		if err := fn(refs); err != nil {
			return err
		}
		if len(favs) < pageSize {
			return nil
		}
	}
}

func (g graphAPI) ResolveStatus(ctx context.Context, uri string) (fedi.StatusRef, error) {
	var out struct {
		Type   string  `json:"type"`
		Object mk.Note `json:"object"`
	}
	if err := g.call(ctx, "ap/show", map[string]string{"uri": uri}, &out, false); err != nil {
		return fedi.StatusRef{}, err
	}
	if out.Type != "Note" || out.Object.ID == "" {
		return fedi.StatusRef{}, &fedi.APIError{Method: http.MethodPost, URL: "/api/ap/show", Status: http.StatusNotFound, Message: uri + " is not a note"}
	}
	return g.noteRef(out.Object), nil
}

func (g graphAPI) StatusAction(ctx context.Context, id, action string) (fedi.StatusRef, error) {
	var err error
	switch action {
	case "bookmark":
		err = g.call(ctx, "notes/favorites/create", map[string]string{"noteId": id}, nil, true)
		if isCode(err, "ALREADY_FAVORITED") {
			err = nil
		}
	case "unbookmark":
		err = g.call(ctx, "notes/favorites/delete", map[string]string{"noteId": id}, nil, true)
		if isCode(err, "NOT_FAVORITED") {
			err = nil
		}
	default:
		return fedi.StatusRef{}, fmt.Errorf("misskey: no status action %q", action)
	}
	return fedi.StatusRef{ID: id}, err
}

// isCode reports whether err, restated by fediErr, carried Misskey's code.
func isCode(err error, code string) bool {
	var ae *fedi.APIError
	return errors.As(err, &ae) && strings.HasPrefix(ae.Message, code+":")
}

func (g graphAPI) Bookmarked(ctx context.Context, id string) (bool, error) {
	var st struct {
		IsFavorited bool `json:"isFavorited"`
	}
	err := g.call(ctx, "notes/state", map[string]string{"noteId": id}, &st, false)
	return st.IsFavorited, err
}

// ResolveAccount finds user@host with users/show (Misskey resolves a
// remote user through WebFinger when it does not know it yet).
func (g graphAPI) ResolveAccount(ctx context.Context, acct string) (fedi.Account, error) {
	acct = strings.TrimPrefix(strings.TrimSpace(acct), "@")
	user, host, _ := strings.Cut(acct, "@")
	p := map[string]any{"username": user}
	if host != "" && !strings.EqualFold(host, g.Host()) {
		p["host"] = host
	} else {
		p["host"] = nil
	}
	var u mk.User
	if err := g.call(ctx, "users/show", p, &u, false); err != nil {
		return fedi.Account{}, err
	}
	return account(u), nil
}

type relation struct {
	ID            string `json:"id"`
	IsFollowing   bool   `json:"isFollowing"`
	HasPending    bool   `json:"hasPendingFollowRequestFromYou"`
	IsBlocking    bool   `json:"isBlocking"`
	IsMuted       bool   `json:"isMuted"`
	IsRenoteMuted bool   `json:"isRenoteMuted"`
	// Following is the follow record, null when not following; a
	// follow's notify and withReplies live only here, not at the top
	// level (checked against Misskey 2025.4.x, MisskeyIO fork, on
	// loopback).
	Following *struct {
		Notify      string `json:"notify"`
		WithReplies bool   `json:"withReplies"`
	} `json:"following"`
}

func (r relation) fedi() fedi.Relationship {
	return fedi.Relationship{ID: r.ID, Following: r.IsFollowing, Requested: r.HasPending, ShowingReblogs: !r.IsRenoteMuted,
		Notifying: r.Following != nil && r.Following.Notify == "normal", Blocking: r.IsBlocking, Muting: r.IsMuted, MutingNotifications: r.IsMuted}
}

func (g graphAPI) Relationships(ctx context.Context, ids []string) ([]fedi.Relationship, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rs, err := g.relations(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]fedi.Relationship, len(rs))
	for i, r := range rs {
		out[i] = r.fedi()
	}
	return out, nil
}

func (g graphAPI) relationship(ctx context.Context, id string) (fedi.Relationship, error) {
	r, err := g.relation(ctx, id)
	return r.fedi(), err
}

// acceptWait is how long Follow waits for a remote server to accept a
// follow whose notify must be set; a variable for tests.
var acceptWait = 15 * time.Second

// awaitAccept polls the relation to id until the pending follow request
// r describes is accepted or refused, or acceptWait passes, and returns
// the last relation read.
func (g graphAPI) awaitAccept(ctx context.Context, id string, r relation) (relation, error) {
	deadline := time.Now().Add(acceptWait)
	for r.HasPending && !r.IsFollowing && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		var err error
		if r, err = g.relation(ctx, id); err != nil {
			return r, err
		}
	}
	return r, nil
}

// relations reads the account's relations to ids (users/relation, which
// answers a list for a list).
func (g graphAPI) relations(ctx context.Context, ids []string) ([]relation, error) {
	var rs []relation
	err := g.call(ctx, "users/relation", map[string]any{"userId": ids}, &rs, false)
	return rs, err
}

// relation reads the account's relation to id.
func (g graphAPI) relation(ctx context.Context, id string) (relation, error) {
	rs, err := g.relations(ctx, []string{id})
	if err != nil {
		return relation{}, err
	}
	if len(rs) == 0 {
		return relation{}, fmt.Errorf("no relation to %s", id)
	}
	return rs[0], nil
}

// Follow follows id (or keeps following) and sets what o asks: notify
// through following/update, boosts through a renote mute, each only when
// the relation differs (graph writes have hourly limits). A follow of a
// remote user is a request until that user's server accepts it
// (UserFollowingService.follow: local → remote always requests first);
// Misskey keeps notify only on an accepted follow, so when notify is
// asked for Follow waits up to acceptWait for the Accept; a request still
// pending then is returned as Requested without it.
func (g graphAPI) Follow(ctx context.Context, id string, o fedi.FollowOptions) (fedi.Relationship, error) {
	err := g.c.Call(ctx, "following/create", map[string]string{"userId": id}, nil, true)
	if err != nil && !mk.IsCode(err, "ALREADY_FOLLOWING") {
		return fedi.Relationship{}, fediErr(err)
	}
	r, err := g.relation(ctx, id)
	if err != nil {
		return fedi.Relationship{}, err
	}
	if o.Notify != nil && *o.Notify && r.HasPending && !r.IsFollowing {
		// Notify can only be set on the follow: give the remote server
		// a moment to accept (an unlocked account's server answers
		// within seconds).
		if r, err = g.awaitAccept(ctx, id, r); err != nil {
			return fedi.Relationship{}, err
		}
	}
	changed := false
	if o.Notify != nil && r.IsFollowing && r.Following != nil && (r.Following.Notify == "normal") != *o.Notify {
		notify := "none"
		if *o.Notify {
			notify = "normal"
		}
		if err := g.call(ctx, "following/update", map[string]string{"userId": id, "notify": notify}, nil, true); err != nil {
			return fedi.Relationship{}, err
		}
		changed = true
	}
	if o.Reblogs != nil && *o.Reblogs == r.IsRenoteMuted {
		if *o.Reblogs {
			err = g.c.Call(ctx, "renote-mute/delete", map[string]string{"userId": id}, nil, true)
			if ignore(err, "NOT_MUTING") {
				err = nil
			}
		} else {
			err = g.c.Call(ctx, "renote-mute/create", map[string]string{"userId": id}, nil, true)
			if ignore(err, "ALREADY_MUTING") {
				err = nil
			}
		}
		if err != nil {
			return fedi.Relationship{}, fediErr(err)
		}
		changed = true
	}
	if changed {
		if r, err = g.relation(ctx, id); err != nil {
			return fedi.Relationship{}, err
		}
	}
	return r.fedi(), nil
}

func (g graphAPI) AccountAction(ctx context.Context, id, action string) (fedi.Relationship, error) {
	endpoint := map[string][2]string{
		"block":    {"blocking/create", "ALREADY_BLOCKING"},
		"unblock":  {"blocking/delete", "NOT_BLOCKING"},
		"unfollow": {"following/delete", "NOT_FOLLOWING"},
		"unmute":   {"mute/delete", "NOT_MUTING"},
	}[action]
	if endpoint[0] == "" {
		return fedi.Relationship{}, fmt.Errorf("misskey: no account action %q", action)
	}
	err := g.c.Call(ctx, endpoint[0], map[string]string{"userId": id}, nil, true)
	if err != nil && !ignore(err, endpoint[1]) {
		return fedi.Relationship{}, fediErr(err)
	}
	return g.relationship(ctx, id)
}

// Mute mutes id. Misskey's mutes always hide notifications: notifications
// cannot be kept.
func (g graphAPI) Mute(ctx context.Context, id string, notifications bool) (fedi.Relationship, error) {
	err := g.c.Call(ctx, "mute/create", map[string]string{"userId": id}, nil, true)
	if err != nil && !ignore(err, "ALREADY_MUTING") {
		return fedi.Relationship{}, fediErr(err)
	}
	return g.relationship(ctx, id)
}

type userList struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	UserIDs []string `json:"userIds"`
}

func (g graphAPI) Lists(ctx context.Context) ([]fedi.List, error) {
	var ls []userList
	if err := g.call(ctx, "users/lists/list", nil, &ls, false); err != nil {
		return nil, err
	}
	out := make([]fedi.List, len(ls))
	for i, l := range ls {
		out[i] = fedi.List{ID: l.ID, Title: l.Name}
	}
	return out, nil
}

func (g graphAPI) ListMembers(ctx context.Context, id string, fn func([]fedi.Account) error) error {
	var l userList
	if err := g.call(ctx, "users/lists/show", map[string]string{"listId": id}, &l, false); err != nil {
		return err
	}
	for i := 0; i < len(l.UserIDs); i += pageSize {
		ids := l.UserIDs[i:min(i+pageSize, len(l.UserIDs))]
		var us []mk.User
		if err := g.call(ctx, "users/show", map[string]any{"userIds": ids}, &us, false); err != nil {
			return err
		}
		accts := make([]fedi.Account, len(us))
		for j, u := range us {
			accts[j] = account(u)
		}
		if err := fn(accts); err != nil {
			return err
		}
	}
	return nil
}

func (g graphAPI) CreateList(ctx context.Context, title string) (fedi.List, error) {
	var l userList
	if err := g.call(ctx, "users/lists/create", map[string]string{"name": title}, &l, true); err != nil {
		return fedi.List{}, err
	}
	return fedi.List{ID: l.ID, Title: l.Name}, nil
}

func (g graphAPI) RenameList(ctx context.Context, id, title string) error {
	return g.call(ctx, "users/lists/update", map[string]string{"listId": id, "name": title}, nil, true)
}

func (g graphAPI) ListMember(ctx context.Context, listID, accountID string, remove bool) error {
	endpoint := "users/lists/push"
	if remove {
		endpoint = "users/lists/pull"
	}
	err := g.c.Call(ctx, endpoint, map[string]string{"listId": listID, "userId": accountID}, nil, true)
	if mk.IsCode(err, "ALREADY_ADDED") {
		// migrate reads "already a member" from a 422 saying "already".
		return &fedi.APIError{Method: http.MethodPost, URL: "/api/" + endpoint, Status: http.StatusUnprocessableEntity, Message: "ALREADY_ADDED: already a member"}
	}
	return fediErr(err)
}

// Export exports the account's graph into Mastodon's CSV files.
func (s *Session) Export(ctx context.Context, o migrate.ExportOptions) ([]migrate.ExportResult, error) {
	o.API = graphAPI{s.c}
	return migrate.Export(ctx, o)
}

// ImportFiles imports graph files (Mastodon's CSV files) into the account.
func (s *Session) ImportFiles(ctx context.Context, o migrate.ImportFilesOptions) (migrate.ImportFilesResult, error) {
	o.API = graphAPI{s.c}
	if o.Account == "" {
		o.Account = s.acct.Handle
	}
	if o.Software == "" {
		o.Software = s.acct.Software
	}
	return migrate.ImportFiles(ctx, o)
}

var (
	_ migrate.API          = graphAPI{}
	_ platform.GraphPorter = (*Session)(nil)
)
