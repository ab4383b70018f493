package main

import (
	"path/filepath"
	"testing"

	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/state"
)

// Login records the platform detection found on the account, and the
// account then works through its platform's roles (here: the check).
func TestE2ELoginRecordsPlatform(t *testing.T) {
	testenv.Require(t)
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	ctx := t.Context()
	u, err := in.CreateUser(ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, env.CAFile)
	c.run("login", in.BaseURL, "--token-file", writeTokenFile(t, u.Token)).mustSucceed(t)
	st, err := state.Open(ctx, filepath.Join(c.dataDir, "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := st.Account(ctx, u.Acct)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if a.Platform != "mastodon" || a.Software != "gotosocial" {
		t.Fatalf("stored account: platform %q, software %q", a.Platform, a.Software)
	}
	c.run("accounts", "check", u.Acct).mustSucceed(t)
}
