package state

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// The PostgreSQL dialect. The store's methods are written once, in SQL that
// SQLite and PostgreSQL both accept (ON CONFLICT … DO UPDATE with excluded,
// RETURNING, COALESCE, CASE), with SQLite's '?' placeholders; this file is the
// whole difference:
//
//   - a database/sql driver over pgx's stdlib driver that rewrites '?' to
//     PostgreSQL's $1, $2 … (rebind), so no query is written twice;
//   - Write's transactions take one advisory transaction lock first, which
//     is what BEGIN IMMEDIATE is on SQLite: writers run one at a time,
//     readers never wait. The store's hot writes need less and take less
//     (writeIn: a scope's lock, the store's shared; writeStmt: one
//     statement, no lock, its rows decide), each keeping the meaning its
//     read-then-write has on SQLite;
//   - its own ordered migrations (schema_pg.go) and version table;
//   - error classes: 23505 is a unique violation, 40001/40P01 are retried
//     like SQLITE_BUSY.

// IsPostgresURL reports whether target names a PostgreSQL database
// (postgres:// or postgresql://) rather than a SQLite file.
func IsPostgresURL(target string) bool {
	return strings.HasPrefix(target, "postgres://") || strings.HasPrefix(target, "postgresql://")
}

// writeLockKey is the advisory lock every write transaction takes: an
// arbitrary constant ("ferry" in ASCII), the same in every process.
const writeLockKey = 0x6665727279

// pgMaxConns is how many connections one Store opens at most.
const pgMaxConns = 16

// pgConnectTimeout bounds connecting to the server, so that an unreachable
// database is an error within seconds, not a hang.
const pgConnectTimeout = 10 * time.Second

// openPostgres connects to the database at rawURL and brings its schema up to
// date.
func openPostgres(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, fmt.Errorf("open state %s: the PostgreSQL URL is not valid", redactURL(rawURL))
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > pgConnectTimeout {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	db := sql.OpenDB(rebindConnector{stdlib.GetConnector(*cfg)})
	// As many idle connections as open ones: a connection closed on
	// return to the pool is a PostgreSQL backend process ended, and the
	// next busy moment forks a new one (with 3 daemons and 32 workers each
	// that churn, not the queries, was most of the database's work). Idle
	// ones still close after a few minutes unused.
	db.SetMaxOpenConns(pgMaxConns)
	db.SetMaxIdleConns(pgMaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{db: db, path: redactURL(rawURL), pg: true}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		// pgconn's connect errors name the host, user and database,
		// never the password.
		return nil, fmt.Errorf("open state %s: cannot reach PostgreSQL: %w", s.path, err)
	}
	if err := s.migratePG(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state %s: %w", s.path, err)
	}
	if err := s.useSecretKey(ctx, opts.SecretKey); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state %s: %w", s.path, err)
	}
	return s, nil
}

// redactURL is rawURL without its password, for messages and Path.
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// rebindConnector opens pgx connections that accept '?' placeholders.
type rebindConnector struct{ driver.Connector }

// Connect implements driver.Connector.
func (c rebindConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &rebindConn{conn.(*stdlib.Conn)}, nil
}

// rebindConn is pgx's stdlib connection with queries rebound.
type rebindConn struct{ *stdlib.Conn }

func (c *rebindConn) Prepare(query string) (driver.Stmt, error) {
	return c.Conn.Prepare(rebind(query))
}

func (c *rebindConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, rebind(query))
}

func (c *rebindConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, rebind(query), args)
}

func (c *rebindConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, rebind(query), args)
}

// rebind rewrites SQLite's positional '?' placeholders as $1, $2 …, leaving
// those inside string literals, quoted identifiers and comments alone.
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		ch := q[i]
		switch {
		case ch == '\'' || ch == '"':
			j := strings.IndexByte(q[i+1:], ch)
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+j+2])
			i += j + 1
		case ch == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+j])
			i += j - 1
		case ch == '?':
			n++
			fmt.Fprintf(&b, "$%d", n)
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// PostgreSQL error codes the store tells apart.
const (
	pgUniqueViolation      = "23505"
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// scopeStore is the scope of Write: the whole store.
const scopeStore = "\x00store"

// lockWrites takes the locks a PostgreSQL write transaction of scope needs
// (see writeIn), in one round trip: the store's key exclusively for
// scopeStore; else the store's key shared, then scope's own key, if any,
// exclusively. The store's key always comes first, so no two transactions
// wait for each other's locks in a cycle.
func lockWrites(ctx context.Context, tx *sql.Tx, scope string) error {
	var err error
	switch scope {
	case scopeStore:
		_, err = tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(writeLockKey))
	case "":
		_, err = tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock_shared(?)`, int64(writeLockKey))
	default:
		_, err = tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock_shared(?), pg_advisory_xact_lock(?)`,
			int64(writeLockKey), scopeKey(scope))
	}
	return err
}

// scopeKey is the advisory lock key of a scope: its FNV-1a hash, never the
// store's key. Two scopes may share a key; they then only wait for each
// other.
func scopeKey(scope string) int64 {
	h := fnv.New64a()
	h.Write([]byte(scope))
	k := int64(h.Sum64())
	if k == writeLockKey {
		k++
	}
	return k
}
