package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/platform"
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
	Rename       bool
	OOB          bool
	NoBrowser    bool
	CallbackPort int
	Wait         time.Duration
	Password     passwordOptions
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
			"The account is stored under its full handle user@server, and optionally a short --name.\n\n" +
			"Bluesky: `ferry login alice.bsky.social` finds the account's server from its handle, or\n" +
			"`ferry login https://pds.example --handle alice.example` names it. The password (make an app password)\n" +
			"comes from --password-file, " + passwordEnv + " or a prompt and is never stored: ferry keeps the session.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "token-file", Usage: "read an existing access token from `FILE`", Destination: &o.TokenFile},
			&cli.StringFlag{Name: "token", Usage: "use an existing access token (prefer --token-file or FERRY_TOKEN: arguments are visible to other users)",
				EnvVars: []string{"FERRY_TOKEN"}, Destination: &o.Token},
			&cli.StringFlag{Name: "name", Usage: "a short name for the account, usable wherever an account is asked for", Destination: &o.Name},
			&cli.BoolFlag{Name: "rename", Usage: "with --name: replace the short name the account already has (routes naming the old one stop resolving)", Destination: &o.Rename},
			&cli.BoolFlag{Name: "oob", Usage: "let the server show the code to paste, instead of redirecting to ferry", Destination: &o.OOB},
			&cli.BoolFlag{Name: "no-browser", Usage: "print the authorization address without opening a browser", Destination: &o.NoBrowser},
			&cli.IntFlag{Name: "callback-port", Usage: "loopback port for the redirect (0 = any free port)", Value: defaultCallbackPort, Destination: &o.CallbackPort},
			&cli.DurationFlag{Name: "wait", Usage: "how long to wait for the authorization", Value: 10 * time.Minute, Destination: &o.Wait},
		}, passwordFlags(&o.Password)...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("login: give exactly one SERVER, e.g. `ferry login https://example.social`")
			}
			return runLogin(c.Context, g, o, c.Args().First())
		},
	}
}

func runLogin(ctx context.Context, g *globalOptions, o loginOptions, server string) error {
	base, err := platform.ParseServer(server)
	if err != nil {
		return usageError{err.Error()}
	}
	if o.Token != "" && o.TokenFile != "" {
		return usagef("login: give --token or --token-file, not both")
	}
	reg, err := g.registry()
	if err != nil {
		return err
	}
	dctx, cancel := withTimeout(ctx)
	p, srv, base, ident, err := loginTarget(dctx, g, reg, base, server, o.Password.Handle)
	cancel()
	if err != nil {
		return fmt.Errorf("login %s: %w", base, err)
	}
	g.log.Debug("detected server", "server", base, "platform", srv.Platform, "software", srv.Software, "version", srv.Version)

	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()

	req := platform.LoginRequest{Server: base, Apps: st, OOB: o.OOB, CallbackPort: o.CallbackPort, Prompt: loginPrompt{g, o},
		Identifier: ident, Password: loginPasswordSource(g, o.Password)}
	switch {
	case o.TokenFile != "":
		if req.Token, err = readTokenFile(o.TokenFile); err != nil {
			return err
		}
	case o.Token != "":
		req.Token = strings.TrimSpace(o.Token)
	}
	acct, err := platform.Login(ctx, p, srv, req)
	if err != nil {
		return fmt.Errorf("login %s: %w", base, err)
	}
	// Logging in again keeps the account's short name: routes and
	// commands name it. Another --name replaces it only with --rename.
	acct.Name = o.Name
	note := ""
	if prev, err := st.Account(ctx, acct.Handle); err == nil && prev.Name != "" && prev.Name != o.Name {
		switch {
		case o.Name == "":
			acct.Name = prev.Name
		case !o.Rename:
			acct.Name = prev.Name
			note = fmt.Sprintf("kept the name %q of %s (routes may use it); to call it %q instead, log in with --name %s --rename",
				prev.Name, acct.Handle, o.Name, o.Name)
		default:
			note = fmt.Sprintf("renamed %s from %q to %q: routes that name %q no longer find it", acct.Handle, prev.Name, o.Name, prev.Name)
		}
	}
	if err := st.PutAccount(ctx, acct); err != nil {
		if errors.Is(err, state.ErrConflict) {
			return usagef("login: the name %q is already used by another account; pick another --name", o.Name)
		}
		return fmt.Errorf("save account %s: %w", acct.Handle, err)
	}
	g.log.Info("logged in", "account", acct.Handle, "platform", acct.Platform, "software", srv.Software, "version", srv.Version)
	if g.JSON {
		out := map[string]string{
			"handle": acct.Handle, "name": acct.Name, "server": acct.Server,
			"software": acct.Software, "version": acct.SoftwareVersion,
		}
		if note != "" {
			out["note"] = note
		}
		return printJSON(g.stdout, out)
	}
	_, err = fmt.Fprintf(g.stdout, "logged in as %s (%s %s)\n", acct.Handle, srv.Software, srv.Version)
	if note != "" && err == nil {
		_, err = fmt.Fprintln(g.stdout, note)
	}
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

// loginPrompt is the person's side of an interactive login: it shows the
// authorization address, opens the browser, and waits for the redirect or
// for what the person pastes.
type loginPrompt struct {
	g *globalOptions
	o loginOptions
}

func (p loginPrompt) Authorize(ctx context.Context, authURL string, redirected func(context.Context) (string, error)) (string, error) {
	g := p.g
	fmt.Fprintf(g.stderr, "Open this address in a browser and allow ferry to use your account:\n\n  %s\n\n", authURL)
	if !p.o.NoBrowser {
		openBrowser(authURL)
	}
	if redirected != nil {
		fmt.Fprintln(g.stderr, "Waiting for the browser to come back to ferry… (or paste the code or the address the browser ends on, then Enter)")
	} else {
		fmt.Fprint(g.stderr, "Paste the code the server shows (Misskey shows none: press Allow, then paste the page's address), then Enter: ")
	}
	wctx, cancel := context.WithTimeout(ctx, p.o.Wait)
	defer cancel()
	answer, err := waitForAnswer(wctx, g.stdin, redirected)
	if errors.Is(err, context.DeadlineExceeded) {
		return "", fmt.Errorf("no authorization within %s; run the command again", p.o.Wait)
	}
	return answer, err
}

// waitForAnswer returns the first of the code from the redirect and a
// non-empty line typed on stdin.
func waitForAnswer(ctx context.Context, stdin io.Reader, redirected func(context.Context) (string, error)) (string, error) {
	typed := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				typed <- line
				return
			}
		}
		// EOF without input (stdin is /dev/null): only the redirect can answer.
	}()
	var codes <-chan string
	var errs <-chan error
	if redirected != nil {
		r, e := make(chan string, 1), make(chan error, 1)
		go func() {
			code, err := redirected(ctx)
			if err != nil {
				e <- err
				return
			}
			r <- code
		}()
		codes, errs = r, e
	}
	select {
	case code := <-codes:
		return code, nil
	case err := <-errs:
		return "", err
	case line := <-typed:
		return line, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
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
