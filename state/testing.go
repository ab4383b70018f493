package state

import (
	"path/filepath"
	"testing"
)

// TestStore opens a fresh store in a new temporary directory for a test
// and closes it when the test ends. It is a real SQLite file, not a fake,
// so tests of other packages see the same locking and constraints as
// production. Failing to open or close fails the test.
func TestStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatalf("state.TestStore: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("state.TestStore: %v", err)
		}
	})
	return s
}
