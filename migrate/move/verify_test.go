package move

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// softwareOf asks every follower server for its nodeinfo, several at a
// time. Run with -race: the lookups used to write the map the loop was
// still ranging over ("concurrent map iteration and map write").
func TestSoftwareOfManyServers(t *testing.T) {
	// One TLS server stands in for every follower server: the client dials
	// it whatever the host, and each host names its own software.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := strings.TrimSuffix(r.Host, ".example")
		switch r.URL.Path {
		case "/.well-known/nodeinfo":
			fmt.Fprintf(w, `{"links":[{"rel":"http://nodeinfo.diaspora.software/ns/schema/2.0","href":"https://%s/nodeinfo/2.0"}]}`, r.Host)
		case "/nodeinfo/2.0":
			if host == "dead" {
				http.Error(w, "gone", http.StatusGone)
				return
			}
			fmt.Fprintf(w, `{"software":{"name":"soft-%s","version":"1.0"}}`, host)
		default:
			http.NotFound(w, r)
		}
	}))
	srv.StartTLS()
	defer srv.Close()
	hc := srv.Client()
	tr := hc.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.ServerName = "example.com" // the name in httptest's certificate
	tr.TLSClientConfig.MinVersion = tls.VersionTLS12
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}
	hc.Transport = tr

	var accts []string
	for i := range 40 {
		accts = append(accts, fmt.Sprintf("user%d@h%d.example", i, i%20))
	}
	accts = append(accts, "ghost@dead.example")
	got := softwareOf(t.Context(), hc, accts)
	if len(got) != len(accts) {
		t.Fatalf("%d rows for %d accounts", len(got), len(accts))
	}
	for i, m := range got {
		if i > 0 && got[i-1].Account > m.Account {
			t.Errorf("not sorted: %q before %q", got[i-1].Account, m.Account)
		}
		_, h, _ := strings.Cut(m.Account, "@")
		want := "soft-" + strings.TrimSuffix(h, ".example") + " 1.0"
		if h == "dead.example" {
			want = "unknown"
		}
		if m.Software != want {
			t.Errorf("%s: software %q, want %q", m.Account, m.Software, want)
		}
	}
}

// A follower on a server on loopback that serves plain http (the old
// account's own server in a local setup, as when ferry was checked
// against a real Misskey on localhost) gets its software named, not
// "unknown": handles carry no scheme, and https cannot reach it.
func TestSoftwareOfLoopbackHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/nodeinfo":
			fmt.Fprintf(w, `{"links":[{"rel":"http://nodeinfo.diaspora.software/ns/schema/2.1","href":"http://%s/nodeinfo/2.1"}]}`, r.Host)
		case "/nodeinfo/2.1":
			fmt.Fprint(w, `{"software":{"name":"misskey","version":"2025.4.1"}}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	got := softwareOf(t.Context(), srv.Client(), []string{"bob@" + host})
	if len(got) != 1 || got[0].Software != "misskey 2025.4.1" {
		t.Fatalf("got %+v, want misskey 2025.4.1", got)
	}
}
