package state

import (
	"errors"
	"testing"
)

func TestSaveToken(t *testing.T) { forEachStore(t, testSaveToken) }

func testSaveToken(t *testing.T, s *Store) {
	ctx := t.Context()
	a := testAccount("alice.test@pds.example", "alice")
	a.Platform = "bluesky"
	if err := s.PutAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveToken(ctx, "@alice.test@pds.example", `{"refreshJwt":"new"}`); err != nil {
		t.Fatal(err)
	}
	got, err := s.Account(ctx, "alice")
	if err != nil || got.Token != `{"refreshJwt":"new"}` || got.Name != "alice" || got.Platform != "bluesky" {
		t.Fatalf("after SaveToken: %v, %v", got, err)
	}
	if err := s.SaveToken(ctx, "nobody@pds.example", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown account: %v", err)
	}
}
