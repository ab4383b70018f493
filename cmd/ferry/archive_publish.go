package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/migrate/publish"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	srcarchive "github.com/fedi-ferry/ferry/sources/archive"
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
	if _, err := os.Stat(filepath.Join(dir, "outbox.json")); err != nil {
		return usagef("archive publish: %s holds no outbox.json: give an archive directory (see `ferry archive import`)", dir)
	}
	st, acct, sess, err := g.openAccount(ctx, o.To)
	if err != nil {
		return err
	}
	defer st.Close()
	so, ok := sess.(platform.SinkOpener)
	if !ok {
		return noRole(acct, "publish posts")
	}
	sink := so.Sink()
	dctx, cancel := withTimeout(ctx)
	srv, err := sess.Server(dctx)
	cancel()
	if err != nil {
		return authHint(fmt.Errorf("archive publish: %w", err), acct)
	}
	if po.Mode == publish.Backdate {
		ok, err := false, error(nil)
		if b, can := sink.(sinks.Backdater); can {
			dctx, cancel := withTimeout(ctx)
			ok, err = b.CanBackdate(dctx)
			cancel()
		}
		if err != nil {
			return err
		}
		if !ok {
			return usagef("archive publish: %s (%s %s) cannot create posts with their original date; use --mode repost",
				acct.Handle, srv.Software, srv.Version)
		}
	}
	each := func(fn func(post.Post) error) error { return srcarchive.EachPost(ctx, dir, fn) }
	plan, skip, warnings, err := publish.Plan(ctx, each, po, srv.Limits, g.log)
	if err != nil {
		return err
	}
	pace := publish.Pace{}
	if srv.Software == "mastodon" {
		pace = publish.MastodonPace
	}
	if o.DryRun {
		return printPublishPlan(g, plan, skip, warnings, pace)
	}
	params, _ := json.Marshal(struct {
		Options publish.Options `json:"options"`
	}{po})
	job, err := publish.Freeze(ctx, st, dir+" → "+acct.Handle, acct.Handle, string(params), plan)
	if err != nil {
		return err
	}
	g.log.Info("publishing", "archive", dir, "to", acct.Handle, "mode", po.Mode, "items", len(plan), "job", job.ID)
	res, err := publish.Apply(ctx, st, job, sink, pace, g.log, func(done, total int, eta time.Duration) {
		if done%20 == 0 || done == total {
			g.log.Info("progress", "done", done, "total", total, "eta", eta.Round(time.Second))
		}
	})
	if err != nil {
		return authHint(fmt.Errorf("archive publish (job %d, rerun the same command to resume): %w", job.ID, err), acct)
	}
	if g.JSON {
		if err := printJSON(g.stdout, res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(g.stdout, "published %d posts to %s (job %d); %d found already published after an interruption; %d failed\n",
			res.Published, acct.Handle, res.JobID, res.Reconciled, len(res.Failed))
		for _, f := range res.Failed {
			fmt.Fprintf(g.stdout, "  failed: %s: %s\n", f.Key, f.Error)
		}
	}
	if len(res.Failed) > 0 {
		return partialError{fmt.Sprintf("archive publish: %d posts were refused by %s", len(res.Failed), acct.Handle)}
	}
	return nil
}

func printPublishPlan(g *globalOptions, plan []publish.Planned, skip publish.Skip, warnings []string, pace publish.Pace) error {
	eta := time.Duration(0)
	if pace.Posts > 0 {
		eta = time.Duration(len(plan)) * pace.PostWindow / time.Duration(pace.Posts)
	}
	if g.JSON {
		type item struct {
			Key, Parent, Visibility, Text string
			Media                         int
			PublishedAt                   *time.Time `json:",omitempty"`
		}
		items := make([]item, 0, len(plan))
		for _, p := range plan {
			it := item{Key: p.Key, Parent: p.Payload.ParentKey, Visibility: string(p.Payload.Post.Visibility), Text: p.Payload.Post.Text, Media: len(p.Payload.Post.Media)}
			if !p.Payload.PublishedAt.IsZero() {
				t := p.Payload.PublishedAt
				it.PublishedAt = &t
			}
			items = append(items, it)
		}
		return printJSON(g.stdout, map[string]any{"dry_run": true, "items": items, "skipped": skip, "warnings": warnings, "eta_seconds": int(eta.Seconds())})
	}
	fmt.Fprintf(g.stdout, "dry run: would publish %d posts (parts included); nothing was written\n", len(plan))
	fmt.Fprintf(g.stdout, "  left out: %d deleted, %d outside the dates, %d by visibility, %d boosts, %d replies to others\n",
		skip.Deleted, skip.Filtered, skip.Visibility, skip.Boosts, skip.RepliesToOthers)
	if eta > 0 {
		fmt.Fprintf(g.stdout, "  paced to the server's posting limit: about %s\n", eta.Round(time.Minute))
	}
	for _, w := range warnings {
		fmt.Fprintf(g.stdout, "  warning: %s\n", w)
	}
	return nil
}
