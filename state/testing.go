package state

import (
	"crypto/sha256"
	"path/filepath"
	"testing"
)

// TestStore opens a fresh store in a new temporary directory for a test
// and closes it when the test ends. It is a real SQLite file, not a fake,
// so tests of other packages see the same locking and constraints as
// production. Failing to open or close fails the test.
func TestStore(t testing.TB) *Store {
	t.Helper()
	return TestStoreAt(t, filepath.Join(t.TempDir(), "ferry.db"))
}

// TestStoreAt opens the store at target (a SQLite path or a PostgreSQL URL,
// as OpenDatabase) for a test, and closes it when the test ends. The secret
// key is derived from target, so stores of one test database open each
// other's secrets (a test key: never use such a key outside tests). Failing
// to open or close fails the test.
func TestStoreAt(t testing.TB, target string) *Store {
	t.Helper()
	sum := sha256.Sum256([]byte("ferry test key " + target))
	key := sum[:]
	s, err := OpenDatabase(t.Context(), target, Options{SecretKey: key})
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
