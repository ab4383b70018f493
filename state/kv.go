package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Get returns the value stored under key, or an error wrapping ErrNotFound
// if there is none. The kv table holds small settings and cursors; keys
// are namespaced by convention, e.g. "cursor/<route>".
func (s *Store) Get(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("setting %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("get setting %q: %w", key, err)
	}
	return v, nil
}

// Set stores value under key, replacing any previous value.
func (s *Store) Set(ctx context.Context, key, value string) error {
	now := formatTime(time.Now())
	err := s.writeStmt(ctx, func(ctx context.Context, tx querier) error {
		_, err := tx.ExecContext(ctx, `
INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			key, value, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("set setting %q: %w", key, err)
	}
	return nil
}
