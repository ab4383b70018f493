package archive

import (
	"path/filepath"
	"testing"
)

// ImportIndexed leaves an archive that can be searched at once, and says
// how many posts it holds.
func TestImportIndexed(t *testing.T) {
	into := filepath.Join(t.TempDir(), "imported")
	res, err := ImportIndexed(t.Context(), writeZip(t, fixtureMembers()), into, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Format != "zip" || res.Posts != 9 || res.Files != 6 {
		t.Fatalf("result %+v", res)
	}
	hits, err := Search(t.Context(), into, Query{Text: "gardening"})
	if err != nil || len(hits) == 0 {
		t.Fatalf("search after ImportIndexed: %d hits, %v", len(hits), err)
	}
	// A missing archive is an error, not an empty archive.
	bad := filepath.Join(t.TempDir(), "bad")
	if _, err := ImportIndexed(t.Context(), filepath.Join(t.TempDir(), "missing.zip"), bad, Limits{}); err == nil {
		t.Fatal("a missing archive was imported")
	}
}
