package state

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// TestAccountPlatformMigration opens a database written before accounts
// recorded their platform: its accounts must read as Mastodon-API accounts,
// and new accounts keep the platform they are stored with.
func TestAccountPlatformMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ferry.db")
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range migrations[:3] {
		if err := m(ctx, tx); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO accounts (handle, name, server, account_id, username, token, scopes,
	client_id, software, software_version, created_at, updated_at)
VALUES ('old@old.example', NULL, 'https://old.example', '1', 'old', 'tok', 'read', '', 'gotosocial', '0.20.0', ?, ?)`,
		"2025-01-01T00:00:00.000000000Z", "2025-01-01T00:00:00.000000000Z")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", 3)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := openAt(t, path)
	old, err := s.Account(ctx, "old@old.example")
	if err != nil {
		t.Fatal(err)
	}
	if old.Platform != DefaultPlatform {
		t.Errorf("migrated account platform = %q, want %q", old.Platform, DefaultPlatform)
	}

	other := testAccount("me@pds.example", "")
	other.Platform = "atproto"
	if err := s.PutAccount(ctx, other); err != nil {
		t.Fatal(err)
	}
	blank := testAccount("me@blank.example", "")
	if err := s.PutAccount(ctx, blank); err != nil {
		t.Fatal(err)
	}
	for handle, want := range map[string]string{"me@pds.example": "atproto", "me@blank.example": DefaultPlatform} {
		got, err := s.Account(ctx, handle)
		if err != nil {
			t.Fatal(err)
		}
		if got.Platform != want {
			t.Errorf("%s platform = %q, want %q", handle, got.Platform, want)
		}
	}
}
