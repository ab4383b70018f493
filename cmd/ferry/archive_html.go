package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/archivesite"
)

func newArchiveHTMLCommand(g *globalOptions) *cli.Command {
	var out string
	return &cli.Command{
		Name:      "html",
		Usage:     "render an archive as a static site (works from file://, search included)",
		ArgsUsage: "DIR",
		Description: "`ferry archive html DIR --out SITE` writes the archive in DIR (ferry's own, or a Mastodon export\n" +
			"after `ferry archive import`) as a static site in SITE: the profile, a timeline by month, newest\n" +
			"first, and search in the page. Open SITE/index.html in a browser or put SITE on any static host;\n" +
			"nothing is loaded from elsewhere. A re-run rewrites only the pages that changed.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "the site `DIR` (created when missing)", Destination: &out},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 || out == "" {
				return usagef("archive html: give exactly one archive DIR and --out SITE")
			}
			return runArchiveHTML(c.Context, g, c.Args().First(), out)
		},
	}
}

func runArchiveHTML(ctx context.Context, g *globalOptions, dir, out string) error {
	res, err := archivesite.Build(ctx, dir, out, archivesite.Options{Logger: g.log})
	if err != nil {
		return err
	}
	if g.JSON {
		return printJSON(g.stdout, res)
	}
	fmt.Fprintf(g.stdout, "rendered %d posts in %d months into %s: %d files written, %d unchanged, %d removed\n",
		res.Posts, res.Months, res.Out, res.PagesWritten, res.PagesSkipped, res.PagesRemoved)
	fmt.Fprintf(g.stdout, "  pages %d bytes (index.html %d), media: %d copied, %d not in the archive\n",
		res.Bytes, res.FirstPageBytes, res.MediaCopied, res.MediaMissing)
	_, err = fmt.Fprintf(g.stdout, "  open %s/index.html\n", res.Out)
	return err
}
