// Package fakemisskey imitates a Misskey server (and, switchably, its
// fork Sharkey) for ferry's tests: Misskey needs Node, PostgreSQL and Redis
// and a build from its source, which cannot run on the test machines, so
// the parts of its API ferry uses are reproduced here, endpoint by
// endpoint, after Misskey's own definitions in
// https://github.com/misskey-dev/misskey, packages/backend/src/server/api/:
//
//   - ApiCallService.ts: every endpoint is POST /api/<name> with a JSON
//     body (drive/files/create: multipart/form-data); the access token is
//     the body's "i" or an "Authorization: Bearer" header; an unknown token
//     is 401 AUTHENTICATION_FAILED, a missing one 401 CREDENTIAL_REQUIRED,
//     a token without the endpoint's permission (meta.kind) 403
//     PERMISSION_DENIED, a rate limit 429 RATE_LIMIT_EXCEEDED (with
//     Retry-After and info.resetMs);
//   - endpoint-base.ts: every body is validated against the endpoint's
//     paramDef (Ajv), a failure being 400 INVALID_PARAM with info.param
//     and info.reason; the fake is stricter in one way, on purpose: it
//     refuses properties the paramDef does not name (see schema.validate);
//   - error.ts: errors are {"error":{"message","code","id","kind",
//     "info"?}};
//   - endpoints/meta.ts, i.ts, notes/create.ts, notes/delete.ts,
//     notes/show.ts, users/notes.ts, drive/files/create.ts, and the MiAuth
//     flow (docs: https://misskey-hub.net/en/docs/for-developers/api/token/miauth/;
//     server: MiAuth page /miauth/:session, endpoint
//     miauth/:session/check in ServerService/ApiServerService.ts);
//   - Sharkey's notes/edit (https://activitypub.software/TransFem-org/Sharkey,
//     endpoints/notes/edit.ts, NoteEditService), on only when
//     Config.Flavour is "sharkey".
//
// Every note is returned packed as NoteEntityService.pack does (id,
// createdAt, userId, user, text, cw, visibility, localOnly, replyId,
// renoteId, fileIds, files, poll), every drive file as
// DriveFileEntityService.pack (id, name, type, size, isSensitive, comment,
// url …). IDs are time-ordered lowercase alphanumerics, as Misskey's
// "aidx" IDs are, so sinceId/untilId compare them as strings.
//
// It serves on loopback through net/http/httptest. Tests make accounts and
// tokens directly (AddUser, AddToken) and play the person at the MiAuth
// page with Approve.
package fakemisskey

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config configures a Server. Zero fields take Misskey's defaults.
type Config struct {
	// Flavour is the nodeinfo software.name: "misskey" (the default),
	// "sharkey" (which also has notes/edit), "firefish", "iceshrimp",
	// "cherrypick" …
	Flavour string
	// Version is nodeinfo's software.version and meta's version; "" means
	// "2024.11.0".
	Version string
	// MaxNoteTextLength is meta's maxNoteTextLength (the config's
	// maxNoteLength); 0 means 3000, Misskey's default.
	MaxNoteTextLength int
	// MaxFileSize is the configuration's maxFileSize, in bytes, which
	// meta shows and drive/files/create enforces; 0 means 262144000, what
	// the Misskey checked answered.
	MaxFileSize int64
	// MaxFileSizeMB is the role policy maxFileSizeMb, in MiB, which
	// ApiCallService enforces before the endpoint runs; 0 means 10.
	MaxFileSizeMB int64
	// AllowedTypes are the MIME types drive/files/create takes (the role
	// policy uploadableFileTypes, "image/*" style patterns); nil means any.
	AllowedTypes []string
	// DriveCapacityMB is the account's drive capacity (policy
	// driveCapacityMb), in MiB as DriveService counts it; 0 means 100.
	DriveCapacityMB int64
	// HTMLAPI makes every /api/ path answer 200 with the web client's HTML
	// page, as a server whose proxy sends the API to the front end does;
	// nodeinfo still says Misskey.
	HTMLAPI bool
	// Federation, when not nil, looks remote users up by WebFinger
	// (users/show with another host), as Misskey does before it fetches
	// their actor. The fake keeps what WebFinger says (name, host, actor
	// URI) and does not fetch the actor or deliver anything: a follow of
	// a remote user is recorded here only. nil: remote users are unknown.
	Federation *http.Client
	// RateLimits replaces entries of DefaultRateLimits by endpoint name
	// (tests lower them to stay fast); a zero RateLimit lifts the
	// endpoint's limit. NoRateLimits lifts them all.
	RateLimits   map[string]RateLimit
	NoRateLimits bool
	// RemoteAccept is how long a remote user's server takes to accept a
	// follow. Misskey makes every follow of a remote user a follow request
	// (UserFollowingService.follow: local → remote always requests first)
	// that becomes a follow when the remote server's Accept arrives; the
	// fake turns the request into a follow after this delay. 0 means
	// 50 ms (an unlocked remote account accepting at once); negative
	// means never (a locked account, or a server that does not answer).
	RemoteAccept time.Duration
	// MisskeyIO imitates the MisskeyIO fork (nodeinfo still "misskey")
	// where it differs: drive/files/create answers a repeated upload
	// (same name, sensitivity and first MiB within 60 s) with the earlier
	// file and its comment, even with force.
	MisskeyIO bool
	// LegacySignin serves the password sign-in at POST /api/signin, as
	// Misskey up to 2024.9 and the forks based on it (Sharkey 2024.x) do;
	// otherwise at POST /api/signin-flow, and /api/signin is unknown.
	LegacySignin bool
	// Captcha turns on one captcha ("hcaptcha", "mcaptcha", "recaptcha",
	// "turnstile", "testcaptcha"): meta's enable… flag says so, and a
	// password sign-in of an account without two-factor authentication
	// that does not carry the captcha's answer ("hcaptcha-response",
	// "g-recaptcha-response" …) is refused (400).
	Captcha string
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the server's base URL (http://127.0.0.1:port); Host its host
	// part, the domain of handles.
	URL, Host string

	cfg Config
	ts  *httptest.Server

	mu       sync.Mutex
	seq      int64
	users    map[string]*user  // by id
	tokens   map[string]*token // by token
	notes    map[string]*note  // by id
	files    map[string]*driveFile
	sessions map[string]*miauthSession
	streams  map[*streamConn]bool
	rels     map[string][]*relation // "following", "follow-request", "blocking", "mute", "renote-mute"
	lists    map[string]*userList
	limited  map[string][]time.Duration // endpoint -> forced 429s (their Retry-After)
	calls    map[string]int             // endpoint -> calls answered
	limits   map[string]RateLimit       // endpoint -> its meta.limit
	hits     map[string][]time.Time     // endpoint+caller -> allowed calls in the window
	drop     map[string]int             // endpoint -> answers to lose after acting
}

type user struct {
	ID, Username, Name, Password string
	Host, URI                    string // remote users: their server and actor
	Description                  string
	AlsoKnownAs                  []string
	MovedTo                      string
	CreatedAt                    time.Time
	// TOTPSecret (base32) is set when two-factor authentication is on;
	// SecurityKeys when a security key is registered too.
	TOTPSecret   string
	SecurityKeys bool
	Suspended    bool
	// NativeToken is user.token in Misskey: the web client's token,
	// answered by a sign-in; Logins counts the sign-ins.
	NativeToken string
	Logins      int
	// NotesCount counts the notes ever made: NoteCreateService increments
	// it and NoteDeleteService never decrements it (only the instance's
	// counter); checked against Misskey 2025.4.x (MisskeyIO fork) on
	// loopback, where it stayed at 10 after one of 10 notes was deleted.
	NotesCount int
}

type token struct {
	UserID      string
	Permissions []string // nil = every permission (a native session token)
}

type note struct {
	ID, UserID, Text, CW, Visibility, ReplyID, RenoteID string
	LocalOnly                                           bool
	FileIDs                                             []string
	Poll                                                *notePoll
	CreatedAt                                           time.Time
	UpdatedAt                                           *time.Time
}

type notePoll struct {
	Choices   []string
	Multiple  bool
	ExpiresAt *time.Time
}

type driveFile struct {
	ID, UserID, Name, Type, Comment string
	MD5                             string
	Size                            int64
	Sensitive                       bool
	CreatedAt                       time.Time
	data                            []byte
}

type miauthSession struct {
	Name, Callback string
	Permissions    []string
	Token          string // set when approved
	Checked        bool
}

// Start starts a fake server on loopback; Close stops it.
func Start(cfg Config) *Server {
	if cfg.Flavour == "" {
		cfg.Flavour = "misskey"
	}
	if cfg.Version == "" {
		cfg.Version = "2024.11.0"
	}
	if cfg.MaxNoteTextLength == 0 {
		cfg.MaxNoteTextLength = 3000
	}
	if cfg.MaxFileSize == 0 {
		cfg.MaxFileSize = 262144000
	}
	if cfg.MaxFileSizeMB == 0 {
		cfg.MaxFileSizeMB = 10
	}
	if cfg.DriveCapacityMB == 0 {
		cfg.DriveCapacityMB = 100
	}
	if cfg.RemoteAccept == 0 {
		cfg.RemoteAccept = 50 * time.Millisecond
	}
	s := &Server{cfg: cfg, users: map[string]*user{}, tokens: map[string]*token{}, notes: map[string]*note{},
		files: map[string]*driveFile{}, sessions: map[string]*miauthSession{}, streams: map[*streamConn]bool{}, rels: map[string][]*relation{}, lists: map[string]*userList{}, limited: map[string][]time.Duration{},
		calls: map[string]int{}, limits: map[string]RateLimit{}, hits: map[string][]time.Time{}, drop: map[string]int{}}
	if !cfg.NoRateLimits {
		s.limits = DefaultRateLimits()
	}
	for k, v := range cfg.RateLimits {
		s.limits[k] = v
	}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.ts.URL
	u, _ := url.Parse(s.ts.URL)
	s.Host = u.Host
	return s
}

// Close stops the server.
func (s *Server) Close() {
	s.CloseStreams()
	s.ts.CloseClientConnections()
	s.ts.Close()
}

// newID returns a new time-ordered ID: fixed width, so string order is
// creation order, as for Misskey's aidx IDs.
func (s *Server) newID() string {
	s.seq++
	return fmt.Sprintf("a%011d%04x", time.Now().UnixMilli()%100_000_000_000, s.seq%0x10000)
}

// AddRemoteUser records a user of another server, as Misskey keeps one it
// has fetched before (its actor at https://host/users/username), and
// returns its ID. Nothing is delivered to that server.
func (s *Server) AddRemoteUser(username, host string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := &user{ID: s.newID(), Username: username, Name: username, Host: host,
		URI: "https://" + host + "/users/" + username, CreatedAt: time.Now()}
	s.users[u.ID] = u
	return u.ID
}

// AddUser makes a local account and returns its ID.
func (s *Server) AddUser(username, password string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := &user{ID: s.newID(), Username: username, Name: username, Password: password, CreatedAt: time.Now()}
	s.users[u.ID] = u
	return u.ID
}

// AddToken issues an access token for the user with these permissions
// (nil: all, as a session token of Misskey's own web client has).
func (s *Server) AddToken(userID string, permissions []string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := randomToken()
	s.tokens[t] = &token{UserID: userID, Permissions: permissions}
	return t
}

// RevokeToken forgets a token, as deleting it under Settings → Apps does.
func (s *Server) RevokeToken(t string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, t)
}

// LimitNext makes the next n calls of endpoint answer 429
// RATE_LIMIT_EXCEEDED with Retry-After wait.
func (s *Server) LimitNext(endpoint string, n int, wait time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.limited[endpoint] = append(s.limited[endpoint], wait)
	}
}

// DropAnswers makes the next n calls of endpoint act and then lose their
// answer: the connection is closed without one, as when a proxy or the
// network fails after the server did the work.
func (s *Server) DropAnswers(endpoint string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop[endpoint] += n
}

// Calls returns how many calls of endpoint the server has answered
// (errors included).
func (s *Server) Calls(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[endpoint]
}

// UserID returns the ID of the local user called username, "" if none.
func (s *Server) UserID(username string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.Username == username && u.Host == "" {
			return u.ID
		}
	}
	return ""
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// apiError is one of Misskey's error answers (error.ts, ApiCallService.ts).
type apiError struct {
	status            int
	Message, Code, ID string
	Kind              string
	Info              map[string]any
}

// The errors ApiCallService answers for any endpoint.
var (
	errCredentialRequired = apiError{401, "Credential required.", "CREDENTIAL_REQUIRED", "1384574d-a912-4b81-8601-c7b1c4085df1", "client", nil}
	errAuthFailed         = apiError{401, "Authentication failed. Please ensure your token is correct.", "AUTHENTICATION_FAILED", "b0a7f5f8-dc2f-4171-b91f-de88ad238e14", "client", nil}
	errPermissionDenied   = apiError{403, "Your app does not have the necessary permissions to use this endpoint.", "PERMISSION_DENIED", "1370e5b7-d4eb-4566-bb1d-7748ee6a1838", "permission", nil}
	errUploadTooLarge     = apiError{413, "Maximum upload size exceeded", "MAX_FILE_SIZE_EXCEEDED", "39591dd6-b5e8-4399-bb03-13b0a8a62a21", "client", nil}
	errRateLimit          = apiError{429, "Rate limit exceeded. Please try again later.", "RATE_LIMIT_EXCEEDED", "d5826d14-3982-4d2e-8011-b9e9f02499ef", "client", nil}
	// 403 with WWW-Authenticate: checked against Misskey 2025.4.x
	// (MisskeyIO fork) on loopback.
	errAccessDeniedSecure = apiError{403, "Access denied.", "ACCESS_DENIED", "56f35758-7dd5-468b-8439-5d6fb8ec9b8e", "client", nil}
	errYourAccountMoved   = apiError{403, "You have moved your account.", "YOUR_ACCOUNT_MOVED", "56f20ec9-fd06-4fa5-841b-edd6d7d4fa31", "permission", nil}
	errFileRequired       = apiError{400, "File required.", "FILE_REQUIRED", "4267801e-70d1-416a-b011-4ee502885d8b", "client", nil}
)

func invalid(e *invalidParam) apiError {
	return apiError{400, "Invalid param.", "INVALID_PARAM", "3d81ceae-475f-4600-b2a8-2bc116157532", "client",
		map[string]any{"param": e.Param, "reason": e.Reason}}
}

func writeError(w http.ResponseWriter, e apiError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="Misskey", error="invalid_token"`)
	}
	if e.Code == "ACCESS_DENIED" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="Misskey", error="invalid_request", error_description="Access denied."`)
	}
	body := map[string]any{"message": e.Message, "code": e.Code, "id": e.ID, "kind": e.Kind}
	if e.Info != nil {
		body["info"] = e.Info
	}
	writeJSON(w, e.status, map[string]any{"error": body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// endpoint is one API endpoint: its paramDef, whether it needs a token,
// the permission a third-party token needs (meta.kind), and its handler,
// called with the server locked.
type endpoint struct {
	params     schema
	credential bool
	secure     bool // meta.secure: the web client's session token only
	// prohibitMoved: meta.prohibitMoved, refused to a moved account.
	prohibitMoved bool
	kind          string
	file          bool // multipart upload (meta.requireFile)
	allowGet      bool // meta.allowGet: GET with the parameters in the query
	handle        func(c *call) (any, *apiError)
}

// call is one API call being answered.
type call struct {
	body map[string]any
	user *user // nil when anonymous
	file *upload
	w    http.ResponseWriter
	r    *http.Request
}

type upload struct {
	name, typ string
	data      []byte
}

func (s *Server) endpoints() map[string]endpoint {
	eps := map[string]endpoint{
		"meta":               {params: schema{props: map[string]*param{"detail": boolean()}}, allowGet: true, handle: s.meta},
		"i":                  {params: schema{props: map[string]*param{}}, credential: true, kind: "read:account", handle: s.i},
		"i/update":           {params: iUpdateParams, credential: true, kind: "write:account", handle: s.iUpdate},
		"i/move":             {params: schema{props: map[string]*param{"moveToAccount": str()}, required: []string{"moveToAccount"}}, credential: true, secure: true, prohibitMoved: true, handle: s.iMove},
		"notes/create":       {params: s.notesCreateParams(), credential: true, kind: "write:notes", handle: s.notesCreate},
		"notes/delete":       {params: schema{props: map[string]*param{"noteId": id()}, required: []string{"noteId"}}, credential: true, kind: "write:notes", handle: s.notesDelete},
		"notes/show":         {params: schema{props: map[string]*param{"noteId": id()}, required: []string{"noteId"}}, handle: s.notesShow},
		"users/notes":        {params: usersNotesParams, handle: s.usersNotes},
		"drive/files/create": {params: driveCreateParams, credential: true, kind: "write:drive", file: true, handle: s.driveCreate},
	}
	s.graphEndpoints(eps)
	if s.cfg.Flavour == "sharkey" {
		eps["notes/edit"] = endpoint{params: s.notesEditParams(), credential: true, kind: "write:notes", handle: s.notesEdit}
	}
	return eps
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/.well-known/nodeinfo":
		writeJSON(w, 200, map[string]any{"links": []any{map[string]string{
			"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": s.URL + "/nodeinfo/2.1"}}})
		return
	case r.URL.Path == "/nodeinfo/2.1":
		writeJSON(w, 200, map[string]any{"version": "2.1", "software": map[string]string{
			"name": s.cfg.Flavour, "version": s.cfg.Version}, "protocols": []string{"activitypub"},
			"openRegistrations": false, "usage": map[string]any{"users": map[string]int{}}, "metadata": map[string]any{}})
		return
	case r.URL.Path == "/streaming":
		s.streaming(w, r)
		return
	case strings.HasPrefix(r.URL.Path, "/identicon/"):
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(identiconPNG)
		return
	case strings.HasPrefix(r.URL.Path, "/files/"):
		s.serveFile(w, r)
		return
	case strings.HasPrefix(r.URL.Path, "/miauth/"):
		s.miauthPage(w, r)
		return
	case r.URL.Path == "/api/signin-flow" && !s.cfg.LegacySignin && !s.cfg.HTMLAPI,
		r.URL.Path == "/api/signin" && s.cfg.LegacySignin && !s.cfg.HTMLAPI:
		s.signin(w, r, s.cfg.LegacySignin)
		return
	case strings.HasPrefix(r.URL.Path, "/api/"):
		if s.cfg.HTMLAPI {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<!DOCTYPE html><html><head><title>Misskey</title></head><body><div id=\"misskey_app\"></div></body></html>")
			return
		}
		s.api(w, r)
		return
	}
	http.NotFound(w, r)
}

func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/api/")
	if strings.HasPrefix(name, "miauth/") && strings.HasSuffix(name, "/check") {
		s.miauthCheck(w, r, strings.TrimSuffix(strings.TrimPrefix(name, "miauth/"), "/check"))
		return
	}
	ep, ok := s.endpoints()[name]
	if !ok {
		// Fastify's own 404, without a Misskey code: checked against
		// Misskey 2025.4.x (MisskeyIO fork) on loopback, for an unknown
		// endpoint and for notes/edit.
		writeJSON(w, 404, map[string]any{"message": "Route " + r.Method + ":" + r.URL.Path + " not found",
			"error": "Not Found", "statusCode": 404})
		return
	}
	c := &call{w: w, r: r}
	if r.Method == http.MethodGet && ep.allowGet {
		// meta.allowGet: the query is the body (meta has no required
		// parameters the fake reads from it).
		c.body = map[string]any{}
	} else if r.Method != http.MethodPost {
		// Misskey serves GET only for endpoints with allowGet, and
		// answers others 405 with an empty body (checked against Misskey
		// 2025.4.x, MisskeyIO fork, on loopback).
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	} else if ep.file {
		if err := s.readMultipart(c); err != nil {
			writeError(w, *err)
			return
		}
	} else {
		ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
		if strings.TrimSpace(ct) != "application/json" {
			// Fastify refuses other bodies before Misskey sees them.
			writeJSON(w, 415, map[string]any{"statusCode": 415, "code": "FST_ERR_CTP_INVALID_MEDIA_TYPE",
				"error": "Unsupported Media Type", "message": "Unsupported Media Type: " + ct})
			return
		}
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		if err := dec.Decode(&c.body); err != nil {
			writeJSON(w, 400, map[string]any{"statusCode": 400, "code": "FST_ERR_CTP_INVALID_JSON_BODY",
				"error": "Bad Request", "message": "Body is not valid JSON"})
			return
		}
	}
	if c.body == nil {
		c.body = map[string]any{}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[name]++
	tok, hasTok := c.body["i"]
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		tok, hasTok = bearer, true
	}
	var t *token
	if hasTok {
		ts, ok := tok.(string)
		if !ok {
			w.WriteHeader(400)
			return
		}
		if t = s.tokens[ts]; t == nil {
			writeError(w, errAuthFailed)
			return
		}
		c.user = s.users[t.UserID]
	}
	if q := s.limited[name]; len(q) > 0 {
		wait := q[0]
		s.limited[name] = q[1:]
		e := errRateLimit
		ms := wait.Milliseconds()
		e.Info = map[string]any{"resetMs": ms, "resetSec": ms / 1000, "fullResetMs": ms, "fullResetSec": ms / 1000}
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds()+0.999)))
		w.Header().Set("X-RateLimit-Remaining", "0")
		writeError(w, e)
		return
	}
	if ep.secure && (t == nil || t.Permissions != nil) {
		// ApiCallService: "if (ep.meta.secure && !isSecure) throw new
		// ApiError(accessDenied)": an app's token is never enough.
		writeError(w, errAccessDeniedSecure)
		return
	}
	// ApiCallService.call checks meta.limit after meta.secure and before
	// the credential and permission checks.
	if !s.rateLimit(w, r, name, c.user) {
		return
	}
	if ep.credential && c.user == nil {
		writeError(w, errCredentialRequired)
		return
	}
	if t != nil && ep.kind != "" && t.Permissions != nil && !slices.Contains(t.Permissions, ep.kind) {
		writeError(w, errPermissionDenied)
		return
	}
	if ep.prohibitMoved && c.user.MovedTo != "" {
		// ApiCallService.call, after the permission check.
		writeError(w, errYourAccountMoved)
		return
	}
	if ep.file && c.file != nil && int64(len(c.file.data)) > s.cfg.MaxFileSizeMB<<20 {
		// ApiCallService.call, before the endpoint runs: the role policy
		// maxFileSizeMb is in MiB ("policies.maxFileSizeMb * 1024 *
		// 1024"); checked against Misskey 2025.4.x (MisskeyIO fork) on
		// loopback, which took 10,400,000 bytes under a 10 MB policy.
		writeError(w, errUploadTooLarge)
		return
	}
	if err := ep.params.validate(c.body); err != nil {
		writeError(w, invalid(err.(*invalidParam)))
		return
	}
	res, apiErr := ep.handle(c)
	if s.drop[name] > 0 {
		// The work is done; the answer is lost.
		s.drop[name]--
		panic(http.ErrAbortHandler)
	}
	if apiErr != nil {
		writeError(w, *apiErr)
		return
	}
	if res == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, 200, res)
}

func (s *Server) meta(c *call) (any, *apiError) {
	return map[string]any{
		"name": "fake " + s.cfg.Flavour, "uri": s.URL, "version": s.cfg.Version,
		"maxNoteTextLength": s.cfg.MaxNoteTextLength,
		// The configuration's maxFileSize, in bytes (MetaEntityService.pack).
		"maxFileSize": s.cfg.MaxFileSize,
		"features":    map[string]any{"miauth": true, "registration": false},
		// MetaEntityService.pack: which captcha sign-in and sign-up ask.
		"enableHcaptcha": s.cfg.Captcha == "hcaptcha", "enableMcaptcha": s.cfg.Captcha == "mcaptcha",
		"enableRecaptcha": s.cfg.Captcha == "recaptcha", "enableTurnstile": s.cfg.Captcha == "turnstile",
		"enableTestcaptcha": s.cfg.Captcha == "testcaptcha",
		// Role policies of the base role, as meta returns them
		// (MetaEntityService.pack: policies).
		"policies": map[string]any{"driveCapacityMb": s.cfg.DriveCapacityMB,
			"maxFileSizeMb": s.cfg.MaxFileSizeMB, "uploadableFileTypes": s.allowedTypes()},
	}, nil
}

func (s *Server) allowedTypes() []string {
	if s.cfg.AllowedTypes == nil {
		return []string{"*/*"}
	}
	return s.cfg.AllowedTypes
}

func (s *Server) packUser(u *user) map[string]any {
	m := map[string]any{"id": u.ID, "username": u.Username, "host": nilIfEmpty(u.Host), "name": u.Name}
	if u.Host != "" {
		m["uri"] = u.URI
	}
	return m
}

func (s *Server) i(c *call) (any, *apiError) {
	m := s.packUser(c.user)
	// alsoKnownAs as user IDs and movedTo as a user ID, as
	// UserEntityService.pack answers for the account itself.
	m["alsoKnownAs"] = nilIfNone(c.user.AlsoKnownAs)
	m["movedTo"] = nilIfEmpty(c.user.MovedTo)
	if t := s.users[c.user.MovedTo]; t != nil {
		m["movedToUri"] = s.userURI(t)
	}
	m["createdAt"] = c.user.CreatedAt.UTC().Format(time.RFC3339Nano)
	m["description"] = nilIfEmpty(c.user.Description)
	// An account without an avatar gets the default identicon, a PNG at
	// an address without extension (UserEntityService.getIdenticonUrl),
	// as Misskey 2025.4.x (MisskeyIO fork) on loopback answered.
	m["avatarUrl"], m["bannerUrl"] = s.URL+"/identicon/"+strings.ToLower(c.user.Username)+"@"+s.Host, nil
	m["isBot"], m["isLocked"] = false, false
	m["fields"] = []any{}
	m["notesCount"] = c.user.NotesCount
	// UserEntityService.pack, detailed and for the account itself.
	m["twoFactorEnabled"] = c.user.TOTPSecret != ""
	m["usePasswordLessLogin"] = false
	m["securityKeys"] = c.user.SecurityKeys
	return m, nil
}

var iUpdateParams = schema{props: map[string]*param{
	"name":        maxLen(nstr(), 50),
	"description": maxLen(nstr(), 1500),
	"alsoKnownAs": arr(str(), 0, 10),
}}

// iUpdate is i/update.ts for name and alsoKnownAs: the aliases come as
// user@host handles, each resolved to its user (NO_SUCH_USER when one
// cannot be), and are kept as those users.
func (s *Server) iUpdate(c *call) (any, *apiError) {
	if v, ok := c.body["name"].(string); ok {
		c.user.Name = v
	}
	if v, ok := c.body["description"].(string); ok {
		c.user.Description = v
	}
	if v, ok := c.body["alsoKnownAs"].([]any); ok {
		var ids []string
		for _, a := range v {
			user, host, _ := strings.Cut(strings.TrimPrefix(a.(string), "@"), "@")
			u := s.findUser(map[string]any{"username": user, "host": host})
			if u == nil {
				return nil, &errNoSuchUserUpdate
			}
			ids = append(ids, u.ID)
		}
		c.user.AlsoKnownAs = ids
	}
	return s.i(c)
}

// iMove is i/move.ts: the target (a handle) must list the account among
// its aliases and not have moved itself; the account then points to it
// (AccountMoveService.moveFromLocal: movedTo, and the target added to its
// own alsoKnownAs) and postMoveProcess runs: the local users who blocked or
// muted the account block or mute the target too, lists holding the
// account hold the target, and local followers follow the target. The fake
// delivers no Move activity and moves followers at once (Misskey queues
// the follows).
func (s *Server) iMove(c *call) (any, *apiError) {
	if c.user.MovedTo != "" {
		return nil, &errAlreadyMoved
	}
	user, host, _ := strings.Cut(strings.TrimPrefix(str0(c.body["moveToAccount"]), "@"), "@")
	to := s.findUser(map[string]any{"username": user, "host": host})
	if to == nil {
		return nil, &errNoSuchUserMove
	}
	if !slices.Contains(to.AlsoKnownAs, c.user.ID) || to.MovedTo != "" {
		return nil, &errDestinationForbids
	}
	c.user.MovedTo = to.ID
	if !slices.Contains(c.user.AlsoKnownAs, to.ID) {
		c.user.AlsoKnownAs = append(c.user.AlsoKnownAs, to.ID)
	}
	for _, kind := range []string{"blocking", "mute"} {
		for _, r := range append([]*relation{}, s.rels[kind]...) {
			if r.To == c.user.ID && r.From != to.ID && s.edge(kind, r.From, to.ID) == nil {
				s.addEdge(kind, r.From, to.ID)
			}
		}
	}
	for _, l := range s.lists {
		if slices.Contains(l.Members, c.user.ID) && !slices.Contains(l.Members, to.ID) && l.UserID != to.ID {
			l.Members = append(l.Members, to.ID)
		}
	}
	for _, r := range append([]*relation{}, s.rels["following"]...) {
		if r.To == c.user.ID && s.users[r.From].Host == "" && s.edge("following", r.From, to.ID) == nil && r.From != to.ID {
			s.addEdge("following", r.From, to.ID)
		}
	}
	return s.i(c)
}

// Errors of i/update.ts and i/move.ts.
var (
	errNoSuchUserUpdate   = apiError{400, "No such user.", "NO_SUCH_USER", "fcd2eef9-a9b2-4c4f-8624-038099e90aa5", "client", nil}
	errNoSuchUserMove     = apiError{400, "No such user.", "NO_SUCH_USER", "fcd2eef9-a9b2-4c4f-8624-038099e90aa5", "client", nil}
	errAlreadyMoved       = apiError{400, "Account was already moved to another account.", "ALREADY_MOVED", "b234a14e-9ebe-4581-8000-074b3c215962", "client", nil}
	errDestinationForbids = apiError{400, "Destination account doesn't have proper 'Known As' alias, or has already moved.", "DESTINATION_ACCOUNT_FORBIDS", "b5c90186-4ab0-49c8-9bba-a1f766282ba4", "client", nil}
)

// userURI is a user's ActivityPub ID: a remote user's own, a local user's
// <base>/users/<id> (UserEntityService.genLocalUserUri).
func (s *Server) userURI(u *user) string {
	if u.Host != "" {
		return u.URI
	}
	return s.URL + "/users/" + u.ID
}

func nilIfNone(ids []string) any {
	if len(ids) == 0 {
		return nil
	}
	return ids
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// identiconPNG is a 1×1 PNG standing in for a generated identicon.
var identiconPNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89" +
	"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
