package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// App is an OAuth client registration on a server, cached so that ferry
// registers once per (server, redirect URI, scopes) instead of on every
// login. The key strings are compared exactly; callers normalise them.
//
// ClientSecret is a secret and is treated like Account.Token: excluded
// from JSON, and left out by String, GoString and LogValue.
type App struct {
	// Server is the base URL, e.g. https://host.
	Server string
	// RedirectURI is the redirect URI the app was registered with.
	RedirectURI string
	// ClientID and ClientSecret are what the server returned.
	ClientID     string
	ClientSecret string `json:"-"`
	// Scopes are the OAuth scopes the app was registered for,
	// space-separated.
	Scopes string
	// CreatedAt is when the registration was stored.
	CreatedAt time.Time
}

// String names the app by server and client id, never the secret.
func (a App) String() string { return a.Server + " client " + a.ClientID }

// GoString formats the app as Go syntax for %#v with the secret replaced.
func (a App) GoString() string {
	return fmt.Sprintf("state.App{Server:%q, RedirectURI:%q, ClientID:%q, ClientSecret:%s, Scopes:%q, CreatedAt:%q}",
		a.Server, a.RedirectURI, a.ClientID, redacted(a.ClientSecret), a.Scopes, a.CreatedAt.Format(time.RFC3339))
}

// LogValue implements slog.LogValuer without the secret.
func (a App) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("server", a.Server),
		slog.String("redirect_uri", a.RedirectURI),
		slog.String("client_id", a.ClientID),
		slog.String("scopes", a.Scopes),
	)
}

// App returns the registration for (server, redirectURI, scopes), or an
// error wrapping ErrNotFound if there is none.
func (s *Store) App(ctx context.Context, server, redirectURI, scopes string) (App, error) {
	a := App{Server: server, RedirectURI: redirectURI, Scopes: scopes}
	var created string
	err := s.db.QueryRowContext(ctx, `
SELECT client_id, client_secret, created_at FROM apps
WHERE server = ? AND redirect_uri = ? AND scopes = ?`, server, redirectURI, scopes).
		Scan(&a.ClientID, &a.ClientSecret, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return App{}, fmt.Errorf("app for %s: %w", server, ErrNotFound)
	}
	if err == nil {
		a.CreatedAt, err = parseTime(created)
	}
	if err == nil {
		a.ClientSecret, err = s.openSecret(colClientSecret, a.ClientSecret)
	}
	if err != nil {
		return App{}, fmt.Errorf("get app for %s: %w", server, err)
	}
	return a, nil
}

// AppByClientID returns the registration at server with the given client
// id, or an error wrapping ErrNotFound.
func (s *Store) AppByClientID(ctx context.Context, server, clientID string) (App, error) {
	a := App{Server: server, ClientID: clientID}
	var created string
	err := s.db.QueryRowContext(ctx, `
SELECT redirect_uri, scopes, client_secret, created_at FROM apps
WHERE server = ? AND client_id = ?`, server, clientID).
		Scan(&a.RedirectURI, &a.Scopes, &a.ClientSecret, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return App{}, fmt.Errorf("app %s at %s: %w", clientID, server, ErrNotFound)
	}
	if err == nil {
		a.CreatedAt, err = parseTime(created)
	}
	if err == nil {
		a.ClientSecret, err = s.openSecret(colClientSecret, a.ClientSecret)
	}
	if err != nil {
		return App{}, fmt.Errorf("get app %s at %s: %w", clientID, server, err)
	}
	return a, nil
}

// PutApp inserts the registration or replaces the one with the same
// (server, redirect URI, scopes). A zero CreatedAt is set to the current
// time.
func (s *Store) PutApp(ctx context.Context, a App) error {
	if a.Server == "" || a.ClientID == "" {
		return fmt.Errorf("put app: server and client id are required")
	}
	created := formatTime(orNow(a.CreatedAt, time.Now()))
	err := s.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
INSERT INTO apps (server, redirect_uri, scopes, client_id, client_secret, created_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (server, redirect_uri, scopes) DO UPDATE SET
	client_id = excluded.client_id, client_secret = excluded.client_secret,
	created_at = excluded.created_at`,
			a.Server, a.RedirectURI, a.Scopes, a.ClientID, s.sealSecret(colClientSecret, a.ClientSecret), created)
		return err
	})
	if err != nil {
		return fmt.Errorf("put app for %s: %w", a.Server, err)
	}
	return nil
}

// DeleteApp deletes the registration for (server, redirectURI, scopes),
// for example after the server rejected its client id. It returns an
// error wrapping ErrNotFound if there is none.
func (s *Store) DeleteApp(ctx context.Context, server, redirectURI, scopes string) error {
	err := s.Write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM apps WHERE server = ? AND redirect_uri = ? AND scopes = ?`, server, redirectURI, scopes)
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
		return fmt.Errorf("delete app for %s: %w", server, err)
	}
	return nil
}
