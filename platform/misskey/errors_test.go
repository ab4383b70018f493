package misskey

import (
	"errors"
	"net/http"
	"testing"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/fakemisskey"
	mk "github.com/fedi-ferry/ferry/misskey"
)

// Misskey's answers that are not what their status says, as the fake
// gives them after a real Misskey (2025.4.x, MisskeyIO fork, checked on
// loopback), become the statuses migrate expects: not found, not a
// server failure to retry.
func TestFediErrOfRealAnswers(t *testing.T) {
	srv := fakemisskey.Start(fakemisskey.Config{})
	defer srv.Close()
	base, _ := mk.ParseServer(srv.URL)
	c := mk.NewClient(base, srv.AddToken(srv.AddUser("me", "pw"), nil), mk.Options{})
	ctx := t.Context()
	for _, tc := range []struct {
		name, endpoint string
		body           map[string]any
		real, want     int
	}{
		{"notes/state of a missing note", "notes/state", map[string]any{"noteId": "au61zzzzzzzzzzzz"}, 500, http.StatusNotFound},
		{"users/show of an unknown local user", "users/show", map[string]any{"username": "nobody", "host": nil}, 404, http.StatusNotFound},
		{"users/show of a user on a dead server", "users/show", map[string]any{"username": "x", "host": "dead.invalid"}, 500, http.StatusNotFound},
		{"ap/show of another server's object", "ap/show", map[string]any{"uri": "https://dead.invalid/notes/1"}, 400, http.StatusUnprocessableEntity},
	} {
		err := c.Call(ctx, tc.endpoint, tc.body, nil, false)
		var ae *mk.APIError
		if !errors.As(err, &ae) || ae.Status != tc.real {
			t.Errorf("%s: the fake answered %v, want %d as Misskey does", tc.name, err, tc.real)
		}
		got := fediErr(err)
		if fedi.StatusCode(got) != tc.want || fedi.IsTransient(got) {
			t.Errorf("%s: %v, want status %d, not transient", tc.name, got, tc.want)
		}
	}
}
