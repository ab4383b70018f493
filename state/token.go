package state

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SaveToken replaces the token of the account handle, leaving its other
// fields alone (a platform that rotates tokens saves each new one). An
// unknown handle is an error wrapping ErrNotFound.
func (s *Store) SaveToken(ctx context.Context, handle, token string) error {
	handle = normHandle(handle)
	err := s.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE accounts SET token = ?, updated_at = ? WHERE handle = ?`,
			s.sealSecret(colToken, token), formatTime(time.Now()), handle)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("save the token of %s: %w", handle, err)
	}
	return nil
}
