package state

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are the schema changes in order; migrations[i] takes the
// schema from version i to i+1, and PRAGMA user_version records how many
// have run. Append only: never edit or reorder a migration that has
// shipped, because databases in the field have already applied it.
//
// This is a read-only table of functions; nothing assigns to it.
var migrations = []func(ctx context.Context, tx *sql.Tx) error{
	migrateV1,
	migrateV2, // journal.go
	migrateV3, // bridge.go
	migrateV4, // accounts.go: accounts.platform
	migrateV5, // bridge.go: last_error_transient
	migrateV6, // bridge.go: wait_until
}

// migrateV1 creates the apps, accounts and kv tables. Times are TEXT in
// timeLayout. STRICT makes SQLite reject a value of the wrong type instead
// of silently storing it.
func migrateV1(ctx context.Context, tx *sql.Tx) error {
	const ddl = `
CREATE TABLE apps (
	server        TEXT NOT NULL,
	redirect_uri  TEXT NOT NULL,
	scopes        TEXT NOT NULL,
	client_id     TEXT NOT NULL,
	client_secret TEXT NOT NULL,
	created_at    TEXT NOT NULL,
	PRIMARY KEY (server, redirect_uri, scopes)
) STRICT;

-- handle and name compare case-insensitively: me@Example.org and
-- me@example.org are the same account. A NULL name means no alias;
-- UNIQUE allows any number of NULLs.
CREATE TABLE accounts (
	handle           TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
	name             TEXT UNIQUE COLLATE NOCASE,
	server           TEXT NOT NULL,
	account_id       TEXT NOT NULL,
	username         TEXT NOT NULL,
	token            TEXT NOT NULL,
	scopes           TEXT NOT NULL,
	client_id        TEXT NOT NULL,
	software         TEXT NOT NULL,
	software_version TEXT NOT NULL,
	created_at       TEXT NOT NULL,
	updated_at       TEXT NOT NULL
) STRICT;

CREATE TABLE kv (
	key        TEXT NOT NULL PRIMARY KEY,
	value      TEXT NOT NULL,
	updated_at TEXT NOT NULL
) STRICT;
`
	_, err := tx.ExecContext(ctx, ddl)
	return err
}

// schemaVersion reads PRAGMA user_version through q (the DB or a Tx).
func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

func tooNew(v int) error {
	return fmt.Errorf("%w: schema version %d, this ferry knows up to %d; upgrade ferry",
		ErrSchemaTooNew, v, len(migrations))
}

// migrate applies the migrations the database lacks, each in its own
// transaction that also bumps user_version, so a crash leaves the schema
// at a whole version. The version is re-read inside each write
// transaction because another process may be migrating the same file at
// the same moment; BEGIN IMMEDIATE serialises them and the loser finds
// nothing left to do.
func (s *Store) migrate(ctx context.Context) error {
	v, err := schemaVersion(ctx, s.db)
	if err != nil {
		return err
	}
	if v > len(migrations) {
		return tooNew(v)
	}
	for v < len(migrations) {
		// next is only trusted after Write returns nil: a retried or
		// failed attempt may have set it without committing.
		var next int
		err := s.Write(ctx, func(tx *sql.Tx) error {
			cur, err := schemaVersion(ctx, tx)
			if err != nil {
				return err
			}
			next = cur
			if cur > len(migrations) {
				return tooNew(cur)
			}
			if cur == len(migrations) {
				return nil
			}
			if err := migrations[cur](ctx, tx); err != nil {
				return fmt.Errorf("migrate schema to version %d: %w", cur+1, err)
			}
			// PRAGMA takes no bound parameters; cur is an int we read.
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", cur+1)); err != nil {
				return fmt.Errorf("set schema version %d: %w", cur+1, err)
			}
			next = cur + 1
			return nil
		})
		if err != nil {
			return err
		}
		v = next
	}
	return nil
}
