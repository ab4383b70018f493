package state

import (
	"testing"

	"github.com/fedi-ferry/ferry/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// forEachStore runs the store contract test f on a fresh SQLite file and on a
// fresh database of the harness's real PostgreSQL server (skipped, or failed
// under CI=true, when there is none): every method must mean the same on both.
func forEachStore(t *testing.T, f func(t *testing.T, s *Store)) {
	t.Run("sqlite", func(t *testing.T) { f(t, TestStore(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, testPG(t)) })
}

// testPG opens a store on a new PostgreSQL database of the shared server.
func testPG(t *testing.T) *Store {
	t.Helper()
	return TestStoreAt(t, testenv.PostgresDB(t))
}
