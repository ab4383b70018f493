package misskey_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/fakemisskey"
	"github.com/fedi-ferry/ferry/misskey"
)

func start(t *testing.T, cfg fakemisskey.Config) (*fakemisskey.Server, *url.URL) {
	t.Helper()
	srv := fakemisskey.Start(cfg)
	t.Cleanup(srv.Close)
	u, err := misskey.ParseServer(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return srv, u
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDetectFamilyAndLimits(t *testing.T) {
	for _, flavour := range []string{"misskey", "sharkey", "firefish", "iceshrimp", "cherrypick"} {
		t.Run(flavour, func(t *testing.T) {
			_, base := start(t, fakemisskey.Config{Flavour: flavour, MaxNoteTextLength: 5000, MaxFileSize: 3_000_000})
			srv, err := misskey.Detect(t.Context(), misskey.NewClient(base, "", misskey.Options{}))
			if err != nil {
				t.Fatal(err)
			}
			l := srv.Limits()
			if srv.Software != flavour || l.MaxChars != 5000 || l.MaxMedia != 16 || l.MaxImageBytes != 3_000_000 || !srv.MiAuth {
				t.Fatalf("detected %+v, limits %+v", srv, l)
			}
			if srv.CanEdit() != (flavour != "misskey" && flavour != "cherrypick") {
				t.Errorf("%s: CanEdit = %v", flavour, srv.CanEdit())
			}
		})
	}
}

// The role policies maxFileSizeMb and driveCapacityMb are MiB, as
// Misskey enforces them (checked against Misskey 2025.4.x, MisskeyIO
// fork, on loopback: a 10,400,000-byte file under a 10 MB policy was
// taken).
func TestDrivePoliciesAreMiB(t *testing.T) {
	srv, base := start(t, fakemisskey.Config{MaxFileSizeMB: 10, DriveCapacityMB: 100})
	info, err := misskey.Detect(t.Context(), misskey.NewClient(base, "", misskey.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if info.MaxFileSize != 10<<20 || info.DriveCapacity != 100<<20 || info.Limits().MaxImageBytes != 10<<20 {
		t.Fatalf("max file %d, drive %d, want %d and %d", info.MaxFileSize, info.DriveCapacity, 10<<20, 100<<20)
	}
	c := misskey.NewClient(base, srv.AddToken(srv.AddUser("up", "pw"), nil), misskey.Options{})
	data := make([]byte, 10_400_000)
	copy(data, pngBytes(t))
	if _, err := c.UploadFile(t.Context(), "big.png", data, "", false); err != nil {
		t.Fatalf("a 10,400,000-byte file under a 10 MiB policy: %v", err)
	}
	_, err = c.UploadFile(t.Context(), "huge.png", append(pngBytes(t), make([]byte, 10<<20)...), "", false)
	var ae *misskey.APIError
	if !errors.As(err, &ae) || ae.Status != 413 || ae.ID != "39591dd6-b5e8-4399-bb03-13b0a8a62a21" {
		t.Fatalf("over the policy: %v, want 413 MAX_FILE_SIZE_EXCEEDED 39591dd6-…", err)
	}
}

func TestDetectHTMLAnsweringServer(t *testing.T) {
	_, base := start(t, fakemisskey.Config{HTMLAPI: true})
	_, err := misskey.Detect(t.Context(), misskey.NewClient(base, "", misskey.Options{}))
	if !errors.Is(err, misskey.ErrNotAPI) || !strings.Contains(err.Error(), "text/html") || !strings.Contains(err.Error(), "says it runs misskey") {
		t.Fatalf("Detect = %v; want a clear not-the-API error", err)
	}
}

func TestRefusesPlainHTTPOffLoopback(t *testing.T) {
	if _, err := misskey.ParseServer("http://misskey.example"); err == nil {
		t.Fatal("plain http to a public host accepted")
	}
	c := misskey.NewClient(&url.URL{Scheme: "http", Host: "misskey.example"}, "t", misskey.Options{})
	if _, err := c.I(t.Context()); err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("I over plain http = %v", err)
	}
}

func TestErrorsCarryMisskeyCodes(t *testing.T) {
	srv, base := start(t, fakemisskey.Config{})
	uid := srv.AddUser("alice", "pw")
	tok := srv.AddToken(uid, []string{"read:account"})
	c := misskey.NewClient(base, tok, misskey.Options{})
	ctx := t.Context()
	if me, err := c.I(ctx); err != nil || me.ID != uid || me.Username != "alice" {
		t.Fatalf("I = %+v, %v", me, err)
	}
	// Without write:notes, creating is PERMISSION_DENIED: an auth error.
	_, err := c.CreateNote(ctx, misskey.NoteParams{Text: "x"})
	if !misskey.IsCode(err, "PERMISSION_DENIED") || !misskey.IsUnauthorized(err) {
		t.Fatalf("create without permission = %v", err)
	}
	// A wrong type: INVALID_PARAM naming the parameter, permanent.
	err = c.Call(ctx, "users/notes", map[string]any{"userId": uid, "limit": "ten"}, nil, false)
	var ae *misskey.APIError
	if !errors.As(err, &ae) || ae.Code != "INVALID_PARAM" || ae.Status != 400 || !ae.Permanent() || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("wrong type = %v", err)
	}
	// An unknown note.
	if _, err := c.ShowNote(ctx, "nosuchnote"); !misskey.IsCode(err, "NO_SUCH_NOTE") {
		t.Fatalf("show of a missing note = %v", err)
	}
	// A revoked token.
	srv.RevokeToken(tok)
	if _, err := c.I(ctx); !misskey.IsCode(err, "AUTHENTICATION_FAILED") || !misskey.IsUnauthorized(err) {
		t.Fatalf("revoked token = %v", err)
	}
}

func TestRateLimitIsWaitedOut(t *testing.T) {
	srv, base := start(t, fakemisskey.Config{})
	uid := srv.AddUser("alice", "pw")
	c := misskey.NewClient(base, srv.AddToken(uid, nil), misskey.Options{})
	srv.LimitNext("notes/create", 1, time.Second)
	start := time.Now()
	n, err := c.CreateNote(t.Context(), misskey.NoteParams{Text: "after the limit"})
	if err != nil || n.ID == "" {
		t.Fatalf("create = %+v, %v", n, err)
	}
	st := c.Stats()
	if time.Since(start) < time.Second || st.RateLimited != 1 || st.Retries != 1 || srv.NoteCount(uid) != 1 {
		t.Fatalf("stats %+v after %v, %d notes", st, time.Since(start), srv.NoteCount(uid))
	}
	// A wait beyond MaxWait is returned, not slept through.
	short := misskey.NewClient(base, srv.AddToken(uid, nil), misskey.Options{MaxWait: 100 * time.Millisecond})
	srv.LimitNext("notes/create", 1, time.Hour)
	if _, err := short.CreateNote(t.Context(), misskey.NoteParams{Text: "x"}); !misskey.IsRateLimited(err) {
		t.Fatalf("long limit = %v", err)
	}
}

func TestDriveRefusals(t *testing.T) {
	srv, base := start(t, fakemisskey.Config{MaxFileSize: 1000, AllowedTypes: []string{"image/*"}})
	uid := srv.AddUser("alice", "pw")
	c := misskey.NewClient(base, srv.AddToken(uid, nil), misskey.Options{})
	ctx := t.Context()
	f, err := c.UploadFile(ctx, "a.png", pngBytes(t), "alt text", true)
	if err != nil || f.Type != "image/png" || misskey.Str(f.Comment) != "alt text" || !f.IsSensitive {
		t.Fatalf("upload = %+v, %v", f, err)
	}
	if _, err := c.UploadFile(ctx, "big.png", append(pngBytes(t), make([]byte, 2000)...), "", false); !misskey.IsCode(err, "MAX_FILE_SIZE_EXCEEDED") {
		t.Fatalf("too large = %v", err)
	}
	if _, err := c.UploadFile(ctx, "a.txt", []byte("plain text"), "", false); !misskey.IsCode(err, "UNALLOWED_FILE_TYPE") {
		t.Fatalf("wrong type = %v", err)
	}
	if _, err := c.UploadFile(ctx, "a.png", pngBytes(t), strings.Repeat("a", 513), false); !misskey.IsCode(err, "INVALID_PARAM") {
		t.Fatalf("alt text over 512 = %v", err)
	}
}

func TestMiAuth(t *testing.T) {
	srv, base := start(t, fakemisskey.Config{})
	srv.AddUser("alice", "pw")
	anon := misskey.NewClient(base, "", misskey.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	sess := misskey.NewSession()
	page := misskey.MiAuthURL(base, sess, "ferry", "http://127.0.0.1:1/cb", misskey.Permissions)
	resp, err := http.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, _, ok, err := anon.CheckMiAuth(ctx, sess); ok || err != nil {
		t.Fatalf("check before approval: ok=%v err=%v", ok, err)
	}
	back, err := srv.Approve(sess, "alice")
	if err != nil || !strings.Contains(back, "session="+sess) {
		t.Fatalf("approve = %q, %v", back, err)
	}
	tok, u, ok, err := anon.CheckMiAuth(ctx, sess)
	if !ok || err != nil || tok == "" || u.Username != "alice" {
		t.Fatalf("check = %q %+v %v %v", tok, u, ok, err)
	}
	me, err := misskey.NewClient(base, tok, misskey.Options{}).I(ctx)
	if err != nil || me.Username != "alice" {
		t.Fatalf("I with the MiAuth token = %+v, %v", me, err)
	}
}

// A nodeinfo index that links elsewhere is followed on the server itself
// (by path only): a hostile index cannot send ferry off-site.
func TestNodeInfoStaysOnTheServer(t *testing.T) {
	var hits []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits = append(hits, r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/nodeinfo":
			w.Write([]byte(`{"links":[{"rel":"http://nodeinfo.diaspora.software/ns/schema/2.0","href":"https://elsewhere.invalid/ni/2.0"},` +
				`{"rel":"http://nodeinfo.diaspora.software/ns/schema/2.1","href":"https://elsewhere.invalid/ni/2.1"}]}`))
		case "/ni/2.1":
			w.Write([]byte(`{"software":{"name":"Misskey","version":"2024.11.0"}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	base, _ := misskey.ParseServer(srv.URL)
	name, version, err := misskey.NodeInfo(t.Context(), misskey.NewClient(base, "", misskey.Options{}))
	if err != nil || name != "misskey" || version != "2024.11.0" {
		t.Fatalf("NodeInfo = %q %q %v (requests %v)", name, version, err, hits)
	}
}

// Misskey answers an upload of content the drive already holds with the
// earlier file, alt text included, unless the upload is forced: UploadFile
// forces, so each copy keeps its own alt text.
func TestUploadKeepsItsOwnAltText(t *testing.T) {
	srv, base := start(t, fakemisskey.Config{})
	uid := srv.AddUser("alice", "pw")
	c := misskey.NewClient(base, srv.AddToken(uid, nil), misskey.Options{})
	ctx := t.Context()
	data := pngBytes(t)
	var a, b misskey.DriveFile
	if err := c.Upload(ctx, "drive/files/create", map[string]string{"comment": "first"}, "a.png", data, &a); err != nil {
		t.Fatal(err)
	}
	if err := c.Upload(ctx, "drive/files/create", map[string]string{"comment": "second"}, "a.png", data, &b); err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || misskey.Str(b.Comment) != "first" {
		t.Fatalf("an unforced upload of the same content: %+v then %+v", a, b)
	}
	f, err := c.UploadFile(ctx, "a.png", data, "third", false)
	if err != nil || f.ID == a.ID || misskey.Str(f.Comment) != "third" {
		t.Fatalf("UploadFile = %+v, %v", f, err)
	}
}

// The MisskeyIO fork answers a repeated upload (same name, sensitivity and
// first MiB within 60 s) with the earlier file even when forced (checked
// against Misskey 2025.4.x, MisskeyIO fork, on loopback); UploadFile sees
// the other alt text and uploads again under another name.
func TestUploadKeepsItsOwnAltTextOnMisskeyIO(t *testing.T) {
	srv, base := start(t, fakemisskey.Config{MisskeyIO: true})
	c := misskey.NewClient(base, srv.AddToken(srv.AddUser("alice", "pw"), nil), misskey.Options{})
	ctx := t.Context()
	data := pngBytes(t)
	first, err := c.UploadFile(ctx, "blue.png", data, "alt one", false)
	if err != nil {
		t.Fatal(err)
	}
	var raw misskey.DriveFile
	if err := c.Upload(ctx, "drive/files/create", map[string]string{"comment": "alt two", "force": "true", "isSensitive": "false"}, "blue.png", data, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.ID != first.ID {
		t.Fatalf("the MisskeyIO flavour did not dedupe a forced upload: %+v", raw)
	}
	f, err := c.UploadFile(ctx, "blue.png", data, "alt three", false)
	if err != nil || f.ID == first.ID || misskey.Str(f.Comment) != "alt three" || !strings.HasPrefix(f.Name, "blue-") || !strings.HasSuffix(f.Name, ".png") {
		t.Fatalf("UploadFile = %+v, %v", f, err)
	}
}

// A 429 the client does not wait out (an hourly limit) carries its wait
// through RetryAfter(), which the bridge's scheduling reads.
func TestHourlyLimitCarriesItsWait(t *testing.T) {
	srv, base := start(t, fakemisskey.Config{RateLimits: map[string]fakemisskey.RateLimit{"notes/create": {Max: 1, Duration: time.Hour}}})
	c := misskey.NewClient(base, srv.AddToken(srv.AddUser("alice", "pw"), nil), misskey.Options{})
	ctx := t.Context()
	if _, err := c.CreateNote(ctx, misskey.NoteParams{Text: "one"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateNote(ctx, misskey.NoteParams{Text: "two"})
	var ra interface{ RetryAfter() time.Duration }
	if !errors.As(err, &ra) || ra.RetryAfter() < 59*time.Minute || ra.RetryAfter() > time.Hour {
		t.Fatalf("over the hourly limit: %v", err)
	}
}
