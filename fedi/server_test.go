package fedi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func clientFor(t *testing.T, h http.Handler) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL)
	hc, _ := NewHTTPClient(HTTPOptions{})
	return NewClient(base, "", hc)
}

// A plain web site: no nodeinfo, HTML everywhere.
func TestDetectNonFediverseSite(t *testing.T) {
	c := clientFor(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		if r.URL.Path == "/" {
			w.Write([]byte("<html>hello</html>"))
			return
		}
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("<html>not found</html>"))
	}))
	_, err := Detect(context.Background(), c)
	if !errors.Is(err, ErrNotFediverse) {
		t.Fatalf("got %v, want ErrNotFediverse", err)
	}
}

// A site that answers every path with a 200 HTML page (a catch-all SPA or a
// captive portal): the error must say it was not JSON, not "invalid character".
func TestDetectHTMLInsteadOfJSON(t *testing.T) {
	c := clientFor(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<!doctype html><html><body>Welcome</body></html>"))
	}))
	_, err := Detect(context.Background(), c)
	if !errors.Is(err, ErrNotFediverse) || !errors.Is(err, ErrNotJSON) {
		t.Fatalf("got %v, want ErrNotFediverse wrapping ErrNotJSON", err)
	}
	if strings.Contains(err.Error(), "invalid character") {
		t.Fatalf("error leaks a JSON decoder message: %v", err)
	}
}

func TestDetectNodeinfoWithoutSoftware(t *testing.T) {
	c := clientFor(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/nodeinfo":
			w.Write([]byte(`{"links":[{"rel":"http://nodeinfo.diaspora.software/ns/schema/2.0","href":"https://elsewhere.example/nodeinfo/2.0"}]}`))
		case "/nodeinfo/2.0":
			w.Write([]byte(`{"version":"2.0"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	_, err := Detect(context.Background(), c)
	if !errors.Is(err, ErrNotFediverse) {
		t.Fatalf("got %v, want ErrNotFediverse", err)
	}
}

func TestDetectTimeout(t *testing.T) {
	release := make(chan struct{})
	c := clientFor(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Detect(ctx, c)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("Detect ignored its deadline (%s)", time.Since(start))
	}
}

// Pleroma and Akkoma have no /api/v2/instance; their limits come from v1's
// max_toot_chars, the rest from defaults. Shapes from Pleroma's
// docs/development/API/differences_in_mastoapi_responses.md.
func TestDetectPleromaStyleInstance(t *testing.T) {
	c := clientFor(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/nodeinfo":
			w.Write([]byte(`{"links":[{"rel":"http://nodeinfo.diaspora.software/ns/schema/2.1","href":"/nodeinfo/2.1.json"},{"rel":"http://nodeinfo.diaspora.software/ns/schema/2.0","href":"/nodeinfo/2.0.json"}]}`))
		case "/nodeinfo/2.1.json":
			w.Write([]byte(`{"software":{"name":"akkoma","version":"3.13.2"}}`))
		case "/api/v1/instance":
			w.Write([]byte(`{"title":"Akko","max_toot_chars":8000}`))
		default:
			http.NotFound(w, r)
		}
	}))
	srv, err := Detect(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Software != (Software{Name: "akkoma", Version: "3.13.2"}) {
		t.Errorf("software %+v", srv.Software)
	}
	if srv.Limits.MaxChars != 8000 || srv.Limits.MaxMedia != 10 {
		t.Errorf("limits %+v", srv.Limits)
	}
	if !strings.HasPrefix(srv.LimitsFrom, "api/v1/instance + defaults for akkoma") {
		t.Errorf("limits from %q", srv.LimitsFrom)
	}
}

func TestAPIErrorMessages(t *testing.T) {
	c := clientFor(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"The access token is invalid"}`))
	}))
	_, err := VerifyCredentials(context.Background(), c)
	if !IsUnauthorized(err) {
		t.Fatalf("got %v, want an unauthorized error", err)
	}
	if !strings.Contains(err.Error(), "The access token is invalid") || strings.Contains(err.Error(), "?") {
		t.Fatalf("error %q should carry the server's message and no query string", err)
	}
}
