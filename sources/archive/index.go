package archive

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite" (with FTS5)

	"github.com/fedi-ferry/ferry/post"
)

// indexFile is the search index inside PrivateDirName.
const indexFile = "index.db"

func openIndex(ctx context.Context, file string) (*sql.DB, error) {
	u := (&url.URL{Path: filepath.ToSlash(file)}).EscapedPath()
	db, err := sql.Open("sqlite", "file:"+u+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(DELETE)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Reindex rebuilds the search index of the archive in dir from its
// outbox.json and returns how many posts it holds. The new index replaces
// the old one only once complete.
func Reindex(ctx context.Context, dir string) (int, error) {
	priv := filepath.Join(dir, PrivateDirName)
	if err := os.MkdirAll(priv, 0o700); err != nil {
		return 0, fmt.Errorf("index %s: %w", dir, err)
	}
	tmp := filepath.Join(priv, indexFile+".new")
	os.Remove(tmp)
	db, err := openIndex(ctx, tmp)
	if err != nil {
		return 0, fmt.Errorf("index %s: %w", dir, err)
	}
	n, err := fill(ctx, db, dir)
	err = errors.Join(err, db.Close())
	if err == nil {
		err = os.Rename(tmp, filepath.Join(priv, indexFile))
	}
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("index %s: %w", dir, err)
	}
	return n, nil
}

func fill(ctx context.Context, db *sql.DB, dir string) (int, error) {
	const ddl = `
CREATE TABLE posts (
	id         TEXT NOT NULL,
	url        TEXT NOT NULL,
	published  TEXT NOT NULL,
	visibility TEXT NOT NULL,
	media      INTEGER NOT NULL,
	boost      INTEGER NOT NULL,
	deleted    INTEGER NOT NULL,
	body       TEXT NOT NULL,
	summary    TEXT NOT NULL
);
CREATE INDEX posts_by_date ON posts (published);
CREATE VIRTUAL TABLE posts_fts USING fts5(body, summary, content='posts', content_rowid='rowid',
	tokenize='unicode61 remove_diacritics 2');
`
	if _, err := db.ExecContext(ctx, ddl); err != nil {
		return 0, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO posts (id, url, published, visibility, media, boost, deleted, body, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	// Indexed row by row: FTS5 flushes its pending terms to disk as they
	// grow, where a 'rebuild' at the end holds far more in memory.
	fts, err := tx.PrepareContext(ctx, `INSERT INTO posts_fts (rowid, body, summary) VALUES (?, ?, ?)`)
	if err != nil {
		return 0, err
	}
	defer fts.Close()
	n := 0
	// Threads play no part in search: one pass, without EachPost's map of
	// the archive's posts.
	err = eachPost(ctx, dir, nil, func(p post.Post) error {
		body := p.Text
		link := p.URL
		if p.IsBoost() {
			body, link = "boosted "+p.BoostOf, p.BoostOf
		}
		if p.Poll != nil {
			body += "\n" + strings.Join(p.Poll.Options, "\n")
		}
		for _, m := range p.Media {
			if m.Description != "" {
				body += "\n" + m.Description
			}
		}
		if link == "" {
			link = p.URI
		}
		n++
		res, err := stmt.ExecContext(ctx, p.OriginID, link, p.CreatedAt.UTC().Format(time.RFC3339), string(p.Visibility),
			len(p.Media), boolInt(p.IsBoost()), boolInt(p.Deleted), body, p.Summary)
		if err != nil {
			return err
		}
		rowid, err := res.LastInsertId()
		if err != nil {
			return err
		}
		_, err = fts.ExecContext(ctx, rowid, body, p.Summary)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Query is a search of an archive. Zero fields do not filter.
type Query struct {
	// Text is what to look for: words (all must appear, in any form the
	// tokenizer folds to the same: case and accents ignored), "quoted
	// phrases", word* prefixes and OR between terms.
	Text       string
	From       time.Time // posts at or after
	Until      time.Time // posts before
	HasMedia   bool
	Visibility []post.Visibility
	Limit      int // 0 = 50
}

// Hit is one search result, newest first.
type Hit struct {
	Published  time.Time `json:"published"`
	URL        string    `json:"url"`
	ID         string    `json:"id"`
	Visibility string    `json:"visibility"`
	Media      int       `json:"media"`
	Deleted    bool      `json:"deleted,omitempty"`
	Snippet    string    `json:"snippet"`
}

// ErrNoIndex is returned by Search for a directory without a search index.
var ErrNoIndex = errors.New("no search index: run `ferry archive import` or `ferry archive` for this directory first")

// Search runs q against the index of the archive in dir.
func Search(ctx context.Context, dir string, q Query) ([]Hit, error) {
	file := filepath.Join(dir, PrivateDirName, indexFile)
	if _, err := os.Stat(file); err != nil {
		return nil, fmt.Errorf("search %s: %w", dir, ErrNoIndex)
	}
	db, err := openIndex(ctx, file)
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", dir, err)
	}
	defer db.Close()
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	var where []string
	var args []any
	match := ftsQuery(q.Text)
	sel := `SELECT p.published, p.url, p.id, p.visibility, p.media, p.deleted, substr(p.body, 1, 160) FROM posts p`
	if match != "" {
		sel = `SELECT p.published, p.url, p.id, p.visibility, p.media, p.deleted,
	snippet(posts_fts, -1, '[', ']', '…', 16) FROM posts_fts JOIN posts p ON p.rowid = posts_fts.rowid`
		where = append(where, `posts_fts MATCH ?`)
		args = append(args, match)
	}
	if !q.From.IsZero() {
		where = append(where, `p.published >= ?`)
		args = append(args, q.From.UTC().Format(time.RFC3339))
	}
	if !q.Until.IsZero() {
		where = append(where, `p.published < ?`)
		args = append(args, q.Until.UTC().Format(time.RFC3339))
	}
	if q.HasMedia {
		where = append(where, `p.media > 0`)
	}
	if len(q.Visibility) > 0 {
		ph := make([]string, len(q.Visibility))
		for i, v := range q.Visibility {
			ph[i] = "?"
			args = append(args, string(v))
		}
		where = append(where, `p.visibility IN (`+strings.Join(ph, ",")+`)`)
	}
	stmt := sel
	if len(where) > 0 {
		stmt += " WHERE " + strings.Join(where, " AND ")
	}
	stmt += ` ORDER BY p.published DESC LIMIT ?`
	args = append(args, limit)
	rows, err := db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", dir, err)
	}
	defer rows.Close()
	var out []Hit
	for rows.Next() {
		var h Hit
		var published string
		var deleted int
		if err := rows.Scan(&published, &h.URL, &h.ID, &h.Visibility, &h.Media, &deleted, &h.Snippet); err != nil {
			return nil, fmt.Errorf("search %s: %w", dir, err)
		}
		h.Published, _ = time.Parse(time.RFC3339, published)
		h.Deleted = deleted != 0
		h.Snippet = strings.Join(strings.Fields(h.Snippet), " ")
		out = append(out, h)
	}
	return out, rows.Err()
}

// ftsQuery turns what a person types into an FTS5 query that cannot be a
// syntax error: every word and "phrase" is quoted (so punctuation is just
// text), word* stays a prefix search, and a bare OR stays an operator.
func ftsQuery(s string) string {
	var terms []string
	quote := func(t string) string { return `"` + strings.ReplaceAll(t, `"`, `""`) + `"` }
	rs := []rune(s)
	for i := 0; i < len(rs); {
		switch {
		case unicode.IsSpace(rs[i]):
			i++
		case rs[i] == '"':
			j := i + 1
			for j < len(rs) && rs[j] != '"' {
				j++
			}
			if phrase := strings.TrimSpace(string(rs[i+1 : min(j, len(rs))])); phrase != "" {
				terms = append(terms, quote(phrase))
			}
			i = j + 1
		default:
			j := i
			for j < len(rs) && !unicode.IsSpace(rs[j]) && rs[j] != '"' {
				j++
			}
			w := string(rs[i:j])
			i = j
			switch {
			case w == "OR" && len(terms) > 0:
				terms = append(terms, "OR")
			case strings.HasSuffix(w, "*") && len(w) > 1:
				terms = append(terms, quote(strings.TrimSuffix(w, "*"))+"*")
			default:
				terms = append(terms, quote(w))
			}
		}
	}
	if len(terms) > 0 && terms[len(terms)-1] == "OR" {
		terms = terms[:len(terms)-1]
	}
	return strings.Join(terms, " ")
}
