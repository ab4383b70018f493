// Package fakemastodon imitates a server that speaks the Mastodon client
// API, for tests of behaviour that the real GoToSocial used by ferry's
// end-to-end tests does not show: the servers in issue 16 (snac2 2.94 and
// Hollo 0.10.0) cannot run on the test machines, so their deviations from
// the API are reproduced here as switchable Quirks. Without quirks the
// server follows the Mastodon API documentation as strictly as ferry needs:
// every API call but nodeinfo and the instance needs a bearer token, an
// unknown id is a 404 with a JSON error, bad input is a 422
// (https://docs.joinmastodon.org/client/intro/ and
// https://docs.joinmastodon.org/entities/Error/).
//
// It serves on loopback through net/http/httptest; tests insert accounts
// and tokens directly (AddAccount) instead of going through OAuth.
package fakemastodon

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Quirks switch on deviations from the Mastodon API seen on real servers
// (issue 16). The zero value is a server that follows the documentation.
type Quirks struct {
	// NoLinkHeader: an account's statuses come without a Link header,
	// although max_id, since_id and min_id are honoured (snac2 2.94).
	NoLinkHeader bool
	// IDChangesOnEdit: a status ID embeds the second of the status's last
	// change (snac2 2.94), so an edit gives the status a new ID (the old
	// one answers 404), and statuses made in the same second are ordered
	// by a hash, not by time. created_at is kept to the second, as snac2
	// does, so posts of one second cannot be told apart by time either.
	IDChangesOnEdit bool
	// NoEditedAt: statuses never carry edited_at, edits included (Hollo
	// 0.10.0).
	NoEditedAt bool
	// NoStreaming: /api/v1/streaming answers 404 although the instance
	// advertises a streaming URL (snac2 2.94, Hollo 0.10.0).
	NoStreaming bool
	// StubBlocksMutes: /api/v1/blocks and /api/v1/mutes always answer []
	// while relationships show blocking and muting (snac2 2.94).
	StubBlocksMutes bool
	// ListIDsBySecond: a list's ID is the second it was created in, so a
	// second list created in the same second gets the same ID and renames
	// the first (snac2 2.94).
	ListIDsBySecond bool
	// MissingEndpoints are API paths (an exact path, or a prefix ending in
	// "/") the server does not have: they answer 404 with an HTML page, as
	// snac2 2.94 does for the mute API.
	MissingEndpoints []string
	// FollowSettingsIgnored: follow accepts reblogs, notify and languages
	// but ignores them; relationships show the defaults (snac2 2.94).
	FollowSettingsIgnored bool
	// HiddenPrivatePosts: followers-only and direct statuses are missing
	// from the account's own statuses list, even for its owner (snac2
	// 2.94); GET /api/v1/statuses/:id still returns them.
	HiddenPrivatePosts bool
}

// Config configures a Server. Zero fields take Mastodon's defaults.
type Config struct {
	Software string // nodeinfo software.name; "" means "mastodon"
	Version  string // nodeinfo software.version; "" means "4.3.0"
	// Instance limits published in /api/v1/instance and /api/v2/instance
	// (https://docs.joinmastodon.org/entities/Instance/#configuration).
	MaxCharacters       int   // statuses.max_characters; 0 means 500
	MaxMediaAttachments int   // statuses.max_media_attachments; 0 means 4
	ImageSizeLimit      int64 // media_attachments.image_size_limit; 0 means 16 MiB
	VideoSizeLimit      int64 // media_attachments.video_size_limit; 0 means 99 MiB
	PollMaxOptions      int   // polls.max_options; 0 means 4
	// Now is the server's clock; nil means time.Now. Tests set it to make
	// statuses in the same second.
	Now    func() time.Time
	Quirks Quirks
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the server's base URL (http://127.0.0.1:port).
	URL string
	// Host is the host part of URL, the server's domain in handles.
	Host string

	cfg Config
	ts  *httptest.Server

	mu        sync.Mutex
	seq       int64
	accounts  map[string]*account // by id
	tokens    map[string]string   // token -> account id
	statuses  map[string]*status  // by current id
	media     map[string]*mediaAtt
	lists     map[string]*list
	listOrder []string
	streams   map[*streamConn]bool
}

type account struct {
	ID, Username string
	CreatedAt    time.Time
	rels         map[string]*relationship // by target id
	bookmarks    []string                 // status uris, newest last
	favourites   []string                 // status uris, newest last
	statuses     int                      // how many statuses it has, kept as they come and go
}

type relationship struct {
	Following, ShowingReblogs, Notifying, Blocking, Muting, MutingNotifications bool
	Languages                                                                   []string
}

type status struct {
	ID, URI, AccountID, InReplyTo, Text, Spoiler, Visibility, Language string
	Sensitive                                                          bool
	CreatedAt                                                          time.Time
	EditedAt                                                           *time.Time
	Media                                                              []string
	Poll                                                               *poll
	seq                                                                int64 // creation order, for ties
}

type poll struct {
	ID        string
	Options   []string
	Multiple  bool
	ExpiresAt time.Time
}

type mediaAtt struct {
	ID, AccountID, Type, Description, Focus string
	Size                                    int
	Used                                    bool
}

type list struct {
	ID, Title, Owner string
	Members          []string
}

// Start starts a fake server on loopback; Close stops it.
func Start(cfg Config) *Server {
	if cfg.Software == "" {
		cfg.Software = "mastodon"
	}
	if cfg.Version == "" {
		cfg.Version = "4.3.0"
	}
	if cfg.MaxCharacters == 0 {
		cfg.MaxCharacters = 500
	}
	if cfg.MaxMediaAttachments == 0 {
		cfg.MaxMediaAttachments = 4
	}
	if cfg.ImageSizeLimit == 0 {
		cfg.ImageSizeLimit = 16 << 20
	}
	if cfg.VideoSizeLimit == 0 {
		cfg.VideoSizeLimit = 99 << 20
	}
	if cfg.PollMaxOptions == 0 {
		cfg.PollMaxOptions = 4
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		cfg:      cfg,
		accounts: map[string]*account{},
		tokens:   map[string]string{},
		statuses: map[string]*status{},
		media:    map[string]*mediaAtt{},
		lists:    map[string]*list{},
		streams:  map[*streamConn]bool{},
	}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.ts.URL
	u, _ := url.Parse(s.ts.URL)
	s.Host = u.Host
	return s
}

// Close stops the server and ends its streams.
func (s *Server) Close() {
	s.mu.Lock()
	for c := range s.streams {
		c.conn.Close()
	}
	s.mu.Unlock()
	s.ts.CloseClientConnections()
	s.ts.Close()
}

// AddAccount creates a local account and returns its id and a bearer token
// for it.
func (s *Server) AddAccount(username string) (id, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id = strconv.FormatInt(100+s.seq, 10)
	s.accounts[id] = &account{ID: id, Username: username, CreatedAt: s.cfg.Now().UTC(), rels: map[string]*relationship{}}
	token = fmt.Sprintf("token-%s-%d", username, s.seq)
	s.tokens[token] = id
	return id, token
}

// StatusURI returns the ActivityPub id of the status with the current id,
// or "" when there is none.
func (s *Server) StatusURI(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.statuses[id]; st != nil {
		return st.URI
	}
	return ""
}

// CurrentID returns the current id of the status whose ActivityPub id is
// uri (it changes on edit with IDChangesOnEdit), or "" when it is gone.
func (s *Server) CurrentID(uri string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, st := range s.statuses {
		if st.URI == uri {
			return id
		}
	}
	return ""
}

func (s *Server) now() time.Time { return s.cfg.Now().UTC() }

// newStatusID makes a status id. Normally it is a Mastodon-like snowflake
// (milliseconds and a sequence: sorts by creation). With IDChangesOnEdit it
// is the second of the change followed by a hash of the status's URI, so
// ids within one second sort in no particular order.
func (s *Server) newStatusID(uri string, at time.Time) string {
	s.seq++
	if s.cfg.Quirks.IDChangesOnEdit {
		h := fnv.New32a()
		io.WriteString(h, uri)
		return fmt.Sprintf("%d%06d", at.Unix(), h.Sum32()%1000000)
	}
	return strconv.FormatInt(at.UnixMilli()<<16|s.seq&0xffff, 10)
}

// idLess orders numeric ids of any length.
func idLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func (s *Server) missing(path string) bool {
	for _, p := range s.cfg.Quirks.MissingEndpoints {
		if path == p || strings.HasSuffix(p, "/") && strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// writeJSON answers v as JSON with code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError answers a Mastodon Error entity
// (https://docs.joinmastodon.org/entities/Error/).
func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func notFound(w http.ResponseWriter) { apiError(w, http.StatusNotFound, "Record not found") }

func htmlNotFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	io.WriteString(w, "<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1></body></html>\n")
}

// params merges the query, a form body and a JSON body into form-style
// values: JSON arrays become "key[]" and "key", objects "key[sub]", as
// Mastodon (Rails) reads them.
func params(r *http.Request) (url.Values, error) {
	v := url.Values{}
	for k, vs := range r.URL.Query() {
		v[k] = append(v[k], vs...)
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/json":
		var body map[string]any
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil && err != io.EOF {
			return nil, err
		}
		flatten(v, "", body)
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		for k, vs := range r.PostForm {
			v[k] = append(v[k], vs...)
		}
	case "multipart/form-data":
		if err := r.ParseMultipartForm(200 << 20); err != nil {
			return nil, err
		}
		for k, vs := range r.MultipartForm.Value {
			v[k] = append(v[k], vs...)
		}
	}
	return v, nil
}

func flatten(v url.Values, prefix string, m map[string]any) {
	for k, x := range m {
		key := k
		if prefix != "" {
			key = prefix + "[" + k + "]"
		}
		switch x := x.(type) {
		case map[string]any:
			flatten(v, key, x)
		case []any:
			for _, e := range x {
				v.Add(key+"[]", scalar(e))
			}
		case nil:
		default:
			v.Set(key, scalar(x))
		}
	}
}

func scalar(x any) string {
	switch x := x.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	b, _ := json.Marshal(x)
	return string(b)
}

// list returns the values of an array parameter sent as "key[]" or "key".
func listParam(v url.Values, key string) []string {
	if vs := v[key+"[]"]; len(vs) > 0 {
		return vs
	}
	return v[key]
}

func boolParam(v url.Values, key string, def bool) bool {
	s := v.Get(key)
	if s == "" {
		return def
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return def
	}
	return b
}

// serve routes a request. Paths follow https://docs.joinmastodon.org/methods/.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if s.missing(path) {
		htmlNotFound(w)
		return
	}
	switch path {
	case "/.well-known/nodeinfo":
		writeJSON(w, 200, map[string]any{"links": []map[string]string{
			{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": s.URL + "/nodeinfo/2.0"},
		}})
		return
	case "/nodeinfo/2.0", "/nodeinfo/2.1":
		writeJSON(w, 200, map[string]any{"version": strings.TrimPrefix(path, "/nodeinfo/"),
			"software":  map[string]string{"name": s.cfg.Software, "version": s.cfg.Version},
			"protocols": []string{"activitypub"}, "openRegistrations": false,
			"usage": map[string]any{"users": map[string]int{"total": len(s.accounts)}}})
		return
	case "/api/v1/instance", "/api/v2/instance":
		s.instance(w, path == "/api/v2/instance")
		return
	}
	if strings.HasPrefix(path, "/media/") {
		w.Header().Set("Content-Type", "image/png")
		io.WriteString(w, "\x89PNG\r\n\x1a\n")
		return
	}
	if !strings.HasPrefix(path, "/api/") {
		htmlNotFound(w)
		return
	}
	me := s.auth(r)
	if me == "" {
		apiError(w, http.StatusUnauthorized, "The access token is invalid")
		return
	}
	if path == "/api/v1/streaming" {
		s.stream(w, r, me)
		return
	}
	v, err := params(r)
	if err != nil {
		apiError(w, http.StatusUnprocessableEntity, "Validation failed: bad request body")
		return
	}
	seg := strings.Split(strings.Trim(path, "/"), "/")[2:] // after api/vN
	version := strings.Split(strings.Trim(path, "/"), "/")[1]
	s.mu.Lock()
	code, body, link := s.route(r.Method, version, seg, v, me, r)
	s.mu.Unlock()
	if link != "" {
		w.Header().Set("Link", link)
	}
	if code == 0 {
		htmlNotFound(w)
		return
	}
	writeJSON(w, code, body)
}

func (s *Server) auth(r *http.Request) string {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens[tok]
}

// instance answers the Instance entity, v1 or v2
// (https://docs.joinmastodon.org/methods/instance/).
func (s *Server) instance(w http.ResponseWriter, v2 bool) {
	conf := map[string]any{
		"statuses": map[string]int{"max_characters": s.cfg.MaxCharacters, "max_media_attachments": s.cfg.MaxMediaAttachments,
			"characters_reserved_per_url": 23},
		"media_attachments": map[string]any{"supported_mime_types": []string{"image/png", "image/jpeg", "image/gif", "video/mp4"},
			"image_size_limit": s.cfg.ImageSizeLimit, "video_size_limit": s.cfg.VideoSizeLimit, "description_limit": 1500},
		"polls": map[string]int{"max_options": s.cfg.PollMaxOptions, "max_characters_per_option": 50,
			"min_expiration": 300, "max_expiration": 2629746},
	}
	wsURL := "ws://" + s.Host
	if v2 {
		writeJSON(w, 200, map[string]any{"domain": s.Host, "title": "fake " + s.cfg.Software, "version": s.cfg.Version,
			"configuration": map[string]any{"urls": map[string]string{"streaming": wsURL},
				"statuses": conf["statuses"], "media_attachments": conf["media_attachments"], "polls": conf["polls"]}})
		return
	}
	writeJSON(w, 200, map[string]any{"uri": s.Host, "title": "fake " + s.cfg.Software, "version": s.cfg.Version,
		"urls": map[string]string{"streaming_api": wsURL}, "configuration": conf})
}

// route answers an authenticated API call under the server lock: the HTTP
// status (0 = no such endpoint), the JSON body and a Link header.
func (s *Server) route(method, version string, seg []string, v url.Values, me string, r *http.Request) (int, any, string) {
	n := len(seg)
	at := func(i int) string {
		if i < n {
			return seg[i]
		}
		return ""
	}
	switch {
	case at(0) == "accounts" && at(1) == "verify_credentials" && n == 2 && method == "GET":
		return 200, s.accountJSON(me, true), ""
	case at(0) == "accounts" && at(1) == "relationships" && n == 2 && method == "GET":
		out := []any{}
		for _, id := range listParam(v, "id") {
			if s.accounts[id] != nil {
				out = append(out, s.relJSON(me, id))
			}
		}
		return 200, out, ""
	case at(0) == "accounts" && at(1) == "lookup" && n == 2 && method == "GET":
		if a := s.byAcct(v.Get("acct")); a != nil {
			return 200, s.accountJSON(a.ID, false), ""
		}
		return 404, map[string]string{"error": "Record not found"}, ""
	case at(0) == "accounts" && n >= 2 && version == "v1":
		return s.accountRoute(method, seg[1], seg[2:], v, me)
	case at(0) == "statuses" && n == 1 && method == "POST" && version == "v1":
		return s.createStatus(me, v)
	case at(0) == "statuses" && n >= 2 && version == "v1":
		return s.statusRoute(method, seg[1], seg[2:], v, me)
	case at(0) == "media" && n == 1 && method == "POST":
		return s.upload(me, v, r)
	case at(0) == "media" && n == 2 && version == "v1":
		return s.mediaRoute(method, seg[1], v, me)
	case at(0) == "blocks" && n == 1 && method == "GET" && version == "v1":
		return s.relList(me, func(r *relationship) bool { return r.Blocking }, s.cfg.Quirks.StubBlocksMutes)
	case at(0) == "mutes" && n == 1 && method == "GET" && version == "v1":
		return s.relList(me, func(r *relationship) bool { return r.Muting }, s.cfg.Quirks.StubBlocksMutes)
	case (at(0) == "bookmarks" || at(0) == "favourites") && n == 1 && method == "GET" && version == "v1":
		out := []any{}
		bm := s.accounts[me].bookmarks
		if at(0) == "favourites" {
			bm = s.accounts[me].favourites
		}
		for i := len(bm) - 1; i >= 0; i-- {
			if st := s.byURI(bm[i]); st != nil {
				out = append(out, s.statusJSON(st))
			}
		}
		return 200, out, ""
	case at(0) == "lists" && version == "v1":
		return s.listRoute(method, seg[1:], v, me)
	case at(0) == "search" && n == 1 && method == "GET" && version == "v2":
		return s.search(v, me)
	}
	return 0, nil, ""
}

func (s *Server) accountJSON(id string, own bool) map[string]any {
	a := s.accounts[id]
	m := map[string]any{
		"id": a.ID, "username": a.Username, "acct": a.Username, "display_name": a.Username,
		"url": s.URL + "/@" + a.Username, "uri": s.URL + "/users/" + a.Username, "locked": false, "bot": false,
		"created_at": a.CreatedAt.Format(time.RFC3339), "note": "", "avatar": s.URL + "/media/avatar.png",
		"header": s.URL + "/media/header.png", "fields": []any{}, "statuses_count": a.statuses,
		"followers_count": 0, "following_count": 0,
	}
	if own {
		m["source"] = map[string]any{"privacy": "public", "sensitive": false, "language": "", "note": "", "fields": []any{}}
	}
	return m
}

func (s *Server) byAcct(acct string) *account {
	acct = strings.TrimPrefix(acct, "@")
	name, host, _ := strings.Cut(acct, "@")
	if host != "" && host != s.Host {
		return nil
	}
	for _, a := range s.accounts {
		if a.Username == name {
			return a
		}
	}
	return nil
}

func (s *Server) rel(me, id string) *relationship {
	a := s.accounts[me]
	r := a.rels[id]
	if r == nil {
		r = &relationship{}
		a.rels[id] = r
	}
	return r
}

func (s *Server) relJSON(me, id string) map[string]any {
	r := s.rel(me, id)
	langs := r.Languages
	if langs == nil {
		langs = []string{}
	}
	var langsOut any = langs
	if !r.Following {
		langsOut = nil
	}
	return map[string]any{"id": id, "following": r.Following, "showing_reblogs": r.ShowingReblogs, "notifying": r.Notifying,
		"languages": langsOut, "followed_by": false, "blocking": r.Blocking, "blocked_by": false, "muting": r.Muting,
		"muting_notifications": r.MutingNotifications, "requested": false, "domain_blocking": false, "endorsed": false, "note": ""}
}

// accountRoute serves /api/v1/accounts/:id/...
// (https://docs.joinmastodon.org/methods/accounts/).
func (s *Server) accountRoute(method, id string, rest []string, v url.Values, me string) (int, any, string) {
	if s.accounts[id] == nil {
		return 404, map[string]string{"error": "Record not found"}, ""
	}
	if len(rest) == 0 && method == "GET" {
		return 200, s.accountJSON(id, false), ""
	}
	if len(rest) != 1 {
		return 0, nil, ""
	}
	if rest[0] == "statuses" && method == "GET" {
		return s.accountStatuses(id, v, me)
	}
	if (rest[0] == "following" || rest[0] == "followers") && method == "GET" {
		return 200, s.follows(id, rest[0] == "followers"), ""
	}
	if method != "POST" {
		return 0, nil, ""
	}
	if id == me && rest[0] != "unfollow" && rest[0] != "unblock" && rest[0] != "unmute" {
		return 422, map[string]string{"error": "Validation failed: you cannot do this to yourself"}, ""
	}
	r := s.rel(me, id)
	switch rest[0] {
	case "follow":
		if r.Blocking {
			return 422, map[string]string{"error": "Validation failed: unblock first"}, ""
		}
		first := !r.Following
		r.Following = true
		if s.cfg.Quirks.FollowSettingsIgnored {
			r.ShowingReblogs, r.Notifying, r.Languages = true, false, nil
			break
		}
		if first {
			r.ShowingReblogs, r.Notifying, r.Languages = true, false, nil
		}
		r.ShowingReblogs = boolParam(v, "reblogs", r.ShowingReblogs)
		r.Notifying = boolParam(v, "notify", r.Notifying)
		if l := listParam(v, "languages"); l != nil {
			r.Languages = l
		}
	case "unfollow":
		*r = relationship{Blocking: r.Blocking, Muting: r.Muting, MutingNotifications: r.MutingNotifications}
	case "block":
		r.Blocking, r.Following = true, false
	case "unblock":
		r.Blocking = false
	case "mute":
		r.Muting = true
		r.MutingNotifications = boolParam(v, "notifications", true)
	case "unmute":
		r.Muting, r.MutingNotifications = false, false
	default:
		return 0, nil, ""
	}
	return 200, s.relJSON(me, id), ""
}

// follows serves /api/v1/accounts/:id/following and /followers, in one
// page (https://docs.joinmastodon.org/methods/accounts/#following).
func (s *Server) follows(id string, followers bool) []any {
	var ids []string
	if followers {
		for other, a := range s.accounts {
			if r := a.rels[id]; r != nil && r.Following {
				ids = append(ids, other)
			}
		}
	} else {
		for other, r := range s.accounts[id].rels {
			if r.Following {
				ids = append(ids, other)
			}
		}
	}
	sort.Strings(ids)
	out := []any{}
	for _, other := range ids {
		out = append(out, s.accountJSON(other, false))
	}
	return out
}

// relList serves /api/v1/blocks and /api/v1/mutes; stub answers [] (the
// StubBlocksMutes quirk).
func (s *Server) relList(me string, keep func(*relationship) bool, stub bool) (int, any, string) {
	out := []any{}
	if stub {
		return 200, out, ""
	}
	ids := make([]string, 0)
	for id, r := range s.accounts[me].rels {
		if keep(r) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		out = append(out, s.accountJSON(id, false))
	}
	return 200, out, ""
}

// listRoute serves /api/v1/lists (https://docs.joinmastodon.org/methods/lists/).
func (s *Server) listRoute(method string, rest []string, v url.Values, me string) (int, any, string) {
	lj := func(l *list) map[string]any {
		return map[string]any{"id": l.ID, "title": l.Title, "replies_policy": "list", "exclusive": false}
	}
	if len(rest) == 0 {
		switch method {
		case "GET":
			out := []any{}
			for _, id := range s.listOrder {
				if l := s.lists[id]; l != nil && l.Owner == me {
					out = append(out, lj(l))
				}
			}
			return 200, out, ""
		case "POST":
			title := strings.TrimSpace(v.Get("title"))
			if title == "" {
				return 422, map[string]string{"error": "Validation failed: Title can't be blank"}, ""
			}
			s.seq++
			id := strconv.FormatInt(s.seq, 10)
			if s.cfg.Quirks.ListIDsBySecond {
				id = strconv.FormatInt(s.now().Unix(), 10)
			}
			if l := s.lists[id]; l != nil {
				l.Title = title // the same-second list renames the first
				return 200, lj(l), ""
			}
			l := &list{ID: id, Title: title, Owner: me}
			s.lists[id] = l
			s.listOrder = append(s.listOrder, id)
			return 200, lj(l), ""
		}
		return 0, nil, ""
	}
	l := s.lists[rest[0]]
	if l == nil || l.Owner != me {
		return 404, map[string]string{"error": "Record not found"}, ""
	}
	if len(rest) == 1 {
		switch method {
		case "GET":
			return 200, lj(l), ""
		case "PUT":
			if t := strings.TrimSpace(v.Get("title")); t != "" {
				l.Title = t
			}
			return 200, lj(l), ""
		case "DELETE":
			delete(s.lists, l.ID)
			return 200, map[string]any{}, ""
		}
		return 0, nil, ""
	}
	if len(rest) != 2 || rest[1] != "accounts" {
		return 0, nil, ""
	}
	switch method {
	case "GET":
		out := []any{}
		for _, id := range l.Members {
			out = append(out, s.accountJSON(id, false))
		}
		return 200, out, ""
	case "POST":
		for _, id := range listParam(v, "account_ids") {
			if s.accounts[id] == nil {
				return 404, map[string]string{"error": "Record not found"}, ""
			}
			if !s.rel(me, id).Following {
				return 422, map[string]string{"error": "Validation failed: Account must be followed"}, ""
			}
			for _, m := range l.Members {
				if m == id {
					return 422, map[string]string{"error": "Validation failed: Account has already been taken"}, ""
				}
			}
			l.Members = append(l.Members, id)
		}
		return 200, map[string]any{}, ""
	case "DELETE":
		drop := listParam(v, "account_ids")
		var keep []string
		for _, m := range l.Members {
			found := false
			for _, d := range drop {
				found = found || d == m
			}
			if !found {
				keep = append(keep, m)
			}
		}
		l.Members = keep
		return 200, map[string]any{}, ""
	}
	return 0, nil, ""
}

// search serves /api/v2/search with resolve for accounts (a handle) and
// statuses (a URI or URL) (https://docs.joinmastodon.org/methods/search/).
func (s *Server) search(v url.Values, me string) (int, any, string) {
	q := strings.TrimSpace(v.Get("q"))
	if q == "" {
		return 422, map[string]string{"error": "Validation failed: q is missing"}, ""
	}
	out := map[string]any{"accounts": []any{}, "statuses": []any{}, "hashtags": []any{}}
	typ := v.Get("type")
	if typ == "" || typ == "accounts" {
		if a := s.byAcct(q); a != nil {
			out["accounts"] = []any{s.accountJSON(a.ID, false)}
		} else {
			for _, a := range s.accounts {
				if q == s.URL+"/users/"+a.Username || q == s.URL+"/@"+a.Username {
					out["accounts"] = []any{s.accountJSON(a.ID, false)}
				}
			}
		}
	}
	if typ == "" || typ == "statuses" {
		for _, st := range s.statuses {
			if (st.URI == q || s.URL+"/@"+s.accounts[st.AccountID].Username+"/"+st.ID == q) && s.visible(st, me) {
				out["statuses"] = []any{s.statusJSON(st)}
			}
		}
	}
	return 200, out, ""
}
