package fakemisskey

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// The social graph: endpoints/users/show.ts, users/relation.ts,
// following/create.ts, following/delete.ts, following/update.ts,
// users/following.ts, users/followers.ts, blocking/{create,delete,list}.ts,
// mute/{create,delete,list}.ts, renote-mute/{create,delete,list}.ts,
// users/lists/{create,list,show,update,delete,push,pull}.ts. Every
// account is local and unlocked, so a follow is accepted at once.

// relation is one edge of the graph: a follow, block, mute or renote
// mute, with the record's own ID (what the list endpoints page by).
type relation struct {
	ID, From, To string
	Notify       string // follows: "normal" or "none"
	WithReplies  bool
	CreatedAt    time.Time
}

type userList struct {
	ID, UserID, Name string
	Members          []string
	CreatedAt        time.Time
}

// Errors of the graph endpoints (their meta.errors; an error code's id
// differs from endpoint to endpoint in Misskey, these are the create
// endpoints' where both exist).
var (
	errNoSuchUserShow = apiError{404, "No such user.", "NO_SUCH_USER", "4362f8dc-731f-4ad8-a694-be5a88922a24", "client", nil}
	// users/show of a remote user whose server cannot be reached.
	errFailedToResolve = apiError{500, "Failed to resolve remote user.", "FAILED_TO_RESOLVE_REMOTE_USER", "ef7b9be4-9cba-4e6f-ab41-90ed171c7d3c", "server", nil}
	// renote-mute/{create,delete}.ts have their own ids.
	errAlreadyRenoteMuting = apiError{400, "You are already muting that user.", "ALREADY_MUTING", "ccfecbe4-1f1c-4fc2-8a3d-c3ffee61cb7b", "client", nil}
	errNotRenoteMuting     = apiError{400, "You are not muting that user.", "NOT_MUTING", "2e4ef874-8bf0-4b4b-b069-4598f6d05817", "client", nil}
	errNoSuchUserFollow    = apiError{400, "No such user.", "NO_SUCH_USER", "fcd2eef9-a9b2-4c4f-8624-038099e90aa5", "client", nil}
	errAlreadyFollowing    = apiError{400, "You are already following that user.", "ALREADY_FOLLOWING", "35387507-38c7-4cb9-9197-300b93783fa0", "client", nil}
	errFolloweeIsSelf      = apiError{400, "Followee is yourself.", "FOLLOWEE_IS_YOURSELF", "26fbe7bb-a331-4857-af17-205b426669a9", "client", nil}
	errNotFollowing        = apiError{400, "You are not following that user.", "NOT_FOLLOWING", "5dbf82f5-c92b-40b1-87d1-6c8c0741fd09", "client", nil}
	// following/update.ts has its own id for NOT_FOLLOWING; a pending
	// follow request is not a follow (checked against Misskey 2025.4.x,
	// MisskeyIO fork, on loopback: 400 with this id).
	errNotFollowingUpdate = apiError{400, "You are not following that user.", "NOT_FOLLOWING", "b8dc75cf-1cb5-46c9-b14b-5f1ffbd782c9", "client", nil}
	errAlreadyBlocking    = apiError{400, "You are already blocking that user.", "ALREADY_BLOCKING", "787fed64-acb9-464a-82eb-afbd745b9614", "client", nil}
	errNotBlocking        = apiError{400, "You are not blocking that user.", "NOT_BLOCKING", "291b2efa-60c6-45c0-9f6a-045c8f9b02cd", "client", nil}
	errAlreadyMuting      = apiError{400, "You are already muting that user.", "ALREADY_MUTING", "7e7359cb-160c-4956-b08f-4d1c653cd007", "client", nil}
	errNotMuting          = apiError{400, "You are not muting that user.", "NOT_MUTING", "5467d020-daa9-4553-81e1-135c0c35a96d", "client", nil}
	errMuteeIsSelf        = apiError{400, "Mutee is yourself.", "MUTEE_IS_YOURSELF", "a4619cb2-5f23-484b-9301-94c903074e10", "client", nil}
	errBlockeeIsSelf      = apiError{400, "Blockee is yourself.", "BLOCKEE_IS_YOURSELF", "88b19138-f28d-42c0-8499-6a31bbd0fdc6", "client", nil}
	errNoSuchList         = apiError{400, "No such list.", "NO_SUCH_LIST", "7bc05c21-1d7a-41ae-88f1-66820f4dc686", "client", nil}
	errAlreadyAdded       = apiError{400, "That user has already been added to that list.", "ALREADY_ADDED", "1de7c884-1595-49e9-857e-61f12f4d4fc5", "client", nil}
)

func userParams() map[string]*param { return map[string]*param{"userId": id()} }

var pageParams = map[string]*param{"limit": integer(1, 100), "sinceId": id(), "untilId": id()}

func withPage(ps map[string]*param) map[string]*param {
	out := map[string]*param{}
	for k, v := range pageParams {
		out[k] = v
	}
	for k, v := range ps {
		out[k] = v
	}
	return out
}

func (s *Server) graphEndpoints(eps map[string]endpoint) {
	req := []string{"userId"}
	eps["users/show"] = endpoint{params: schema{props: map[string]*param{"userId": id(), "userIds": arr(id(), 0, 0), "username": str(), "host": nstr()}}, handle: s.usersShow}
	eps["ap/show"] = endpoint{params: schema{props: map[string]*param{"uri": str()}, required: []string{"uri"}}, credential: true, kind: "read:account", handle: s.apShow}
	eps["i/favorites"] = endpoint{params: schema{props: withPage(nil)}, credential: true, kind: "read:favorites", handle: s.iFavorites}
	eps["notes/favorites/create"] = endpoint{params: schema{props: map[string]*param{"noteId": id()}, required: []string{"noteId"}}, credential: true, kind: "write:favorites", handle: s.favorite(false)}
	eps["notes/favorites/delete"] = endpoint{params: schema{props: map[string]*param{"noteId": id()}, required: []string{"noteId"}}, credential: true, kind: "write:favorites", handle: s.favorite(true)}
	eps["notes/state"] = endpoint{params: schema{props: map[string]*param{"noteId": id()}, required: []string{"noteId"}}, credential: true, handle: s.notesState}
	eps["users/relation"] = endpoint{params: schema{props: map[string]*param{"userId": {typ: "any"}}, required: req}, credential: true, handle: s.usersRelation}
	eps["following/create"] = endpoint{params: schema{props: map[string]*param{"userId": id(), "withReplies": boolean()}, required: req}, credential: true, kind: "write:following", handle: s.followingCreate}
	eps["following/delete"] = endpoint{params: schema{props: userParams(), required: req}, credential: true, kind: "write:following", handle: s.followingDelete}
	eps["following/update"] = endpoint{params: schema{props: map[string]*param{"userId": id(), "notify": enum("normal", "none"), "withReplies": boolean()}, required: req}, credential: true, kind: "write:following", handle: s.followingUpdate}
	eps["users/following"] = endpoint{params: schema{props: withPage(map[string]*param{"userId": id(), "username": str(), "host": nstr()})}, handle: s.usersFollowing}
	eps["users/followers"] = endpoint{params: schema{props: withPage(map[string]*param{"userId": id(), "username": str(), "host": nstr()})}, handle: s.usersFollowers}
	for _, kind := range []string{"blocking", "mute", "renote-mute"} {
		perm := map[string]string{"blocking": "blocks", "mute": "mutes", "renote-mute": "mutes"}[kind]
		create := userParams()
		if kind == "mute" {
			create["expiresAt"] = &param{typ: "integer", nullable: true}
		}
		eps[kind+"/create"] = endpoint{params: schema{props: create, required: req}, credential: true, kind: "write:" + perm, handle: s.edgeCreate(kind)}
		eps[kind+"/delete"] = endpoint{params: schema{props: userParams(), required: req}, credential: true, kind: "write:" + perm, handle: s.edgeDelete(kind)}
		eps[kind+"/list"] = endpoint{params: schema{props: withPage(nil)}, credential: true, kind: "read:" + perm, handle: s.edgeList(kind)}
	}
	listID := map[string]*param{"listId": id()}
	eps["users/lists/create"] = endpoint{params: schema{props: map[string]*param{"name": maxLen(minLen(str(), 1), 100)}, required: []string{"name"}}, credential: true, kind: "write:account", handle: s.listCreate}
	eps["users/lists/list"] = endpoint{params: schema{props: map[string]*param{"userId": id()}}, credential: true, kind: "read:account", handle: s.listList}
	eps["users/lists/show"] = endpoint{params: schema{props: map[string]*param{"listId": id(), "forPublic": boolean()}, required: []string{"listId"}}, credential: true, kind: "read:account", handle: s.listShow}
	eps["users/lists/update"] = endpoint{params: schema{props: map[string]*param{"listId": id(), "name": maxLen(minLen(str(), 1), 100), "isPublic": boolean()}, required: []string{"listId"}}, credential: true, kind: "write:account", handle: s.listUpdate}
	eps["users/lists/delete"] = endpoint{params: schema{props: listID, required: []string{"listId"}}, credential: true, kind: "write:account", handle: s.listDelete}
	eps["users/lists/push"] = endpoint{params: schema{props: map[string]*param{"listId": id(), "userId": id()}, required: []string{"listId", "userId"}}, credential: true, kind: "write:account", handle: s.listMember(false)}
	eps["users/lists/pull"] = endpoint{params: schema{props: map[string]*param{"listId": id(), "userId": id()}, required: []string{"listId", "userId"}}, credential: true, kind: "write:account", handle: s.listMember(true)}
}

// findUser finds a user by userId or username (+ host: this server's, or
// none).
func (s *Server) findUser(body map[string]any) *user {
	if id := str0(body["userId"]); id != "" {
		return s.users[id]
	}
	name := strings.ToLower(str0(body["username"]))
	host := strings.ToLower(str0(body["host"]))
	if strings.EqualFold(host, s.Host) {
		host = ""
	}
	for _, u := range s.users {
		if strings.ToLower(u.Username) == name && strings.ToLower(u.Host) == host {
			return u
		}
	}
	if host != "" {
		return s.webfinger(name, host)
	}
	return nil
}

// webfinger looks user@host up on its server (RFC 7033) and keeps it as a
// remote user, or returns nil.
func (s *Server) webfinger(name, host string) *user {
	if s.cfg.Federation == nil {
		return nil
	}
	u := url.URL{Scheme: "https", Host: host, Path: "/.well-known/webfinger",
		RawQuery: url.Values{"resource": {"acct:" + name + "@" + host}}.Encode()}
	resp, err := s.cfg.Federation.Get(u.String())
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var jrd struct {
		Subject string
		Links   []struct{ Rel, Type, Href string }
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&jrd) != nil {
		return nil
	}
	actor := ""
	for _, l := range jrd.Links {
		if l.Rel == "self" && strings.Contains(l.Type, "activity+json") {
			actor = l.Href
		}
	}
	if actor == "" {
		return nil
	}
	// The subject's spelling of the name is the account's own.
	if acct, ok := strings.CutPrefix(jrd.Subject, "acct:"); ok {
		if n, _, ok := strings.Cut(acct, "@"); ok {
			name = n
		}
	}
	r := &user{ID: s.newID(), Username: name, Name: name, Host: host, URI: actor, CreatedAt: time.Now()}
	s.users[r.ID] = r
	return r
}

func (s *Server) usersShow(c *call) (any, *apiError) {
	if ids, ok := c.body["userIds"].([]any); ok {
		// Many users: those that exist, in no particular order.
		out := []any{}
		for _, x := range ids {
			if u := s.users[x.(string)]; u != nil {
				out = append(out, s.packUser(u))
			}
		}
		return out, nil
	}
	u := s.findUser(c.body)
	if u == nil {
		// Checked against Misskey 2025.4.x (MisskeyIO fork) on loopback:
		// an unknown local user is 404 NO_SUCH_USER; a remote one whose
		// server does not answer is 500 FAILED_TO_RESOLVE_REMOTE_USER.
		if h := str0(c.body["host"]); h != "" && !strings.EqualFold(h, s.Host) && str0(c.body["userId"]) == "" {
			return nil, &errFailedToResolve
		}
		return nil, &errNoSuchUserShow
	}
	m := s.packUser(u)
	m["alsoKnownAs"] = nilIfNone(u.AlsoKnownAs)
	m["movedTo"] = nilIfEmpty(u.MovedTo)
	if u.Host == "" {
		m["uri"], m["url"] = nil, nil // local users: null (UserEntityService.pack)
	}
	return m, nil
}

func (s *Server) edge(kind, from, to string) *relation {
	for _, r := range s.rels[kind] {
		if r.From == from && r.To == to {
			return r
		}
	}
	return nil
}

func (s *Server) relationOf(me, other string) map[string]any {
	// A follow's own settings (notify, withReplies) are nested inside
	// "following", the Following record, which is null when not
	// following; there are no top-level notify/withReplies keys. Checked
	// against Misskey 2025.4.x (MisskeyIO fork) on loopback.
	var following any
	f := s.edge("following", me, other)
	if f != nil {
		following = map[string]any{"id": f.ID, "createdAt": f.CreatedAt.UTC().Format(time.RFC3339Nano),
			"followeeId": f.To, "followerId": f.From, "notify": f.Notify, "withReplies": f.WithReplies}
	}
	return map[string]any{"id": other, "following": following, "isFollowing": f != nil,
		"hasPendingFollowRequestFromYou": s.edge("follow-request", me, other) != nil,
		"hasPendingFollowRequestToYou":   s.edge("follow-request", other, me) != nil, "isFollowed": s.edge("following", other, me) != nil,
		"isBlocking": s.edge("blocking", me, other) != nil, "isBlocked": s.edge("blocking", other, me) != nil,
		"isMuted": s.edge("mute", me, other) != nil, "isRenoteMuted": s.edge("renote-mute", me, other) != nil}
}

// usersRelation takes userId as one ID or an array of them, and answers
// one relation or an array (users/relation.ts).
func (s *Server) usersRelation(c *call) (any, *apiError) {
	switch v := c.body["userId"].(type) {
	case string:
		if !idFormat.MatchString(v) {
			e := invalid(&invalidParam{"#/properties/userId/anyOf", "must match a schema in anyOf"})
			return nil, &e
		}
		return s.relationOf(c.user.ID, v), nil
	case []any:
		out := []any{}
		for _, x := range v {
			id, ok := x.(string)
			if !ok || !idFormat.MatchString(id) {
				e := invalid(&invalidParam{"#/properties/userId/anyOf", "must match a schema in anyOf"})
				return nil, &e
			}
			out = append(out, s.relationOf(c.user.ID, id))
		}
		return out, nil
	}
	e := invalid(&invalidParam{"#/properties/userId/anyOf", "must match a schema in anyOf"})
	return nil, &e
}

func (s *Server) target(c *call, notFound apiError) (*user, *apiError) {
	u := s.users[str0(c.body["userId"])]
	if u == nil {
		return nil, &notFound
	}
	return u, nil
}

func (s *Server) addEdge(kind, from, to string) *relation {
	r := &relation{ID: s.newID(), From: from, To: to, Notify: "none", CreatedAt: time.Now()}
	s.rels[kind] = append(s.rels[kind], r)
	return r
}

func (s *Server) removeEdge(kind, from, to string) bool {
	for i, r := range s.rels[kind] {
		if r.From == from && r.To == to {
			s.rels[kind] = append(s.rels[kind][:i], s.rels[kind][i+1:]...)
			return true
		}
	}
	return false
}

func (s *Server) followingCreate(c *call) (any, *apiError) {
	u, err := s.target(c, errNoSuchUserFollow)
	if err != nil {
		return nil, err
	}
	if u.ID == c.user.ID {
		return nil, &errFolloweeIsSelf
	}
	if s.edge("following", c.user.ID, u.ID) != nil {
		return nil, &errAlreadyFollowing
	}
	withReplies, _ := c.body["withReplies"].(bool)
	if u.Host != "" {
		// A remote user: a follow request, replacing an earlier one
		// (createFollowRequest deletes old requests first), until the
		// remote server accepts.
		s.removeEdge("follow-request", c.user.ID, u.ID)
		req := s.addEdge("follow-request", c.user.ID, u.ID)
		req.WithReplies = withReplies
		if d := s.cfg.RemoteAccept; d > 0 {
			time.AfterFunc(d, func() { s.accept(req) })
		}
		return s.packUser(u), nil
	}
	r := s.addEdge("following", c.user.ID, u.ID)
	r.WithReplies = withReplies
	return s.packUser(u), nil
}

// accept turns a pending follow request into a follow, as the remote
// server's Accept does (UserFollowingService.acceptFollowRequest).
func (s *Server) accept(req *relation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.edge("follow-request", req.From, req.To) != req {
		return // cancelled or replaced
	}
	s.removeEdge("follow-request", req.From, req.To)
	if s.edge("following", req.From, req.To) == nil {
		r := s.addEdge("following", req.From, req.To)
		r.WithReplies = req.WithReplies
	}
}

func (s *Server) followingDelete(c *call) (any, *apiError) {
	u, err := s.target(c, errNoSuchUserFollow)
	if err != nil {
		return nil, err
	}
	if !s.removeEdge("following", c.user.ID, u.ID) {
		return nil, &errNotFollowing
	}
	return s.packUser(u), nil
}

func (s *Server) followingUpdate(c *call) (any, *apiError) {
	u, err := s.target(c, errNoSuchUserFollow)
	if err != nil {
		return nil, err
	}
	r := s.edge("following", c.user.ID, u.ID)
	if r == nil {
		return nil, &errNotFollowingUpdate
	}
	if v, ok := c.body["notify"].(string); ok {
		r.Notify = v
	}
	if v, ok := c.body["withReplies"].(bool); ok {
		r.WithReplies = v
	}
	return s.packUser(u), nil
}

// page answers a list endpoint: newest first; sinceId alone, oldest first.
func page(rs []*relation, body map[string]any, keep func(*relation) bool) []*relation {
	limit := 10
	if n, ok := body["limit"].(json.Number); ok {
		v, _ := n.Int64()
		limit = int(v)
	}
	since, until := str0(body["sinceId"]), str0(body["untilId"])
	var out []*relation
	for _, r := range rs {
		if keep(r) && (since == "" || r.ID > since) && (until == "" || r.ID < until) {
			out = append(out, r)
		}
	}
	asc := since != "" && until == ""
	sort.Slice(out, func(i, j int) bool {
		if asc {
			return out[i].ID < out[j].ID
		}
		return out[i].ID > out[j].ID
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

func (s *Server) usersFollowing(c *call) (any, *apiError) {
	u := s.findUser(c.body)
	if u == nil {
		return nil, &errNoSuchUserShow
	}
	out := []any{}
	for _, r := range page(s.rels["following"], c.body, func(r *relation) bool { return r.From == u.ID }) {
		out = append(out, map[string]any{"id": r.ID, "createdAt": r.CreatedAt.UTC().Format(time.RFC3339), "followerId": r.From,
			"followeeId": r.To, "followee": s.packUser(s.users[r.To])})
	}
	return out, nil
}

func (s *Server) usersFollowers(c *call) (any, *apiError) {
	u := s.findUser(c.body)
	if u == nil {
		return nil, &errNoSuchUserShow
	}
	out := []any{}
	for _, r := range page(s.rels["following"], c.body, func(r *relation) bool { return r.To == u.ID }) {
		out = append(out, map[string]any{"id": r.ID, "createdAt": r.CreatedAt.UTC().Format(time.RFC3339), "followerId": r.From,
			"followeeId": r.To, "follower": s.packUser(s.users[r.From])})
	}
	return out, nil
}

func (s *Server) edgeCreate(kind string) func(c *call) (any, *apiError) {
	already := map[string]apiError{"blocking": errAlreadyBlocking, "mute": errAlreadyMuting, "renote-mute": errAlreadyRenoteMuting}[kind]
	self := map[string]apiError{"blocking": errBlockeeIsSelf, "mute": errMuteeIsSelf, "renote-mute": errMuteeIsSelf}[kind]
	return func(c *call) (any, *apiError) {
		u, err := s.target(c, errNoSuchUserFollow)
		if err != nil {
			return nil, err
		}
		if u.ID == c.user.ID {
			return nil, &self
		}
		if s.edge(kind, c.user.ID, u.ID) != nil {
			return nil, &already
		}
		s.addEdge(kind, c.user.ID, u.ID)
		if kind == "blocking" {
			// A block ends follows both ways (UserBlockingService).
			s.removeEdge("following", c.user.ID, u.ID)
			s.removeEdge("following", u.ID, c.user.ID)
			s.removeEdge("follow-request", c.user.ID, u.ID)
			s.removeEdge("follow-request", u.ID, c.user.ID)
			// blocking/create.ts answers the blockee, packed: checked
			// against Misskey 2025.4.x (MisskeyIO fork) on loopback.
			return s.packUser(u), nil
		}
		return nil, nil
	}
}

func (s *Server) edgeDelete(kind string) func(c *call) (any, *apiError) {
	not := map[string]apiError{"blocking": errNotBlocking, "mute": errNotMuting, "renote-mute": errNotRenoteMuting}[kind]
	return func(c *call) (any, *apiError) {
		u, err := s.target(c, errNoSuchUserFollow)
		if err != nil {
			return nil, err
		}
		if !s.removeEdge(kind, c.user.ID, u.ID) {
			return nil, &not
		}
		if kind == "blocking" {
			return s.packUser(u), nil
		}
		return nil, nil
	}
}

func (s *Server) edgeList(kind string) func(c *call) (any, *apiError) {
	field := map[string]string{"blocking": "blockee", "mute": "mutee", "renote-mute": "mutee"}[kind]
	return func(c *call) (any, *apiError) {
		out := []any{}
		for _, r := range page(s.rels[kind], c.body, func(r *relation) bool { return r.From == c.user.ID }) {
			m := map[string]any{"id": r.ID, "createdAt": r.CreatedAt.UTC().Format(time.RFC3339), field + "Id": r.To, field: s.packUser(s.users[r.To])}
			if kind == "mute" {
				m["expiresAt"] = nil
			}
			out = append(out, m)
		}
		return out, nil
	}
}

func (s *Server) packList(l *userList) map[string]any {
	return map[string]any{"id": l.ID, "createdAt": l.CreatedAt.UTC().Format(time.RFC3339), "name": l.Name,
		"userIds": append([]string{}, l.Members...), "isPublic": false}
}

func (s *Server) listCreate(c *call) (any, *apiError) {
	l := &userList{ID: s.newID(), UserID: c.user.ID, Name: str0(c.body["name"]), CreatedAt: time.Now()}
	s.lists[l.ID] = l
	return s.packList(l), nil
}

func (s *Server) listList(c *call) (any, *apiError) {
	var ls []*userList
	for _, l := range s.lists {
		if l.UserID == c.user.ID {
			ls = append(ls, l)
		}
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].ID < ls[j].ID })
	out := []any{}
	for _, l := range ls {
		out = append(out, s.packList(l))
	}
	return out, nil
}

func (s *Server) ownList(c *call) (*userList, *apiError) {
	l := s.lists[str0(c.body["listId"])]
	if l == nil || l.UserID != c.user.ID {
		return nil, &errNoSuchList
	}
	return l, nil
}

func (s *Server) listShow(c *call) (any, *apiError) {
	l, err := s.ownList(c)
	if err != nil {
		return nil, err
	}
	return s.packList(l), nil
}

func (s *Server) listUpdate(c *call) (any, *apiError) {
	l, err := s.ownList(c)
	if err != nil {
		return nil, err
	}
	if n := str0(c.body["name"]); n != "" {
		l.Name = n
	}
	return s.packList(l), nil
}

func (s *Server) listDelete(c *call) (any, *apiError) {
	l, err := s.ownList(c)
	if err != nil {
		return nil, err
	}
	delete(s.lists, l.ID)
	return nil, nil
}

func (s *Server) listMember(pull bool) func(c *call) (any, *apiError) {
	return func(c *call) (any, *apiError) {
		l, err := s.ownList(c)
		if err != nil {
			return nil, err
		}
		u, err := s.target(c, errNoSuchUserFollow)
		if err != nil {
			return nil, err
		}
		for i, m := range l.Members {
			if m == u.ID {
				if pull {
					l.Members = append(l.Members[:i], l.Members[i+1:]...)
					return nil, nil
				}
				return nil, &errAlreadyAdded
			}
		}
		if !pull {
			l.Members = append(l.Members, u.ID)
		}
		return nil, nil
	}
}

// Errors of the favourite endpoints (notes/favorites/*.ts, ap/show.ts).
var (
	errNoSuchNoteFav    = apiError{400, "No such note.", "NO_SUCH_NOTE", "6dd26674-e060-4816-909a-45ba3f4da458", "client", nil}
	errAlreadyFavorited = apiError{400, "The note has already been marked as a favorite.", "ALREADY_FAVORITED", "a402c12b-34dd-41d2-97d8-4d2ffd96a1a6", "client", nil}
	errNotFavorited     = apiError{400, "You have not marked that note a favorite.", "NOT_FAVORITED", "b625fc69-635e-45e9-86f4-dbefbef35af5", "client", nil}
	errNoSuchObject     = apiError{400, "No such object.", "NO_SUCH_OBJECT", "dc94d745-1262-4e63-a17d-fecaa57efc82", "client", nil}
	errRequestFailed    = apiError{400, "Request failed.", "REQUEST_FAILED", "81b539cf-4f57-4b29-bc98-032c33c0792e", "client", nil}
	// notes/state.ts uses findOneByOrFail: a missing note is an
	// EntityNotFoundError, which ApiCallService answers as a 500 (checked
	// against Misskey 2025.4.x, MisskeyIO fork, on loopback).
	errInternalNotFound = apiError{500, "Internal error occurred. Please contact us if the error persists.", "INTERNAL_ERROR", "5d37dbcb-891e-41ca-a3d6-e690c97775ac", "server",
		map[string]any{"message": "Could not find any entity of type \"MiNote\" matching: {}", "code": "EntityNotFoundError", "id": "00000000-0000-4000-8000-000000000000"}}
)

// apShow resolves a URI the way ap/show.ts does, for this server's own
// notes (https://host/notes/<id>) and users (https://host/users/<id>);
// other servers' objects would be fetched over ActivityPub, and none exist
// here.
func (s *Server) apShow(c *call) (any, *apiError) {
	uri := str0(c.body["uri"])
	if rest, ok := strings.CutPrefix(uri, s.URL+"/notes/"); ok {
		if n := s.notes[rest]; n != nil && s.visibleTo(n, c.user) {
			return map[string]any{"type": "Note", "object": s.packNote(n, 0)}, nil
		}
	}
	if rest, ok := strings.CutPrefix(uri, s.URL+"/users/"); ok {
		if u := s.users[rest]; u != nil {
			return map[string]any{"type": "User", "object": s.packUser(u)}, nil
		}
	}
	if !strings.HasPrefix(uri, s.URL+"/") {
		// Another server's object: the fake fetches none, as if its
		// server could not be reached, which Misskey answers
		// REQUEST_FAILED (checked against Misskey 2025.4.x, MisskeyIO
		// fork, on loopback).
		return nil, &errRequestFailed
	}
	return nil, &errNoSuchObject
}

func (s *Server) iFavorites(c *call) (any, *apiError) {
	out := []any{}
	for _, r := range page(s.rels["favorite"], c.body, func(r *relation) bool { return r.From == c.user.ID }) {
		if n := s.notes[r.To]; n != nil {
			out = append(out, map[string]any{"id": r.ID, "createdAt": r.CreatedAt.UTC().Format(time.RFC3339), "noteId": r.To, "note": s.packNote(n, 0)})
		}
	}
	return out, nil
}

func (s *Server) favorite(remove bool) func(c *call) (any, *apiError) {
	return func(c *call) (any, *apiError) {
		n := s.notes[str0(c.body["noteId"])]
		if n == nil || !s.visibleTo(n, c.user) {
			return nil, &errNoSuchNoteFav
		}
		has := s.edge("favorite", c.user.ID, n.ID) != nil
		switch {
		case remove && !has:
			return nil, &errNotFavorited
		case remove:
			s.removeEdge("favorite", c.user.ID, n.ID)
		case has:
			return nil, &errAlreadyFavorited
		default:
			s.addEdge("favorite", c.user.ID, n.ID)
		}
		return nil, nil
	}
}

func (s *Server) notesState(c *call) (any, *apiError) {
	n := s.notes[str0(c.body["noteId"])]
	if n == nil {
		return nil, &errInternalNotFound
	}
	return map[string]any{"isFavorited": s.edge("favorite", c.user.ID, n.ID) != nil, "isMutedThread": false}, nil
}
