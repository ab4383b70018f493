// Package httpsonly is ferry's rule for the addresses it talks to: https
// (and wss) everywhere, plain http (and ws) only for loopback hosts, which
// tests and local development use. Every protocol client (fedi for the
// Mastodon API, atproto for Bluesky) checks each request and redirect with
// Check, so the rule is written once; ParseServer applies it to the server
// addresses people type.
package httpsonly

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrInsecureURL is returned (wrapped) for a plain-http URL that is not on
// loopback.
var ErrInsecureURL = errors.New("plain http is only allowed for loopback addresses; use https")

// Check returns nil for a URL ferry may request: https or wss, or http or
// ws on a loopback host. Otherwise an error naming the URL (without its
// credentials), wrapping ErrInsecureURL for plain http off loopback.
func Check(u *url.URL) error {
	switch u.Scheme {
	case "https", "wss":
		return nil
	case "http", "ws":
		if IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%s: %w", u.Redacted(), ErrInsecureURL)
	}
	return fmt.Errorf("%s: unsupported URL scheme %q", u.Redacted(), u.Scheme)
}

// IsLoopback reports whether host (without port) names this machine:
// "localhost", a name under ".localhost", or a loopback IP.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// ParseServer turns what a person types for a server ("example.social",
// "https://example.social/", "example.social:8443", "@me@example.social")
// into the server's base URL (scheme and host only). It refuses anything with
// a path, query or credentials, and plain http except on loopback.
func ParseServer(raw string) (*url.URL, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, errors.New("server address is empty")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return nil, fmt.Errorf("server address %q contains white space", raw)
	}
	if !strings.Contains(s, "://") {
		// A handle: keep the host part.
		s = strings.TrimPrefix(s, "@")
		if i := strings.LastIndexByte(s, '@'); i >= 0 {
			s = s[i+1:]
		}
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("server address %q is not a URL: %w", raw, err)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("server address %q has no host name", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("server address %q must not contain a user name or password", raw)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("server address %q must be just the server (like https://example.social), without a path", raw)
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil {
			return nil, fmt.Errorf("server address %q has an invalid port %q", raw, p)
		}
	}
	if err := Check(u); err != nil {
		return nil, fmt.Errorf("server address %q: %w", raw, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("server address %q: use https://", raw)
	}
	return &url.URL{Scheme: u.Scheme, Host: strings.ToLower(u.Host)}, nil
}
