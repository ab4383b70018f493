package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/state"
)

func newAccountsCommand(g *globalOptions) *cli.Command {
	return &cli.Command{
		Name:   "accounts",
		Usage:  "list, check and remove the accounts ferry knows",
		Action: func(c *cli.Context) error { return runAccountsList(c.Context, g) },
		Subcommands: []*cli.Command{
			{
				Name:   "list",
				Usage:  "list accounts (the default)",
				Action: func(c *cli.Context) error { return runAccountsList(c.Context, g) },
			},
			{
				Name:      "check",
				Usage:     "show each account's server, software, limits, and whether its token still works",
				ArgsUsage: "[ACCOUNT]",
				Action: func(c *cli.Context) error {
					if c.NArg() > 1 {
						return usagef("accounts check: give at most one ACCOUNT")
					}
					return runAccountsCheck(c.Context, g, c.Args().First())
				},
			},
			{
				Name:      "remove",
				Usage:     "revoke an account's token (where the server allows) and forget the account",
				ArgsUsage: "ACCOUNT",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usagef("accounts remove: give exactly one ACCOUNT")
					}
					return runAccountsRemove(c.Context, g, c.Args().First())
				},
			},
		},
	}
}

func runAccountsList(ctx context.Context, g *globalOptions) error {
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	accts, err := st.Accounts(ctx)
	if err != nil {
		return fmt.Errorf("list accounts: %w", err)
	}
	if g.JSON {
		out := make([]map[string]string, 0, len(accts))
		for _, a := range accts {
			out = append(out, map[string]string{"handle": a.Handle, "name": a.Name, "server": a.Server,
				"software": a.Software, "version": a.SoftwareVersion, "added": a.CreatedAt.UTC().Format("2006-01-02T15:04:05Z")})
		}
		return printJSON(g.stdout, out)
	}
	if len(accts) == 0 {
		_, err := fmt.Fprintln(g.stdout, "no accounts yet; add one with `ferry login SERVER`")
		return err
	}
	t := newTable(g.stdout, "ACCOUNT", "NAME", "SOFTWARE", "SERVER", "ADDED")
	for _, a := range accts {
		t.row(a.Handle, dash(a.Name), strings.TrimSpace(a.Software+" "+a.SoftwareVersion), a.Server, a.CreatedAt.Local().Format("2006-01-02"))
	}
	return t.flush()
}

// accountCheck is the result of checking one account, as printed.
type accountCheck struct {
	Handle     string      `json:"handle"`
	Name       string      `json:"name,omitempty"`
	Platform   string      `json:"platform,omitempty"`
	AccountID  string      `json:"account_id,omitempty"` // as the server said (a DID on Bluesky)
	Server     string      `json:"server"`
	Software   string      `json:"software,omitempty"`
	Version    string      `json:"version,omitempty"`
	Limits     post.Limits `json:"limits"`
	LimitsFrom string      `json:"limits_from,omitempty"`
	TokenOK    bool        `json:"token_ok"`
	Problem    string      `json:"problem,omitempty"`

	revoked bool // the server refused the token
}

func runAccountsCheck(ctx context.Context, g *globalOptions, ref string) error {
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	var accts []state.Account
	if ref != "" {
		a, err := account(ctx, st, ref)
		if err != nil {
			return err
		}
		accts = []state.Account{a}
	} else if accts, err = st.Accounts(ctx); err != nil {
		return fmt.Errorf("list accounts: %w", err)
	}

	results := make([]accountCheck, 0, len(accts))
	failed := 0
	for _, a := range accts {
		r := checkAccount(ctx, g, st, a)
		if !r.TokenOK {
			failed++
		}
		results = append(results, r)
	}
	if g.JSON {
		if err := printJSON(g.stdout, results); err != nil {
			return err
		}
	} else {
		for i, r := range results {
			if i > 0 {
				fmt.Fprintln(g.stdout)
			}
			printCheck(g, r)
		}
	}
	if failed > 0 {
		if len(accts) == 1 {
			if results[0].revoked {
				return authError{fmt.Sprintf("account %s: %s", accts[0].Handle, results[0].Problem)}
			}
			return fmt.Errorf("account %s: %s", accts[0].Handle, results[0].Problem)
		}
		return partialError{fmt.Sprintf("%d of %d accounts need attention", failed, len(accts))}
	}
	return nil
}

// checkAccount asks the account's server what it runs and whether the token
// still works. Problems are reported in the result, not as errors, so one
// dead server does not hide the others.
func checkAccount(ctx context.Context, g *globalOptions, st *state.Store, a state.Account) accountCheck {
	r := accountCheck{Handle: a.Handle, Name: a.Name, Platform: a.Platform, Server: a.Server, Software: a.Software, Version: a.SoftwareVersion}
	sess, err := g.session(a)
	if err != nil {
		r.Problem = err.Error()
		return r
	}
	cctx, cancel := withTimeout(ctx)
	defer cancel()
	srv, err := sess.Server(cctx)
	if err != nil {
		r.Problem = err.Error()
		return r
	}
	r.Software, r.Version, r.Limits, r.LimitsFrom = srv.Software, srv.Version, srv.Limits, srv.LimitsFrom
	me, err := sess.Verify(cctx)
	switch {
	case platform.IsUnauthorized(err):
		r.Problem = fmt.Sprintf("the server no longer accepts ferry's token (revoked or expired); run `ferry login %s` again", a.Server)
		r.revoked = true
		return r
	case err != nil:
		r.Problem = err.Error()
		return r
	case me.ID != a.AccountID && a.AccountID != "":
		r.Problem = fmt.Sprintf("the token now belongs to another account (%s); run `ferry login %s` again", me.Username, a.Server)
		return r
	}
	r.TokenOK, r.AccountID = true, me.ID
	if srv.Software != a.Software || srv.Version != a.SoftwareVersion {
		// Servers upgrade; keep what later commands read current. The
		// token is read again: checking may have rotated it (Bluesky).
		if cur, err := st.Account(ctx, a.Handle); err == nil {
			a.Token = cur.Token
		}
		a.Software, a.SoftwareVersion = srv.Software, srv.Version
		if err := st.PutAccount(ctx, a); err != nil {
			g.log.Warn("could not record the server's new version", "account", a.Handle, "err", err)
		}
	}
	return r
}

func printCheck(g *globalOptions, r accountCheck) {
	t := newTable(g.stdout)
	t.row("account", r.Handle)
	if r.Name != "" {
		t.row("name", r.Name)
	}
	if r.Platform != state.DefaultPlatform && r.Platform != "" {
		// Accounts of the default platform keep their old output.
		t.row("platform", r.Platform)
		t.row("id", dash(r.AccountID))
	}
	t.row("server", r.Server)
	t.row("software", dash(strings.TrimSpace(r.Software+" "+r.Version)))
	if r.LimitsFrom != "" {
		l := r.Limits
		unit := "characters"
		if l.CountGraphemes {
			unit = "graphemes"
		}
		t.row("limits", fmt.Sprintf("%d %s per post (a link counts %s), %d media per post, %d poll options",
			l.MaxChars, unit, urlCount(l.CharsPerURL), l.MaxMedia, l.MaxPollOptions))
		if len(l.MediaTypes) > 0 {
			t.row("media types", summarizeTypes(l.MediaTypes))
		}
		t.row("limits from", r.LimitsFrom)
	}
	if r.TokenOK {
		t.row("token", "works")
	} else {
		t.row("token", "PROBLEM: "+r.Problem)
	}
	_ = t.flush()
}

func urlCount(n int) string {
	if n <= 0 {
		return "its length"
	}
	return fmt.Sprint(n)
}

// summarizeTypes shortens a long MIME list for people: "image/* (8), video/* (3) …".
func summarizeTypes(types []string) string {
	counts := map[string]int{}
	var order []string
	for _, t := range types {
		major, _, _ := strings.Cut(t, "/")
		if counts[major] == 0 {
			order = append(order, major)
		}
		counts[major]++
	}
	parts := make([]string, len(order))
	for i, m := range order {
		parts[i] = fmt.Sprintf("%s/* (%d)", m, counts[m])
	}
	return strings.Join(parts, ", ")
}

func runAccountsRemove(ctx context.Context, g *globalOptions, ref string) error {
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	a, err := account(ctx, st, ref)
	if err != nil {
		return err
	}
	revoked := "the token was imported with --token, so ferry cannot revoke it; revoke it in the server's settings"
	if a.ClientID != "" {
		revoked = revoke(ctx, g, st, a)
	}
	if err := st.DeleteAccount(ctx, a.Handle); err != nil {
		return fmt.Errorf("forget account %s: %w", a.Handle, err)
	}
	if g.JSON {
		return printJSON(g.stdout, map[string]string{"removed": a.Handle, "token": revoked})
	}
	_, err = fmt.Fprintf(g.stdout, "removed %s (%s)\n", a.Handle, revoked)
	return err
}

// revoke revokes the account's token and describes the outcome. Failure to
// revoke does not stop the removal: the person asked ferry to forget the
// account, and the outcome tells them what is left to do.
func revoke(ctx context.Context, g *globalOptions, st *state.Store, a state.Account) string {
	sess, err := g.session(a)
	if err != nil {
		return "not revoked: " + err.Error()
	}
	rv, ok := sess.(platform.Revoker)
	if !ok {
		return "ferry cannot revoke tokens of " + a.Platform + " accounts; revoke it in the server's settings"
	}
	rctx, cancel := withTimeout(ctx)
	defer cancel()
	err = rv.Revoke(rctx, st)
	switch {
	case err == nil:
		return "token revoked"
	case errors.Is(err, platform.ErrNoApp):
		return "the app registration is gone, so the token could not be revoked; revoke it in the server's settings"
	case errors.Is(err, platform.ErrCannotRevoke):
		return "the server cannot revoke tokens; revoke it in the server's settings"
	default:
		return "not revoked: " + err.Error()
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
