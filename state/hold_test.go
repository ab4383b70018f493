package state

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/fedi-ferry/ferry/internal/testenv"
)

func TestHold(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "ferry.db")
		testHold(t, TestStoreAt(t, p), TestStoreAt(t, p))
	})
	t.Run("postgres", func(t *testing.T) {
		u := testenv.PostgresDB(t)
		testHold(t, TestStoreAt(t, u), TestStoreAt(t, u))
	})
}

// testHold holds names in s and other, two Stores on one database (as two
// processes would).
func testHold(t *testing.T, s, other *Store) {
	ctx := t.Context()
	release, err := s.Hold(ctx, "import/me@a.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Hold(ctx, "import/me@a.example"); !errors.Is(err, ErrBusy) {
		t.Fatalf("second hold: %v, want ErrBusy", err)
	}
	r2, err := other.Hold(ctx, "move/me@a.example")
	if err != nil {
		t.Fatalf("another name: %v", err)
	}
	r2()
	release()
	release() // twice is harmless
	r3, err := other.Hold(ctx, "import/me@a.example")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	r3()
}

// A process that dies holding a hold leaves nothing behind (SQLite: the
// flock goes with the process).
func TestHoldDiesWithTheProcess(t *testing.T) {
	if os.Getenv("FERRY_HOLD_CHILD") != "" {
		s, err := Open(t.Context(), os.Getenv("FERRY_HOLD_CHILD"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Hold(t.Context(), "pdsmove/did:plc:x"); err != nil {
			t.Fatal(err)
		}
		os.Exit(0) // no release
	}
	s := TestStore(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHoldDiesWithTheProcess$")
	cmd.Env = append(os.Environ(), "FERRY_HOLD_CHILD="+s.Path())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	release, err := s.Hold(t.Context(), "pdsmove/did:plc:x")
	if err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	release()
}
