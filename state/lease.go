package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Leases: on PostgreSQL any number of daemons share the routes. A lease
// gives one daemon (the holder, an id naming its host and process) a
// piece of work until it expires:
//
//   - "run/<route>": one run of a route (or a scheduled job), claimed with
//     the run by BridgeClaimLeases and dropped by ReleaseLease after the run
//     is recorded;
//   - "stream/<route>": following a route's streaming source;
//   - "daemon/<holder>": the daemon itself, so `ferry status` can list the
//     daemons alive.
//
// The holder renews all its leases together (RenewLeases) well before they
// expire. A holder that dies (SIGKILL, a lost machine) or loses the
// database stops renewing; once its leases expire another daemon claims the
// runs it had and resumes their journals, and takes its streams. Every
// lease write runs under the store's write lock, so a lease is never given
// to two holders at once.
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
// that are due at now, or whose holder's lease expired before the run was
// released (the holder died mid-run: the run is resumed at once). Each is
// leased to holder until now+ttl and its next run pushed to now+hold, in
// one transaction. At most limit are claimed (0: no limit), the longest
// due first: a daemon takes what it can start now and leaves the rest to
// the others.
func (s *Store) BridgeClaimLeases(ctx context.Context, holder string, candidates []string, now time.Time, ttl, hold time.Duration, limit int) ([]string, error) {
	if !s.pg {
		return nil, ErrNotShared
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	nowS := formatTime(now)
	var due []string
	err := s.Write(ctx, func(tx *sql.Tx) error {
		due = due[:0]
		args := make([]any, 0, len(candidates))
		for _, c := range candidates {
			args = append(args, c)
		}
		rows, err := tx.QueryContext(ctx, `
SELECT r.name, r.next_run_at, COALESCE(l.holder, ''), COALESCE(l.expires_at, '')
FROM bridge_routes r LEFT JOIN leases l ON l.name = 'run/' || r.name
WHERE r.name IN (`+placeholders(len(candidates))+`) ORDER BY r.next_run_at`, args...)
		if err != nil {
			return err
		}
		// Runs a dead holder left come first: their next run was pushed
		// far ahead when they were claimed, so in next-run order they
		// would wait behind every due route (found by the acceptance test:
		// a busy survivor never reached them).
		var abandoned []string
		for rows.Next() {
			var name, next, h, exp string
			if err := rows.Scan(&name, &next, &h, &exp); err != nil {
				rows.Close()
				return err
			}
			switch live := h != "" && exp > nowS; {
			case live:
			case h != "":
				abandoned = append(abandoned, name)
			case next <= nowS:
				due = append(due, name)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		due = append(abandoned, due...)
		if limit > 0 && len(due) > limit {
			due = due[:limit]
		}
		until, next := formatTime(now.Add(ttl)), formatTime(now.Add(hold))
		for _, n := range due {
			if err := upsertLease(ctx, tx, LeaseRun+n, holder, nowS, until); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE bridge_routes SET next_run_at = ? WHERE name = ?`, next, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim due routes: %w", err)
	}
	return due, nil
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

func upsertLease(ctx context.Context, tx *sql.Tx, name, holder, now, until string) error {
	_, err := tx.ExecContext(ctx, `
INSERT INTO leases (name, holder, expires_at, acquired_at) VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
	acquired_at = excluded.acquired_at`, name, holder, until, now)
	return err
}

// AcquireLease gives the lease name to holder until now+ttl if it is free,
// expired, or holder's already, and reports whether holder has it.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	if !s.pg {
		return false, ErrNotShared
	}
	nowS := formatTime(now)
	got := false
	err := s.Write(ctx, func(tx *sql.Tx) error {
		got = false
		var h, exp string
		err := tx.QueryRowContext(ctx, `SELECT holder, expires_at FROM leases WHERE name = ?`, name).Scan(&h, &exp)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case h != holder && exp > nowS:
			return nil // another holder's, alive
		}
		got = true
		return upsertLease(ctx, tx, name, holder, nowS, formatTime(now.Add(ttl)))
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
	err := s.Write(ctx, func(tx *sql.Tx) error {
		held = held[:0]
		rows, err := tx.QueryContext(ctx, `UPDATE leases SET expires_at = ? WHERE holder = ? AND expires_at > ? RETURNING name`,
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
	err := s.Write(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder)
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
