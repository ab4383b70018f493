package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Leases: on PostgreSQL any number of daemons share the routes. A lease
// gives one daemon (the holder, an id naming its host and process) a
// piece of work until it expires:
//
//   - "run/<route>": one run of a route (or a scheduled job), claimed with
//     the run by BridgeClaimLeases and dropped with the run's record
//     (BridgeEndRun) or by ReleaseLease;
//   - "stream/<route>": following a route's streaming source;
//   - "daemon/<holder>": the daemon itself, so `ferry status` can list the
//     daemons alive.
//
// The holder renews all its leases together (RenewLeases) well before they
// expire. A holder that dies (SIGKILL, a lost machine) or loses the
// database stops renewing; once its leases expire another daemon claims the
// runs it had and resumes their journals, and takes its streams. A lease
// is taken only where the row, as it stands when written, holds no live
// lease of another holder, and claims run one at a time (their own
// advisory lock, see BridgeClaimLeases), so a lease is never given to two
// holders at once.
//
// Times are the callers' clock (the daemons'), stored as text like every
// time here: the daemons' clocks must agree to well within a lease's
// length (NTP does).

// Lease name prefixes.
const (
	LeaseRun    = "run/"
	LeaseStream = "stream/"
	LeaseDaemon = "daemon/"
)

// ErrNotShared reports a lease operation on a SQLite database, which has
// one daemon and its file lock instead.
var ErrNotShared = errors.New("leases need a PostgreSQL database; SQLite has one daemon and its file lock")

// Lease is a lease as stored.
type Lease struct {
	Name       string
	Holder     string
	ExpiresAt  time.Time
	AcquiredAt time.Time
}

// BridgeClaimLeases is BridgeClaimDue for one daemon among many. It returns
// the names among candidates whose run is not leased to a live holder and
// that are due at now, or whose holder's lease expired before it was
// released (the holder died mid-run: the run is resumed at once). Each is
// leased to holder until now+ttl and its next run pushed to now+hold, in
// one transaction. At most limit are claimed (0: no limit), the runs a dead
// holder left first, then the longest due: a daemon takes what it can
// start now and leaves the rest to the others.
//
// Claims take the claims' advisory lock (and the store's, shared), not the
// store's: they run one at a time, each seeing every claim before it, while
// the runs' writes go on. A lease is written only where no live one stands
// in the row as it is written, so neither AcquireLease nor a renewal that
// extended a lease read as expired is overwritten. (Claiming without the
// lock, rows locked FOR UPDATE SKIP LOCKED, was tried and measured worse:
// a claim that began before another committed locks the routes that one
// just claimed while it rechecks them, and their runs' first writes wait
// for it.)
func (s *Store) BridgeClaimLeases(ctx context.Context, holder string, candidates []string, now time.Time, ttl, hold time.Duration, limit int) ([]string, error) {
	if !s.pg {
		return nil, ErrNotShared
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	nowS, until, next := formatTime(now), formatTime(now.Add(ttl)), formatTime(now.Add(hold))
	if limit <= 0 {
		limit = len(candidates)
	}
	var claimed []string
	err := s.writeIn(ctx, scopeClaims, func(tx *sql.Tx) error {
		claimed = claimed[:0]
		take := func(q string, args ...any) error {
			names, err := queryStrings(ctx, tx, q, args...)
			claimed = append(claimed, names...)
			return err
		}
		// Runs a dead holder left come first: their next run was pushed
		// far ahead when they were claimed, so in next-run order they
		// would wait behind every due route (found by the acceptance test:
		// a busy survivor never reached them). Expired leases are few:
		// they are read all, and taken only if still expired when written
		// (the holder may have ended its run and released it since).
		expired, err := queryStrings(ctx, tx, `SELECT name FROM leases WHERE name LIKE 'run/%' AND expires_at <= ? ORDER BY expires_at`, nowS)
		if err != nil {
			return err
		}
		var dead []string
		for _, n := range expired {
			if len(dead) < limit && slices.Contains(candidates, strings.TrimPrefix(n, LeaseRun)) {
				dead = append(dead, n)
			}
		}
		if len(dead) > 0 {
			if err := take(`
WITH t AS (
	UPDATE leases SET holder = ?, expires_at = ?, acquired_at = ?
	WHERE name = ANY(?::text[]) AND expires_at <= ? RETURNING name
), u AS (
	UPDATE bridge_routes SET next_run_at = ? FROM t WHERE bridge_routes.name = substr(t.name, 5)
)
SELECT substr(name, 5) FROM t`, holder, until, nowS, dead, nowS, next); err != nil {
				return err
			}
		}
		left := limit - len(claimed)
		if left <= 0 {
			return nil
		}
		// Planned for these very arguments (pgx's exec mode: the unnamed
		// statement), not by a cached generic plan: only then does
		// PostgreSQL hash the candidates and walk the next-run index to
		// the first due ones. The generic plan looked every candidate up
		// by name, 29 ms a claim at 10 000 routes (the benchmark: most of
		// the server's time), against about 1 ms for the walk.
		return take(`
WITH c AS (
	SELECT name FROM bridge_routes WHERE next_run_at <= ? AND name = ANY(?::text[])
	ORDER BY next_run_at LIMIT ?
), t AS (
	INSERT INTO leases (name, holder, expires_at, acquired_at) SELECT 'run/' || c.name, ?, ?, ? FROM c
	ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
		acquired_at = excluded.acquired_at
	WHERE leases.expires_at <= ? RETURNING name
), u AS (
	UPDATE bridge_routes SET next_run_at = ? FROM t WHERE bridge_routes.name = substr(t.name, 5)
)
SELECT substr(name, 5) FROM t`, pgx.QueryExecModeExec, nowS, candidates, left, holder, until, nowS, nowS, next)
	})
	if err != nil {
		return nil, fmt.Errorf("claim due routes: %w", err)
	}
	return claimed, nil
}

// scopeClaims is the lock scope of claims of run leases.
const scopeClaims = "claims"

// AcquireLease gives the lease name to holder until now+ttl if it is free,
// expired, or holder's already, and reports whether holder has it: one
// statement, whose condition is judged on the lease as it stands when
// written; a run lease also excludes claims (BridgeClaimLeases).
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	if !s.pg {
		return false, ErrNotShared
	}
	nowS := formatTime(now)
	got := false
	// A run lease (`ferry mirror`) waits for the claims in progress: one of
	// them may have found the route due and be about to lease it.
	write := s.writeStmt
	if strings.HasPrefix(name, LeaseRun) {
		write = func(ctx context.Context, fn func(ctx context.Context, tx querier) error) error {
			return s.writeIn(ctx, scopeClaims, func(tx *sql.Tx) error { return fn(ctx, tx) })
		}
	}
	err := write(ctx, func(ctx context.Context, tx querier) error {
		var n string
		err := tx.QueryRowContext(ctx, `
INSERT INTO leases (name, holder, expires_at, acquired_at) VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
	acquired_at = excluded.acquired_at
WHERE leases.holder = excluded.holder OR leases.expires_at <= ? RETURNING name`,
			name, holder, formatTime(now.Add(ttl)), nowS, nowS).Scan(&n)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			got = false // another holder's, alive
		case err != nil:
			return err
		default:
			got = true
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return got, nil
}

// RenewLeases extends every unexpired lease of holder to now+ttl, in one
// statement, and returns the names it still holds. A lease that expired
// was perhaps taken over already, so it is not renewed: the caller stops
// the work of every lease missing from the answer.
func (s *Store) RenewLeases(ctx context.Context, holder string, now time.Time, ttl time.Duration) ([]string, error) {
	if !s.pg {
		return nil, ErrNotShared
	}
	var held []string
	err := s.writeStmt(ctx, func(ctx context.Context, q querier) error {
		var err error
		held, err = queryStrings(ctx, q, `UPDATE leases SET expires_at = ? WHERE holder = ? AND expires_at > ? RETURNING name`,
			formatTime(now.Add(ttl)), holder, formatTime(now))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("renew the leases of %s: %w", holder, err)
	}
	return held, nil
}

// ReleaseLease drops the lease name if holder has it.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if !s.pg {
		return ErrNotShared
	}
	err := s.writeStmt(context.WithoutCancel(ctx), func(ctx context.Context, q querier) error {
		_, err := q.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// Leases returns the leases unexpired at now, by name; on SQLite, none.
func (s *Store) Leases(ctx context.Context, now time.Time) ([]Lease, error) {
	if !s.pg {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT name, holder, expires_at, acquired_at FROM leases
WHERE expires_at > ? ORDER BY name`, formatTime(now))
	if err != nil {
		return nil, fmt.Errorf("read leases: %w", err)
	}
	defer rows.Close()
	var out []Lease
	for rows.Next() {
		var l Lease
		var exp, acq string
		if err := rows.Scan(&l.Name, &l.Holder, &exp, &acq); err != nil {
			return nil, fmt.Errorf("read leases: %w", err)
		}
		if l.ExpiresAt, err = parseTime(exp); err != nil {
			return nil, err
		}
		if l.AcquiredAt, err = parseTime(acq); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// queryStrings runs a query whose rows are one text column and returns
// them in order.
func queryStrings(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
