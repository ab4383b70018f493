package fedi

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// Servers that speak only /api/v1/instance (Hollo, snac2, Mastodon before
// 4.0) publish poll and media limits there too; a server allowing 8 poll
// options must not be planned for Mastodon's default 4.
func TestDetectV1InstanceReadsPollAndMediaLimits(t *testing.T) {
	c := clientFor(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/nodeinfo":
			w.Write([]byte(`{"links":[{"rel":"http://nodeinfo.diaspora.software/ns/schema/2.1","href":"/nodeinfo/2.1"}]}`))
		case "/nodeinfo/2.1":
			w.Write([]byte(`{"software":{"name":"hollo","version":"0.10.0"}}`))
		case "/api/v1/instance":
			w.Write([]byte(`{"title":"Hollo","uri":"localhost:8001","configuration":{
				"statuses":{"max_characters":10000,"max_media_attachments":8,"characters_reserved_per_url":23},
				"media_attachments":{"supported_mime_types":["image/png"],"image_size_limit":16777216,"video_size_limit":104857600,"description_limit":3000},
				"polls":{"max_options":8,"max_characters_per_option":200}}}`))
		default:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte("<html>not found</html>"))
		}
	}))
	srv, err := Detect(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	l := srv.Limits
	if l.MaxPollOptions != 8 || l.MaxPollOptChars != 200 {
		t.Errorf("poll limits %d options / %d chars, want 8 / 200", l.MaxPollOptions, l.MaxPollOptChars)
	}
	if l.MaxImageBytes != 16777216 || l.MaxVideoBytes != 104857600 || l.MaxAltChars != 3000 {
		t.Errorf("media limits %+v", l)
	}
	if srv.Domain != "localhost:8001" {
		t.Errorf("domain %q, want localhost:8001", srv.Domain)
	}
	if strings.Contains(srv.LimitsFrom, "defaults") {
		t.Errorf("limits from %q: everything was published", srv.LimitsFrom)
	}
}

// The handle's domain is the server's own, not the address ferry reached
// it at; WebFinger answers when the instance document names none.
func TestAccountDomain(t *testing.T) {
	for _, tc := range []struct {
		name     string
		instance map[string]string // path -> body
		want     string
	}{
		{"v2 domain", map[string]string{"/api/v2/instance": `{"domain":"localhost:8001"}`}, "localhost:8001"},
		{"v1 uri with scheme", map[string]string{"/api/v1/instance": `{"uri":"https://Social.Example/"}`}, "social.example"},
		{"webfinger", map[string]string{"/.well-known/webfinger": `{"subject":"acct:alice@localhost:8001"}`}, "localhost:8001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clientFor(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if body, ok := tc.instance[r.URL.Path]; ok {
					w.Write([]byte(body))
					return
				}
				http.NotFound(w, r)
			}))
			if got := AccountDomain(context.Background(), c, "alice"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	c := clientFor(t, http.NotFoundHandler())
	if got := AccountDomain(context.Background(), c, "alice"); got != c.Base().Host {
		t.Errorf("nothing published: got %q, want the host %q", got, c.Base().Host)
	}
}
