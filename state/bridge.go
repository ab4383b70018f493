package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The bridge's tables. A route (one [[route]] of ferry.toml) has:
//
//   - a row in bridge_routes: its source cursor, whether its first run
//     happened, and its schedule (next run, failures, last error), which the
//     daemon keeps here rather than in memory (miniflux's model);
//   - rows in bridge_items: every origin post or feed item the route has
//     seen, under every identity it was seen with (feed GUID, canonical
//     link, content hash), so a changed GUID or an evicted cache never
//     reposts. Item is the first origin ID an item was seen under;
//   - rows in bridge_copies: what became of an item on each sink, per part
//     of a split post: its remote ID, the version (hash) last sent, and a
//     state. Edits, deletes, thread parents and the two-way loop guard read
//     this table.
//
// The plan → journal → apply steps themselves live in the shared journal
// (journal.go) as one job per route, kind BridgeJobKind; BridgeFinish marks
// a step done and writes its copy in one transaction.

// BridgeJobKind is the journal job kind of bridge routes; the job key is
// the route name.
const BridgeJobKind = "bridge"

// Copy states.
const (
	CopyPosted  = "posted"  // the copy exists on the sink
	CopyFailed  = "failed"  // the sink refused it for good; never retried
	CopySkipped = "skipped" // a policy left it out (e.g. cw = "skip")
	CopyDeleted = "deleted" // the origin was deleted and so was the copy
)

// migrateV3 creates the bridge tables.
func migrateV3(ctx context.Context, tx *sql.Tx) error {
	const ddl = `
CREATE TABLE bridge_routes (
	name        TEXT NOT NULL PRIMARY KEY,
	cursor      TEXT NOT NULL DEFAULT '',
	started     INTEGER NOT NULL DEFAULT 0,
	paused      INTEGER NOT NULL DEFAULT 0,
	schedule    TEXT NOT NULL DEFAULT '',
	next_run_at TEXT NOT NULL DEFAULT '',
	last_run_at TEXT NOT NULL DEFAULT '',
	last_ok_at  TEXT NOT NULL DEFAULT '',
	last_error  TEXT NOT NULL DEFAULT '',
	fail_count  INTEGER NOT NULL DEFAULT 0,
	newest_at   TEXT NOT NULL DEFAULT '',
	updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE bridge_items (
	route         TEXT NOT NULL,
	origin_id     TEXT NOT NULL,
	item          TEXT NOT NULL,
	link          TEXT NOT NULL DEFAULT '',
	content_hash  TEXT NOT NULL DEFAULT '',
	version       TEXT NOT NULL DEFAULT '',
	created_at    TEXT NOT NULL DEFAULT '',
	first_seen_at TEXT NOT NULL,
	last_seen_at  TEXT NOT NULL,
	PRIMARY KEY (route, origin_id)
) STRICT;
CREATE INDEX bridge_items_by_link ON bridge_items (route, link);
CREATE INDEX bridge_items_by_hash ON bridge_items (route, content_hash);

CREATE TABLE bridge_copies (
	route      TEXT NOT NULL,
	item       TEXT NOT NULL,
	sink       TEXT NOT NULL COLLATE NOCASE,
	part       INTEGER NOT NULL,
	state      TEXT NOT NULL,
	remote_id  TEXT NOT NULL DEFAULT '',
	remote_url TEXT NOT NULL DEFAULT '',
	version    TEXT NOT NULL DEFAULT '',
	error      TEXT NOT NULL DEFAULT '',
	origin_at  TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	PRIMARY KEY (route, item, sink, part)
) STRICT;
CREATE INDEX bridge_copies_by_remote ON bridge_copies (sink, remote_id) WHERE remote_id != '';
CREATE INDEX bridge_copies_by_time ON bridge_copies (route, created_at);
`
	_, err := tx.ExecContext(ctx, ddl)
	return err
}

// migrateV5 records whether a route's last error was transient (a server
// error, a rate limit, a network failure: it backs off for seconds) or
// permanent (backs off for its interval doubled), for `ferry status`.
func migrateV5(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `ALTER TABLE bridge_routes ADD COLUMN last_error_transient INTEGER NOT NULL DEFAULT 0`)
	return err
}

// migrateV6 records until when a route's source asked to be left alone (a
// feed's ttl, Cache-Control or Retry-After), which `ferry mirror` honours
// between cron runs as the daemon does.
func migrateV6(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `ALTER TABLE bridge_routes ADD COLUMN wait_until TEXT NOT NULL DEFAULT ''`)
	return err
}

// BridgeRoute is a route's stored state.
type BridgeRoute struct {
	Name      string
	Cursor    string // the source's opaque cursor
	Started   bool   // the first run happened (existing posts recorded as seen)
	Paused    bool   // the route was paused; resuming skips the backlog
	Schedule  string // the schedule it was last given (interval or cron)
	NextRunAt time.Time
	LastRunAt time.Time
	LastOKAt  time.Time
	LastError string
	// Transient reports that LastError may pass by itself; NextRunAt is
	// then the (soon) retry.
	Transient bool
	FailCount int
	NewestAt  time.Time // creation time of the newest origin post handled
	Posted    int       // copies in state posted
	Failed    int       // copies in state failed
}

func nullableTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatTime(t)
}

func parseOptTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return parseTime(s)
}

// BridgeRoute returns the stored state of route; a route never seen has a
// zero state (Started false) and no error.
func (s *Store) BridgeRoute(ctx context.Context, name string) (BridgeRoute, error) {
	rs, err := s.bridgeRoutes(ctx, name)
	if err != nil {
		return BridgeRoute{}, err
	}
	if len(rs) == 0 {
		return BridgeRoute{Name: name}, nil
	}
	return rs[0], nil
}

// BridgeRoutes returns the stored state of every route, by name.
func (s *Store) BridgeRoutes(ctx context.Context) ([]BridgeRoute, error) {
	return s.bridgeRoutes(ctx, "")
}

func (s *Store) bridgeRoutes(ctx context.Context, name string) ([]BridgeRoute, error) {
	rows, err := s.db.QueryContext(ctx, `
SELECT r.name, r.cursor, r.started, r.paused, r.schedule, r.next_run_at, r.last_run_at, r.last_ok_at,
       r.last_error, r.last_error_transient, r.fail_count, r.newest_at,
       (SELECT COUNT(*) FROM bridge_copies c WHERE c.route = r.name AND c.state = 'posted'),
       (SELECT COUNT(*) FROM bridge_copies c WHERE c.route = r.name AND c.state = 'failed')
FROM bridge_routes r WHERE ? = '' OR r.name = ? ORDER BY r.name`, name, name)
	if err != nil {
		return nil, fmt.Errorf("read bridge routes: %w", err)
	}
	defer rows.Close()
	var out []BridgeRoute
	for rows.Next() {
		var r BridgeRoute
		var next, last, ok, newest string
		if err := rows.Scan(&r.Name, &r.Cursor, &r.Started, &r.Paused, &r.Schedule, &next, &last, &ok,
			&r.LastError, &r.Transient, &r.FailCount, &newest, &r.Posted, &r.Failed); err != nil {
			return nil, fmt.Errorf("read bridge routes: %w", err)
		}
		for _, p := range []struct {
			dst *time.Time
			src string
		}{{&r.NextRunAt, next}, {&r.LastRunAt, last}, {&r.LastOKAt, ok}, {&r.NewestAt, newest}} {
			if *p.dst, err = parseOptTime(p.src); err != nil {
				return nil, fmt.Errorf("read bridge route %s: %w", r.Name, err)
			}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const ensureRoute = `INSERT INTO bridge_routes (name, updated_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`

// BridgeSaveCursor records the route's source cursor, marks its first run
// done and its pause over, and raises NewestAt to newest when later.
func (s *Store) BridgeSaveCursor(ctx context.Context, route, cursor string, newest time.Time) error {
	now := formatTime(time.Now())
	q := `
INSERT INTO bridge_routes (name, updated_at, cursor, started, paused, newest_at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, started = excluded.started, paused = excluded.paused,
	updated_at = excluded.updated_at,
	newest_at = CASE WHEN excluded.newest_at > bridge_routes.newest_at THEN excluded.newest_at ELSE bridge_routes.newest_at END`
	if s.pg {
		// Most polls of a feed change nothing here: no new row version
		// then (updated_at is the last change), which on a database that
		// many daemons write is work saved on every run.
		q += `
WHERE bridge_routes.cursor != excluded.cursor OR NOT bridge_routes.started OR bridge_routes.paused
	OR excluded.newest_at > bridge_routes.newest_at`
	}
	err := s.writeStmt(ctx, func(ctx context.Context, tx querier) error {
		_, err := tx.ExecContext(ctx, q, route, now, cursor, true, false, nullableTime(newest))
		return err
	})
	if err != nil {
		return fmt.Errorf("save the cursor of route %s: %w", route, err)
	}
	return nil
}

// BridgeSetPaused records that route is paused (or not). A paused route
// that resumes starts like a first run: what was posted meanwhile is
// recorded as seen, not posted.
func (s *Store) BridgeSetPaused(ctx context.Context, route string, paused bool) error {
	now := formatTime(time.Now())
	err := s.Write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, ensureRoute, route, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE bridge_routes SET paused = ?, updated_at = ? WHERE name = ?`, paused, now, route)
		return err
	})
	if err != nil {
		return fmt.Errorf("pause route %s: %w", route, err)
	}
	return nil
}

// BridgeItem is one identity under which a route saw an origin item.
type BridgeItem struct {
	OriginID    string
	Item        string // the item's first origin ID; "" = OriginID
	Link        string // canonical link, "" if none
	ContentHash string // "" when the route does not match by content
	Version     string // the origin's version when last seen (an edit changes it)
	CreatedAt   time.Time
}

// BridgeFindItem returns the item that an origin post with these
// identities belongs to: by origin ID, else by link, else by content hash
// (empty values are not looked up), and the version recorded with the
// identity that matched. found is false for a new item.
func (s *Store) BridgeFindItem(ctx context.Context, route, originID, link, hash string) (item, version string, found bool, err error) {
	// One query for the three identities, the first that matches in that
	// order winning: a new item (found by none) costs one round trip, not
	// three.
	var conds, order []string
	args := []any{route}
	var orderArgs []any
	for _, q := range []struct{ col, val string }{{"origin_id", originID}, {"link", link}, {"content_hash", hash}} {
		if q.val == "" {
			continue
		}
		conds = append(conds, q.col+" = ?")
		args = append(args, q.val)
		order = append(order, fmt.Sprintf("WHEN %s = ? THEN %d", q.col, len(order)))
		orderArgs = append(orderArgs, q.val)
	}
	if len(conds) == 0 {
		return "", "", false, nil
	}
	err = s.db.QueryRowContext(ctx, `SELECT item, version FROM bridge_items WHERE route = ? AND (`+strings.Join(conds, " OR ")+`)
ORDER BY CASE `+strings.Join(order, " ")+` ELSE 9 END LIMIT 1`, append(args, orderArgs...)...).Scan(&item, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("look up item %s of route %s: %w", originID, route, err)
	}
	return item, version, true, nil
}

// BridgeItemsByOrigin returns, for those of originIDs that route has
// seen, the item each belongs to and the version recorded with it: one
// query for a whole feed instead of one per item.
func (s *Store) BridgeItemsByOrigin(ctx context.Context, route string, originIDs []string) (map[string][2]string, error) {
	out := make(map[string][2]string, len(originIDs))
	const chunk = 500 // well under SQLite's limit on bound parameters
	for start := 0; start < len(originIDs); start += chunk {
		ids := originIDs[start:min(start+chunk, len(originIDs))]
		args := make([]any, 0, len(ids)+1)
		args = append(args, route)
		for _, id := range ids {
			args = append(args, id)
		}
		rows, err := s.db.QueryContext(ctx, `SELECT origin_id, item, version FROM bridge_items WHERE route = ? AND origin_id IN (`+
			strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("look up items of route %s: %w", route, err)
		}
		for rows.Next() {
			var id, item, version string
			if err := rows.Scan(&id, &item, &version); err != nil {
				rows.Close()
				return nil, fmt.Errorf("look up items of route %s: %w", route, err)
			}
			out[id] = [2]string{item, version}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("look up items of route %s: %w", route, err)
		}
	}
	return out, nil
}

// BridgeSaveItems records items as seen by route, in one transaction, and
// refreshes those already known: their link, hash and version (so an
// edited item is found again by its new content), and their last-seen
// time, which BridgePrune reads, at most hourly so that polling a large
// unchanged feed writes nothing.
func (s *Store) BridgeSaveItems(ctx context.Context, route string, items []BridgeItem) error {
	if len(items) == 0 {
		return nil
	}
	now := formatTime(time.Now())
	staleSeen := formatTime(time.Now().Add(-time.Hour))
	if s.pg {
		return s.saveItemsPG(ctx, route, items, now, staleSeen)
	}
	err := s.Write(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `
INSERT INTO bridge_items (route, origin_id, item, link, content_hash, version, created_at, first_seen_at, last_seen_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (route, origin_id) DO UPDATE SET link = excluded.link, content_hash = excluded.content_hash,
	version = excluded.version, last_seen_at = excluded.last_seen_at
WHERE bridge_items.version != excluded.version OR bridge_items.link != excluded.link
	OR bridge_items.content_hash != excluded.content_hash OR bridge_items.last_seen_at < ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, it := range items {
			item := it.Item
			if item == "" {
				item = it.OriginID
			}
			if _, err := stmt.ExecContext(ctx, route, it.OriginID, item, it.Link, it.ContentHash, it.Version,
				nullableTime(it.CreatedAt), now, now, staleSeen); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record %d items of route %s: %w", len(items), route, err)
	}
	return nil
}

// saveItemsPG is BridgeSaveItems on PostgreSQL: one statement for the
// whole list (arrays unnested into rows), instead of one per item. An
// origin ID listed twice is merged first, as one statement may not change a
// row twice: the first listing's item and creation time (which an insert
// keeps), the last one's link, hash and version (which updates replace).
func (s *Store) saveItemsPG(ctx context.Context, route string, items []BridgeItem, now, staleSeen string) error {
	at := make(map[string]int, len(items))
	var ids, its, links, hashes, versions, created []string
	for _, it := range items {
		if i, dup := at[it.OriginID]; dup {
			links[i], hashes[i], versions[i] = it.Link, it.ContentHash, it.Version
			continue
		}
		at[it.OriginID] = len(ids)
		item := it.Item
		if item == "" {
			item = it.OriginID
		}
		ids, its = append(ids, it.OriginID), append(its, item)
		links, hashes = append(links, it.Link), append(hashes, it.ContentHash)
		versions, created = append(versions, it.Version), append(created, nullableTime(it.CreatedAt))
	}
	err := s.writeStmt(ctx, func(ctx context.Context, q querier) error {
		_, err := q.ExecContext(ctx, `
INSERT INTO bridge_items (route, origin_id, item, link, content_hash, version, created_at, first_seen_at, last_seen_at)
SELECT ?, u.o, u.i, u.l, u.h, u.v, u.c, ?, ?
FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[]) AS u(o, i, l, h, v, c)
ON CONFLICT (route, origin_id) DO UPDATE SET link = excluded.link, content_hash = excluded.content_hash,
	version = excluded.version, last_seen_at = excluded.last_seen_at
WHERE bridge_items.version != excluded.version OR bridge_items.link != excluded.link
	OR bridge_items.content_hash != excluded.content_hash OR bridge_items.last_seen_at < ?`,
			route, now, now, ids, its, links, hashes, versions, created, staleSeen)
		return err
	})
	if err != nil {
		return fmt.Errorf("record %d items of route %s: %w", len(items), route, err)
	}
	return nil
}

// BridgeCopy is what became of one part of an item on one sink.
type BridgeCopy struct {
	Route     string
	Item      string
	Sink      string // the sink account's handle
	Part      int    // 0 for the post itself, 1… for the rest of a split thread
	State     string // CopyPosted, CopyFailed, CopySkipped or CopyDeleted
	RemoteID  string
	RemoteURL string
	Version   string // hash of what was last sent
	Error     string
	OriginAt  time.Time // when the origin post was made
	CreatedAt time.Time
	// Link is the origin post's identity link (its URI on account routes,
	// its canonical link on feeds), "" if none: it finds the post again
	// on a server that changed the post's ID.
	Link string
}

// copyColumns are the columns scanCopies reads, from bridge_copies; the
// last is the item's link, from any of its bridge_items rows.
const copyColumns = `route, item, sink, part, state, remote_id, remote_url, version, error, origin_at, created_at,
COALESCE((SELECT MAX(i.link) FROM bridge_items i WHERE i.route = bridge_copies.route AND i.item = bridge_copies.item), '')`

func scanCopies(rows *sql.Rows) ([]BridgeCopy, error) {
	defer rows.Close()
	var out []BridgeCopy
	for rows.Next() {
		var c BridgeCopy
		var origin, created string
		if err := rows.Scan(&c.Route, &c.Item, &c.Sink, &c.Part, &c.State, &c.RemoteID, &c.RemoteURL,
			&c.Version, &c.Error, &origin, &created, &c.Link); err != nil {
			return nil, err
		}
		var err error
		if c.OriginAt, err = parseOptTime(origin); err != nil {
			return nil, err
		}
		if c.CreatedAt, err = parseOptTime(created); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// BridgeCopies returns the copies of item made by route, by sink and part.
func (s *Store) BridgeCopies(ctx context.Context, route, item string) ([]BridgeCopy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+copyColumns+` FROM bridge_copies
WHERE route = ? AND item = ? ORDER BY sink, part`, route, item)
	if err != nil {
		return nil, fmt.Errorf("read copies of %s (route %s): %w", item, route, err)
	}
	out, err := scanCopies(rows)
	if err != nil {
		return nil, fmt.Errorf("read copies of %s (route %s): %w", item, route, err)
	}
	return out, nil
}

// BridgeCopiesBetween returns route's posted copies (part 0) of origin
// posts made between from and to, inclusive: the candidates for a deletion
// check against the source's recent window.
func (s *Store) BridgeCopiesBetween(ctx context.Context, route string, from, to time.Time) ([]BridgeCopy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+copyColumns+` FROM bridge_copies
WHERE route = ? AND part = 0 AND state = 'posted' AND origin_at != '' AND origin_at >= ? AND origin_at <= ?
ORDER BY origin_at`, route, formatTime(from), formatTime(to))
	if err != nil {
		return nil, fmt.Errorf("read recent copies of route %s: %w", route, err)
	}
	out, err := scanCopies(rows)
	if err != nil {
		return nil, fmt.Errorf("read recent copies of route %s: %w", route, err)
	}
	return out, nil
}

// BridgeIsCopy reports whether remoteID on account is a copy some route
// made (posted or since deleted): a two-way route must not mirror it back.
func (s *Store) BridgeIsCopy(ctx context.Context, account, remoteID string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM bridge_copies WHERE sink = ? AND remote_id = ?`,
		normHandle(account), remoteID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("check whether %s on %s is a copy: %w", remoteID, account, err)
	}
	return n > 0, nil
}

// BridgePostedSince counts the posts (first parts) route created since t,
// posted or failed: the runaway guard's measure.
func (s *Store) BridgePostedSince(ctx context.Context, route string, t time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM bridge_copies
WHERE route = ? AND part = 0 AND created_at >= ? AND state IN ('posted', 'failed')`, route, formatTime(t)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count recent posts of route %s: %w", route, err)
	}
	return n, nil
}

// BridgeJob returns the journal job of route, creating it if needed.
func (s *Store) BridgeJob(ctx context.Context, route string) (Job, error) {
	j, _, err := s.CreateJob(ctx, Job{Kind: BridgeJobKind, Key: route})
	return j, err
}

// BridgeFinish records the outcome of a journal step and the copy it made
// or changed, in one transaction: a step is done if and only if its copy
// is recorded. A copy with an empty State only finishes the step.
func (s *Store) BridgeFinish(ctx context.Context, it Item, c BridgeCopy) error {
	if c.State == "" {
		return s.FinishItem(ctx, it)
	}
	now := formatTime(time.Now())
	copyArgs := []any{c.Route, c.Item, normHandle(c.Sink), c.Part, c.State, c.RemoteID, c.RemoteURL, c.Version, c.Error,
		nullableTime(c.OriginAt), now, now}
	if s.pg {
		// One statement, so one round trip and atomic by itself: the
		// copy is written only if the step was there to mark.
		if err := validOutcome(it); err != nil {
			return err
		}
		args := append(itemOutcomeArgs(it), copyArgs...)
		err := s.writeStmt(context.WithoutCancel(ctx), func(ctx context.Context, q querier) error {
			var n int
			if err := q.QueryRowContext(ctx, `
WITH done AS (`+itemOutcomeSQL+` RETURNING 1
), copied AS (
	INSERT INTO bridge_copies (route, item, sink, part, state, remote_id, remote_url, version, error, origin_at, created_at, updated_at)
	SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM done)
	`+copyUpsert+`
)
SELECT count(*) FROM done`, args...).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return ErrNotFound
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("finish item %s/%s of job %d: %w", it.Step, it.Key, it.JobID, err)
		}
		return nil
	}
	return s.finishItem(ctx, it, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(context.WithoutCancel(ctx), `
INSERT INTO bridge_copies (route, item, sink, part, state, remote_id, remote_url, version, error, origin_at, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
`+copyUpsert, copyArgs...)
		return err
	})
}

// copyUpsert ends the insert of a copy: a copy recorded again keeps the
// remote ID, address and version it had when the new record has none.
const copyUpsert = `ON CONFLICT (route, item, sink, part) DO UPDATE SET state = excluded.state,
	remote_id = CASE WHEN excluded.remote_id != '' THEN excluded.remote_id ELSE bridge_copies.remote_id END,
	remote_url = CASE WHEN excluded.remote_url != '' THEN excluded.remote_url ELSE bridge_copies.remote_url END,
	version = CASE WHEN excluded.version != '' THEN excluded.version ELSE bridge_copies.version END,
	error = excluded.error, updated_at = excluded.updated_at`

// BridgePrune forgets what route no longer needs: finished journal steps
// older than keep, and items not seen for keep that have no copy (feed
// items long gone from their feed). Copies are kept: they are the map that
// edits, deletes and the loop guard need.
func (s *Store) BridgePrune(ctx context.Context, route string, keep time.Duration) error {
	cutoff := formatTime(time.Now().Add(-keep))
	// The deletes decide nothing in Go; their rows' locks are enough.
	err := s.writeIn(ctx, "", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `
DELETE FROM job_items WHERE status != 'pending' AND updated_at < ?
	AND job_id IN (SELECT id FROM jobs WHERE kind = ? AND key = ?)`, cutoff, BridgeJobKind, route); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
DELETE FROM bridge_items WHERE route = ? AND last_seen_at < ?
	AND NOT EXISTS (SELECT 1 FROM bridge_copies c WHERE c.route = bridge_items.route AND c.item = bridge_items.item)`,
			route, cutoff)
		return err
	})
	if err != nil {
		return fmt.Errorf("prune route %s: %w", route, err)
	}
	return nil
}

// BridgeSchedule makes sure each named route has a row and records its
// schedule. A route whose schedule changed, that has no next run yet, or
// every route when dueNow is set (a daemon starting: runs that a killed
// daemon had claimed must not wait for their lease), becomes due now.
func (s *Store) BridgeSchedule(ctx context.Context, schedules map[string]string, dueNow bool) error {
	now := formatTime(time.Now())
	if s.pg {
		return s.schedulePG(ctx, schedules, dueNow, now)
	}
	err := s.Write(ctx, func(tx *sql.Tx) error {
		for name, sched := range schedules {
			if _, err := tx.ExecContext(ctx, ensureRoute, name, now); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `
UPDATE bridge_routes SET schedule = ?, updated_at = ?,
	next_run_at = CASE WHEN ? OR schedule != ? OR next_run_at = '' THEN ? ELSE next_run_at END
WHERE name = ?`, sched, now, dueNow, sched, now, name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record route schedules: %w", err)
	}
	return nil
}

// schedulePG is BridgeSchedule on PostgreSQL: one statement for every
// route (a daemon with 10 000 routes starts without 20 000 round trips).
func (s *Store) schedulePG(ctx context.Context, schedules map[string]string, dueNow bool, now string) error {
	names := make([]string, 0, len(schedules))
	specs := make([]string, 0, len(schedules))
	for name, sched := range schedules {
		names, specs = append(names, name), append(specs, sched)
	}
	err := s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
INSERT INTO bridge_routes (name, updated_at, schedule, next_run_at)
SELECT u.n, ?, u.s, ? FROM unnest(?::text[], ?::text[]) AS u(n, s)
ON CONFLICT (name) DO UPDATE SET schedule = excluded.schedule, updated_at = excluded.updated_at,
	next_run_at = CASE WHEN ? OR bridge_routes.schedule != excluded.schedule OR bridge_routes.next_run_at = ''
		THEN excluded.next_run_at ELSE bridge_routes.next_run_at END`, now, now, names, specs, dueNow)
		return err
	})
	if err != nil {
		return fmt.Errorf("record route schedules: %w", err)
	}
	return nil
}

// BridgeRunSoon makes route due now (after a stream reconnects, to catch
// what it may have missed).
func (s *Store) BridgeRunSoon(ctx context.Context, route string) error {
	now := formatTime(time.Now())
	err := s.writeStmt(ctx, func(ctx context.Context, q querier) error {
		_, err := q.ExecContext(ctx, `UPDATE bridge_routes SET next_run_at = ? WHERE name = ? AND next_run_at > ?`, now, route, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("schedule route %s: %w", route, err)
	}
	return nil
}

// BridgeClaimDue returns the names among candidates whose next run is due
// at now, and pushes their next run to now+lease in the same transaction,
// so a route is never picked twice while it runs (miniflux's batch claim).
func (s *Store) BridgeClaimDue(ctx context.Context, candidates []string, now time.Time, lease time.Duration) ([]string, error) {
	if len(candidates) == 0 {
		return nil, nil
	}
	var due []string
	err := s.Write(ctx, func(tx *sql.Tx) error {
		due = due[:0]
		args := make([]any, 0, len(candidates)+1)
		args = append(args, formatTime(now))
		for _, c := range candidates {
			args = append(args, c)
		}
		rows, err := tx.QueryContext(ctx, `SELECT name FROM bridge_routes WHERE next_run_at <= ?
AND name IN (`+strings.TrimSuffix(strings.Repeat("?,", len(candidates)), ",")+`) ORDER BY next_run_at`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			due = append(due, n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, n := range due {
			if _, err := tx.ExecContext(ctx, `UPDATE bridge_routes SET next_run_at = ? WHERE name = ?`,
				formatTime(now.Add(lease)), n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pick due routes: %w", err)
	}
	return due, nil
}

// BridgeFailures returns how many runs of route failed in a row (0 for a
// route never run).
func (s *Store) BridgeFailures(ctx context.Context, route string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT fail_count FROM bridge_routes WHERE name = ?`, route).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the failures of route %s: %w", route, err)
	}
	return n, nil
}

// BridgeRetryAt returns, if the last run of route failed, when it is
// tried again (its next run); zero if it did not fail or never ran.
func (s *Store) BridgeRetryAt(ctx context.Context, route string) (time.Time, error) {
	var next string
	err := s.db.QueryRowContext(ctx, `SELECT next_run_at FROM bridge_routes WHERE name = ? AND fail_count > 0`, route).Scan(&next)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read the retry time of route %s: %w", route, err)
	}
	t, err := parseOptTime(next)
	if err != nil {
		return time.Time{}, fmt.Errorf("read the retry time of route %s: %w", route, err)
	}
	return t, nil
}

// BridgeSetWait records until when route's source asked not to be read
// again; the zero time clears it.
func (s *Store) BridgeSetWait(ctx context.Context, route string, until time.Time) error {
	if s.pg {
		// One statement that writes only a changed wait: the write and
		// the read that spares it are one round trip.
		err := s.writeStmt(context.WithoutCancel(ctx), func(ctx context.Context, q querier) error {
			_, err := q.ExecContext(ctx, `
INSERT INTO bridge_routes (name, updated_at, wait_until) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET wait_until = excluded.wait_until
WHERE bridge_routes.wait_until != excluded.wait_until`, route, formatTime(time.Now()), nullableTime(until))
			return err
		})
		if err != nil {
			return fmt.Errorf("record the wait of route %s: %w", route, err)
		}
		return nil
	}
	// Most runs leave the wait as it was (none): a read saves them a write
	// transaction, which SQLite's writers take one at a time.
	var cur string
	err := s.db.QueryRowContext(ctx, `SELECT wait_until FROM bridge_routes WHERE name = ?`, route).Scan(&cur)
	if err == nil && cur == nullableTime(until) {
		return nil
	}
	now := formatTime(time.Now())
	return s.Write(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, ensureRoute, route, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE bridge_routes SET wait_until = ? WHERE name = ?`, nullableTime(until), route)
		return err
	})
}

// BridgeWaitUntil returns until when route's source asked not to be read
// again (BridgeSetWait); zero for no such request.
func (s *Store) BridgeWaitUntil(ctx context.Context, route string) (time.Time, error) {
	var until string
	err := s.db.QueryRowContext(ctx, `SELECT wait_until FROM bridge_routes WHERE name = ?`, route).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read the wait of route %s: %w", route, err)
	}
	t, err := parseOptTime(until)
	if err != nil {
		return time.Time{}, fmt.Errorf("read the wait of route %s: %w", route, err)
	}
	return t, nil
}

// BridgeRecordRun records the end of a run of route: when it started, its
// error ("" for success, which resets the failure count), whether that
// error is transient, and its next run.
func (s *Store) BridgeRecordRun(ctx context.Context, route string, at time.Time, runErr string, transient bool, next time.Time) error {
	// The run happened; a shutdown must not lose its record.
	ctx = context.WithoutCancel(ctx)
	err := s.writeStmt(ctx, func(ctx context.Context, q querier) error {
		_, err := q.ExecContext(ctx, recordRun, recordRunArgs(route, at, runErr, transient, next)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("record the run of route %s: %w", route, err)
	}
	return nil
}

// recordRun writes a run's record in one statement, creating the route's
// row if it has none; its arguments are recordRunArgs'. A failure counts
// one more failure in a row, a success resets the count.
const recordRun = `
INSERT INTO bridge_routes (name, updated_at, last_run_at, last_error, last_error_transient, next_run_at, fail_count, last_ok_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET last_run_at = excluded.last_run_at, last_error = excluded.last_error,
	last_error_transient = excluded.last_error_transient, next_run_at = excluded.next_run_at, updated_at = excluded.updated_at,
	fail_count = CASE WHEN excluded.last_error = '' THEN 0 ELSE bridge_routes.fail_count + 1 END,
	last_ok_at = CASE WHEN excluded.last_error = '' THEN excluded.last_ok_at ELSE bridge_routes.last_ok_at END`

func recordRunArgs(route string, at time.Time, runErr string, transient bool, next time.Time) []any {
	fails, okAt := 0, formatTime(at)
	if runErr != "" {
		fails, okAt = 1, ""
	}
	return []any{route, formatTime(time.Now()), formatTime(at), runErr, transient && runErr != "", nullableTime(next), fails, okAt}
}

// BridgeEndRun records the end of a run of route as BridgeRecordRun does,
// with its source's wait as BridgeSetWait does, and, when lease is not "",
// drops the run's lease if holder has it (ReleaseLease): on PostgreSQL in
// one statement, the one write of a run that found nothing new. On SQLite,
// which has no leases, it is BridgeRecordRun then BridgeSetWait.
func (s *Store) BridgeEndRun(ctx context.Context, route string, at time.Time, runErr string, transient bool, next, waitUntil time.Time, lease, holder string) error {
	ctx = context.WithoutCancel(ctx)
	if !s.pg {
		if lease != "" {
			return ErrNotShared
		}
		if err := s.BridgeRecordRun(ctx, route, at, runErr, transient, next); err != nil {
			return err
		}
		return s.BridgeSetWait(ctx, route, waitUntil)
	}
	// The record and the release are one statement, so another daemon
	// never finds the route free with its last run not yet recorded.
	const endRun = `
WITH released AS (DELETE FROM leases WHERE name = ? AND holder = ? AND ? != '')
INSERT INTO bridge_routes (name, updated_at, last_run_at, last_error, last_error_transient, next_run_at, fail_count, last_ok_at, wait_until)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET last_run_at = excluded.last_run_at, last_error = excluded.last_error,
	last_error_transient = excluded.last_error_transient, next_run_at = excluded.next_run_at, updated_at = excluded.updated_at,
	fail_count = CASE WHEN excluded.last_error = '' THEN 0 ELSE bridge_routes.fail_count + 1 END,
	last_ok_at = CASE WHEN excluded.last_error = '' THEN excluded.last_ok_at ELSE bridge_routes.last_ok_at END,
	wait_until = excluded.wait_until`
	args := append([]any{lease, holder, lease}, recordRunArgs(route, at, runErr, transient, next)...)
	args = append(args, nullableTime(waitUntil))
	err := s.writeStmt(ctx, func(ctx context.Context, q querier) error {
		_, err := q.ExecContext(ctx, endRun, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("record the run of route %s: %w", route, err)
	}
	return nil
}
