// Package state is ferry's store: one database holding OAuth client
// registrations, accounts and their tokens, small settings, and (in later
// schema versions) the journals and cursors of the other packages. It is a
// SQLite file by default, or a PostgreSQL database shared by several
// daemons (OpenDatabase; postgres.go is the whole difference, lease.go and
// secrets.go what sharing adds).
//
// The store is safe for concurrent use by many goroutines and by several
// processes at once: the daemon and one-shot CLI commands share the file.
// SQLite runs in WAL mode so readers never block the writer, and every write
// transaction starts with BEGIN IMMEDIATE so writers queue on the database
// lock (bounded by busy_timeout) instead of failing half-way with
// SQLITE_BUSY when a read transaction tries to upgrade.
package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/fedi-ferry/ferry/journal"
)

// Sentinel errors. Methods wrap them with %w and a description of the
// operation, so callers test with errors.Is.
var (
	// ErrNotFound reports that the requested row does not exist. It is
	// journal.ErrNotFound, so that code written against the journal's
	// interfaces recognises it.
	ErrNotFound = journal.ErrNotFound
	// ErrConflict reports that a write would break a uniqueness rule other
	// than the row's own key, such as an account alias already taken by
	// another account.
	ErrConflict = errors.New("conflict")
	// ErrLocked reports that another process (or another Store in this
	// process) holds the daemon lock of the database.
	ErrLocked = errors.New("daemon lock held by another process")
	// ErrSchemaTooNew reports a database written by a newer ferry, whose
	// schema version this code does not know. Opening it could corrupt
	// tables the older code does not understand, so Open refuses.
	ErrSchemaTooNew = errors.New("database schema is newer than this ferry")
)

const (
	// busyTimeoutMS is how long SQLite itself waits for another
	// connection's lock before returning SQLITE_BUSY. The daemon's writes
	// are small, so ten seconds is far beyond any normal wait.
	busyTimeoutMS = 10000
	// txTimeout bounds one write transaction (waiting for the lock, the
	// work, the commit). It exists because the transaction does not follow
	// the caller's cancellation once started; see Write.
	txTimeout = 20 * time.Second
	// writeAttempts is how often Write tries a transaction that failed
	// with SQLITE_BUSY or SQLITE_LOCKED before giving up.
	writeAttempts = 4
	// retryBackoff is the first pause between attempts; it doubles.
	retryBackoff = 20 * time.Millisecond
)

// Store is an open ferry database. Create it with Open and release it with
// Close. All methods are safe for concurrent use.
type Store struct {
	db   *sql.DB
	path string // the SQLite file, or the PostgreSQL URL without its password
	// pg is set for a PostgreSQL database (postgres.go): the dialect's
	// write lock, migrations and errors, leases, sealed secrets.
	pg bool
	// sealer encrypts secrets at rest on PostgreSQL (secrets.go); nil on
	// SQLite, whose file is the user's own and mode 0600.
	sealer *sealer
}

// Options are the settings of OpenDatabase.
type Options struct {
	// SecretKey is the key that encrypts tokens at rest in PostgreSQL
	// (ReadSecretKeyFile). It is required there and ignored for SQLite.
	SecretKey []byte
}

// OpenDatabase opens target: a PostgreSQL database when it is a
// postgres:// or postgresql:// URL, else the SQLite file at that path
// (Open). Both give the same Store, and every method works on either.
//
// A PostgreSQL database is shared: any number of processes and machines
// may open it, and daemons divide the routes by leases (lease.go) instead of
// the file lock. Its schema has migrations of its own, and a schema newer
// than this code is refused with ErrSchemaTooNew as for SQLite.
func OpenDatabase(ctx context.Context, target string, opts Options) (*Store, error) {
	if IsPostgresURL(target) {
		return openPostgres(ctx, target, opts)
	}
	return Open(ctx, target)
}

// Shared reports whether the database is PostgreSQL, shared by several
// daemons through leases rather than locked by one.
func (s *Store) Shared() bool { return s.pg }

// Open opens (creating if needed) the database at path and brings its
// schema up to date.
//
// The parent directory is created with mode 0700 if missing; an existing
// directory keeps its mode, since the user may have chosen it. The database
// file and its -wal/-shm companions are forced to mode 0600 because they
// hold access tokens. Open refuses, with an error wrapping ErrSchemaTooNew,
// a database whose schema version is newer than this code knows.
func Open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("open state: create directory: %w", err)
	}
	// Create the file ourselves so that it never exists, even for an
	// instant, with SQLite's default 0644 mode; Chmod also tightens a file
	// that an older version or the user created loosely.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	err = errors.Join(f.Chmod(0o600), f.Close())
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}

	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", abs, err)
	}
	s := &Store{db: db, path: abs}
	if err := s.connect(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state %s: %w", abs, err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state %s: %w", abs, err)
	}
	// SQLite gives -wal and -shm the mode of the database file, so they
	// are 0600 already; this covers files left behind by an older run
	// that had looser modes.
	for _, suffix := range []string{"-wal", "-shm"} {
		err := os.Chmod(abs+suffix, 0o600)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			db.Close()
			return nil, fmt.Errorf("open state: %w", err)
		}
	}
	return s, nil
}

// connect opens the first connection, retrying SQLITE_BUSY for as long as
// busy_timeout would wait. The first connection to a brand-new file
// converts it to WAL, and a process doing that while another does the
// same gets SQLITE_BUSY at once, without the busy handler: it holds a
// read lock and wants the write lock, and waiting could deadlock. Once
// the file is in WAL mode this does not recur. (Found by
// TestConcurrentProcesses: several processes opening a new database.)
func (s *Store) connect(ctx context.Context) error {
	deadline := time.Now().Add(busyTimeoutMS * time.Millisecond)
	backoff := 5 * time.Millisecond
	for {
		err := s.db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff/2 + rand.N(backoff)):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// dsn builds the modernc connection string. busy_timeout must come before
// journal_mode(WAL): switching to WAL needs a lock, and without the timeout
// a second process opening the file at the same moment fails at once with
// SQLITE_BUSY. _txlock=immediate makes every BeginTx a BEGIN IMMEDIATE.
func dsn(path string) string {
	// The file: URI form with an escaped path keeps '?' or '#' in a
	// directory name from being read as the start of the parameters.
	u := (&url.URL{Path: filepath.ToSlash(path)}).EscapedPath()
	return fmt.Sprintf("file:%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)"+
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate", u, busyTimeoutMS)
}

// Close closes the database. It does not release a daemon lock; call the
// release function LockDaemon returned.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close state %s: %w", s.path, err)
	}
	return nil
}

// DB returns the underlying handle, for packages that keep their own
// tables in the same file and for read-only queries. Writes through it
// should use Write so they get BEGIN IMMEDIATE, the retry and the
// cancellation rules.
func (s *Store) DB() *sql.DB { return s.db }

// Path returns the absolute path of the database file (for PostgreSQL,
// its URL without the password).
func (s *Store) Path() string { return s.path }

// Write runs fn in one write transaction (BEGIN IMMEDIATE; on PostgreSQL,
// under the store's advisory lock, which excludes every other write
// transaction of every process: see writeIn and writeStmt for the store's
// own writes that need less) and commits it if fn returns nil; otherwise
// it rolls back and returns fn's error.
//
// If the transaction fails with SQLITE_BUSY or SQLITE_LOCKED, Write rolls
// back and runs fn again, a few times with a short backoff, so fn must be
// safe to repeat: it must not have effects outside tx.
//
// ctx cancels waiting for the write lock and statements that fn runs with
// ctx, but never the commit: once fn has returned nil, the commit runs to
// completion (bounded by an internal timeout) even if ctx is cancelled.
func (s *Store) Write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.retry(ctx, func() error { return s.writeOnce(ctx, scopeStore, fn) })
}

// writeIn is Write for a transaction that needs only part of the store to
// itself: on PostgreSQL it takes the advisory lock of scope (a journal
// job's numbering) exclusively and the store's lock shared, so that
// transactions of other scopes run at the same time while Write's still
// excludes them all; scope "" takes no lock of its own, for transactions
// that read nothing they then decide on (their rows' locks suffice). On
// SQLite it is Write: writers run one at a time there.
func (s *Store) writeIn(ctx context.Context, scope string, fn func(tx *sql.Tx) error) error {
	if !s.pg {
		return s.Write(ctx, fn)
	}
	return s.retry(ctx, func() error { return s.writeOnce(ctx, scope, fn) })
}

// querier is what a single write statement runs on: the pool on
// PostgreSQL, a transaction on SQLite.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// writeStmt runs fn, which must send exactly one write statement through
// q. On PostgreSQL the statement runs on its own: it is its own
// transaction, atomic, and one round trip instead of four (BEGIN, the
// lock, the statement, COMMIT); it takes no advisory lock, so it must not
// depend on something read before it. The statement follows ctx (a
// cancelled statement is rolled back whole), bounded by the transaction
// timeout; callers whose write must survive cancellation pass a context
// without it. On SQLite it is Write, as before. Busy and serialisation
// failures are retried as Write retries them.
func (s *Store) writeStmt(ctx context.Context, fn func(ctx context.Context, q querier) error) error {
	if !s.pg {
		return s.Write(ctx, func(tx *sql.Tx) error { return fn(ctx, tx) })
	}
	return s.retry(ctx, func() error {
		sctx, cancel := context.WithTimeout(ctx, txTimeout)
		defer cancel()
		return fn(sctx, s.db)
	})
}

// retry runs once until it succeeds, fails other than busy, or has been
// tried writeAttempts times, with a growing, jittered pause between.
func (s *Store) retry(ctx context.Context, once func() error) error {
	backoff := retryBackoff
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := once()
		if err == nil || !isBusy(err) || attempt == writeAttempts {
			return err
		}
		// Jitter keeps processes that collided from retrying in lockstep.
		pause := backoff/2 + rand.N(backoff)
		backoff *= 2
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

func (s *Store) writeOnce(ctx context.Context, scope string, fn func(tx *sql.Tx) error) error {
	// database/sql ties a transaction to the context given to BeginTx: when
	// that context ends it rolls the transaction back, even while COMMIT
	// runs, and modernc interrupts the statement. A SIGTERM arriving during
	// the commit of a journal step could then leave the caller unsure
	// whether the step was recorded (GoToSocial forked modernc over such
	// interrupts, #3599). So the transaction runs under a context that the
	// caller cannot cancel, with a timeout as the only bound; the caller's
	// ctx may still cancel the wait for the lock, until BeginTx returns.
	txCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), txTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	tx, err := s.db.BeginTx(txCtx, nil)
	if !stop() {
		// ctx ended during BeginTx: txCtx is cancelled and database/sql
		// is rolling the (empty) transaction back.
		if err == nil {
			_ = tx.Rollback()
		}
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("begin write: %w", err)
	}
	// After a successful Commit this Rollback is a no-op; it matters when
	// fn fails or panics.
	defer func() { _ = tx.Rollback() }()
	if s.pg {
		if err := lockWrites(txCtx, tx, scope); err != nil {
			return fmt.Errorf("begin write: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// isBusy reports whether err is SQLite's "database is locked" family,
// which is worth retrying, as opposed to a real failure.
func isBusy(err error) bool {
	switch pgCode(err) {
	case pgSerializationFailure, pgDeadlockDetected:
		return true
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	// Extended result codes are on; the primary code is the low byte.
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failure.
func isUniqueViolation(err error) bool {
	if pgCode(err) == pgUniqueViolation {
		return true
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

// timeLayout is how times are stored: UTC, fixed width, so that text order
// is time order and the file stays readable with the sqlite3 shell.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad stored time %q: %w", s, err)
	}
	return t, nil
}

// orNow returns t, or the current time if t is zero.
func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}
