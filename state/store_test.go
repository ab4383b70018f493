package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func userVersion(t *testing.T, db *sql.DB) int {
	t.Helper()
	v, err := schemaVersion(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOpenMigratesOnceAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if got := userVersion(t, s.DB()); got != len(migrations) {
		t.Fatalf("user_version = %d, want %d", got, len(migrations))
	}
	if err := s.Set(t.Context(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	// Running the migrations again on an up-to-date schema is a no-op.
	if err := s.migrate(t.Context()); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path)
	if got := userVersion(t, s.DB()); got != len(migrations) {
		t.Fatalf("after reopen user_version = %d, want %d", got, len(migrations))
	}
	if v, err := s.Get(t.Context(), "k"); err != nil || v != "v" {
		t.Fatalf("Get after reopen = %q, %v; want v", v, err)
	}
	var mode string
	if err := s.DB().QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := s.DB().QueryRowContext(t.Context(), "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d, %v; want 1", fk, err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	newer := len(migrations) + 1
	if _, err := s.DB().ExecContext(t.Context(), fmt.Sprintf("PRAGMA user_version = %d", newer)); err != nil {
		t.Fatal(err)
	}
	s.Close()

	_, err = Open(t.Context(), path)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of newer schema: err = %v, want ErrSchemaTooNew", err)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprint(newer)) || !strings.Contains(msg, path) {
		t.Errorf("error %q should name the version %d and the file", msg, newer)
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestOpenFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "ferry")
	path := filepath.Join(dir, "ferry.db")
	s := openAt(t, path)
	if err := s.Set(t.Context(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("dir mode = %o, want 700", m)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("db mode = %o, want 600", m)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(path + suffix); err == nil {
			if m := mode(t, path+suffix); m != 0o600 {
				t.Errorf("%s mode = %o, want 600", suffix, m)
			}
		}
	}
}

func TestOpenTightensFileButKeepsDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ferry.db")
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o644); err != nil { // beat the umask
			t.Fatal(err)
		}
	}
	openAt(t, path)
	if m := mode(t, dir); m != 0o750 {
		t.Errorf("existing dir mode changed to %o, want 750 kept", m)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); err != nil {
			continue // SQLite may have removed an empty -wal
		}
		if m := mode(t, p); m != 0o600 {
			t.Errorf("%s mode = %o, want 600", filepath.Base(p), m)
		}
	}
}

func TestWriteRollsBackOnError(t *testing.T) { forEachStore(t, testWriteRollsBackOnError) }

func testWriteRollsBackOnError(t *testing.T, s *Store) {
	boom := errors.New("boom")
	err := s.Write(t.Context(), func(tx *sql.Tx) error {
		if _, err := tx.Exec(`INSERT INTO kv (key, value, updated_at) VALUES ('k', 'v', 'x')`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write err = %v, want boom", err)
	}
	if _, err := s.Get(t.Context(), "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("row survived rollback: err = %v", err)
	}
}

// A cancellation that arrives after fn finished its work must not undo
// or interrupt the commit: the step is recorded whole.
func TestWriteCommitsDespiteCancel(t *testing.T) { forEachStore(t, testWriteCommitsDespiteCancel) }

func testWriteCommitsDespiteCancel(t *testing.T, s *Store) {
	ctx, cancel := context.WithCancel(t.Context())
	err := s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO kv (key, value, updated_at) VALUES ('k', 'v', 'x')`)
		cancel() // SIGTERM arrives between the last statement and COMMIT
		return err
	})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if v, err := s.Get(t.Context(), "k"); err != nil || v != "v" {
		t.Fatalf("Get = %q, %v; want committed v", v, err)
	}

	// An already cancelled ctx does not start a transaction.
	ran := false
	err = s.Write(ctx, func(*sql.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("Write with cancelled ctx: err = %v, ran = %v", err, ran)
	}
}

// A writer that finds the database locked by another connection waits
// (busy_timeout, BEGIN IMMEDIATE) instead of failing.
func TestWriteWaitsForOtherWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferry.db")
	a, b := openAt(t, path), openAt(t, path)

	locked := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.Write(t.Context(), func(tx *sql.Tx) error {
			close(locked)
			time.Sleep(300 * time.Millisecond)
			_, err := tx.Exec(`INSERT INTO kv (key, value, updated_at) VALUES ('a', '1', 'x')`)
			return err
		})
	}()
	<-locked
	if err := b.Set(t.Context(), "b", "2"); err != nil {
		t.Fatalf("second writer: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("first writer: %v", err)
	}

	// Without a busy timeout the same situation is SQLITE_BUSY, which
	// Write classifies as retryable.
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	release := make(chan struct{})
	locked = make(chan struct{})
	go func() {
		done <- a.Write(t.Context(), func(*sql.Tx) error { close(locked); <-release; return nil })
	}()
	<-locked
	_, err = raw.BeginTx(t.Context(), nil)
	close(release)
	if err == nil || !isBusy(err) {
		t.Fatalf("BEGIN IMMEDIATE against a held lock: err = %v, want SQLITE_BUSY", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if isBusy(errors.New("database is locked")) {
		t.Error("isBusy must not match on message text")
	}
}

func TestKV(t *testing.T) { forEachStore(t, testKV) }

func testKV(t *testing.T, s *Store) {
	ctx := t.Context()
	if _, err := s.Get(ctx, "cursor/x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing: err = %v, want ErrNotFound", err)
	}
	for _, v := range []string{"one", "two", ""} {
		if err := s.Set(ctx, "cursor/x", v); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, "cursor/x"); err != nil || got != v {
			t.Fatalf("Get = %q, %v; want %q", got, err, v)
		}
	}
}

// Several Opens of one brand-new file at once: the WAL conversion cannot
// use busy_timeout, so Open must retry it (see Store.connect).
func TestOpenConcurrentFresh(t *testing.T) {
	for round := range 30 {
		path := filepath.Join(t.TempDir(), fmt.Sprint(round), "ferry.db")
		errs := make(chan error, 6)
		for range cap(errs) {
			go func() {
				s, err := Open(t.Context(), path)
				if err == nil {
					err = s.Close()
				}
				errs <- err
			}()
		}
		for range cap(errs) {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: concurrent Open: %v", round, err)
			}
		}
	}
}
