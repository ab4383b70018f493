package move

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/state"
)

// A replay imports what the export wrote except followers (the Move brings
// them) and earlier failure reports.
func TestReplayFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"following_accounts.csv", "followers.csv", "blocked_accounts.csv", "following_failures.csv", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.csv"), 0o700); err != nil {
		t.Fatal(err)
	}
	got, err := ReplayFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "blocked_accounts.csv"), filepath.Join(dir, "following_accounts.csv")}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("replay files %v, want %v", got, want)
	}
	if _, err := ReplayFiles(t.TempDir()); err == nil || !strings.Contains(err.Error(), "holds no graph files") {
		t.Fatalf("an empty lifeboat: %v", err)
	}
}

// Status lists each migration with its steps as the journal has them.
func TestStatus(t *testing.T) {
	st := state.TestStore(t)
	ctx := t.Context()
	if out, err := Status(ctx, st); err != nil || len(out) != 0 {
		t.Fatalf("no migrations yet: %v, %v", out, err)
	}
	job, _, err := st.CreateJob(ctx, state.Job{Kind: JobKind, Key: "a -> b", Account: "b@new.example"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.FreezePlan(ctx, job.ID, []state.Item{{Step: StepReplay, Key: StepReplay}, {Step: StepVerify, Key: StepVerify}}); err != nil {
		t.Fatal(err)
	}
	it, err := st.Item(ctx, job.ID, StepReplay, StepReplay)
	if err != nil {
		t.Fatal(err)
	}
	it.Status, it.RemoteID = state.ItemDone, "graph replayed"
	if err := st.FinishItem(ctx, it); err != nil {
		t.Fatal(err)
	}
	out, err := Status(ctx, st)
	if err != nil || len(out) != 1 {
		t.Fatalf("status %+v, %v", out, err)
	}
	m := out[0]
	if m.ID != job.ID || m.Key != "a -> b" || len(m.Steps) != 2 {
		t.Fatalf("status %+v", m)
	}
	if s := m.Steps[0]; s.Step != StepReplay || s.Status != string(state.ItemDone) || s.Outcome != "graph replayed" {
		t.Errorf("replay step %+v", s)
	}
	if s := m.Steps[1]; s.Step != StepVerify || s.Status != string(state.ItemPending) {
		t.Errorf("verify step %+v", s)
	}
}

func TestDefaultDirAndLifeboat(t *testing.T) {
	if got, want := DefaultDir("/data", "me@old.example", "me@new.example:8443"), filepath.Join("/data", "migrations", "me_old.example-to-me_new.example_8443"); got != want {
		t.Errorf("DefaultDir = %s, want %s", got, want)
	}
	dir := t.TempDir()
	if err := CheckLifeboat(dir); !errors.Is(err, ErrNoLifeboat) {
		t.Fatalf("a directory without graph/: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, GraphDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := CheckLifeboat(dir); err != nil {
		t.Fatalf("a lifeboat: %v", err)
	}
}
