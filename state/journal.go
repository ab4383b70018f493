package state

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/fedi-ferry/ferry/journal"
)

// The store keeps package journal's jobs and items (the plan → journal →
// apply contract is documented there) and satisfies the Journal interfaces
// that migrate, migrate/publish and migrate/move declare.

// The journal's values are package journal's; these names keep the store's
// own callers (the bridge tables, the CLI) reading as before.
type (
	// Job is journal.Job.
	Job = journal.Job
	// Item is journal.Item.
	Item = journal.Item
	// ItemStatus is journal.ItemStatus.
	ItemStatus = journal.ItemStatus
	// ItemFilter is journal.ItemFilter.
	ItemFilter = journal.ItemFilter
)

// Job and item statuses, as in package journal.
const (
	JobPlanning = journal.JobPlanning
	JobPlanned  = journal.JobPlanned
	JobDone     = journal.JobDone
	JobFailed   = journal.JobFailed

	ItemPending = journal.ItemPending
	ItemDone    = journal.ItemDone
	ItemFailed  = journal.ItemFailed
	ItemSkipped = journal.ItemSkipped
)

// InFlightGrace is journal.InFlightGrace.
const InFlightGrace = journal.InFlightGrace

// migrateV2 creates the journal tables.
func migrateV2(ctx context.Context, tx *sql.Tx) error {
	const ddl = `
CREATE TABLE jobs (
	id         INTEGER PRIMARY KEY,
	kind       TEXT NOT NULL,
	key        TEXT NOT NULL,
	account    TEXT NOT NULL,
	status     TEXT NOT NULL,
	params     TEXT NOT NULL,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	UNIQUE (kind, key)
) STRICT;

CREATE TABLE job_items (
	job_id     INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
	seq        INTEGER NOT NULL,
	step       TEXT NOT NULL,
	key        TEXT NOT NULL,
	payload    TEXT NOT NULL,
	status     TEXT NOT NULL,
	attempts   INTEGER NOT NULL DEFAULT 0,
	error      TEXT NOT NULL DEFAULT '',
	remote_id  TEXT NOT NULL DEFAULT '',
	updated_at TEXT NOT NULL,
	PRIMARY KEY (job_id, step, key)
) STRICT;
CREATE INDEX job_items_by_seq ON job_items (job_id, status, seq);
`
	_, err := tx.ExecContext(ctx, ddl)
	return err
}

// CreateJob returns the job with j's (Kind, Key), creating it with status
// JobPlanning if there is none. created reports which happened; an existing
// job is returned unchanged, so a rerun resumes rather than restarts.
func (s *Store) CreateJob(ctx context.Context, j Job) (job Job, created bool, err error) {
	if j.Kind == "" || j.Key == "" {
		return Job{}, false, errors.New("create job: kind and key are required")
	}
	if j.Params == "" {
		j.Params = "{}"
	}
	now := formatTime(time.Now())
	err = s.writeStmt(ctx, func(ctx context.Context, tx querier) error {
		res, err := tx.ExecContext(ctx, `
INSERT INTO jobs (kind, key, account, status, params, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, key) DO NOTHING`,
			j.Kind, j.Key, j.Account, JobPlanning, j.Params, now, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		created = n == 1
		return err
	})
	if err != nil {
		return Job{}, false, fmt.Errorf("create %s job %q: %w", j.Kind, j.Key, err)
	}
	job, err = s.Job(ctx, j.Kind, j.Key)
	return job, created, err
}

const jobColumns = `id, kind, key, account, status, params, created_at, updated_at`

func scanJob(row interface{ Scan(...any) error }) (Job, error) {
	var j Job
	var created, updated string
	if err := row.Scan(&j.ID, &j.Kind, &j.Key, &j.Account, &j.Status, &j.Params, &created, &updated); err != nil {
		return Job{}, err
	}
	var err error
	if j.CreatedAt, err = parseTime(created); err != nil {
		return Job{}, err
	}
	if j.UpdatedAt, err = parseTime(updated); err != nil {
		return Job{}, err
	}
	return j, nil
}

// Job returns the job (kind, key), or an error wrapping ErrNotFound.
func (s *Store) Job(ctx context.Context, kind, key string) (Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE kind = ? AND key = ?`, kind, key))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, fmt.Errorf("%s job %q: %w", kind, key, ErrNotFound)
	}
	if err != nil {
		return Job{}, fmt.Errorf("get %s job %q: %w", kind, key, err)
	}
	return j, nil
}

// Jobs returns the jobs of kind ("" = all), newest first.
func (s *Store) Jobs(ctx context.Context, kind string) ([]Job, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE ? = '' OR kind = ? ORDER BY id DESC`, kind, kind)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// UpdateJob sets the job's status and, when params is not "", its params.
func (s *Store) UpdateJob(ctx context.Context, id int64, status, params string) error {
	err := s.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
UPDATE jobs SET status = ?, params = CASE WHEN ? = '' THEN params ELSE ? END, updated_at = ? WHERE id = ?`,
			status, params, params, formatTime(time.Now()), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update job %d: %w", id, err)
	}
	return nil
}

// DeleteJob removes a job and its items.
func (s *Store) DeleteJob(ctx context.Context, id int64) error {
	err := s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM jobs WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete job %d: %w", id, err)
	}
	return nil
}

// FreezePlan stores items as the job's plan and sets the job to JobPlanned,
// all in one transaction: either the whole plan is journaled or none of it.
// Items keep the order given (Seq is assigned here); an item whose
// (Step, Key) is already planned is left as it is. Status defaults to
// ItemPending; planning may also record items already ItemSkipped.
func (s *Store) FreezePlan(ctx context.Context, jobID int64, items []Item) error {
	now := formatTime(time.Now())
	// The numbering reads the job's last number, then writes after it: the
	// job's own lock keeps two plans of one job apart.
	err := s.writeIn(ctx, fmt.Sprintf("job/%d", jobID), func(tx *sql.Tx) error {
		if s.pg {
			return freezePlanPG(ctx, tx, jobID, items, now)
		}
		var seq int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM job_items WHERE job_id = ?`, jobID).Scan(&seq); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `
INSERT INTO job_items (job_id, seq, step, key, payload, status, error, remote_id, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, step, key) DO NOTHING`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, it := range items {
			seq++
			st := it.Status
			if st == "" {
				st = ItemPending
			}
			payload := it.Payload
			if payload == "" {
				payload = "{}"
			}
			if _, err := stmt.ExecContext(ctx, jobID, seq, it.Step, it.Key, payload, string(st), it.Error, it.RemoteID, now); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, updated_at = ? WHERE id = ?`, JobPlanned, now, jobID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("freeze the plan of job %d: %w", jobID, err)
	}
	return nil
}

// freezePlanPG is FreezePlan's transaction in one statement, under the
// job's lock: the items numbered after the job's last, sent as arrays, and
// the job marked planned.
func freezePlanPG(ctx context.Context, tx *sql.Tx, jobID int64, items []Item, now string) error {
	steps, keys, payloads, statuses, errs, remotes := make([]string, len(items)), make([]string, len(items)),
		make([]string, len(items)), make([]string, len(items)), make([]string, len(items)), make([]string, len(items))
	for i, it := range items {
		steps[i], keys[i], errs[i], remotes[i] = it.Step, it.Key, it.Error, it.RemoteID
		statuses[i] = string(cmp.Or(it.Status, ItemPending))
		payloads[i] = cmp.Or(it.Payload, "{}")
	}
	var n int
	err := tx.QueryRowContext(ctx, `
WITH last AS (SELECT COALESCE(MAX(seq), 0) AS seq FROM job_items WHERE job_id = ?
), added AS (
	INSERT INTO job_items (job_id, seq, step, key, payload, status, error, remote_id, updated_at)
	SELECT ?, last.seq + i.n, i.step, i.key, i.payload, i.status, i.error, i.remote_id, ?
	FROM last, unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[])
		WITH ORDINALITY AS i(step, key, payload, status, error, remote_id, n)
	ON CONFLICT (job_id, step, key) DO NOTHING
), planned AS (
	UPDATE jobs SET status = ?, updated_at = ? WHERE id = ? RETURNING 1
)
SELECT count(*) FROM planned`, jobID, jobID, now, steps, keys, payloads, statuses, errs, remotes, JobPlanned, now, jobID).Scan(&n)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

const itemColumns = `job_id, seq, step, key, payload, status, attempts, error, remote_id, updated_at`

func scanItem(row interface{ Scan(...any) error }) (Item, error) {
	var it Item
	var status, updated string
	if err := row.Scan(&it.JobID, &it.Seq, &it.Step, &it.Key, &it.Payload, &status, &it.Attempts, &it.Error, &it.RemoteID, &updated); err != nil {
		return Item{}, err
	}
	it.Status = ItemStatus(status)
	var err error
	it.UpdatedAt, err = parseTime(updated)
	return it, err
}

// Items returns the job's items matching f, in plan order.
func (s *Store) Items(ctx context.Context, jobID int64, f ItemFilter) ([]Item, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 1 << 62 // no limit, in both dialects (PostgreSQL refuses -1)
	}
	rows, err := s.db.QueryContext(ctx, `
SELECT `+itemColumns+` FROM job_items
WHERE job_id = ? AND (? = '' OR step = ?) AND (? = '' OR status = ?) AND seq > ?
ORDER BY seq LIMIT ?`,
		jobID, f.Step, f.Step, string(f.Status), string(f.Status), f.AfterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("list items of job %d: %w", jobID, err)
	}
	defer rows.Close()
	var out []Item
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, fmt.Errorf("list items of job %d: %w", jobID, err)
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// Item returns one item, or an error wrapping ErrNotFound.
func (s *Store) Item(ctx context.Context, jobID int64, step, key string) (Item, error) {
	it, err := scanItem(s.db.QueryRowContext(ctx,
		`SELECT `+itemColumns+` FROM job_items WHERE job_id = ? AND step = ? AND key = ?`, jobID, step, key))
	if errors.Is(err, sql.ErrNoRows) {
		return Item{}, fmt.Errorf("item %s/%s of job %d: %w", step, key, jobID, ErrNotFound)
	}
	if err != nil {
		return Item{}, fmt.Errorf("get item %s/%s of job %d: %w", step, key, jobID, err)
	}
	return it, nil
}

// BeginItem durably counts an attempt to apply the item and returns how
// many attempts there were before this one. Call it right before a remote
// write that cannot be repeated safely; a result above zero means an earlier
// run may have applied the item already (it crashed before FinishItem), and
// BeginItem has waited out what is left of InFlightGrace since that attempt
// began, so the caller's check of the server sees any write it made.
func (s *Store) BeginItem(ctx context.Context, jobID int64, step, key string) (previous int, err error) {
	if s.pg {
		return s.beginItemPG(ctx, jobID, step, key)
	}
	it, err := s.Item(ctx, jobID, step, key)
	if err != nil {
		return 0, fmt.Errorf("begin item: %w", err)
	}
	if err := journal.Sleep(ctx, it.SettleWait(time.Now())); err != nil {
		return 0, err
	}
	err = s.writeStmt(ctx, func(ctx context.Context, tx querier) error {
		if err := tx.QueryRowContext(ctx, `
UPDATE job_items SET attempts = attempts + 1, updated_at = ?
WHERE job_id = ? AND step = ? AND key = ? RETURNING attempts - 1`,
			formatTime(time.Now()), jobID, step, key).Scan(&previous); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("begin item %s/%s of job %d: %w", step, key, jobID, err)
	}
	return previous, nil
}

// beginItemPG is BeginItem in one round trip: the attempt is counted
// first, returning the item as it was, and what is left of the earlier
// attempt's grace is waited out after. The caller sees the same: it
// checks the server only once both are done. (A crash during the wait
// leaves one attempt counted that wrote nothing, which only makes the
// next run look before it writes, as it would anyway.)
func (s *Store) beginItemPG(ctx context.Context, jobID int64, step, key string) (int, error) {
	var was Item
	err := s.writeStmt(ctx, func(ctx context.Context, q querier) error {
		var updated string
		err := q.QueryRowContext(ctx, `
UPDATE job_items j SET attempts = j.attempts + 1, updated_at = ?
FROM (SELECT attempts, updated_at FROM job_items WHERE job_id = ? AND step = ? AND key = ? FOR UPDATE) was
WHERE j.job_id = ? AND j.step = ? AND j.key = ?
RETURNING was.attempts, was.updated_at`,
			formatTime(time.Now()), jobID, step, key, jobID, step, key).Scan(&was.Attempts, &updated)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		was.UpdatedAt, err = parseTime(updated)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("begin item %s/%s of job %d: %w", step, key, jobID, err)
	}
	if err := journal.Sleep(ctx, was.SettleWait(time.Now())); err != nil {
		return 0, err
	}
	return was.Attempts, nil
}

// FinishItem records the item's outcome (done, failed or skipped), its
// Error and its RemoteID, even when ctx is cancelled: the outcome happened
// remotely and must not be lost.
func (s *Store) FinishItem(ctx context.Context, it Item) error {
	return s.finishItem(ctx, it, nil)
}

// finishItem is FinishItem with also, when not nil, run in the same
// transaction, so rows that depend on the outcome (a mapping from an
// original post to its copy, say) are written if and only if the item is
// marked. also must only touch the database through tx.
func (s *Store) finishItem(ctx context.Context, it Item, also func(tx *sql.Tx) error) error {
	if err := validOutcome(it); err != nil {
		return err
	}
	// The outcome happened remotely; do not let a cancelled context lose it.
	ctx = context.WithoutCancel(ctx)
	mark := func(ctx context.Context, q querier) error {
		res, err := q.ExecContext(ctx, itemOutcomeSQL, itemOutcomeArgs(it)...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	}
	var err error
	if also == nil {
		// One statement that decides on nothing read before it.
		err = s.writeStmt(ctx, mark)
	} else {
		// Its writes decide on nothing read before them: their rows'
		// locks suffice.
		err = s.writeIn(ctx, "", func(tx *sql.Tx) error {
			if err := mark(ctx, tx); err != nil {
				return err
			}
			return also(tx)
		})
	}
	if err != nil {
		return fmt.Errorf("finish item %s/%s of job %d: %w", it.Step, it.Key, it.JobID, err)
	}
	return nil
}

// validOutcome refuses to finish an item with a status that is not an
// outcome.
func validOutcome(it Item) error {
	if it.Status == "" || it.Status == ItemPending {
		return fmt.Errorf("finish item %s/%s: status %q is not an outcome", it.Step, it.Key, it.Status)
	}
	return nil
}

// itemOutcomeSQL records an item's outcome; itemOutcomeArgs are its
// arguments.
const itemOutcomeSQL = `
UPDATE job_items SET status = ?, error = ?, remote_id = ?, updated_at = ?
WHERE job_id = ? AND step = ? AND key = ?`

func itemOutcomeArgs(it Item) []any {
	return []any{string(it.Status), it.Error, it.RemoteID, formatTime(time.Now()), it.JobID, it.Step, it.Key}
}

// ItemCounts returns how many items of the job are in each status, per step.
func (s *Store) ItemCounts(ctx context.Context, jobID int64) (map[string]map[ItemStatus]int, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT step, status, COUNT(*) FROM job_items WHERE job_id = ? GROUP BY step, status`, jobID)
	if err != nil {
		return nil, fmt.Errorf("count items of job %d: %w", jobID, err)
	}
	defer rows.Close()
	out := map[string]map[ItemStatus]int{}
	for rows.Next() {
		var step, status string
		var n int
		if err := rows.Scan(&step, &status, &n); err != nil {
			return nil, fmt.Errorf("count items of job %d: %w", jobID, err)
		}
		if out[step] == nil {
			out[step] = map[ItemStatus]int{}
		}
		out[step][ItemStatus(status)] = n
	}
	return out, rows.Err()
}
