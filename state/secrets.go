package state

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Secrets at rest. A PostgreSQL database is shared and backed up by others
// (its operator, a hosting service), so the tokens and client secrets in it
// are sealed with AES-256-GCM under a key that lives outside the database,
// in a file of its own (--secret-key-file): a dump alone reveals none. The
// SQLite file is the user's own, mode 0600 in a 0700 directory, and stays as
// it was.
//
// A sealed value is sealedPrefix + base64(nonce ‖ ciphertext); the column
// name is the additional data, so a value copied into another column does
// not open. The table secret_key keeps an HMAC of a fixed text under the
// key, so a wrong key is refused when the database is opened.

// SecretKeySize is the length of a secret key in bytes (AES-256).
const SecretKeySize = 32

const (
	sealedPrefix = "ferry-sealed:v1:"
	checkText    = "ferry secret key check v1"
)

// ErrSecretKey reports a missing, malformed or wrong secret key.
var ErrSecretKey = errors.New("secret key")

// sealer seals and opens secrets under one key.
type sealer struct {
	aead  cipher.AEAD
	check string
}

func newSealer(key []byte) (*sealer, error) {
	if len(key) != SecretKeySize {
		return nil, fmt.Errorf("%w: want %d bytes, have %d", ErrSecretKey, SecretKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(checkText))
	return &sealer{aead: aead, check: hex.EncodeToString(m.Sum(nil))}, nil
}

// sealWith seals plain for column; "" stays "" (no secret to hide, and
// callers test for an empty token).
func (z *sealer) sealWith(column, plain string) string {
	if plain == "" {
		return ""
	}
	nonce := make([]byte, z.aead.NonceSize())
	_, _ = rand.Read(nonce)
	ct := z.aead.Seal(nonce, nonce, []byte(plain), []byte(column))
	return sealedPrefix + base64.StdEncoding.EncodeToString(ct)
}

func (z *sealer) openWith(column, stored string) (string, error) {
	if stored == "" {
		return "", nil
	}
	b64, ok := strings.CutPrefix(stored, sealedPrefix)
	if !ok {
		return "", fmt.Errorf("%w: the stored %s is not sealed", ErrSecretKey, column)
	}
	ct, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(ct) < z.aead.NonceSize() {
		return "", fmt.Errorf("%w: the stored %s is damaged", ErrSecretKey, column)
	}
	n := z.aead.NonceSize()
	plain, err := z.aead.Open(nil, ct[:n], ct[n:], []byte(column))
	if err != nil {
		return "", fmt.Errorf("%w: the stored %s does not open with this key", ErrSecretKey, column)
	}
	return string(plain), nil
}

// sealSecret returns what to store for the secret plain of column: sealed on
// PostgreSQL, as is on SQLite.
func (s *Store) sealSecret(column, plain string) string {
	if s.sealer == nil {
		return plain
	}
	return s.sealer.sealWith(column, plain)
}

// openSecret undoes sealSecret.
func (s *Store) openSecret(column, stored string) (string, error) {
	if s.sealer == nil {
		return stored, nil
	}
	return s.sealer.openWith(column, stored)
}

// The columns that hold secrets, as the additional data of their seals.
const (
	colToken        = "accounts.token"
	colClientSecret = "apps.client_secret"
)

// GenerateSecretKey writes a new random key to path (base64, mode 0600),
// refusing to overwrite an existing file: losing a key in use loses every
// token sealed with it.
func GenerateSecretKey(path string) error {
	key := make([]byte, SecretKeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("generate a secret key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write the secret key: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err = errors.Join(err, f.Close()); err != nil {
		os.Remove(path)
		return fmt.Errorf("write the secret key %s: %w", path, err)
	}
	return nil
}

// ReadSecretKeyFile reads a key written by GenerateSecretKey. The file must
// not be readable or writable by group or others (mode 0600 or 0400): a
// key anyone on the machine can read protects nothing, so a looser file is
// refused with the command that fixes it.
func ReadSecretKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w file: %w", ErrSecretKey, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w file %s is not a regular file", ErrSecretKey, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w file %s has mode %04o; it must be readable by its owner only (chmod 600 %s)",
			ErrSecretKey, path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w file: %w", ErrSecretKey, err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != SecretKeySize {
		return nil, fmt.Errorf("%w file %s: want %d bytes in base64 (make one with `ferry secret-key generate`)",
			ErrSecretKey, path, SecretKeySize)
	}
	return key, nil
}

// useSecretKey checks key against the database's check value (recording it
// on first use) and makes it the store's sealer.
func (s *Store) useSecretKey(ctx context.Context, key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: a PostgreSQL database needs --secret-key-file (FERRY_SECRET_KEY_FILE): "+
			"tokens are encrypted at rest; make a key with `ferry secret-key generate FILE`", ErrSecretKey)
	}
	z, err := newSealer(key)
	if err != nil {
		return err
	}
	err = s.Write(ctx, func(tx *sql.Tx) error {
		var check string
		err := tx.QueryRowContext(ctx, `SELECT check_value FROM secret_key WHERE id = 1`).Scan(&check)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, `INSERT INTO secret_key (id, check_value, updated_at) VALUES (1, ?, ?)`,
				z.check, formatTime(time.Now()))
			return err
		case err != nil:
			return err
		case !hmac.Equal([]byte(check), []byte(z.check)):
			return fmt.Errorf("%w: this is not the key the database's tokens are sealed with "+
				"(after `ferry secret-key rotate`, use the new key file)", ErrSecretKey)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.sealer = z
	return nil
}

// RotateSecretKey seals every token and client secret again under newKey,
// in one transaction, and records newKey as the database's key: either all
// secrets move to the new key or none does. Processes still running with the
// old key cannot open the secrets afterwards; restart them with the new key
// file. It is an error on SQLite, which keeps no sealed secrets.
func (s *Store) RotateSecretKey(ctx context.Context, newKey []byte) (int, error) {
	if s.sealer == nil {
		return 0, fmt.Errorf("%w: only a PostgreSQL database keeps sealed secrets", ErrSecretKey)
	}
	nz, err := newSealer(newKey)
	if err != nil {
		return 0, err
	}
	var n int
	err = s.Write(ctx, func(tx *sql.Tx) error {
		n = 0
		type row struct{ k1, k2, k3, v string }
		reseal := func(col, sel, upd string) error {
			rows, err := tx.QueryContext(ctx, sel)
			if err != nil {
				return err
			}
			var rs []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.k1, &r.k2, &r.k3, &r.v); err != nil {
					rows.Close()
					return err
				}
				rs = append(rs, r)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, r := range rs {
				plain, err := s.sealer.openWith(col, r.v)
				if err != nil {
					return err
				}
				args := []any{nz.sealWith(col, plain), r.k1, r.k2, r.k3}
				if strings.Count(upd, "?") == 2 {
					args = args[:2]
				}
				if _, err := tx.ExecContext(ctx, upd, args...); err != nil {
					return err
				}
				n++
			}
			return nil
		}
		if err := reseal(colToken, `SELECT handle, '', '', token FROM accounts`,
			`UPDATE accounts SET token = ? WHERE handle = ?`); err != nil {
			return fmt.Errorf("account tokens: %w", err)
		}
		if err := reseal(colClientSecret, `SELECT server, redirect_uri, scopes, client_secret FROM apps`,
			`UPDATE apps SET client_secret = ? WHERE server = ? AND redirect_uri = ? AND scopes = ?`); err != nil {
			return fmt.Errorf("app secrets: %w", err)
		}
		_, err := tx.ExecContext(ctx, `UPDATE secret_key SET check_value = ?, updated_at = ? WHERE id = 1`,
			nz.check, formatTime(time.Now()))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("rotate the secret key: %w", err)
	}
	s.sealer = nz
	return n, nil
}
