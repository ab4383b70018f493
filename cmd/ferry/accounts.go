package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/platform"
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

func runAccountsCheck(ctx context.Context, g *globalOptions, ref string) error {
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	var accts []state.Account
	if ref != "" {
		a, err := platform.LookupAccount(ctx, st, ref)
		if err != nil {
			return err
		}
		accts = []state.Account{a}
	} else if accts, err = st.Accounts(ctx); err != nil {
		return fmt.Errorf("list accounts: %w", err)
	}

	reg, err := g.registry()
	if err != nil {
		return err
	}
	results := make([]platform.AccountCheck, 0, len(accts))
	failed := 0
	for _, a := range accts {
		r := reg.Check(ctx, a, st)
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
			if results[0].Revoked {
				return authError{fmt.Sprintf("account %s: %s", accts[0].Handle, results[0].Problem)}
			}
			return fmt.Errorf("account %s: %s", accts[0].Handle, results[0].Problem)
		}
		return partialError{fmt.Sprintf("%d of %d accounts need attention", failed, len(accts))}
	}
	return nil
}

func printCheck(g *globalOptions, r platform.AccountCheck) {
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
		if l.MaxImageBytes > 0 || l.MaxVideoBytes > 0 {
			t.row("media size", fmt.Sprintf("images up to %s, videos up to %s", sizeLimit(l.MaxImageBytes), sizeLimit(l.MaxVideoBytes)))
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

// sizeLimit prints a byte limit for people; 0 means the server publishes none.
func sizeLimit(n int64) string {
	if n <= 0 {
		return "unpublished"
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
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
	a, err := platform.LookupAccount(ctx, st, ref)
	if err != nil {
		return err
	}
	revoked := "the token was imported with --token, so ferry cannot revoke it; revoke it in the server's settings"
	if a.ClientID != "" {
		if reg, err := g.registry(); err != nil {
			revoked = "not revoked: " + err.Error()
		} else {
			revoked = reg.RevokeToken(ctx, a, st)
		}
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

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
