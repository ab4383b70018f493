package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
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
// lease of another holder, so a lease is never given to two holders at
// once; no lease write takes an advisory lock (see BridgeClaimLeases).
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
// leased to holder until now+ttl and its next run pushed to now+hold. At
// most limit are claimed (0: no limit), the runs a dead holder left first,
// then the longest due: a daemon takes what it can start now and leaves
// the rest to the others.
//
// Claims take no advisory lock, so daemons claim at the same time as each
// other and as the runs write; the rows decide. A due route is claimed in
// one statement that locks its row (FOR UPDATE SKIP LOCKED: a row another
// claim or a run's record holds is skipped, and one changed since the
// statement began is judged as it now stands, so a route whose run was
// just recorded is no longer due), writes its lease only where no live one
// stands, and pushes its next run. An abandoned lease is taken only if it
// is still there and expired as it stands when written (its holder may
// have renewed it or ended its run and released it since it was read).
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
	// Runs a dead holder left come first: their next run was pushed far
	// ahead when they were claimed, so in next-run order they would wait
	// behind every due route (found by the acceptance test: a busy
	// survivor never reached them). Expired leases are few: read them all.
	var dead []string
	err := func() error {
		rows, err := s.db.QueryContext(ctx, `SELECT name FROM leases WHERE name LIKE 'run/%' AND expires_at <= ? ORDER BY expires_at`, nowS)
		if err != nil {
			return err
		}
		defer rows.Close()
		var expired []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return err
			}
			expired = append(expired, n)
		}
		if err := rows.Err(); err != nil || len(expired) == 0 {
			return err
		}
		for _, n := range expired {
			if len(dead) < limit && slices.Contains(candidates, strings.TrimPrefix(n, LeaseRun)) {
				dead = append(dead, n)
			}
		}
		return nil
	}()
	if err != nil {
		return nil, fmt.Errorf("claim due routes: %w", err)
	}
	var claimed []string
	take := func(q string, args ...any) error {
		return s.writeStmt(ctx, func(ctx context.Context, tx querier) error {
			rows, err := tx.QueryContext(ctx, q, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					return err
				}
				claimed = append(claimed, n)
			}
			return rows.Err()
		})
	}
	if len(dead) > 0 {
		err := take(`
WITH t AS (
	UPDATE leases SET holder = ?, expires_at = ?, acquired_at = ?
	WHERE name = ANY(?::text[]) AND expires_at <= ? RETURNING name
), u AS (
	UPDATE bridge_routes SET next_run_at = ? FROM t WHERE bridge_routes.name = substr(t.name, 5)
)
SELECT substr(name, 5) FROM t`, holder, until, nowS, dead, nowS, next)
		if err != nil {
			return nil, fmt.Errorf("claim due routes: %w", err)
		}
	}
	if left := limit - len(claimed); left > 0 {
		err := take(`
WITH c AS (
	SELECT name FROM bridge_routes WHERE name = ANY(?::text[]) AND next_run_at <= ?
	ORDER BY next_run_at LIMIT ? FOR UPDATE SKIP LOCKED
), t AS (
	INSERT INTO leases (name, holder, expires_at, acquired_at) SELECT 'run/' || c.name, ?, ?, ? FROM c
	ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
		acquired_at = excluded.acquired_at
	WHERE leases.expires_at <= ? RETURNING name
), u AS (
	UPDATE bridge_routes SET next_run_at = ? FROM t WHERE bridge_routes.name = substr(t.name, 5)
)
SELECT substr(name, 5) FROM t`, candidates, nowS, left, holder, until, nowS, nowS, next)
		if err != nil {
			return claimed, fmt.Errorf("claim due routes: %w", err)
		}
	}
	return claimed, nil
}

// AcquireLease gives the lease name to holder until now+ttl if it is free,
// expired, or holder's already, and reports whether holder has it: one
// statement, whose condition is judged on the lease as it stands when
// written.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	if !s.pg {
		return false, ErrNotShared
	}
	nowS := formatTime(now)
	got := false
	err := s.writeStmt(ctx, func(ctx context.Context, tx querier) error {
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
		held = held[:0]
		rows, err := q.QueryContext(ctx, `UPDATE leases SET expires_at = ? WHERE holder = ? AND expires_at > ? RETURNING name`,
			formatTime(now.Add(ttl)), holder, formatTime(now))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return err
			}
			held = append(held, n)
		}
		return rows.Err()
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
