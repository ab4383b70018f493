package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/migrate/publish"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/state"
)

type archivePublishOptions struct {
	To                  string
	Mode                string
	DryRun              bool
	Since, Until        string
	Visibility          string
	SkipRepliesToOthers bool
	Boosts              string
	RepostVisibility    string
	Note                string
	NoNote              bool
	StripHashtags       bool
	KeepMentions        bool
	Long                string
	NativePolls         bool
}

func newArchivePublishCommand(g *globalOptions) *cli.Command {
	var o archivePublishOptions
	return &cli.Command{
		Name:      "publish",
		Usage:     "publish an archive's posts on another account (backdated where the server can, else reposted)",
		ArgsUsage: "DIR",
		Description: "Plans every post first (frozen in ferry's journal), then publishes them oldest first, threads\n" +
			"attached to their published parents. Interrupted, the same command resumes without duplicates.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "to", Usage: "the target `ACCOUNT`", Destination: &o.To},
			&cli.StringFlag{Name: "mode", Usage: "backdate (original dates, nobody notified; GoToSocial ≥ 0.18) or repost", Destination: &o.Mode},
			&cli.BoolFlag{Name: "dry-run", Usage: "show the plan and publish nothing", Destination: &o.DryRun},
			&cli.StringFlag{Name: "since", Usage: "only posts on or after `DATE`", Destination: &o.Since},
			&cli.StringFlag{Name: "until", Usage: "only posts before `DATE`", Destination: &o.Until},
			&cli.StringFlag{Name: "visibility", Usage: "only posts with these original visibilities (`LIST`; default public,unlisted,private)", Destination: &o.Visibility},
			&cli.BoolFlag{Name: "skip-replies-to-others", Usage: "leave out replies to posts not in the archive", Destination: &o.SkipRepliesToOthers},
			&cli.StringFlag{Name: "boosts", Usage: "skip, or link (a post linking the boosted post)", Value: "skip", Destination: &o.Boosts},
			&cli.StringFlag{Name: "repost-visibility", Usage: "repost mode: the widest visibility used", Value: "unlisted", Destination: &o.RepostVisibility},
			&cli.StringFlag{Name: "note", Usage: "repost mode: the line added, with {date} and {url}", Value: publish.DefaultNote, Destination: &o.Note},
			&cli.BoolFlag{Name: "no-note", Usage: "repost mode: add no line", Destination: &o.NoNote},
			&cli.BoolFlag{Name: "strip-hashtags", Usage: "turn #tags into plain words", Destination: &o.StripHashtags},
			&cli.BoolFlag{Name: "keep-mentions", Usage: "keep mentions live (they may notify people); by default they are neutralised", Destination: &o.KeepMentions},
			&cli.StringFlag{Name: "long", Usage: "posts over the target's limit: split (a self-thread) or truncate (with a link)", Value: "split", Destination: &o.Long},
			&cli.BoolFlag{Name: "native-polls", Usage: "repost mode: re-create polls (votes start again) instead of text", Destination: &o.NativePolls},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 || o.To == "" {
				return usagef("archive publish: give exactly one DIR and --to ACCOUNT")
			}
			return runArchivePublish(c.Context, g, o, c.Args().First())
		},
	}
}

func (o archivePublishOptions) build() (publish.Options, error) {
	po := publish.Options{Mode: publish.Mode(o.Mode), SkipRepliesToOthers: o.SkipRepliesToOthers,
		Note: o.Note, NoNote: o.NoNote, StripHashtags: o.StripHashtags, KeepMentions: o.KeepMentions, NativePolls: o.NativePolls}
	switch po.Mode {
	case publish.Backdate, publish.Repost:
	default:
		return po, usagef("archive publish: --mode must be backdate or repost")
	}
	var err error
	if po.Since, err = parseDate("since", o.Since); err != nil {
		return po, err
	}
	if po.Until, err = parseDate("until", o.Until); err != nil {
		return po, err
	}
	if po.Visibility, err = parseVisibilities("visibility", o.Visibility); err != nil {
		return po, err
	}
	switch o.Boosts {
	case "skip":
	case "link":
		po.BoostsAsLinks = true
	default:
		return po, usagef("archive publish: --boosts must be skip or link")
	}
	switch o.Long {
	case "split":
	case "truncate":
		po.Truncate = true
	default:
		return po, usagef("archive publish: --long must be split or truncate")
	}
	if !post.Visibility(o.RepostVisibility).Valid() {
		return po, usagef("archive publish: --repost-visibility %q is not a visibility", o.RepostVisibility)
	}
	po.RepostVisibility = post.Visibility(o.RepostVisibility)
	return po, nil
}

func runArchivePublish(ctx context.Context, g *globalOptions, o archivePublishOptions, dir string) error {
	po, err := o.build()
	if err != nil {
		return err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return usagef("archive publish: %v", err)
	}
	if err := publish.CheckArchive(dir); err != nil {
		return publishError(err, state.Account{})
	}
	st, acct, sess, err := g.openAccount(ctx, o.To)
	if err != nil {
		return err
	}
	defer st.Close()
	ro, err := platform.PublishOptions(ctx, sess, po, st, g.log)
	if err != nil {
		return err
	}
	ro.Dir = dir
	if o.DryRun {
		pre, err := publish.Preview(ctx, ro)
		if err != nil {
			return publishError(err, acct)
		}
		return printPublishPlan(g, pre)
	}
	release, err := hold(ctx, st, "publish/"+acct.Handle, "publishing an archive on "+acct.Handle)
	if err != nil {
		return err
	}
	defer release()
	res, err := publish.Run(ctx, ro)
	var refused *publish.RefusedError
	if err != nil && !errors.As(err, &refused) {
		if res.JobID != 0 {
			err = fmt.Errorf("archive publish (job %d, rerun the same command to resume): %w", res.JobID, err)
		}
		return publishError(err, acct)
	}
	if g.JSON {
		if err := printJSON(g.stdout, res); err != nil {
			return err
		}
	} else {
		printPublishResult(g.stdout, acct.Handle, res)
	}
	if refused != nil {
		return partialError{refused.Error()}
	}
	return nil
}

// publishError turns the publish's typed refusals into usage errors with
// what to do instead.
func publishError(err error, acct state.Account) error {
	var nb *publish.NoBackdateError
	switch {
	case errors.Is(err, publish.ErrNoOutbox):
		return usagef("archive publish: %v: give an archive directory (see `ferry archive import`)", err)
	case errors.As(err, &nb):
		return usagef("archive publish: %v; use --mode repost", nb)
	}
	return platform.AuthHint(err, acct)
}

func printPublishResult(w io.Writer, handle string, res publish.Result) {
	fmt.Fprintf(w, "published %d posts to %s (job %d); %d found already published after an interruption; %d failed\n",
		res.Published, handle, res.JobID, res.Reconciled, len(res.Failed))
	for _, f := range res.Failed {
		fmt.Fprintf(w, "  failed: %s: %s\n", f.Key, f.Error)
	}
}

func printPublishPlan(g *globalOptions, pre publish.PreviewResult) error {
	if g.JSON {
		return printJSON(g.stdout, pre)
	}
	skip := pre.Skipped
	fmt.Fprintf(g.stdout, "dry run: would publish %d posts (parts included); nothing was written\n", len(pre.Items))
	fmt.Fprintf(g.stdout, "  left out: %d deleted, %d outside the dates, %d by visibility, %d boosts, %d replies to others\n",
		skip.Deleted, skip.Filtered, skip.Visibility, skip.Boosts, skip.RepliesToOthers)
	if pre.ETA > 0 {
		fmt.Fprintf(g.stdout, "  paced to the server's posting limit: about %s\n", pre.ETA.Round(time.Minute))
	}
	for _, w := range pre.Warnings {
		fmt.Fprintf(g.stdout, "  warning: %s\n", w)
	}
	return nil
}
