package misskey_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/fakemisskey"
	"github.com/fedi-ferry/ferry/misskey"
)

const totpSecret = "JBSWY3DPEHPK3PXP"

// fastLimit lets sign-in attempts come 10 ms apart.
var fastLimit = map[string]fakemisskey.RateLimit{"signin": {Max: 10, Duration: time.Hour, MinInterval: 10 * time.Millisecond}}

// SignIn answers the account's native token, which the fake's secure
// endpoint i/move takes where an app's token is refused; its failures
// are typed.
func TestSignIn(t *testing.T) {
	fastSignIn(t)
	for _, legacy := range []bool{false, true} {
		name := "signin-flow"
		if legacy {
			name = "signin"
		}
		t.Run(name, func(t *testing.T) {
			srv, base := start(t, fakemisskey.Config{LegacySignin: legacy, RateLimits: fastLimit})
			id := srv.AddUser("alice", "right horse battery")
			c := misskey.NewClient(base, "", misskey.Options{})
			ctx := t.Context()

			if _, err := c.SignIn(ctx, "alice", "wrong", ""); !errors.Is(err, misskey.ErrWrongPassword) {
				t.Fatalf("wrong password: %v", err)
			}
			if _, err := c.SignIn(ctx, "nobody", "x", ""); !errors.Is(err, misskey.ErrNoSuchUser) {
				t.Fatalf("unknown user: %v", err)
			}
			tok, err := c.SignIn(ctx, "alice", "right horse battery", "")
			if err != nil {
				t.Fatal(err)
			}
			if tok == "" || tok != srv.NativeToken(id) || srv.Logins(id) != 1 {
				t.Fatalf("token %q, native %q, logins %d", tok, srv.NativeToken(id), srv.Logins(id))
			}
			if !legacy && srv.Calls("signin-flow") != 3 {
				t.Errorf("signin-flow called %d times", srv.Calls("signin-flow"))
			}
			if legacy && srv.Calls("signin") != 3 || !legacy && srv.Calls("signin") != 0 {
				t.Errorf("signin called %d times", srv.Calls("signin"))
			}
			// The token is a session's: i/move (secure) takes it.
			var me struct{ ID string }
			if err := c.WithToken(tok).Call(ctx, "i", nil, &me, false); err != nil || me.ID != id {
				t.Fatalf("i with the native token: %v %+v", err, me)
			}

			srv.Suspend(id)
			if _, err := c.SignIn(ctx, "alice", "right horse battery", ""); !errors.Is(err, misskey.ErrSuspended) {
				t.Fatalf("suspended: %v", err)
			}
		})
	}
}

// With two-factor authentication the server asks for the code ("totp",
// or on the older route a WebAuthn challenge), takes the right one and
// refuses a wrong one as it refuses a wrong password.
func TestSignInTwoFactor(t *testing.T) {
	fastSignIn(t)
	for _, legacy := range []bool{false, true} {
		t.Run(map[bool]string{false: "signin-flow", true: "signin"}[legacy], func(t *testing.T) {
			srv, base := start(t, fakemisskey.Config{LegacySignin: legacy, RateLimits: fastLimit})
			id := srv.AddUser("bob", "pw-bob")
			srv.EnableTwoFactor(id, totpSecret, false)
			c := misskey.NewClient(base, "", misskey.Options{})
			ctx := t.Context()
			if _, err := c.SignIn(ctx, "bob", "pw-bob", ""); !errors.Is(err, misskey.ErrCodeNeeded) {
				t.Fatalf("without the code: %v", err)
			}
			if _, err := c.SignIn(ctx, "bob", "pw-bob", "000000"); !errors.Is(err, misskey.ErrWrongPassword) {
				t.Fatalf("a wrong code: %v", err)
			}
			if _, err := c.SignIn(ctx, "bob", "pw-bob", fakemisskey.TOTP(totpSecret, time.Now())); err != nil {
				t.Fatalf("the right code: %v", err)
			}
			if srv.Logins(id) != 1 {
				t.Errorf("logins %d", srv.Logins(id))
			}
		})
	}
	// A security key too: signin-flow answers "passkey" without a code,
	// and takes the TOTP code first, as SigninApiService does.
	srv, base := start(t, fakemisskey.Config{RateLimits: fastLimit})
	id := srv.AddUser("carol", "pw")
	srv.EnableTwoFactor(id, totpSecret, true)
	c := misskey.NewClient(base, "", misskey.Options{})
	if _, err := c.SignIn(t.Context(), "carol", "pw", ""); !errors.Is(err, misskey.ErrCodeNeeded) {
		t.Fatalf("passkey without the code: %v", err)
	}
	if _, err := c.SignIn(t.Context(), "carol", "pw", fakemisskey.TOTP(totpSecret, time.Now())); err != nil {
		t.Fatalf("passkey account with the code: %v", err)
	}
}

// fastSignIn spaces sign-in attempts by 10 ms for the test, the fake
// being told to take them so.
func fastSignIn(t *testing.T) {
	old := misskey.SetSignInGap(10 * time.Millisecond)
	t.Cleanup(func() { misskey.SetSignInGap(old) })
}

// RFC 6238's test vector for SHA-1 (appendix B: the ASCII secret
// "12345678901234567890", T = 59 s, 8 digits 94287082; 6 digits 287082).
func TestFakeTOTPIsRFC6238(t *testing.T) {
	secret := "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // base32 of "12345678901234567890"
	if got := fakemisskey.TOTP(secret, time.Unix(59, 0)); got != "287082" {
		t.Fatalf("TOTP = %s, want 287082", got)
	}
	if got := fakemisskey.TOTP(secret, time.Unix(1111111109, 0)); got != "081804" {
		t.Fatalf("TOTP = %s, want 081804", got)
	}
}

// A captcha on the server refuses a password sign-in without its answer
// (400), which SignIn reports as ErrCaptcha; Meta names the captcha.
func TestSignInCaptcha(t *testing.T) {
	srv, base := start(t, fakemisskey.Config{Captcha: "hcaptcha"})
	srv.AddUser("dave", "pw")
	c := misskey.NewClient(base, "", misskey.Options{})
	info, err := misskey.Meta(t.Context(), c)
	if err != nil || len(info.Captchas) != 1 || info.Captchas[0] != "hcaptcha" {
		t.Fatalf("meta: %v %+v", err, info.Captchas)
	}
	if _, err := c.SignIn(t.Context(), "dave", "pw", ""); !errors.Is(err, misskey.ErrCaptcha) {
		t.Fatalf("sign-in under a captcha: %v", err)
	}
}

// The sign-in's own limit: attempts a second apart are taken (SignIn
// spaces them), the eleventh in an hour is refused with
// TOO_MANY_AUTHENTICATION_FAILURES, reported as *SignInLimitError and not
// retried.
func TestSignInLimit(t *testing.T) {
	srv, base := start(t, fakemisskey.Config{RateLimits: map[string]fakemisskey.RateLimit{
		"signin": {Max: 2, Duration: time.Hour, MinInterval: time.Second}}})
	srv.AddUser("erin", "pw")
	c := misskey.NewClient(base, "", misskey.Options{})
	for i := range 2 {
		if _, err := c.SignIn(t.Context(), "erin", "bad", ""); !errors.Is(err, misskey.ErrWrongPassword) {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	start := time.Now()
	_, err := c.SignIn(t.Context(), "erin", "pw", "")
	var le *misskey.SignInLimitError
	if !errors.As(err, &le) || le.Wait != time.Hour || !strings.Contains(err.Error(), "10 an hour") {
		t.Fatalf("third attempt: %v", err)
	}
	if srv.Calls("signin-flow") != 3 || time.Since(start) > 3*time.Second {
		t.Fatalf("signin-flow called %d times (a 429 must not be retried)", srv.Calls("signin-flow"))
	}
}

// Upstream Misskey (2025, SigninFlowApiService.ts) answers an unknown
// user with 404 and its error id, and a wrong one-time code with an id of
// its own; neither is "no such route" (no fallback to /api/signin).
func TestSignInUpstreamAnswers(t *testing.T) {
	fastSignIn(t)
	var legacyCalls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api/signin":
			legacyCalls.Add(1)
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"Route POST:/api/signin not found","error":"Not Found","statusCode":404}`)
		case body["username"] == "nobody":
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"id":"6cc579cc-885d-43d8-95c2-b8c7fc963280"}}`)
		default:
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":{"id":"cdf1235b-ac71-46d4-a3a6-84ccce48df6f"}}`)
		}
	}))
	defer ts.Close()
	base, err := misskey.ParseServer(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := misskey.NewClient(base, "", misskey.Options{})
	if _, err := c.SignIn(t.Context(), "nobody", "x", ""); !errors.Is(err, misskey.ErrNoSuchUser) {
		t.Errorf("unknown user on upstream: %v", err)
	}
	if _, err := c.SignIn(t.Context(), "alice", "pw", "123456"); !errors.Is(err, misskey.ErrWrongPassword) {
		t.Errorf("wrong code on upstream: %v", err)
	}
	if n := legacyCalls.Load(); n != 0 {
		t.Errorf("/api/signin tried %d times after answers from signin-flow", n)
	}
}
