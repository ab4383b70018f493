package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/migrate"
	"github.com/fedi-ferry/ferry/platform"
)

type exportOptions struct {
	Out  string
	What string
}

func newExportCommand(g *globalOptions) *cli.Command {
	var o exportOptions
	return &cli.Command{
		Name:      "export",
		Usage:     "export follows, followers, lists, blocks, mutes, domain blocks and bookmarks as Mastodon CSV files",
		ArgsUsage: "ACCOUNT",
		Description: "Writes following_accounts.csv, followers.csv, lists.csv, blocked_accounts.csv, muted_accounts.csv,\n" +
			"blocked_domains.csv and bookmarks.csv into --out, in the exact format of Mastodon's own exports (so\n" +
			"Mastodon, GoToSocial and `ferry import` read them). A re-run replaces the files atomically. When the\n" +
			"server lacks a feature (GoToSocial has no user-level domain blocks), no file is written for it.\n" +
			"For a Bluesky account: following_accounts.csv, blocked_accounts.csv, lists.csv and muted_accounts.csv\n" +
			"(mutes only where the PDS reaches an app view), each row with the account's handle and DID.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "the directory to write to", Required: true, Destination: &o.Out},
			&cli.StringFlag{Name: "what", Usage: "comma-separated types (following,followers,lists,blocks,mutes,domain_blocks,bookmarks); default all",
				Destination: &o.What},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("export: give exactly one ACCOUNT")
			}
			return runExport(c.Context, g, o, c.Args().First())
		},
	}
}

func runExport(ctx context.Context, g *globalOptions, o exportOptions, ref string) error {
	var types []migrate.Type
	if o.What != "" {
		for _, s := range strings.Split(o.What, ",") {
			t, err := migrate.ParseType(s)
			if err != nil {
				return usagef("export: --what: %v", err)
			}
			types = append(types, t)
		}
	}
	st, acct, sess, err := g.openAccount(ctx, ref)
	if err != nil {
		return err
	}
	defer st.Close()
	gp, ok := sess.(platform.GraphPorter)
	if !ok {
		return platform.NoRole(acct, "export the social graph")
	}
	res, err := gp.Export(ctx, migrate.ExportOptions{Dir: o.Out, Types: types, Log: g.log})
	if err != nil {
		return platform.AuthHint(err, acct)
	}
	if g.JSON {
		return printJSON(g.stdout, res)
	}
	return printExportResult(g.stdout, res)
}

func printExportResult(w io.Writer, res []migrate.ExportResult) error {
	t := newTable(w, "TYPE", "ROWS", "FILE")
	for _, r := range res {
		file := r.File
		if r.Unsupported != "" {
			file = "not written: " + r.Unsupported
		}
		t.row(r.Type, r.Rows, file)
	}
	if err := t.flush(); err != nil {
		return fmt.Errorf("write the result: %w", err)
	}
	for _, r := range res {
		if r.Untrustworthy != "" {
			if _, err := fmt.Fprintf(w, "warning: %s: %s\n", r.Type, r.Untrustworthy); err != nil {
				return fmt.Errorf("write the result: %w", err)
			}
		}
	}
	return nil
}
