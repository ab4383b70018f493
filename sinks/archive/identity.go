package archive

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Adopt gives the stored post whose URI is uri the status ID id, when it
// is stored under another ID: some servers (snac2) change a status's ID
// when it is edited, and the URI (its ActivityPub id) is what stays. Replies
// stored with the old ID as their parent follow. It reports whether a post
// was moved.
func (s *Store) Adopt(ctx context.Context, uri, id string) (bool, error) {
	if uri == "" || id == "" {
		return false, nil
	}
	var old string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM activities WHERE uri = ? AND id != ? ORDER BY published LIMIT 1`, uri, id).Scan(&old)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up post %s: %w", uri, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("rename post %s: %w", old, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	var dup int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM activities WHERE id = ?`, id).Scan(&dup); err != nil {
		return false, fmt.Errorf("rename post %s to %s: %w", old, id, err)
	}
	stmts := []struct {
		q    string
		args []any
	}{
		{`UPDATE activities SET id = ? WHERE id = ?`, []any{id, old}},
		{`UPDATE activities SET parent_id = ? WHERE parent_id = ?`, []any{id, old}},
	}
	if dup > 0 { // stored twice by an older ferry: keep the current ID's record
		stmts[0] = struct {
			q    string
			args []any
		}{`DELETE FROM activities WHERE id = ?`, []any{old}}
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
			return false, fmt.Errorf("rename post %s to %s: %w", old, id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("rename post %s to %s: %w", old, id, err)
	}
	return true, nil
}

// SameContent reports whether the stored post id has the content, content
// warning, sensitivity, media and poll options of r: how an edit is noticed
// on a server that never sends edited_at (Hollo). A post not stored is not
// the same.
func (s *Store) SameContent(ctx context.Context, id string, r Record) (bool, error) {
	var data string
	err := s.db.QueryRowContext(ctx, `SELECT record FROM activities WHERE id = ?`, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up post %s: %w", id, err)
	}
	var stored struct {
		Object json.RawMessage `json:"object"`
	}
	if err := json.Unmarshal([]byte(data), &stored); err != nil {
		return false, nil // unreadable: store it again
	}
	var old Note
	if json.Unmarshal(stored.Object, &old) != nil {
		return false, nil // an Announce's object is a URI: compare the URIs
	}
	n, ok := r.Activity.Object.(*Note)
	if !ok {
		return false, nil
	}
	return slices.Equal(noteFingerprint(old), noteFingerprint(*n)), nil
}

// noteFingerprint lists what an edit can change in a Note.
func noteFingerprint(n Note) []string {
	out := []string{n.Content, fmt.Sprint(n.Sensitive)}
	if n.Summary != nil {
		out = append(out, "cw:"+*n.Summary)
	}
	for _, a := range n.Attachment {
		b, _ := json.Marshal(a)
		out = append(out, "media:"+string(b))
	}
	for _, o := range append(slices.Clone(n.OneOf), n.AnyOf...) {
		out = append(out, "option:"+o.Name)
	}
	return out
}

// Published returns when the stored post id was made, and whether it is
// stored.
func (s *Store) Published(ctx context.Context, id string) (time.Time, bool, error) {
	var pub string
	err := s.db.QueryRowContext(ctx, `SELECT published FROM activities WHERE id = ?`, id).Scan(&pub)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("look up post %s: %w", id, err)
	}
	t, err := time.Parse(time.RFC3339Nano, pub)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("post %s: bad stored time %q: %w", id, pub, err)
	}
	return t, true, nil
}
