// Package httpsonly is ferry's rule for the addresses it talks to: https
// (and wss) everywhere, plain http (and ws) only for loopback hosts, which
// tests and local development use. Every protocol client (fedi for the
// Mastodon API, atproto for Bluesky) checks each request and redirect with
// Check, so the rule is written once.
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
