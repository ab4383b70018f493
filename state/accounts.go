package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Account is a logged-in fediverse account and its access token.
//
// The token is a secret. It is excluded from JSON, and String, GoString
// and LogValue leave it out, so fmt's %v, %+v and %#v and log/slog never
// print it. (fmt cannot call those methods on an Account stored in an
// unexported field of another struct; do not print such structs whole.)
type Account struct {
	// Handle is user@host, without a leading '@'. It is the key and is
	// compared case-insensitively.
	Handle string
	// Name is an optional alias unique among accounts, compared
	// case-insensitively; "" means none. It may not contain '@', so a
	// reference is never ambiguous between a name and a handle.
	Name string
	// Server is the base URL of the account's server, e.g. https://host.
	Server string
	// AccountID is the account's id on its server.
	AccountID string
	// Username is the local part of the handle as the server spells it.
	Username string
	// Token is the OAuth access token. Never print or log it.
	Token string `json:"-"`
	// Scopes are the OAuth scopes granted, space-separated.
	Scopes string
	// ClientID names the app registration (see App) the token was issued
	// to, so the token can be revoked; "" for tokens imported by hand.
	ClientID string
	// Platform names the protocol family the account speaks, as the
	// platform registry knows it (e.g. "mastodon" for the Mastodon client
	// API, which GoToSocial, Akkoma and Pleroma also serve). Login sets it
	// from the server's detection; accounts stored before ferry recorded
	// it read as "mastodon", the only family ferry spoke then. PutAccount
	// stores "" as "mastodon" too.
	Platform string
	// Software and SoftwareVersion come from the server's nodeinfo, e.g.
	// "mastodon" and "4.3.0".
	Software        string
	SoftwareVersion string
	// CreatedAt is when the account was first stored; UpdatedAt when it
	// was last stored. The store maintains both.
	CreatedAt, UpdatedAt time.Time
}

// String returns the handle, followed by the alias in parentheses if set.
// It never includes the token.
func (a Account) String() string {
	if a.Name != "" {
		return a.Handle + " (" + a.Name + ")"
	}
	return a.Handle
}

// GoString formats the account as Go syntax for %#v with the token
// replaced by a marker showing only whether one is set.
func (a Account) GoString() string {
	return fmt.Sprintf("state.Account{Handle:%q, Name:%q, Server:%q, AccountID:%q, Username:%q, "+
		"Token:%s, Scopes:%q, ClientID:%q, Platform:%q, Software:%q, SoftwareVersion:%q, CreatedAt:%q, UpdatedAt:%q}",
		a.Handle, a.Name, a.Server, a.AccountID, a.Username, redacted(a.Token), a.Scopes, a.ClientID,
		a.Platform, a.Software, a.SoftwareVersion, a.CreatedAt.Format(time.RFC3339), a.UpdatedAt.Format(time.RFC3339))
}

// LogValue implements slog.LogValuer: every field except the token, and
// whether a token is set.
func (a Account) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("handle", a.Handle),
		slog.String("name", a.Name),
		slog.String("server", a.Server),
		slog.String("account_id", a.AccountID),
		slog.String("username", a.Username),
		slog.Bool("has_token", a.Token != ""),
		slog.String("scopes", a.Scopes),
		slog.String("client_id", a.ClientID),
		slog.String("platform", a.Platform),
		slog.String("software", a.Software),
		slog.String("software_version", a.SoftwareVersion),
	)
}

// redacted stands in for a secret in formatted output.
func redacted(secret string) string {
	if secret == "" {
		return `""`
	}
	return `"[REDACTED]"`
}

// normHandle strips the leading '@' people often type.
func normHandle(h string) string { return strings.TrimPrefix(strings.TrimSpace(h), "@") }

func validateAccount(a Account) error {
	user, host, ok := strings.Cut(a.Handle, "@")
	if !ok || user == "" || host == "" || strings.Contains(host, "@") {
		return fmt.Errorf("invalid handle %q: want user@host", a.Handle)
	}
	if strings.Contains(a.Name, "@") {
		return fmt.Errorf("invalid account name %q: must not contain '@'", a.Name)
	}
	if a.Server == "" {
		return fmt.Errorf("account %s: server is empty", a.Handle)
	}
	return nil
}

// PutAccount inserts the account or replaces every field of the one with
// the same handle, except CreatedAt, which keeps its first value.
// CreatedAt, if zero, and UpdatedAt are set to the current time. A leading
// '@' in the handle is dropped. Setting a Name that another account
// already uses returns an error wrapping ErrConflict.
func (s *Store) PutAccount(ctx context.Context, a Account) error {
	a.Handle = normHandle(a.Handle)
	if err := validateAccount(a); err != nil {
		return fmt.Errorf("put account: %w", err)
	}
	if a.Platform == "" {
		a.Platform = DefaultPlatform
	}
	now := time.Now()
	err := s.Write(ctx, func(tx *sql.Tx) error {
		if a.Name != "" {
			// Checked explicitly (the UNIQUE index would also refuse)
			// to name the other account in the error.
			var other string
			err := tx.QueryRowContext(ctx,
				`SELECT handle FROM accounts WHERE name = ? AND handle <> ?`, a.Name, a.Handle).Scan(&other)
			switch {
			case err == nil:
				return fmt.Errorf("name %q is already used by %s: %w", a.Name, other, ErrConflict)
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `
INSERT INTO accounts (handle, name, server, account_id, username, token, scopes, client_id,
	platform, software, software_version, created_at, updated_at)
VALUES (?, NULLIF(?, ''), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (handle) DO UPDATE SET
	name = excluded.name, server = excluded.server, account_id = excluded.account_id,
	username = excluded.username, token = excluded.token, scopes = excluded.scopes,
	client_id = excluded.client_id, platform = excluded.platform, software = excluded.software, software_version = excluded.software_version,
	updated_at = excluded.updated_at`,
			a.Handle, a.Name, a.Server, a.AccountID, a.Username, s.sealSecret(colToken, a.Token), a.Scopes, a.ClientID,
			a.Platform, a.Software, a.SoftwareVersion, formatTime(orNow(a.CreatedAt, now)), formatTime(now))
		if isUniqueViolation(err) {
			return fmt.Errorf("name %q is already used: %w", a.Name, ErrConflict)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("put account %s: %w", a.Handle, err)
	}
	return nil
}

const accountColumns = `handle, COALESCE(name, ''), server, account_id, username, token, scopes, client_id,
	platform, software, software_version, created_at, updated_at`

func scanAccount(row interface{ Scan(...any) error }) (Account, error) {
	var a Account
	var created, updated string
	err := row.Scan(&a.Handle, &a.Name, &a.Server, &a.AccountID, &a.Username, &a.Token, &a.Scopes, &a.ClientID,
		&a.Platform, &a.Software, &a.SoftwareVersion, &created, &updated)
	if err != nil {
		return Account{}, err
	}
	if a.CreatedAt, err = parseTime(created); err != nil {
		return Account{}, err
	}
	if a.UpdatedAt, err = parseTime(updated); err != nil {
		return Account{}, err
	}
	return a, nil
}

// Account returns the account that ref names. A ref containing '@' (after
// an optional leading '@') is a handle; any other ref is an alias. Both
// compare case-insensitively. It returns an error wrapping ErrNotFound if
// no account matches.
func (s *Store) Account(ctx context.Context, ref string) (Account, error) {
	key := normHandle(ref)
	query := `SELECT ` + accountColumns + ` FROM accounts WHERE name = ?`
	if strings.Contains(key, "@") {
		query = `SELECT ` + accountColumns + ` FROM accounts WHERE handle = ?`
	}
	a, err := scanAccount(s.db.QueryRowContext(ctx, query, key))
	if err == nil {
		a.Token, err = s.openSecret(colToken, a.Token)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("account %q: %w", ref, ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("get account %q: %w", ref, err)
	}
	return a, nil
}

// Accounts returns all accounts sorted by handle (case-insensitively).
func (s *Store) Accounts(ctx context.Context) ([]Account, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY handle`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err == nil {
			a.Token, err = s.openSecret(colToken, a.Token)
		}
		if err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

// DeleteAccount deletes the account with the given handle (a leading '@'
// is ignored, case does not matter). It returns an error wrapping
// ErrNotFound if there is none.
func (s *Store) DeleteAccount(ctx context.Context, handle string) error {
	h := normHandle(handle)
	err := s.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM accounts WHERE handle = ?`, h)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete account %s: %w", h, err)
	}
	return nil
}

// DefaultPlatform is the platform of accounts stored before ferry recorded
// one: the Mastodon client API family, the only one ferry spoke then.
const DefaultPlatform = "mastodon"

// migrateV4 records each account's platform. Existing rows get
// DefaultPlatform: every account stored before this version was logged in
// through the Mastodon client API.
func migrateV4(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `ALTER TABLE accounts ADD COLUMN platform TEXT NOT NULL DEFAULT 'mastodon'`)
	return err
}
