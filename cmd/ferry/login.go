package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/state"
)

// defaultCallbackPort is tried first for the login redirect so that the
// redirect URI, and with it the app ferry registered at the server, stays the
// same from one login to the next. Another free port is used when it is busy.
const defaultCallbackPort = 47613

type loginOptions struct {
	TokenFile    string
	Token        string
	Name         string
	OOB          bool
	NoBrowser    bool
	CallbackPort int
	Wait         time.Duration
}

func newLoginCommand(g *globalOptions) *cli.Command {
	var o loginOptions
	return &cli.Command{
		Name:      "login",
		Usage:     "add an account: authorize ferry at a server and remember the account",
		ArgsUsage: "SERVER",
		Description: "Opens the server's authorization page. After you approve, the browser returns to a\n" +
			"one-shot listener on 127.0.0.1; if that cannot work (the browser is on another machine), paste the\n" +
			"code or the address the browser shows instead, or use --oob to have the server show a code.\n" +
			"With --token or --token-file an existing access token is stored instead (after checking it).\n\n" +
			"The account is stored under its full handle user@server, and optionally a short --name.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "token-file", Usage: "read an existing access token from `FILE`", Destination: &o.TokenFile},
			&cli.StringFlag{Name: "token", Usage: "use an existing access token (prefer --token-file or FERRY_TOKEN: arguments are visible to other users)",
				EnvVars: []string{"FERRY_TOKEN"}, Destination: &o.Token},
			&cli.StringFlag{Name: "name", Usage: "a short name for the account, usable wherever an account is asked for", Destination: &o.Name},
			&cli.BoolFlag{Name: "oob", Usage: "let the server show the code to paste, instead of redirecting to ferry", Destination: &o.OOB},
			&cli.BoolFlag{Name: "no-browser", Usage: "print the authorization address without opening a browser", Destination: &o.NoBrowser},
			&cli.IntFlag{Name: "callback-port", Usage: "loopback port for the redirect (0 = any free port)", Value: defaultCallbackPort, Destination: &o.CallbackPort},
			&cli.DurationFlag{Name: "wait", Usage: "how long to wait for the authorization", Value: 10 * time.Minute, Destination: &o.Wait},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("login: give exactly one SERVER, e.g. `ferry login https://example.social`")
			}
			return runLogin(c.Context, g, o, c.Args().First())
		},
	}
}

func runLogin(ctx context.Context, g *globalOptions, o loginOptions, server string) error {
	base, err := fedi.ParseServer(server)
	if err != nil {
		return usageError{err.Error()}
	}
	if o.Token != "" && o.TokenFile != "" {
		return usagef("login: give --token or --token-file, not both")
	}
	hc, _, err := g.httpClient()
	if err != nil {
		return err
	}
	anon := fedi.NewClient(base, "", hc)

	dctx, cancel := withTimeout(ctx)
	srv, err := fedi.Detect(dctx, anon)
	cancel()
	if err != nil {
		return fmt.Errorf("login %s: %w", base, err)
	}
	g.log.Debug("detected server", "server", base.String(), "software", srv.Software.Name, "version", srv.Software.Version)

	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()

	var token, scopes, clientID string
	switch {
	case o.TokenFile != "":
		token, err = readTokenFile(o.TokenFile)
		if err != nil {
			return err
		}
	case o.Token != "":
		token = strings.TrimSpace(o.Token)
	default:
		var app fedi.App
		token, scopes, app, err = authorize(ctx, g, st, anon, o)
		if err != nil {
			return fmt.Errorf("login %s: %w", base, err)
		}
		clientID = app.ClientID
	}

	client := fedi.NewClient(base, token, hc)
	vctx, cancel := withTimeout(ctx)
	me, err := fedi.VerifyCredentials(vctx, client)
	cancel()
	if err != nil {
		if fedi.IsUnauthorized(err) {
			return fmt.Errorf("login %s: the server does not accept this token (%w); check it, or log in without --token", base, err)
		}
		return fmt.Errorf("login %s: %w", base, err)
	}
	acct := state.Account{
		Handle:          fedi.Handle(me.Username, client),
		Name:            o.Name,
		Server:          base.String(),
		AccountID:       me.ID,
		Username:        me.Username,
		Token:           token,
		Scopes:          scopes,
		ClientID:        clientID,
		Software:        srv.Software.Name,
		SoftwareVersion: srv.Software.Version,
	}
	if err := st.PutAccount(ctx, acct); err != nil {
		if errors.Is(err, state.ErrConflict) {
			return usagef("login: the name %q is already used by another account; pick another --name", o.Name)
		}
		return fmt.Errorf("save account %s: %w", acct.Handle, err)
	}
	g.log.Info("logged in", "account", acct.Handle, "software", srv.Software.Name, "version", srv.Software.Version)
	if g.JSON {
		return printJSON(g.stdout, map[string]string{
			"handle": acct.Handle, "name": acct.Name, "server": acct.Server,
			"software": acct.Software, "version": acct.SoftwareVersion,
		})
	}
	_, err = fmt.Fprintf(g.stdout, "logged in as %s (%s %s)\n", acct.Handle, srv.Software.Name, srv.Software.Version)
	return err
}

// readTokenFile reads a token from a file, refusing files others can read:
// a token is as good as the password.
func readTokenFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("token file %s is readable by other users (mode %04o); run `chmod 600 %s` first",
			path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" || strings.ContainsAny(t, " \t\r\n") {
		return "", fmt.Errorf("token file %s must hold one token on one line", path)
	}
	return t, nil
}

// authorize runs the interactive OAuth flow and returns the token.
func authorize(ctx context.Context, g *globalOptions, st *state.Store, anon *fedi.Client, o loginOptions) (token, scopes string, app fedi.App, err error) {
	state := fedi.NewState()
	redirect := fedi.OOBRedirect
	var cb *fedi.Callback
	if !o.OOB {
		cb, err = fedi.ListenCallback(o.CallbackPort, state)
		if err != nil && o.CallbackPort != 0 {
			cb, err = fedi.ListenCallback(0, state)
		}
		if err != nil {
			return "", "", app, err
		}
		defer cb.Close()
		redirect = cb.RedirectURI
	}

	app, err = cachedApp(ctx, st, anon, redirect)
	if err != nil {
		return "", "", app, err
	}
	var pkce *fedi.PKCE
	pctx, cancel := withTimeout(ctx)
	if supported, known := fedi.SupportsPKCE(pctx, anon); supported || !known {
		p := fedi.NewPKCE()
		pkce = &p
	}
	cancel()

	authURL := fedi.AuthorizeURL(anon.Base(), app, state, pkce)
	fmt.Fprintf(g.stderr, "Open this address in a browser and allow ferry to use your account:\n\n  %s\n\n", authURL)
	if !o.NoBrowser {
		openBrowser(authURL)
	}
	if cb != nil {
		fmt.Fprintln(g.stderr, "Waiting for the browser to come back to ferry… (or paste the code or the address the browser ends on, then Enter)")
	} else {
		fmt.Fprint(g.stderr, "Paste the code the server shows, then Enter: ")
	}

	wctx, cancel := context.WithTimeout(ctx, o.Wait)
	defer cancel()
	code, err := waitForCode(wctx, g, cb, state)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "", "", app, fmt.Errorf("no authorization within %s; run the command again", o.Wait)
		}
		return "", "", app, err
	}
	verifier := ""
	if pkce != nil {
		verifier = pkce.Verifier
	}
	ectx, cancel2 := withTimeout(ctx)
	defer cancel2()
	token, scopes, err = fedi.ExchangeCode(ectx, anon, app, code, verifier)
	if err != nil && fedi.StatusCode(err) == 401 {
		// The server forgot the cached app (deleted, or vacuumed as old
		// Mastodon versions do): drop it so the next run registers anew.
		_ = st.DeleteApp(ctx, anon.Base().String(), app.RedirectURI, app.Scopes)
		return "", "", app, fmt.Errorf("%w\n  ferry's app registration is no longer known to the server; it has been forgotten, run the command again", err)
	}
	return token, scopes, app, err
}

// cachedApp returns ferry's app registration for this server and redirect,
// registering one the first time.
func cachedApp(ctx context.Context, st *state.Store, c *fedi.Client, redirect string) (fedi.App, error) {
	server := c.Base().String()
	if a, err := st.App(ctx, server, redirect, fedi.Scopes); err == nil {
		return fedi.App{ClientID: a.ClientID, ClientSecret: a.ClientSecret, RedirectURI: a.RedirectURI, Scopes: a.Scopes}, nil
	} else if !errors.Is(err, state.ErrNotFound) {
		return fedi.App{}, fmt.Errorf("load app registration: %w", err)
	}
	rctx, cancel := withTimeout(ctx)
	defer cancel()
	app, err := fedi.RegisterApp(rctx, c, "ferry", "https://github.com/fedi-ferry/ferry", redirect, fedi.Scopes)
	if err != nil {
		return fedi.App{}, err
	}
	err = st.PutApp(ctx, state.App{Server: server, RedirectURI: redirect, ClientID: app.ClientID,
		ClientSecret: app.ClientSecret, Scopes: app.Scopes})
	if err != nil {
		return fedi.App{}, fmt.Errorf("save app registration: %w", err)
	}
	return app, nil
}

// waitForCode returns the first authorization code from the loopback
// redirect or from a line typed on stdin (a bare code, or the full redirect
// address copied from the browser).
func waitForCode(ctx context.Context, g *globalOptions, cb *fedi.Callback, state string) (string, error) {
	typed := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(g.stdin)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				typed <- line
				return
			}
		}
		// EOF without input (stdin is /dev/null): only the redirect can answer.
	}()
	var redirected <-chan string
	var errs <-chan error
	if cb != nil {
		r, e := make(chan string, 1), make(chan error, 1)
		go func() {
			code, err := cb.Wait(ctx)
			if err != nil {
				e <- err
				return
			}
			r <- code
		}()
		redirected, errs = r, e
	}
	select {
	case code := <-redirected:
		return code, nil
	case err := <-errs:
		return "", err
	case line := <-typed:
		return codeFromInput(line, state)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// codeFromInput accepts a pasted code or a pasted redirect address.
func codeFromInput(line, state string) (string, error) {
	if !strings.Contains(line, "code=") {
		return line, nil
	}
	u, err := url.Parse(line)
	if err != nil {
		return "", fmt.Errorf("the pasted address is not a URL: %w", err)
	}
	q := u.Query()
	if s := q.Get("state"); s != "" && s != state {
		return "", errors.New("the pasted address belongs to another login attempt (state does not match)")
	}
	if q.Get("code") == "" {
		return "", errors.New("the pasted address carries no code")
	}
	return q.Get("code"), nil
}

// openBrowser tries the desktop's opener and ignores failure: the address
// is printed either way.
func openBrowser(u string) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return
		}
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err == nil {
		go func() { _ = cmd.Wait() }()
	}
}
