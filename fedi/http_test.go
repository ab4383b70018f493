package fedi

import (
	"strings"
	"testing"
)

func TestParseServer(t *testing.T) {
	good := map[string]string{
		"example.social":             "https://example.social",
		"https://example.social/":    "https://example.social",
		"HTTPS://Example.Social":     "https://example.social",
		"example.social:8443":        "https://example.social:8443",
		"@me@example.social":         "https://example.social",
		"me@example.social":          "https://example.social",
		"http://localhost:8080":      "http://localhost:8080",
		"http://127.0.0.1:3000/":     "http://127.0.0.1:3000",
		"http://[::1]:3000":          "http://[::1]:3000",
		"  https://example.social  ": "https://example.social",
	}
	for in, want := range good {
		u, err := ParseServer(in)
		if err != nil {
			t.Errorf("ParseServer(%q): %v", in, err)
			continue
		}
		if u.String() != want {
			t.Errorf("ParseServer(%q) = %s, want %s", in, u, want)
		}
	}
	bad := map[string]string{
		"":                               "empty",
		"exa mple.social":                "white space",
		"http://example.social":          "only allowed for loopback",
		"ftp://example.social":           "unsupported URL scheme",
		"https://example.social/@me":     "without a path",
		"https://example.social/?x=1":    "without a path",
		"https://user:pw@example.social": "user name or password",
		"https://":                       "no host",
		"https://example.social:99999":   "invalid port",
		"https://example.social:abc":     "not a URL",
	}
	for in, want := range bad {
		_, err := ParseServer(in)
		if err == nil {
			t.Errorf("ParseServer(%q) succeeded, want an error containing %q", in, want)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ParseServer(%q) = %q, want it to mention %q", in, err, want)
		}
	}
}
