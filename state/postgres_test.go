package state

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/testenv"
)

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, SecretKeySize)
	_, _ = rand.Read(k)
	return k
}

func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT 1`:             `SELECT 1`,
		`a = ? AND b IN (?,?)`: `a = $1 AND b IN ($2,$3)`,
		`x = '?' AND y = ? -- what?` + "\n" + `?`: `x = '?' AND y = $1 -- what?` + "\n" + `$2`,
		`"we?ird" = ?`: `"we?ird" = $1`,
	} {
		if got := rebind(in); got != want {
			t.Errorf("rebind(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPGOpenMigratesOnceAndRefusesNewerSchema: a second open (and several at
// once) finds the schema done; a schema newer than this code is refused with
// its version, as on SQLite.
func TestPGOpenMigratesOnceAndRefusesNewerSchema(t *testing.T) {
	url := testenv.PostgresDB(t)
	key := randomKey(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := OpenDatabase(t.Context(), url, Options{SecretKey: key})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
	s, err := OpenDatabase(t.Context(), url, Options{SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	v, err := pgSchemaVersion(t.Context(), s.DB())
	if err != nil || v != len(pgMigrations) {
		t.Fatalf("version = %d, %v; want %d", v, err, len(pgMigrations))
	}
	newer := len(pgMigrations) + 1
	if _, err := s.DB().ExecContext(t.Context(), `UPDATE ferry_schema SET version = ?`, newer); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = OpenDatabase(t.Context(), url, Options{SecretKey: key})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("open of a newer schema: err = %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("schema version %d", newer)) {
		t.Errorf("error %q should name the version %d", err, newer)
	}
}

// TestPGUnreachable: a server that does not answer is a clear error within
// the connect timeout, and the password never appears in it.
func TestPGUnreachable(t *testing.T) {
	testenv.RequirePostgres(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens there.
	_, err := OpenDatabase(ctx, "postgres://ferry:hunter2@127.0.0.1:1/ferry?sslmode=disable", Options{SecretKey: randomKey(t)})
	if err == nil {
		t.Fatal("open of an unreachable server succeeded")
	}
	if !strings.Contains(err.Error(), "cannot reach PostgreSQL") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error = %q; want it to say the server cannot be reached, without the password", err)
	}
}

// TestPGSecretsAtRest: tokens and client secrets are sealed in the
// database; a dump (pg_dump) and the raw columns show none of them; a wrong
// key is refused at open; rotation re-seals everything under the new key.
func TestPGSecretsAtRest(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	url := testenv.PostgresDB(t)
	key := randomKey(t)
	ctx := t.Context()
	s, err := OpenDatabase(ctx, url, Options{SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const token, secret, token2 = "tok-SECRET-1234567890", "app-SECRET-abcdef", "tok-ROTATED-999"
	if err := s.PutAccount(ctx, Account{Handle: "me@example.org", Server: "https://example.org", Token: token}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutApp(ctx, App{Server: "https://example.org", RedirectURI: "urn:x", Scopes: "read", ClientID: "cid", ClientSecret: secret}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAccount(ctx, Account{Handle: "other@example.org", Server: "https://example.org", Token: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveToken(ctx, "other@example.org", token2); err != nil {
		t.Fatal(err)
	}
	var raw string
	if err := s.DB().QueryRowContext(ctx, `SELECT token FROM accounts WHERE handle = 'me@example.org'`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, token) || !strings.HasPrefix(raw, sealedPrefix) {
		t.Fatalf("stored token = %q: not sealed", raw)
	}
	dump, err := exec.CommandContext(ctx, filepath.Join(pg.BinDir, "pg_dump"), "--data-only", url).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	if !strings.Contains(string(dump), "me@example.org") {
		t.Fatalf("the dump lacks the account; is it a dump at all?\n%s", dump)
	}
	for _, sec := range []string{token, secret, token2} {
		if strings.Contains(string(dump), sec) {
			t.Errorf("the database dump contains the secret %q", sec)
		}
	}
	a, err := s.Account(ctx, "me@example.org")
	if err != nil || a.Token != token {
		t.Fatalf("Account = %q, %v; want the token back", a.Token, err)
	}

	_, err = OpenDatabase(ctx, url, Options{SecretKey: randomKey(t)})
	if !errors.Is(err, ErrSecretKey) {
		t.Fatalf("open with a wrong key: %v, want ErrSecretKey", err)
	}
	_, err = OpenDatabase(ctx, url, Options{})
	if !errors.Is(err, ErrSecretKey) || !strings.Contains(err.Error(), "--secret-key-file") {
		t.Fatalf("open without a key: %v, want a request for --secret-key-file", err)
	}

	newKey := randomKey(t)
	n, err := s.RotateSecretKey(ctx, newKey)
	if err != nil || n != 3 {
		t.Fatalf("RotateSecretKey = %d, %v; want 3 secrets re-sealed", n, err)
	}
	if _, err := OpenDatabase(ctx, url, Options{SecretKey: key}); !errors.Is(err, ErrSecretKey) {
		t.Fatalf("the old key still opens the database after rotation: %v", err)
	}
	s2, err := OpenDatabase(ctx, url, Options{SecretKey: newKey})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if a, err := s2.Account(ctx, "other@example.org"); err != nil || a.Token != token2 {
		t.Fatalf("after rotation: token %q, %v", a.Token, err)
	}
	if ap, err := s2.AppByClientID(ctx, "https://example.org", "cid"); err != nil || ap.ClientSecret != secret {
		t.Fatalf("after rotation: client secret %q, %v", ap.ClientSecret, err)
	}
}

func TestSecretKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := GenerateSecretKey(path); err != nil {
		t.Fatal(err)
	}
	if err := GenerateSecretKey(path); err == nil {
		t.Fatal("GenerateSecretKey overwrote an existing key")
	}
	k, err := ReadSecretKeyFile(path)
	if err != nil || len(k) != SecretKeySize {
		t.Fatalf("ReadSecretKeyFile = %d bytes, %v", len(k), err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ReadSecretKeyFile(path)
	if !errors.Is(err, ErrSecretKey) || !strings.Contains(err.Error(), "0644") || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a 0644 key file: %v; want a refusal naming the mode", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "short"), []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecretKeyFile(filepath.Join(dir, "short")); !errors.Is(err, ErrSecretKey) {
		t.Fatalf("a short key: %v", err)
	}
}
