package testenv

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

func TestFederatedFollow(t *testing.T) {
	begin := time.Now()
	env := Shared(t, 2)
	t.Logf("Shared(2) ready after %v", time.Since(begin).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	a, b := env.Instances[0], env.Instances[1]
	if a.Host == b.Host || !strings.HasPrefix(a.BaseURL, "https://localhost:") {
		t.Fatalf("unexpected hosts %q, %q", a.BaseURL, b.BaseURL)
	}

	begin = time.Now()
	alice, err := a.CreateUser(ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("CreateUser (locked) took %v", time.Since(begin).Round(time.Millisecond))
	begin = time.Now()
	bob, err := b.CreateUser(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("CreateUser (unlocked) took %v", time.Since(begin).Round(time.Millisecond))
	for _, u := range []*User{alice, bob} {
		if u.ID == "" || u.Token == "" || u.URI != u.Instance.BaseURL+"/users/"+u.Username ||
			u.Acct != u.Username+"@"+u.Instance.Host {
			t.Errorf("incomplete user %+v", u)
		}
	}

	// Federation: alice@a looks bob@b up through WebFinger over https and follows him;
	// bob is unlocked, so b accepts automatically and the Accept federates back.
	bobID, err := alice.Resolve(ctx, bob.Acct)
	if err != nil {
		t.Fatal(err)
	}
	var rel Relationship
	if err := alice.API(ctx, http.MethodPost, "/api/v1/accounts/"+bobID+"/follow", nil, &rel); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !rel.Following {
		if time.Now().After(deadline) {
			t.Fatalf("alice does not follow bob after 30 s: %+v", rel)
		}
		time.Sleep(250 * time.Millisecond)
		r, err := alice.Relationship(ctx, bobID)
		if err != nil {
			t.Fatal(err)
		}
		rel = *r
	}

	// And the other side knows about it.
	aliceID, err := bob.Resolve(ctx, alice.Acct)
	if err != nil {
		t.Fatal(err)
	}
	r, err := bob.Relationship(ctx, aliceID)
	if err != nil {
		t.Fatal(err)
	}
	if !r.FollowedBy {
		t.Errorf("bob's view: followed_by=false: %+v", r)
	}
}

func TestAuthorizeOOB(t *testing.T) {
	env := Shared(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	in := env.Instances[1]
	u, err := in.CreateUser(ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}

	// What ferry's login does: register an OOB app, print the authorization URL...
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	form := url.Values{"client_name": {"ferry-login-test"}, "redirect_uris": {OOB}, "scopes": {"read write"}}
	if err := in.call(ctx, "", http.MethodPost, "/api/v1/apps", form, &app); err != nil {
		t.Fatal(err)
	}
	authURL := in.BaseURL + "/oauth/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {app.ClientID},
		"redirect_uri": {OOB}, "scope": {"read write"}, "state": {"xyz"},
	}.Encode()

	// ...and the person approves it in a browser.
	redirect, code, err := in.Authorize(ctx, authURL, u)
	if err != nil {
		t.Fatal(err)
	}
	if redirect.Host != in.Host || redirect.Path != "/oauth/oob" || code == "" || redirect.Query().Get("code") != code {
		t.Fatalf("redirect %s, code %q", redirect, code)
	}
	if s := redirect.Query().Get("state"); s != "xyz" {
		t.Errorf("state %q, want xyz", s)
	}

	var tok struct {
		AccessToken string `json:"access_token"`
	}
	form = url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {app.ClientID},
		"client_secret": {app.ClientSecret}, "redirect_uri": {OOB}}
	if err := in.call(ctx, "", http.MethodPost, "/oauth/token", form, &tok); err != nil {
		t.Fatal(err)
	}
	var acct struct {
		Username string `json:"username"`
	}
	other := &User{Token: tok.AccessToken, Instance: in}
	if err := other.API(ctx, http.MethodGet, "/api/v1/accounts/verify_credentials", nil, &acct); err != nil {
		t.Fatal(err)
	}
	if acct.Username != u.Username {
		t.Errorf("token belongs to %q, want %q", acct.Username, u.Username)
	}

	// A wrong password does not get a code.
	bad := *u
	bad.Password = "wrong-password"
	if _, _, err := in.Authorize(ctx, authURL, &bad); err == nil {
		t.Error("Authorize with a wrong password succeeded")
	}
}

func TestRateLimit(t *testing.T) {
	const limit = 20
	begin := time.Now()
	env := StartT(t, 1, Options{RateLimitRequests: limit})
	t.Logf("Start(1, limit %d) took %v", limit, time.Since(begin).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in := env.Instances[0]
	anon := &User{Instance: in}
	var apiErr *APIError
	for i := 0; i < 3*limit; i++ {
		err := anon.API(ctx, http.MethodGet, "/api/v1/instance", nil, nil)
		if err == nil {
			continue
		}
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("request %d: %v", i, err)
		}
		break
	}
	if apiErr == nil {
		t.Fatalf("no 429 after %d requests with a limit of %d", 3*limit, limit)
	}
	h := apiErr.Header
	if h.Get("X-Ratelimit-Limit") != "20" || h.Get("X-Ratelimit-Remaining") != "0" || h.Get("X-Ratelimit-Reset") == "" {
		t.Errorf("429 headers: limit %q remaining %q reset %q",
			h.Get("X-Ratelimit-Limit"), h.Get("X-Ratelimit-Remaining"), h.Get("X-Ratelimit-Reset"))
	}
}

func TestStopRestart(t *testing.T) {
	env := Shared(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	in := env.Instances[1]
	begin := time.Now()
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop took %v", time.Since(begin).Round(time.Millisecond))
	if in.Running() {
		t.Fatal("still running after Stop")
	}
	anon := &User{Instance: in}
	if err := anon.API(ctx, http.MethodGet, "/api/v1/instance", nil, nil); err == nil {
		t.Fatal("stopped instance still answers")
	}
	begin = time.Now()
	if err := in.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Restart took %v", time.Since(begin).Round(time.Millisecond))
	if err := anon.API(ctx, http.MethodGet, "/api/v1/instance", nil, nil); err != nil {
		t.Fatal(err)
	}
}
