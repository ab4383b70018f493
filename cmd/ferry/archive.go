package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/post"
	sinkarchive "github.com/fedi-ferry/ferry/sinks/archive"
	srcarchive "github.com/fedi-ferry/ferry/sources/archive"
)

// archiveOptions are the flags of `ferry archive ACCOUNT`.
type archiveOptions struct {
	Out          string
	Refresh      bool
	Zip          string
	MediaWorkers int
}

func newArchiveCommand(g *globalOptions) *cli.Command {
	var o archiveOptions
	return &cli.Command{
		Name:      "archive",
		Usage:     "keep an archive of an account's posts (Mastodon archive layout); import, search and re-publish archives",
		ArgsUsage: "ACCOUNT",
		Description: "`ferry archive ACCOUNT --out DIR` fetches the account's posts, favourites, bookmarks, profile and\n" +
			"media into DIR in the layout of Mastodon's \"Request your archive\" export. Re-runs fetch only what\n" +
			"is new; --refresh also re-checks older posts for edits and deletions (deleted posts are kept, marked).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "the archive `DIR`", Destination: &o.Out},
			&cli.BoolFlag{Name: "refresh", Usage: "re-check every post for edits and deletions", Destination: &o.Refresh},
			&cli.StringFlag{Name: "zip", Usage: "also write the archive as a zip `FILE`", Destination: &o.Zip},
			&cli.IntFlag{Name: "media-workers", Usage: "concurrent media downloads", Value: 4, Destination: &o.MediaWorkers},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 || o.Out == "" {
				return usagef("archive: give exactly one ACCOUNT and --out DIR (or a subcommand: import, search, publish)")
			}
			if o.MediaWorkers < 1 || o.MediaWorkers > 16 {
				return usagef("archive: --media-workers must be between 1 and 16")
			}
			return runArchive(c.Context, g, o, c.Args().First())
		},
		Subcommands: []*cli.Command{
			newArchiveImportCommand(g),
			newArchiveSearchCommand(g),
			newArchivePublishCommand(g),
			newArchiveHTMLCommand(g),
		},
	}
}

func runArchive(ctx context.Context, g *globalOptions, o archiveOptions, ref string) error {
	st, acct, sess, err := g.openAccount(ctx, ref)
	if err != nil {
		return err
	}
	defer st.Close()
	arc, ok := sess.(platform.Archiver)
	if !ok {
		return platform.NoRole(acct, "archive posts")
	}
	// A whole archive run can take long; each request has its own bound in
	// the transport, and the person can interrupt.
	res, err := arc.Update(ctx, platform.ArchiveOptions(acct.Handle, st, o.Out, o.Refresh, o.MediaWorkers, o.Zip, g.log))
	if err != nil {
		return platform.AuthHint(err, acct)
	}
	requests := platform.UsageOf(sess).Requests
	if g.JSON {
		if err := printJSON(g.stdout, struct {
			sinkarchive.UpdateResult
			Requests int64 `json:"requests"`
		}{res, requests}); err != nil {
			return err
		}
	} else {
		printArchiveResult(g.stdout, acct.Handle, res, requests)
	}
	if len(res.MediaFailed) > 0 {
		return partialError{fmt.Sprintf("archive %s: %d media files could not be downloaded; run the same command again to retry them", acct.Handle, len(res.MediaFailed))}
	}
	return nil
}

func printArchiveResult(w io.Writer, handle string, res sinkarchive.UpdateResult, requests int64) {
	fmt.Fprintf(w, "archived %s into %s\n", handle, res.Dir)
	fmt.Fprintf(w, "  posts: %d new, %d updated, %d newly deleted; %d in the archive (%d marked deleted)\n",
		res.NewPosts, res.UpdatedPosts, res.DeletedPosts, res.TotalPosts, res.MarkedDeleted)
	fmt.Fprintf(w, "  favourites: %d, bookmarks: %d, media downloaded: %d, requests: %d\n",
		res.Likes, res.Bookmarks, res.MediaDownloaded, requests)
	if res.Zip != "" {
		fmt.Fprintf(w, "  zip: %s\n", res.Zip)
	}
	for _, f := range res.MediaFailed {
		fmt.Fprintf(w, "  media not downloaded (retried next run): %s: %s\n", f.Path, f.Error)
	}
	for _, m := range res.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", m)
	}
}

func newArchiveImportCommand(g *globalOptions) *cli.Command {
	var into string
	return &cli.Command{
		Name:      "import",
		Usage:     "read a Mastodon archive (zip or tar.gz) or a ferry archive into an archive directory",
		ArgsUsage: "FILE|DIR",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "into", Usage: "the new archive `DIR` (must not exist or be empty)", Destination: &into},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 || into == "" {
				return usagef("archive import: give exactly one FILE or DIR and --into DIR")
			}
			return runArchiveImport(c.Context, g, c.Args().First(), into)
		},
	}
}

func runArchiveImport(ctx context.Context, g *globalOptions, src, into string) error {
	res, err := srcarchive.ImportIndexed(ctx, src, into, srcarchive.Limits{})
	if err != nil {
		return err
	}
	if g.JSON {
		return printJSON(g.stdout, res)
	}
	fmt.Fprintf(g.stdout, "imported %s (%s) into %s: %d posts, %d media files, %d files in all\n", src, res.Format, into, res.Posts, res.Media, res.Files)
	if len(res.Ignored) > 0 {
		fmt.Fprintf(g.stdout, "  %d members outside the archive layout were not copied\n", len(res.Ignored))
	}
	return nil
}

type archiveSearchOptions struct {
	From, Until string
	HasMedia    bool
	Visibility  string
	Limit       int
}

func newArchiveSearchCommand(g *globalOptions) *cli.Command {
	var o archiveSearchOptions
	return &cli.Command{
		Name:      "search",
		Usage:     "full-text search of an archive: words, \"phrases\", word*, OR",
		ArgsUsage: "DIR QUERY",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Usage: "posts on or after `DATE` (YYYY-MM-DD or RFC 3339)", Destination: &o.From},
			&cli.StringFlag{Name: "until", Usage: "posts before `DATE`", Destination: &o.Until},
			&cli.BoolFlag{Name: "has-media", Usage: "only posts with media", Destination: &o.HasMedia},
			&cli.StringFlag{Name: "visibility", Usage: "only these visibilities (`LIST`: public,unlisted,private,direct)", Destination: &o.Visibility},
			&cli.IntFlag{Name: "limit", Usage: "at most `N` results", Value: 50, Destination: &o.Limit},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return usagef("archive search: give DIR and QUERY")
			}
			return runArchiveSearch(c.Context, g, o, c.Args().Get(0), c.Args().Get(1))
		},
	}
}

// parseDate reads YYYY-MM-DD (midnight UTC) or RFC 3339.
func parseDate(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("--%s %q: use YYYY-MM-DD or an RFC 3339 time", flag, s)
	}
	return t, nil
}

// parseVisibilities reads a comma-separated list of visibilities.
func parseVisibilities(flag, s string) ([]post.Visibility, error) {
	var out []post.Visibility
	for _, v := range strings.Split(s, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if !post.Visibility(v).Valid() {
			return nil, usagef("--%s: %q is not public, unlisted, private or direct", flag, v)
		}
		out = append(out, post.Visibility(v))
	}
	return out, nil
}

func runArchiveSearch(ctx context.Context, g *globalOptions, o archiveSearchOptions, dir, text string) error {
	q := srcarchive.Query{Text: text, HasMedia: o.HasMedia, Limit: o.Limit}
	var err error
	if q.From, err = parseDate("from", o.From); err != nil {
		return err
	}
	if q.Until, err = parseDate("until", o.Until); err != nil {
		return err
	}
	if q.Visibility, err = parseVisibilities("visibility", o.Visibility); err != nil {
		return err
	}
	hits, err := srcarchive.Search(ctx, dir, q)
	if err != nil {
		if errors.Is(err, srcarchive.ErrNoIndex) {
			return usagef("%v", err)
		}
		return err
	}
	if g.JSON {
		if hits == nil {
			hits = []srcarchive.Hit{}
		}
		return printJSON(g.stdout, hits)
	}
	if len(hits) == 0 {
		_, err := fmt.Fprintln(g.stdout, "no posts found")
		return err
	}
	t := newTable(g.stdout, "DATE", "URL", "SNIPPET")
	for _, h := range hits {
		snip := h.Snippet
		if h.Deleted {
			snip = "(deleted) " + snip
		}
		t.row(h.Published.Local().Format("2006-01-02 15:04"), h.URL, snip)
	}
	return t.flush()
}
