package misskey_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/fakemisskey"
	"github.com/fedi-ferry/ferry/migrate/move"
	mk "github.com/fedi-ferry/ferry/misskey"
	"github.com/fedi-ferry/ferry/platform"
)

// moveSides logs old and new in with app tokens (MiAuth's permissions)
// and returns their sides of a migration.
func moveSides(t *testing.T, srv *fakemisskey.Server, old, new string) (*move.Side, *move.Side) {
	t.Helper()
	ctx := t.Context()
	reg := registry(t)
	p, info, err := reg.Detect(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	side := func(name string) *move.Side {
		acct, err := platform.Login(ctx, p, info, platform.LoginRequest{Server: srv.URL, Token: srv.AddToken(srv.UserID(name), mk.Permissions)})
		if err != nil {
			t.Fatal(err)
		}
		sess, err := p.Open(acct)
		if err != nil {
			t.Fatal(err)
		}
		s, err := sess.(platform.Mover).MoveSide(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return side(old), side(new)
}

// secrets counts how often each secret is read.
type secrets struct {
	password, code string
	pwReads, codes int
}

func (s *secrets) get(noCode bool) move.Secrets {
	m := move.Secrets{Password: func() (string, error) { s.pwReads++; return s.password, nil }}
	if !noCode {
		m.Code = func() (string, error) { s.codes++; return s.code, nil }
	}
	return m
}

// MoveAccount signs in with the password for the native token and sends
// i/move with it (the session's app token is refused there); the old
// account then points to the new one and its local follower follows the
// new one.
func TestMoveAccountSignsInForTheMove(t *testing.T) {
	for _, cfg := range []fakemisskey.Config{{}, {Flavour: "sharkey", Version: "2024.9.4", LegacySignin: true}} {
		t.Run(cfg.Flavour+map[bool]string{true: "-legacy-signin"}[cfg.LegacySignin], func(t *testing.T) {
			srv := fakemisskey.Start(cfg)
			defer srv.Close()
			oldID := srv.AddUser("old", "pw-old")
			newID := srv.AddUser("new", "pw-new")
			fan := srv.AddUser("fan", "pw")
			base, _ := mk.ParseServer(srv.URL)
			ctx := t.Context()
			if err := mk.NewClient(base, srv.AddToken(fan, mk.Permissions), mk.Options{}).Call(ctx, "following/create", map[string]string{"userId": oldID}, nil, true); err != nil {
				t.Fatal(err)
			}
			old, neu := moveSides(t, srv, "old", "new")
			if !old.Abilities().MoveAPI || old.Guidance().Move != move.SupportAPI {
				t.Fatalf("%s: the Move is not through the API: %+v", cfg.Flavour, old.Guidance())
			}
			if err := neu.API.AddAlias(ctx, old.URI, old.Handle); err != nil {
				t.Fatal(err)
			}
			s := &secrets{password: "pw-old"}
			if err := old.API.MoveAccount(ctx, neu.URI, neu.Handle, s.get(false)); err != nil {
				t.Fatal(err)
			}
			if s.pwReads != 1 || s.codes != 0 || srv.Logins(oldID) != 1 || srv.Calls("i/move") != 1 {
				t.Errorf("password read %d, code read %d, logins %d, i/move %d", s.pwReads, s.codes, srv.Logins(oldID), srv.Calls("i/move"))
			}
			me, err := old.API.Me(ctx)
			if err != nil || me.Moved == nil || me.Moved.ID != newID {
				t.Fatalf("after the Move: %+v %v", me.Moved, err)
			}
			followers, err := neu.API.Followers(ctx, newID)
			if err != nil || !followers["fan@"+srv.Host] {
				t.Errorf("the local follower did not move: %v %v", followers, err)
			}
			// A second Move is refused (the account has moved) and says so.
			err = old.API.MoveAccount(ctx, neu.URI, neu.Handle, s.get(false))
			if err == nil || !strings.Contains(err.Error(), "already moved") {
				t.Errorf("a second Move: %v", err)
			}
		})
	}
}

// A wrong password is a credentials error (the exit status of a refused
// login), found before i/move is called; without an alias on the target,
// Misskey's refusal is final (i/move fetches the target again itself), not
// a stale copy to wait for.
func TestMoveAccountRefusals(t *testing.T) {
	srv := fakemisskey.Start(fakemisskey.Config{})
	defer srv.Close()
	srv.AddUser("old", "pw-old")
	srv.AddUser("new", "pw-new")
	old, neu := moveSides(t, srv, "old", "new")
	ctx := t.Context()
	err := old.API.MoveAccount(ctx, neu.URI, neu.Handle, (&secrets{password: "wrong"}).get(false))
	if !platform.IsUnauthorized(err) || !strings.Contains(err.Error(), "password is wrong") || srv.Calls("i/move") != 0 {
		t.Fatalf("wrong password: %v (i/move called %d times)", err, srv.Calls("i/move"))
	}
	err = old.API.MoveAccount(ctx, neu.URI, neu.Handle, (&secrets{password: "pw-old"}).get(false))
	if !mk.IsCode(err, "DESTINATION_ACCOUNT_FORBIDS") || fedi.StatusCode(err) != 0 || !strings.Contains(err.Error(), "alias") {
		t.Fatalf("no alias: %v", err)
	}
}

// With two-factor authentication on (i says so), the code is asked once
// and sent with the password; a wrong code is a credentials error; no way
// to ask for one is an error naming the account.
func TestMoveAccountTwoFactor(t *testing.T) {
	srv := fakemisskey.Start(fakemisskey.Config{})
	defer srv.Close()
	oldID := srv.AddUser("old", "pw-old")
	srv.AddUser("new", "pw-new")
	const secret = "JBSWY3DPEHPK3PXP"
	srv.EnableTwoFactor(oldID, secret, false)
	old, neu := moveSides(t, srv, "old", "new")
	ctx := t.Context()
	if err := neu.API.AddAlias(ctx, old.URI, old.Handle); err != nil {
		t.Fatal(err)
	}
	err := old.API.MoveAccount(ctx, neu.URI, neu.Handle, (&secrets{password: "pw-old"}).get(true))
	if err == nil || !strings.Contains(err.Error(), "one-time code") || srv.Calls("signin-flow") != 0 {
		t.Fatalf("no code source: %v (sign-ins %d)", err, srv.Calls("signin-flow"))
	}
	err = old.API.MoveAccount(ctx, neu.URI, neu.Handle, (&secrets{password: "pw-old", code: "123456"}).get(false))
	if !platform.IsUnauthorized(err) || srv.Calls("i/move") != 0 {
		t.Fatalf("wrong code: %v", err)
	}
	s := &secrets{password: "pw-old", code: fakemisskey.TOTP(secret, time.Now())}
	if err := old.API.MoveAccount(ctx, neu.URI, neu.Handle, s.get(false)); err != nil {
		t.Fatal(err)
	}
	if s.codes != 1 || srv.Calls("i/move") != 1 {
		t.Errorf("code read %d times, i/move %d", s.codes, srv.Calls("i/move"))
	}
}

// A server with a captcha at sign-in: the Move falls back to the web
// client (a *move.GuidedError naming the captcha), without asking for the
// password or trying to sign in. With two-factor authentication Misskey
// skips the captcha, so ferry signs in.
func TestMoveAccountCaptchaFallsBack(t *testing.T) {
	srv := fakemisskey.Start(fakemisskey.Config{Captcha: "turnstile"})
	defer srv.Close()
	srv.AddUser("old", "pw-old")
	srv.AddUser("new", "pw-new")
	old, neu := moveSides(t, srv, "old", "new")
	s := &secrets{password: "pw-old"}
	err := old.API.MoveAccount(t.Context(), neu.URI, neu.Handle, s.get(false))
	var ge *move.GuidedError
	if !errors.As(err, &ge) || !strings.Contains(ge.Reason, "captcha (turnstile)") || s.pwReads != 0 || srv.Calls("signin-flow") != 0 {
		t.Fatalf("captcha: %v (password read %d, sign-ins %d)", err, s.pwReads, srv.Calls("signin-flow"))
	}

	const secret = "JBSWY3DPEHPK3PXP"
	srv.EnableTwoFactor(srv.UserID("old"), secret, false)
	if err := neu.API.AddAlias(t.Context(), old.URI, old.Handle); err != nil {
		t.Fatal(err)
	}
	s = &secrets{password: "pw-old", code: fakemisskey.TOTP(secret, time.Now())}
	if err := old.API.MoveAccount(t.Context(), neu.URI, neu.Handle, s.get(false)); err != nil {
		t.Fatalf("captcha server, two-factor account: %v", err)
	}
}
