package archive

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// PrivateDir is the directory inside an archive where ferry keeps its own
// files (the record store, the search index). Tools reading the Mastodon
// layout ignore it; ferry never exports it.
const PrivateDir = ".ferry"

// storeFile is the record store inside PrivateDir.
const storeFile = "archive.db"

// Store holds an archive's per-post records, its media download queue, its
// favourites and bookmarks and its profile. It is the source from which the
// layout's JSON files are regenerated. Safe for concurrent use.
type Store struct {
	db  *sql.DB
	dir string
}

// ErrForeignArchive is returned by OpenStore for a directory that holds an
// archive ferry did not write (an imported Mastodon archive): ferry would
// overwrite its outbox.json.
var ErrForeignArchive = errors.New("the directory holds an archive that `ferry archive` did not write; use a new directory")

// OpenStore opens (creating if needed) the record store of the archive in
// dir, creating dir when missing. It refuses a directory with an outbox.json
// but no store (see ErrForeignArchive).
func OpenStore(ctx context.Context, dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", dir, err)
	}
	priv := filepath.Join(abs, PrivateDir)
	path := filepath.Join(priv, storeFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(abs, "outbox.json")); err == nil {
			return nil, fmt.Errorf("archive %s: %w", abs, ErrForeignArchive)
		}
	}
	if err := os.MkdirAll(priv, 0o700); err != nil {
		return nil, fmt.Errorf("archive %s: %w", abs, err)
	}
	u := (&url.URL{Path: filepath.ToSlash(path)}).EscapedPath()
	db, err := sql.Open("sqlite", "file:"+u+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open archive store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // one writer; the archiver is the only user
	ddl := `
CREATE TABLE IF NOT EXISTS activities (
	id         TEXT PRIMARY KEY, -- status ID on the origin server
	uri        TEXT NOT NULL,
	published  TEXT NOT NULL,    -- RFC 3339 UTC, for ordering
	parent_id  TEXT NOT NULL DEFAULT '',
	parent_uri TEXT NOT NULL DEFAULT '',
	parent_tried INTEGER NOT NULL DEFAULT 0,
	edited     TEXT NOT NULL DEFAULT '',
	deleted    TEXT NOT NULL DEFAULT '',
	record     TEXT NOT NULL     -- the Activity as JSON
);
CREATE INDEX IF NOT EXISTS activities_by_date ON activities (published, id);
CREATE INDEX IF NOT EXISTS activities_by_uri ON activities (uri);
CREATE TABLE IF NOT EXISTS media (
	path      TEXT PRIMARY KEY,  -- relative path in the archive
	url       TEXT NOT NULL,
	status_id TEXT NOT NULL,
	done      INTEGER NOT NULL DEFAULT 0,
	error     TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS collections (
	name TEXT NOT NULL,          -- likes, bookmarks
	seq  INTEGER NOT NULL,
	uri  TEXT NOT NULL,
	PRIMARY KEY (name, uri)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- The posts a --refresh has listed so far (on disk, so memory stays flat).
CREATE TABLE IF NOT EXISTS refresh_seen (id TEXT PRIMARY KEY) WITHOUT ROWID;
-- Stores written before times were fixed-width (RFC 3339 with trailing
-- zeros trimmed, which sorts ".1Z" after ".12Z" and "05Z" after "05.3Z"):
-- pad the fraction to nine digits. Idempotent.
UPDATE activities SET published = ` + padTimeSQL("published") + ` WHERE length(published) != ` + timeLen + `;
UPDATE activities SET edited = ` + padTimeSQL("edited") + ` WHERE edited != '' AND length(edited) != ` + timeLen + `;
`
	if _, err := db.ExecContext(ctx, ddl); err != nil {
		db.Close()
		return nil, fmt.Errorf("open archive store %s: %w", path, err)
	}
	return &Store{db: db, dir: abs}, nil
}

// Dir returns the archive directory (absolute).
func (s *Store) Dir() string { return s.dir }

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// timeLayout is how the store writes times: UTC with a fixed-width
// fraction, so that comparing the strings compares the times (RFC 3339 as
// time.RFC3339Nano writes it trims trailing zeros and does not sort).
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// timeLen is len(timeLayout), as SQL text.
const timeLen = "30"

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// padTimeSQL is an SQL expression rewriting column col from RFC 3339 UTC
// with a trimmed fraction ("…:05Z", "…:05.12Z") to timeLayout.
func padTimeSQL(col string) string {
	frac := `CASE WHEN length(` + col + `) > 20 THEN substr(` + col + `, 21, length(` + col + `) - 21) ELSE '' END`
	return `substr(` + col + `, 1, 19) || '.' || substr(` + frac + ` || '000000000', 1, 9) || 'Z'`
}

// Record is one stored post with what the store tracks beside it.
type Record struct {
	ID        string // status ID on the origin server
	URI       string // the status's URI (the Note's id; the Announce's activity id is URI + "/activity")
	ParentID  string // in_reply_to_id, "" for none
	Edited    time.Time
	Activity  Activity
	Deleted   time.Time
	ParentURI string
}

// Put inserts or replaces a record (keeping a parent URI already resolved
// and a deletion mark unless the record is seen again).
func (s *Store) Put(ctx context.Context, r Record) error {
	data, err := json.Marshal(r.Activity)
	if err != nil {
		return fmt.Errorf("store post %s: %w", r.ID, err)
	}
	edited := ""
	if !r.Edited.IsZero() {
		edited = fmtTime(r.Edited)
	}
	_, err = s.db.ExecContext(ctx, `
INSERT INTO activities (id, uri, published, parent_id, parent_uri, edited, record)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET uri = excluded.uri, published = excluded.published,
	parent_id = excluded.parent_id, edited = excluded.edited, record = excluded.record, deleted = '',
	parent_uri = CASE WHEN excluded.parent_uri != '' THEN excluded.parent_uri ELSE activities.parent_uri END`,
		r.ID, r.URI, fmtTime(r.Activity.Published), r.ParentID, r.ParentURI, edited, string(data))
	if err != nil {
		return fmt.Errorf("store post %s: %w", r.ID, err)
	}
	return nil
}

// Has reports whether the store holds the post with status ID id.
func (s *Store) Has(ctx context.Context, id string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM activities WHERE id = ?`, id).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look up post %s: %w", id, err)
	}
	return n > 0, nil
}

// Stored returns the stored edit time of post id ("" when never edited),
// whether it is marked deleted, and whether the post is stored at all.
func (s *Store) Stored(ctx context.Context, id string) (edited string, deleted, found bool, err error) {
	var del string
	err = s.db.QueryRowContext(ctx, `SELECT edited, deleted FROM activities WHERE id = ?`, id).Scan(&edited, &del)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, false, nil
	}
	if err != nil {
		return "", false, false, fmt.Errorf("look up post %s: %w", id, err)
	}
	return edited, del != "", true, nil
}

// Count returns how many posts the store holds and how many are marked
// deleted.
func (s *Store) Count(ctx context.Context) (total, deleted int, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(deleted != ''), 0) FROM activities`).Scan(&total, &deleted)
	if err != nil {
		return 0, 0, fmt.Errorf("count posts: %w", err)
	}
	return total, deleted, nil
}

// MarkDeleted marks post id as gone from the server at time at; the record
// is kept.
func (s *Store) MarkDeleted(ctx context.Context, id string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE activities SET deleted = ? WHERE id = ? AND deleted = ''`, fmtTime(at), id)
	if err != nil {
		return fmt.Errorf("mark post %s deleted: %w", id, err)
	}
	return nil
}

// StartRefresh forgets the posts a previous (interrupted) refresh saw.
func (s *Store) StartRefresh(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM refresh_seen`); err != nil {
		return fmt.Errorf("start the refresh: %w", err)
	}
	return nil
}

// Seen records that the server still lists post id (see EachUnseen).
func (s *Store) Seen(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO refresh_seen (id) VALUES (?) ON CONFLICT DO NOTHING`, id); err != nil {
		return fmt.Errorf("refresh post %s: %w", id, err)
	}
	return nil
}

// EachUnseen calls fn with the status ID of every stored post not marked
// deleted and not Seen since StartRefresh, a page of IDs at a time (fn may
// use the store and take long: no rows stay open while it runs).
func (s *Store) EachUnseen(ctx context.Context, fn func(id string) error) error {
	const page = 100
	after := ""
	for {
		rows, err := s.db.QueryContext(ctx, `SELECT id FROM activities a WHERE deleted = '' AND id > ?
	AND NOT EXISTS (SELECT 1 FROM refresh_seen r WHERE r.id = a.id) ORDER BY id LIMIT ?`, after, page)
		if err != nil {
			return fmt.Errorf("list posts: %w", err)
		}
		ids := make([]string, 0, page)
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("list posts: %w", err)
			}
			ids = append(ids, id)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("list posts: %w", err)
		}
		for _, id := range ids {
			if err := fn(id); err != nil {
				return err
			}
		}
		if len(ids) < page {
			return nil
		}
		after = ids[len(ids)-1]
	}
}

// ResolveParents fills in the parent URI of replies whose parent is stored,
// and returns the parent IDs still unknown (replies to other people's posts)
// that have not been looked up yet.
func (s *Store) ResolveParents(ctx context.Context) ([]string, error) {
	if _, err := s.db.ExecContext(ctx, `
UPDATE activities SET parent_uri = (SELECT p.uri FROM activities p WHERE p.id = activities.parent_id)
WHERE parent_id != '' AND parent_uri = '' AND EXISTS (SELECT 1 FROM activities p WHERE p.id = activities.parent_id)`); err != nil {
		return nil, fmt.Errorf("resolve reply parents: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT parent_id FROM activities WHERE parent_id != '' AND parent_uri = '' AND parent_tried = 0`)
	if err != nil {
		return nil, fmt.Errorf("resolve reply parents: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("resolve reply parents: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// SetParentURI records the URI of parent post parentID ("" when it could not
// be found, which stops further look-ups).
func (s *Store) SetParentURI(ctx context.Context, parentID, uri string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE activities SET parent_uri = ?, parent_tried = 1 WHERE parent_id = ? AND parent_uri = ''`, uri, parentID)
	if err != nil {
		return fmt.Errorf("record parent %s: %w", parentID, err)
	}
	return nil
}

// EachActivity calls fn with every stored activity, oldest first (by
// creation time, then status ID: both Mastodon's and GoToSocial's IDs grow
// with time), with the reply parent and deletion mark filled in. Memory
// stays at one record.
func (s *Store) EachActivity(ctx context.Context, fn func(Activity) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT record, parent_uri, deleted FROM activities ORDER BY published, id`)
	if err != nil {
		return fmt.Errorf("read posts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var rec, parent, deleted string
		if err := rows.Scan(&rec, &parent, &deleted); err != nil {
			return fmt.Errorf("read posts: %w", err)
		}
		a, err := decodeActivity([]byte(rec))
		if err != nil {
			return fmt.Errorf("read posts: a stored record is damaged: %w", err)
		}
		if n, ok := a.Object.(*Note); ok && parent != "" {
			p := parent
			n.InReplyTo, n.InReplyToAtomURI = &p, &p
		}
		if deleted != "" {
			if t, err := time.Parse(time.RFC3339, deleted); err == nil {
				a.Deleted = &t
			}
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	return rows.Err()
}

// QueueMedia records a media file to download (once; a file already queued
// keeps its state).
func (s *Store) QueueMedia(ctx context.Context, path, url, statusID string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO media (path, url, status_id) VALUES (?, ?, ?) ON CONFLICT (path) DO NOTHING`, path, url, statusID)
	if err != nil {
		return fmt.Errorf("queue media %s: %w", path, err)
	}
	return nil
}

// MediaJob is one media file to download.
type MediaJob struct {
	Path string // relative to the archive root
	URL  string
}

// PendingMedia returns the media files not downloaded yet.
func (s *Store) PendingMedia(ctx context.Context) ([]MediaJob, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT path, url FROM media WHERE done = 0 ORDER BY path`)
	if err != nil {
		return nil, fmt.Errorf("list pending media: %w", err)
	}
	defer rows.Close()
	var out []MediaJob
	for rows.Next() {
		var j MediaJob
		if err := rows.Scan(&j.Path, &j.URL); err != nil {
			return nil, fmt.Errorf("list pending media: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// FinishMedia records a download's outcome; errMsg "" means done.
func (s *Store) FinishMedia(ctx context.Context, path, errMsg string) error {
	done := 0
	if errMsg == "" {
		done = 1
	}
	_, err := s.db.ExecContext(ctx, `UPDATE media SET done = ?, error = ? WHERE path = ?`, done, errMsg, path)
	if err != nil {
		return fmt.Errorf("record media %s: %w", path, err)
	}
	return nil
}

// SetCollection replaces the URIs of a collection (likes, bookmarks),
// keeping the given order (newest first, as the API returns them).
func (s *Store) SetCollection(ctx context.Context, name string, uris []string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store %s: %w", name, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, `DELETE FROM collections WHERE name = ?`, name); err != nil {
		return fmt.Errorf("store %s: %w", name, err)
	}
	for i, u := range uris {
		if _, err := tx.ExecContext(ctx, `INSERT INTO collections (name, seq, uri) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, name, i, u); err != nil {
			return fmt.Errorf("store %s: %w", name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store %s: %w", name, err)
	}
	return nil
}

// EachInCollection calls fn with the collection's URIs in order.
func (s *Store) EachInCollection(ctx context.Context, name string, fn func(uri string) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT uri FROM collections WHERE name = ? ORDER BY seq`, name)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		if err := fn(u); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Meta returns a stored value ("" when unset).
func (s *Store) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", key, err)
	}
	return v, nil
}

// SetMeta stores a value.
func (s *Store) SetMeta(ctx context.Context, key, value string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	return nil
}
