package atproto

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/xrpc"
)

func TestCheckPDS(t *testing.T) {
	ok := map[string]string{
		"https://pds.example":       "https://pds.example",
		"https://pds.example/":      "https://pds.example",
		" https://pds.example:8443": "https://pds.example:8443",
		"http://localhost:2583":     "http://localhost:2583",
		"http://127.0.0.1:2583/":    "http://127.0.0.1:2583",
		"http://[::1]:2583":         "http://[::1]:2583",
	}
	for in, want := range ok {
		got, err := CheckPDS(in)
		if err != nil || got != want {
			t.Errorf("CheckPDS(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]error{
		"http://pds.example":            ErrInsecureURL,
		"http://localhost.evil.example": ErrInsecureURL,
		"pds.example":                   nil,
		"https://pds.example/xrpc":      nil,
		"https://user:pw@pds.example":   nil,
		"ftp://pds.example":             nil,
		"":                              nil,
	}
	for in, want := range bad {
		_, err := CheckPDS(in)
		if err == nil || (want != nil && !errors.Is(err, want)) {
			t.Errorf("CheckPDS(%q) err = %v, want an error (%v)", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("CheckPDS(%q) error shows the credentials: %v", in, err)
		}
	}
}

func TestRedirectOffLoopbackToPlainHTTPIsRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://pds.example/xrpc/com.atproto.server.describeServer", http.StatusFound)
	}))
	defer srv.Close()
	c := newClient(srv.URL, Options{})
	if _, err := c.DescribeServer(context.Background()); !errors.Is(err, ErrInsecureURL) {
		t.Fatalf("err = %v, want ErrInsecureURL", err)
	}
}

func TestErrorIs(t *testing.T) {
	tests := []struct {
		status int
		name   string
		is     error
	}{
		{401, "AuthenticationRequired", ErrAuth},
		{400, "ExpiredToken", ErrAuth},
		{400, "InvalidToken", ErrAuth},
		{400, "RecordNotFound", ErrNotFound},
		{404, "", ErrNotFound},
		{413, "PayloadTooLarge", ErrBlobTooLarge},
		{400, "BlobTooLarge", ErrBlobTooLarge},
	}
	for _, tc := range tests {
		err := wrap("op", &xrpc.Error{StatusCode: tc.status, Wrapped: &xrpc.XRPCError{ErrStr: tc.name, Message: "m"}})
		if !errors.Is(err, tc.is) {
			t.Errorf("%d %s: not %v", tc.status, tc.name, tc.is)
		}
		for _, other := range []error{ErrAuth, ErrNotFound, ErrBlobTooLarge} {
			if other != tc.is && errors.Is(err, other) {
				t.Errorf("%d %s: also %v", tc.status, tc.name, other)
			}
		}
	}
	err := wrap("com.atproto.repo.createRecord", &xrpc.Error{StatusCode: 400, Wrapped: &xrpc.XRPCError{ErrStr: "InvalidRequest", Message: "bad"}})
	if got, want := err.Error(), "com.atproto.repo.createRecord: InvalidRequest: bad (HTTP 400)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if errors.Is(err, ErrAuth) || errors.Is(err, ErrNotFound) {
		t.Errorf("InvalidRequest matches a sentinel: %v", err)
	}
}
