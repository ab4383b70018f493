package atproto

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/bluesky-social/indigo/xrpc"

	"github.com/fedi-ferry/ferry/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// e2eCtx bounds one end-to-end test.
func e2eCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newAccount creates an account on the shared PDS and logs in to it by PDS URL and handle,
// as `ferry login https://pds --handle NAME` does.
func newAccount(t *testing.T, ctx context.Context, name string, opts Options) (*testenv.PDSAccount, *Client) {
	t.Helper()
	env := testenv.SharedPDS(t, 1)
	acct, err := env.PDSes[0].CreateAccount(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Login(ctx, acct.PDS.URL, acct.Handle, acct.Password, opts)
	if err != nil {
		t.Fatalf("login %s on %s: %v", acct.Handle, acct.PDS.URL, err)
	}
	return acct, c
}

// post is a minimal valid post.
func post(text string) *bsky.FeedPost {
	return &bsky.FeedPost{Text: text, CreatedAt: syntax.DatetimeNow().String()}
}

func TestE2ELoginByPDSAndHandle(t *testing.T) {
	ctx := e2eCtx(t)
	acct, c := newAccount(t, ctx, "login", Options{})
	s := c.Session()
	if s.DID != acct.DID || s.Handle != acct.Handle || s.PDS != acct.PDS.URL {
		t.Errorf("session = %v, want %s (%s) on %s", s, acct.Handle, acct.DID, acct.PDS.URL)
	}
	if s.AccessJWT == "" || s.RefreshJWT == "" {
		t.Fatal("session has no tokens")
	}
	for _, shown := range []string{s.String(), c.Session().LogValue().String()} {
		if strings.Contains(shown, s.AccessJWT) || strings.Contains(shown, s.RefreshJWT) {
			t.Errorf("session shows its tokens: %s", shown)
		}
	}

	got, err := c.GetSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Did != acct.DID || got.Handle != acct.Handle {
		t.Errorf("getSession = %s %s, want %s %s", got.Did, got.Handle, acct.DID, acct.Handle)
	}

	desc, err := c.DescribeServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Did != acct.PDS.DID || !slices.Contains(desc.AvailableUserDomains, ".test") {
		t.Errorf("describeServer = did %s domains %v, want %s and .test", desc.Did, desc.AvailableUserDomains, acct.PDS.DID)
	}

	// A stored session works in a new client without the password.
	again, err := NewClient(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.GetSession(ctx); err != nil {
		t.Fatalf("resumed session: %v", err)
	}

	// The handle, by DID through the PLC directory, leads back to this PDS.
	env := testenv.SharedPDS(t, 1)
	id, err := Resolver{PLCURL: env.PLCURL}.Resolve(ctx, acct.DID)
	if err != nil {
		t.Fatal(err)
	}
	if id.DID.String() != acct.DID || id.PDS != acct.PDS.URL {
		t.Errorf("resolve %s = %+v, want PDS %s", acct.DID, id, acct.PDS.URL)
	}
	// .test is a reserved top-level domain: such a handle resolves nowhere outside its PDS.
	if _, err := (Resolver{PLCURL: env.PLCURL}).Resolve(ctx, "@"+acct.Handle); !errors.Is(err, ErrUnresolved) {
		t.Errorf("resolve %s: err = %v, want ErrUnresolved", acct.Handle, err)
	}
	did, err := c.ResolveHandle(ctx, syntax.Handle(acct.Handle))
	if err != nil || did.String() != acct.DID {
		t.Errorf("PDS resolveHandle %s = %s, %v; want %s", acct.Handle, did, err, acct.DID)
	}
}

func TestE2EWrongPassword(t *testing.T) {
	ctx := e2eCtx(t)
	acct, _ := newAccount(t, ctx, "wrongpw", Options{})
	const wrong = "not-the-password-1234"
	_, err := Login(ctx, acct.PDS.URL, acct.Handle, wrong, Options{})
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	var xe *Error
	if !errors.As(err, &xe) || xe.Status != 401 || xe.Op != "com.atproto.server.createSession" {
		t.Errorf("err = %#v, want a 401 *Error of createSession", err)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("error shows the password: %v", err)
	}
	if _, err := Login(ctx, "http://pds.example", acct.Handle, wrong, Options{}); !errors.Is(err, ErrInsecureURL) {
		t.Errorf("plain http off loopback: err = %v, want ErrInsecureURL", err)
	}
}

func TestE2ECreateRecordExactlyOnce(t *testing.T) {
	ctx := e2eCtx(t)
	_, c := newAccount(t, ctx, "once", Options{})
	rkey := RecordKey("route-1", "https://example.com/item/1", time.Now())

	first, existed, err := c.CreateRecord(ctx, PostCollection, rkey, post("exactly once"), true)
	if err != nil {
		t.Fatal(err)
	}
	if existed || first.RKey != rkey || !strings.HasSuffix(first.URI, "/"+PostCollection+"/"+rkey) || first.CID == "" {
		t.Fatalf("first create = %+v existed=%v", first, existed)
	}
	// A retry, as after a lost answer: the same key, even a re-rendered record.
	second, existed, err := c.CreateRecord(ctx, PostCollection, rkey, post("exactly once, rendered again"), true)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if !existed || second.URI != first.URI || second.CID != first.CID {
		t.Fatalf("retry = %+v existed=%v, want the first record %+v", second, existed, first)
	}
	recs, _, err := c.ListRecords(ctx, PostCollection, "", 100, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("%d records after two creates of one key, want 1", len(recs))
	}
	if p, ok := recs[0].Value.(*bsky.FeedPost); !ok || p.Text != "exactly once" {
		t.Errorf("stored record = %#v, want the first text", recs[0].Value)
	}

	// A record the lexicon rejects is an error, not "already exists".
	if _, _, err := c.CreateRecord(ctx, PostCollection, RecordKey("route-1", "bad", time.Now()), &bsky.FeedPost{Text: "no date"}, true); err == nil {
		t.Error("a post without createdAt was accepted")
	}
}

// answerDropper passes requests to the server and, while armed, throws the answer of a
// matching one away, as a connection that breaks after the server acted.
type answerDropper struct {
	base   http.RoundTripper
	method string // the XRPC method whose answers are lost
	armed  atomic.Int32
}

func (d *answerDropper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := d.base.RoundTrip(req)
	if err == nil && strings.HasSuffix(req.URL.Path, "/"+d.method) && d.armed.Add(-1) >= 0 {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errors.New("connection reset after the request was sent")
	}
	return resp, err
}

func TestE2ECreateRecordLostAnswer(t *testing.T) {
	ctx := e2eCtx(t)
	drop := &answerDropper{base: http.DefaultTransport, method: "com.atproto.repo.createRecord"}
	_, c := newAccount(t, ctx, "lost", Options{HTTPClient: &http.Client{Transport: drop}})
	rkey := RecordKey("route-lost", "origin", time.Now())

	// The PDS stores the record, the answer never arrives: CreateRecord finds the record
	// under its key and reports it, so the caller neither loses it nor posts it again.
	drop.armed.Store(1)
	rec, existed, err := c.CreateRecord(ctx, PostCollection, rkey, post("answer lost"), true)
	if err != nil {
		t.Fatalf("create with a lost answer: %v", err)
	}
	if !existed || rec.RKey != rkey || rec.CID == "" {
		t.Fatalf("create with a lost answer = %+v existed=%v, want the stored record", rec, existed)
	}
	// And the caller's retry (it may not trust the first outcome) is still one record.
	if _, existed, err := c.CreateRecord(ctx, PostCollection, rkey, post("answer lost"), true); err != nil || !existed {
		t.Fatalf("retry: existed=%v err=%v", existed, err)
	}
	recs, _, err := c.ListRecords(ctx, PostCollection, "", 100, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
}

// testPNG returns a PNG of w×h pixels with noise, so it does not compress to nothing.
func testPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	seed := uint32(2463534242)
	for y := range h {
		for x := range w {
			seed ^= seed << 13
			seed ^= seed >> 17
			seed ^= seed << 5
			img.Set(x, y, color.RGBA{uint8(seed), uint8(seed >> 8), uint8(x + y), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestE2EPostWithImageAndAltText(t *testing.T) {
	ctx := e2eCtx(t)
	_, c := newAccount(t, ctx, "image", Options{})
	data := testPNG(t, 64, 48)
	blob, err := c.UploadBlob(ctx, data, "image/png")
	if err != nil {
		t.Fatal(err)
	}
	if blob.MimeType != "image/png" || blob.Size != int64(len(data)) {
		t.Errorf("blob = %s %d bytes, want image/png %d", blob.MimeType, blob.Size, len(data))
	}
	const alt = "A ferry 🚢 crossing at dusk — 渡し船"
	p := post("with a picture")
	p.Embed = &bsky.FeedPost_Embed{EmbedImages: &bsky.EmbedImages{Images: []*bsky.EmbedImages_Image{{
		Alt:         alt,
		Image:       blob,
		AspectRatio: &bsky.EmbedDefs_AspectRatio{Width: 64, Height: 48},
	}}}}
	rkey := RecordKey("route-img", "origin-1", time.Now())
	if _, _, err := c.CreateRecord(ctx, PostCollection, rkey, p, true); err != nil {
		t.Fatal(err)
	}
	rec, err := c.GetRecord(ctx, PostCollection, rkey)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := rec.Value.(*bsky.FeedPost)
	if !ok || got.Embed == nil || got.Embed.EmbedImages == nil || len(got.Embed.EmbedImages.Images) != 1 {
		t.Fatalf("stored post = %#v, want one image", rec.Value)
	}
	img := got.Embed.EmbedImages.Images[0]
	if img.Alt != alt || img.Image == nil || img.Image.Ref.String() != blob.Ref.String() || img.AspectRatio.Width != 64 {
		t.Errorf("stored image = alt %q ref %v aspect %+v, want %q %v 64x48", img.Alt, img.Image, img.AspectRatio, alt, blob.Ref)
	}

	// Over the PDS's upload limit (5 MB by default): a typed error.
	big := bytes.Repeat([]byte{0xff}, 5*1024*1024+1)
	if _, err := c.UploadBlob(ctx, big, "image/png"); !errors.Is(err, ErrBlobTooLarge) {
		t.Errorf("oversize upload: err = %v, want ErrBlobTooLarge", err)
	}
}

func TestE2EListRecordsPaging(t *testing.T) {
	ctx := e2eCtx(t)
	_, c := newAccount(t, ctx, "paging", Options{})
	const n = 33
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var keys []string
	for i := range n {
		k := RecordKey("route-page", "origin-"+string(rune('A'+i)), base.Add(time.Duration(i)*time.Second))
		keys = append(keys, k)
		if _, _, err := c.CreateRecord(ctx, PostCollection, k, post("post "+k), true); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	for _, reverse := range []bool{false, true} {
		var got []string
		cursor, pages := "", 0
		for {
			recs, next, err := c.ListRecords(ctx, PostCollection, cursor, 10, reverse)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) > 10 {
				t.Fatalf("page of %d records, asked for 10", len(recs))
			}
			for _, r := range recs {
				p, ok := r.Value.(*bsky.FeedPost)
				if !ok || p.Text != "post "+r.RKey {
					t.Errorf("record %s = %#v", r.RKey, r.Value)
				}
				got = append(got, r.RKey)
			}
			pages++
			if next == "" {
				break
			}
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			cursor = next
		}
		want := slices.Clone(keys)
		if !reverse {
			slices.Reverse(want) // newest key first
		}
		if !slices.Equal(got, want) {
			t.Errorf("reverse=%v: listed %d keys %v,\nwant %d %v", reverse, len(got), got, len(want), want)
		}
		if pages < 4 {
			t.Errorf("reverse=%v: %d pages for %d records of 10 a page", reverse, pages, n)
		}
	}
}

func TestE2EDeleteRecord(t *testing.T) {
	ctx := e2eCtx(t)
	_, c := newAccount(t, ctx, "delete", Options{})
	rkey := RecordKey("route-del", "origin", time.Now())
	if _, _, err := c.CreateRecord(ctx, PostCollection, rkey, post("short-lived"), true); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteRecord(ctx, PostCollection, rkey); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetRecord(ctx, PostCollection, rkey); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: err = %v, want ErrNotFound", err)
	}
	if err := c.DeleteRecord(ctx, PostCollection, rkey); err != nil {
		t.Errorf("deleting a deleted record: %v", err)
	}
}

func TestE2EFacetsLandOnTheRightBytes(t *testing.T) {
	ctx := e2eCtx(t)
	friend, _ := newAccount(t, ctx, "friend", Options{})
	_, c := newAccount(t, ctx, "facets", Options{})
	text := "🚢 渡し船で東京へ 👩‍👩‍👧 https://example.com/東京?q=1 に @" + friend.Handle + " さんと ＃フェリー #ferry🚢 🇯🇵"
	facets, err := Facets(ctx, text, c.ResolveHandle)
	if err != nil {
		t.Fatal(err)
	}
	p := post(text)
	p.Facets = facets
	rkey := RecordKey("route-facets", "origin", time.Now())
	if _, _, err := c.CreateRecord(ctx, PostCollection, rkey, p, true); err != nil {
		t.Fatal(err)
	}
	rec, err := c.GetRecord(ctx, PostCollection, rkey)
	if err != nil {
		t.Fatal(err)
	}
	got := rec.Value.(*bsky.FeedPost)
	if got.Text != text {
		t.Fatalf("stored text %q, want %q", got.Text, text)
	}
	want := []facetSpan{
		{"https://example.com/東京?q=1", "link", "https://example.com/東京?q=1"},
		{"@" + friend.Handle, "mention", friend.DID},
		{"＃フェリー", "tag", "フェリー"},
		{"#ferry🚢", "tag", "ferry🚢"},
	}
	spans := spans(t, got.Text, got.Facets)
	if !slices.Equal(spans, want) {
		t.Errorf("stored facets cover %+v,\nwant %+v", spans, want)
	}
	if n := Graphemes(text); n > MaxPostGraphemes {
		t.Errorf("test text has %d graphemes", n)
	}
}

func TestE2ESessionRefresh(t *testing.T) {
	ctx := e2eCtx(t)
	env := testenv.SharedPDS(t, 1)
	var refreshed []Session
	acct, c := newAccount(t, ctx, "refresh", Options{OnRefresh: func(s Session) { refreshed = append(refreshed, s) }})
	orig := c.Session()

	// An access token past its expiry, signed as the PDS signs them: the PDS answers
	// ExpiredToken, and the client refreshes and repeats the call.
	expired := reSignJWT(t, orig.AccessJWT, env.JWTSecret, time.Now().Add(-time.Minute))
	stale := orig
	stale.AccessJWT = expired
	c2, err := NewClient(stale, Options{OnRefresh: func(s Session) { refreshed = append(refreshed, s) }})
	if err != nil {
		t.Fatal(err)
	}
	var raw *Error
	_, err = comatproto.ServerGetSession(ctx, &xrpc.Client{Host: c2.PDS(), Auth: &xrpc.AuthInfo{AccessJwt: expired}})
	if err = wrap("getSession", err); !errors.As(err, &raw) || raw.Name != "ExpiredToken" {
		t.Fatalf("the forged token is not expired for the PDS: %v", err)
	}
	got, err := c2.GetSession(ctx)
	if err != nil {
		t.Fatalf("call with an expired access token: %v", err)
	}
	if got.Did != acct.DID || len(refreshed) != 1 {
		t.Fatalf("getSession = %s after %d refreshes, want %s after 1", got.Did, len(refreshed), acct.DID)
	}
	fresh := c2.Session()
	if fresh.AccessJWT == expired || fresh.RefreshJWT == orig.RefreshJWT || refreshed[0] != fresh {
		t.Error("the refresh did not replace the tokens, or OnRefresh saw other ones")
	}
	// When the refresh token is refused too, the account must log in again: ErrAuth.
	dead := fresh
	dead.AccessJWT, dead.RefreshJWT = "not-a-token", "not-a-token-either"
	c4, err := NewClient(dead, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c4.GetSession(ctx); !errors.Is(err, ErrAuth) {
		t.Fatalf("refused refresh token: err = %v, want ErrAuth", err)
	}

	// An expired access token on an upload: the body is sent again after the refresh.
	upload := c2.Session()
	upload.AccessJWT = reSignJWT(t, upload.AccessJWT, env.JWTSecret, time.Now().Add(-time.Second))
	var uploadRefreshes int
	c3, err := NewClient(upload, Options{OnRefresh: func(Session) { uploadRefreshes++ }})
	if err != nil {
		t.Fatal(err)
	}
	data := testPNG(t, 8, 8)
	blob, err := c3.UploadBlob(ctx, data, "image/png")
	if err != nil {
		t.Fatalf("upload with an expired access token: %v", err)
	}
	if blob.Size != int64(len(data)) || uploadRefreshes != 1 {
		t.Errorf("retried upload stored %d bytes after %d refreshes, want %d after 1", blob.Size, uploadRefreshes, len(data))
	}

	// A garbage access token with a good refresh token, on a write: refreshed too.
	broken := c3.Session()
	broken.AccessJWT = "garbage"
	var writeRefreshes int
	c5, err := NewClient(broken, Options{OnRefresh: func(Session) { writeRefreshes++ }})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c5.CreateRecord(ctx, PostCollection, RecordKey("route-refresh", "x", time.Now()), post("after refresh"), true); err != nil {
		t.Fatalf("create with an invalid access token: %v", err)
	}
	if c5.Session().AccessJWT == "garbage" || writeRefreshes != 1 {
		t.Errorf("after %d refreshes the access token is still the garbage one: %v", writeRefreshes, c5.Session().AccessJWT == "garbage")
	}
}

// reSignJWT returns token with its exp claim set to exp, signed again with HS256 and
// secret, as the PDS signs its access tokens.
func reSignJWT(t *testing.T, token, secret string, exp time.Time) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d parts", len(parts))
	}
	enc := base64.RawURLEncoding
	payload, err := enc.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	claims["exp"] = exp.Unix()
	claims["iat"] = exp.Add(-time.Hour).Unix()
	payload, err = json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed := parts[0] + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(mac.Sum(nil))
}

var _ lexutil.LexClient = (*Client)(nil)
