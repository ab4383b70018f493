package atproto

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// secureClient returns a copy of base (or of a default client) whose every request and
// redirect obeys checkURL.
func secureClient(base *http.Client) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	}
	rt := c.Transport
	if rt == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSHandshakeTimeout = 10 * time.Second
		tr.ResponseHeaderTimeout = 60 * time.Second
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		rt = tr
	}
	if _, ok := rt.(checkedTransport); !ok {
		rt = checkedTransport{base: rt}
	}
	c.Transport = rt
	if c.CheckRedirect == nil {
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			return nil
		}
	}
	return &c
}

// checkedTransport refuses requests that checkURL refuses, redirects included (each hop
// goes through RoundTrip).
type checkedTransport struct{ base http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t checkedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := checkURL(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(req)
}

// checkURL enforces ferry's transport rule: https everywhere, plain http only for loopback
// hosts (tests and local development).
func checkURL(u *url.URL) error {
	switch u.Scheme {
	case "https", "wss":
		return nil
	case "http", "ws":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%s: %w", u.Redacted(), ErrInsecureURL)
	}
	return fmt.Errorf("%s: unsupported URL scheme %q", u.Redacted(), u.Scheme)
}

// isLoopback reports whether host (without port) names this machine: "localhost", a name
// under ".localhost", or a loopback IP.
func isLoopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
