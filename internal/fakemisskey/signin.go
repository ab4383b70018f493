package fakemisskey

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Sign-in, after misskey-dev/misskey packages/backend/src/server/api/
// SigninApiService.ts and SigninService.ts (the web client's password
// sign-in), routed in ApiServerService.ts as POST /api/signin-flow (Misskey
// 2024.10 and later); Config.LegacySignin serves POST /api/signin instead,
// as Misskey up to 2024.9 and the forks based on it do. Neither goes
// through ApiCallService: no token, no paramDef, errors {"error":{"id"}}.
//
// A successful sign-in answers the account's native token (user.token in
// Misskey: the web client's own, with every permission and accepted by
// "secure" endpoints), and leaves a "login" notification, which the fake
// counts (Logins).

// The sign-in's error ids (SigninApiService.ts).
const (
	signinIDWrong     = "932c904e-9460-45b7-9ce6-7ed33be7eb2c" // wrong password or one-time code
	signinIDNoUser    = "6cc579cc-885d-43d8-95c2-b8c7fc963280"
	signinIDSuspended = "e03a5f46-d309-4865-9b69-56282d94e1eb"
)

// EnableTwoFactor turns on the user's two-factor authentication with the
// TOTP secret (base32, as Misskey keeps twoFactorSecret); TOTP computes
// its codes. securityKeys also registers a security key (WebAuthn), which
// Misskey allows only with two-factor authentication on.
func (s *Server) EnableTwoFactor(userID, secret string, securityKeys bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[userID]
	u.TOTPSecret, u.SecurityKeys = secret, securityKeys
}

// Suspend suspends the user (a sign-in is refused).
func (s *Server) Suspend(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[userID].Suspended = true
}

// Logins counts the user's successful sign-ins (each one a "login"
// notification, and an email when the account has a verified address).
func (s *Server) Logins(userID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[userID].Logins
}

// NativeToken returns the user's native token ("" before a sign-in made
// it), for tests that check it is not where it must not be.
func (s *Server) NativeToken(userID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[userID].NativeToken
}

// TOTP is the RFC 6238 code of secret (base32) at t: HMAC-SHA1, 30-second
// steps, 6 digits, as otpauth's TOTP computes it for Misskey
// (UserAuthService.twoFactorAuthenticate).
func TOTP(secret string, t time.Time) string {
	return totpAt(secret, t.Unix()/30)
}

func totpAt(secret string, step int64) string {
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(strings.TrimRight(secret, "=")))
	if err != nil {
		return ""
	}
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	h := hmac.New(sha1.New, key)
	h.Write(msg[:])
	sum := h.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	n := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", n%1_000_000)
}

// totpValid checks code as UserAuthService does: OTPAuth.TOTP.validate
// with window 5, i.e. the steps from 5 before to 5 after now.
func totpValid(secret, code string) bool {
	now := time.Now().Unix() / 30
	for d := int64(-5); d <= 5; d++ {
		if code != "" && totpAt(secret, now+d) == code {
			return true
		}
	}
	return false
}

// signin answers one sign-in attempt, in SigninApiService.signin's order.
func (s *Server) signin(w http.ResponseWriter, r *http.Request, legacy bool) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, 400, map[string]any{"statusCode": 400, "code": "FST_ERR_CTP_INVALID_JSON_BODY",
			"error": "Bad Request", "message": "Body is not valid JSON"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := "signin-flow"
	if legacy {
		name = "signin"
	}
	s.calls[name]++
	fail := func(status int, id string) { writeJSON(w, status, map[string]any{"error": map[string]any{"id": id}}) }

	// The limit comes first and counts every attempt, keyed by the IP.
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	if lim, ok := s.limits["signin"]; ok && !s.allow("signin\x00"+ip, lim) {
		writeJSON(w, 429, map[string]any{"error": map[string]any{
			"message": "Rate limit exceeded. Please try again later.", "code": "RATE_LIMIT_EXCEEDED",
			"id": "22d05606-fbcf-421a-a2db-b32610dcfd1b",
			"info": map[string]any{"message": "Too many failed attempts to sign in.",
				"code": "TOO_MANY_AUTHENTICATION_FAILURES", "id": "6c181469-ecb9-42d2-82c9-60db5486a819"}}})
		return
	}
	username, ok := body["username"].(string)
	if !ok {
		w.WriteHeader(400)
		return
	}
	token, hasToken := body["token"].(string)
	if body["token"] != nil && !hasToken {
		w.WriteHeader(400)
		return
	}
	var u *user
	for _, c := range s.users {
		if c.Host == "" && strings.EqualFold(c.Username, username) {
			u = c
		}
	}
	if u == nil {
		fail(403, signinIDNoUser)
		return
	}
	if u.Suspended {
		fail(403, signinIDSuspended)
		return
	}
	twoFactor := u.TOTPSecret != ""
	password, ok := body["password"].(string)
	if body["password"] == nil {
		if legacy {
			w.WriteHeader(400)
			return
		}
		next := "captcha"
		if twoFactor {
			next = "password"
		}
		writeJSON(w, 200, map[string]any{"finished": false, "next": next})
		return
	}
	if !ok {
		w.WriteHeader(400)
		return
	}
	same := password == u.Password
	if !twoFactor {
		if s.cfg.Captcha != "" && body[captchaField[s.cfg.Captcha]] == nil {
			// CaptchaService.verify…: "…-failed: no response provided",
			// thrown as FastifyReplyError(400, …) before the password
			// is compared. Checked against Misskey 2025.4.x (MisskeyIO
			// fork) on loopback with the test captcha on:
			// {"statusCode":400,"error":"Bad Request","message":
			// "CaptchaError: testcaptcha-failed: no response provided"}.
			writeJSON(w, 400, map[string]any{"statusCode": 400, "error": "Bad Request",
				"message": "CaptchaError: " + s.cfg.Captcha + "-failed: no response provided"})
			return
		}
		if !same {
			fail(403, signinIDWrong)
			return
		}
		s.signedIn(w, u, legacy)
		return
	}
	switch {
	case hasToken:
		if !same || !totpValid(u.TOTPSecret, token) {
			fail(403, signinIDWrong)
			return
		}
		s.signedIn(w, u, legacy)
	case u.SecurityKeys:
		if !same {
			fail(403, signinIDWrong)
			return
		}
		writeJSON(w, 200, map[string]any{"finished": false, "next": "passkey", "authRequest": map[string]any{
			"challenge": randomToken(), "allowCredentials": []any{}}})
	case legacy:
		// Misskey up to 2024.9 answers a WebAuthn challenge here, without
		// a token (from its SigninApiService of that time; not checked
		// against a real server).
		if !same {
			fail(403, signinIDWrong)
			return
		}
		writeJSON(w, 200, map[string]any{"challenge": randomToken(), "allowCredentials": []any{}})
	default:
		if !same {
			fail(403, signinIDWrong)
			return
		}
		writeJSON(w, 200, map[string]any{"finished": false, "next": "totp"})
	}
}

// captchaField names the body's answer of each captcha
// (SigninApiService.signin's Body).
var captchaField = map[string]string{"hcaptcha": "hcaptcha-response", "mcaptcha": "m-captcha-response",
	"recaptcha": "g-recaptcha-response", "turnstile": "turnstile-response", "testcaptcha": "testcaptcha-response"}

// signedIn is SigninService.signin: a "login" notification, and the
// native token ({finished, id, i}; the older route {id, i}).
func (s *Server) signedIn(w http.ResponseWriter, u *user, legacy bool) {
	if u.NativeToken == "" {
		u.NativeToken = randomToken()
		s.tokens[u.NativeToken] = &token{UserID: u.ID}
	}
	u.Logins++
	if legacy {
		writeJSON(w, 200, map[string]any{"id": u.ID, "i": u.NativeToken})
		return
	}
	writeJSON(w, 200, map[string]any{"finished": true, "id": u.ID, "i": u.NativeToken})
}

// allow applies lim to key, recording the attempt when it is allowed.
// Called with s.mu held.
func (s *Server) allow(key string, lim RateLimit) bool {
	now := time.Now()
	var kept []time.Time
	for _, t := range s.hits[key] {
		if now.Sub(t) < lim.Duration {
			kept = append(kept, t)
		}
	}
	s.hits[key] = kept
	if lim.MinInterval > 0 && len(kept) > 0 && now.Sub(kept[len(kept)-1]) < lim.MinInterval {
		return false
	}
	if lim.Max > 0 && len(kept) >= lim.Max {
		return false
	}
	s.hits[key] = append(kept, now)
	return true
}
