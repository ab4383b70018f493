package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/fedi-ferry/ferry/platform"
)

// passwordEnv names the environment variable a login password may come from.
const passwordEnv = "FERRY_PASSWORD"

// passwordOptions are the login flags of platforms that log in with a name
// and a password (Bluesky).
type passwordOptions struct {
	Handle       string
	PasswordFile string
}

func passwordFlags(o *passwordOptions) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "handle", Usage: "the account to log in as, on servers that ask for a name and a password (Bluesky: alice.bsky.social)",
			Destination: &o.Handle},
		&cli.StringFlag{Name: "password-file", Usage: "read the password (Bluesky: an app password) from `FILE`, which only you may read; " +
			"otherwise it comes from " + passwordEnv + " or is asked for without echo. It is never stored", Destination: &o.PasswordFile},
	}
}

// loginTarget finds what to log in to: the server named on the command
// line (base, as parsed from arg), or, when no server there answers and no
// --handle was given, the server of the account arg names (a Bluesky handle
// such as alice.bsky.social resolves to its PDS). It returns the platform,
// the server, its base URL and the account identifier to log in as.
func loginTarget(ctx context.Context, g *globalOptions, reg *platform.Registry, base, arg, handle string) (platform.Platform, platform.Server, string, string, error) {
	p, srv, err := reg.Detect(ctx, base)
	if err == nil || handle != "" {
		return p, srv, base, handle, err
	}
	lp, lsrv, ident, lerr := reg.Locate(ctx, arg)
	if lerr != nil {
		if errors.Is(lerr, platform.ErrNotMine) {
			return nil, platform.Server{}, base, "", err // arg names no account: the server's answer is the news
		}
		return nil, platform.Server{}, base, "", fmt.Errorf("%w; as an account name: %w", err, lerr)
	}
	g.log.Debug("found the account's server", "account", arg, "server", lsrv.Base, "platform", lsrv.Platform)
	return lp, lsrv, lsrv.Base, ident, nil
}

// errNoTerminal is readPassword's answer when there is neither a file nor
// FERRY_PASSWORD and no terminal to ask on; each caller says what to give.
var errNoTerminal = errors.New("no terminal to ask on")

// readPassword reads a password from file (with --token-file's 0600 rule),
// else FERRY_PASSWORD, else the terminal without echo after prompt; it
// returns errNoTerminal when there is none of the three. The password is
// used by the caller and stored nowhere.
func readPassword(g *globalOptions, file, prompt string) (string, error) {
	if file != "" {
		return readTokenFile(file)
	}
	if pw := os.Getenv(passwordEnv); pw != "" {
		return pw, nil
	}
	f, ok := g.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errNoTerminal
	}
	fmt.Fprint(g.stderr, prompt)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(g.stderr)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// loginPasswordSource returns where the login password comes from: --password-file,
// then FERRY_PASSWORD, then a prompt on the terminal without echo.
func loginPasswordSource(g *globalOptions, o passwordOptions) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		pw, err := readPassword(g, o.PasswordFile, "Password (an app password is best; it is not stored): ")
		if errors.Is(err, errNoTerminal) {
			return "", usagef("login: give the password with --password-file or %s (there is no terminal to ask on)", passwordEnv)
		}
		return pw, err
	}
}

// storeTokens saves rotated tokens (platform.TokenSaver) in the database,
// opened for each save: refreshes are rare, and a command's own store may
// not be open when a session refreshes.
type storeTokens struct{ g *globalOptions }

func (s storeTokens) SaveToken(ctx context.Context, handle, token string) error {
	st, err := s.g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.SaveToken(ctx, handle, token)
}
