package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// ErrBusy reports that another ferry process holds the work Hold was asked
// for.
var ErrBusy = errors.New("another ferry is doing it")

// Hold keeps every other ferry process (and every other Store in this one)
// from holding name until release is called or the process ends, so that
// two runs of one journaled job (an import into one account, a Move, a
// PDS move) never apply it at the same time: the journal makes a rerun
// safe after a crash, not two runs racing, each writing before the other
// recorded. It does not wait: if name is held, it returns an error
// wrapping ErrBusy.
//
// On SQLite it is a non-blocking flock on a file of its own next to the
// database (in "<database>.holds/", mode 0700; files are kept, as the
// daemon's lock file is). On PostgreSQL it is a session advisory lock on a
// connection kept for it: the server drops it when the process dies or
// its connection is lost (a lost connection therefore lets another process
// in while this one may still be running; the journal's look-before-write
// still stands between them).
func (s *Store) Hold(ctx context.Context, name string) (release func(), err error) {
	if s.pg {
		return s.holdPG(ctx, name)
	}
	sum := sha256.Sum256([]byte(name))
	dir := s.path + ".holds"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("hold %s: %w", name, err)
	}
	f, err := lockFile(filepath.Join(dir, hex.EncodeToString(sum[:12])+".lock"))
	if isWouldBlock(err) {
		return nil, fmt.Errorf("%s: %w", name, ErrBusy)
	}
	if err != nil {
		return nil, fmt.Errorf("hold %s: %w", name, err)
	}
	var once sync.Once
	// Closing the descriptor releases the flock.
	return func() { once.Do(func() { f.Close() }) }, nil
}

func (s *Store) holdPG(ctx context.Context, name string) (func(), error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("hold %s: %w", name, err)
	}
	key := scopeKey("hold/" + name)
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(?)`, key).Scan(&ok); err != nil {
		conn.Close()
		return nil, fmt.Errorf("hold %s: %w", name, err)
	}
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("%s: %w", name, ErrBusy)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			// Unlocked before the connection goes back to the pool, where
			// the session, and so the lock, would live on.
			_, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(?)`, key)
			conn.Close()
		})
	}, nil
}
