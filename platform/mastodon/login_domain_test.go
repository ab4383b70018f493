package mastodon

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/platform"
)

// Logging in at http://127.0.0.1:PORT to a server whose domain is
// localhost:PORT must store alice@localhost:PORT: the handle becomes an
// alias or a Move target, and other servers know only the domain.
func TestLoginHandleUsesServerDomain(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/accounts/verify_credentials":
			w.Write([]byte(`{"id":"1","username":"alice","acct":"alice"}`))
		case "/api/v1/instance":
			w.Write([]byte(`{"uri":"localhost:8001","title":"t"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	if !strings.Contains(srv.URL, "127.0.0.1") {
		t.Skip("httptest did not listen on 127.0.0.1")
	}
	acct, err := New(platform.Env{}).Login(context.Background(), platform.LoginRequest{Server: srv.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	if acct.Handle != "alice@localhost:8001" {
		t.Fatalf("handle %q, want alice@localhost:8001", acct.Handle)
	}
}
