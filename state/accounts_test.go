package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func testAccount(handle, name string) Account {
	user, host, _ := strings.Cut(handle, "@")
	return Account{
		Handle: handle, Name: name, Server: "https://" + host, AccountID: "id-" + user,
		Username: user, Token: "tok-" + user, Scopes: "read write", Software: "gotosocial",
		SoftwareVersion: "0.20.0",
	}
}

func TestAccountsCRUD(t *testing.T) { forEachStore(t, testAccountsCRUD) }

func testAccountsCRUD(t *testing.T, s *Store) {
	ctx := t.Context()

	if _, err := s.Account(ctx, "me@old.example"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Account on empty store: err = %v, want ErrNotFound", err)
	}
	before := time.Now().Add(-time.Second)
	old := testAccount("me@old.example", "old")
	if err := s.PutAccount(ctx, old); err != nil {
		t.Fatal(err)
	}
	// A leading '@' on the stored handle is dropped.
	if err := s.PutAccount(ctx, testAccount("@me@new.example", "")); err != nil {
		t.Fatal(err)
	}

	for _, ref := range []string{"me@old.example", "@me@old.example", "ME@Old.Example", "old", "OLD", "@old"} {
		got, err := s.Account(ctx, ref)
		if err != nil {
			t.Fatalf("Account(%q): %v", ref, err)
		}
		if got.Handle != "me@old.example" || got.Token != "tok-me" || got.Name != "old" {
			t.Fatalf("Account(%q) = %#v", ref, got)
		}
		if got.CreatedAt.Before(before) || got.UpdatedAt.Before(got.CreatedAt) {
			t.Fatalf("Account(%q) times = %v, %v", ref, got.CreatedAt, got.UpdatedAt)
		}
	}
	if _, err := s.Account(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Account(nobody): err = %v, want ErrNotFound", err)
	}
	got, err := s.Account(ctx, "me@new.example")
	if err != nil || got.Name != "" || got.Handle != "me@new.example" {
		t.Fatalf("Account(new) = %#v, %v", got, err)
	}

	// Name conflicts with another handle, in any case.
	err = s.PutAccount(ctx, testAccount("me@new.example", "Old"))
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "me@old.example") {
		t.Fatalf("PutAccount with taken name: err = %v, want ErrConflict naming the owner", err)
	}
	// Invalid input.
	for _, a := range []Account{testAccount("nohost", ""), testAccount("a@b", "x@y"), {Handle: "a@b"}} {
		if err := s.PutAccount(ctx, a); err == nil {
			t.Errorf("PutAccount(%#v) succeeded, want validation error", a)
		}
	}

	// Upsert replaces fields (including clearing the name) and keeps CreatedAt.
	first, _ := s.Account(ctx, "old")
	upd := testAccount("Me@Old.Example", "")
	upd.Token = "tok-rotated"
	time.Sleep(2 * time.Millisecond)
	if err := s.PutAccount(ctx, upd); err != nil {
		t.Fatal(err)
	}
	got, err = s.Account(ctx, "me@old.example")
	if err != nil || got.Token != "tok-rotated" || got.Name != "" {
		t.Fatalf("after upsert: %#v, %v", got, err)
	}
	if !got.CreatedAt.Equal(first.CreatedAt) || !got.UpdatedAt.After(first.UpdatedAt) {
		t.Fatalf("upsert times: created %v→%v, updated %v→%v",
			first.CreatedAt, got.CreatedAt, first.UpdatedAt, got.UpdatedAt)
	}
	if _, err := s.Account(ctx, "old"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cleared name still resolves: %v", err)
	}
	// The freed name can now be taken by the other account.
	if err := s.PutAccount(ctx, testAccount("me@new.example", "old")); err != nil {
		t.Fatalf("taking a freed name: %v", err)
	}

	if err := s.PutAccount(ctx, testAccount("a@zzz.example", "")); err != nil {
		t.Fatal(err)
	}
	all, err := s.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var handles []string
	for _, a := range all {
		handles = append(handles, a.Handle)
	}
	if want := "a@zzz.example me@new.example me@old.example"; strings.Join(handles, " ") != want {
		t.Fatalf("Accounts order = %v, want %s", handles, want)
	}

	if err := s.DeleteAccount(ctx, "@ME@old.example"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccount(ctx, "me@old.example"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second DeleteAccount: err = %v, want ErrNotFound", err)
	}
	if all, _ := s.Accounts(ctx); len(all) != 2 {
		t.Fatalf("after delete %d accounts, want 2", len(all))
	}
}

func TestAppsCRUD(t *testing.T) { forEachStore(t, testAppsCRUD) }

func testAppsCRUD(t *testing.T, s *Store) {
	ctx := t.Context()
	const srv, redir, scopes = "https://a.example", "urn:ietf:wg:oauth:2.0:oob", "read write"

	if _, err := s.App(ctx, srv, redir, scopes); !errors.Is(err, ErrNotFound) {
		t.Fatalf("App on empty store: err = %v", err)
	}
	app := App{Server: srv, RedirectURI: redir, Scopes: scopes, ClientID: "cid", ClientSecret: "csecret"}
	if err := s.PutApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	got, err := s.App(ctx, srv, redir, scopes)
	if err != nil || got.ClientID != "cid" || got.ClientSecret != "csecret" || got.CreatedAt.IsZero() {
		t.Fatalf("App = %#v, %v", got, err)
	}
	// Other scopes are another registration.
	if _, err := s.App(ctx, srv, redir, "read"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("App with other scopes: err = %v", err)
	}
	app.ClientID, app.ClientSecret = "cid2", "csecret2"
	if err := s.PutApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.App(ctx, srv, redir, scopes); got.ClientID != "cid2" || got.ClientSecret != "csecret2" {
		t.Fatalf("after upsert App = %#v", got)
	}
	if got, err := s.AppByClientID(ctx, srv, "cid2"); err != nil || got.RedirectURI != redir || got.ClientSecret != "csecret2" {
		t.Fatalf("AppByClientID = %#v, %v", got, err)
	}
	if _, err := s.AppByClientID(ctx, srv, "cid"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("AppByClientID of a replaced id: err = %v", err)
	}
	if err := s.DeleteApp(ctx, srv, redir, scopes); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteApp(ctx, srv, redir, scopes); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second DeleteApp: err = %v", err)
	}
	if err := s.PutApp(ctx, App{Server: srv}); err == nil {
		t.Fatal("PutApp without client id succeeded")
	}
}

// The token must not escape through any ordinary way of printing or
// logging an Account (or an App's client secret).
func TestSecretsNeverFormatted(t *testing.T) {
	const token, secret = "tok-SECRET-7f3a", "cs-SECRET-91bd"
	a := testAccount("me@old.example", "old")
	a.Token = token
	a.CreatedAt = time.Now()
	app := App{Server: "https://old.example", ClientID: "cid", ClientSecret: secret}
	type wrapper struct {
		Acct Account
		Ptr  *Account
		App  App
	}
	w := wrapper{a, &a, app}

	var outputs []string
	for _, v := range []any{a, &a, []Account{a}, w, &w, app, &app} {
		outputs = append(outputs, fmt.Sprintf("%v %+v %#v %s %q", v, v, v, v, v))
		for _, h := range []func(*bytes.Buffer) slog.Handler{
			func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
			func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		} {
			var buf bytes.Buffer
			slog.New(h(&buf)).Info("stored", "value", v, slog.Any("any", v))
			outputs = append(outputs, buf.String())
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, string(j))
	}
	outputs = append(outputs, fmt.Errorf("wrapped: %v", a).Error())

	for _, out := range outputs {
		if strings.Contains(out, token) || strings.Contains(out, secret) {
			t.Errorf("secret leaked in: %s", out)
		}
	}
	// The output is still useful: it names the account.
	if got := fmt.Sprint(a); !strings.Contains(got, "me@old.example") {
		t.Errorf("%%v of Account = %q, want the handle", got)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "acct", a)
	if !strings.Contains(buf.String(), `"handle":"me@old.example"`) || !strings.Contains(buf.String(), `"has_token":true`) {
		t.Errorf("slog JSON = %s", buf.String())
	}
}
