package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	srcarchive "github.com/fedi-ferry/ferry/sources/archive"
)

// Server describes the target account's server, as detected by the caller.
type Server struct {
	// Software and Version name what the server runs ("mastodon",
	// "gotosocial" …); Mastodon's posting budget paces the publish.
	Software, Version string
	// Limits are the server's post limits the plan fits posts to.
	Limits post.Limits
}

// RunOptions describe one archive publish.
type RunOptions struct {
	Options
	// Dir is the archive directory (it holds outbox.json).
	Dir string
	// Account is the target account's handle: the job's owner and part of
	// its key.
	Account string
	// Server is what the target's server runs.
	Server Server
	// Sink publishes on the target; in backdate mode it must be a
	// sinks.Backdater that can backdate.
	Sink sinks.Sink
	// Journal keeps the plan and progress (not used by Preview).
	Journal Journal
	// Log receives progress lines; nil discards.
	Log *slog.Logger
	// Progress, when not nil, is called after each published item.
	Progress func(done, total int, eta time.Duration)
}

// ErrNoOutbox is returned (wrapped) for a directory that holds no
// outbox.json, so is not an archive.
var ErrNoOutbox = errors.New("no outbox.json")

// NoBackdateError is returned for a backdate publish to a server that
// cannot create posts with their original date.
type NoBackdateError struct {
	Account, Software, Version string
}

func (e *NoBackdateError) Error() string {
	return fmt.Sprintf("%s (%s %s) cannot create posts with their original date", e.Account, e.Software, e.Version)
}

// Unwrap makes errors.Is(err, sinks.ErrNoBackdate) hold.
func (e *NoBackdateError) Unwrap() error { return sinks.ErrNoBackdate }

// PreviewItem is one planned item as a dry run shows it.
type PreviewItem struct {
	Key, Parent, Visibility, Text string
	Media                         int
	PublishedAt                   *time.Time `json:",omitempty"`
}

// PreviewResult is what a publish would do.
type PreviewResult struct {
	DryRun   bool          `json:"dry_run"`
	Items    []PreviewItem `json:"items"`
	Skipped  Skip          `json:"skipped"`
	Warnings []string      `json:"warnings"`
	// ETA is how long pacing to the server's posting limit would take.
	ETA        time.Duration `json:"-"`
	ETASeconds int           `json:"eta_seconds"`
}

// RefusedError is returned by Run when the target refused some posts for
// good; the result lists them.
type RefusedError struct {
	Account string
	Posts   int
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("archive publish: %d posts were refused by %s", e.Posts, e.Account)
}

// pace is the posting budget of the target's software.
func (o RunOptions) pace() Pace {
	if o.Server.Software == "mastodon" {
		return MastodonPace
	}
	return Pace{}
}

// CheckArchive returns an error wrapping ErrNoOutbox when dir holds no
// outbox.json. Run and Preview check it too; callers check first to refuse
// a wrong directory before they contact any server.
func CheckArchive(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "outbox.json")); err != nil {
		return fmt.Errorf("%s holds %w", dir, ErrNoOutbox)
	}
	return nil
}

// plan checks the archive and the target and plans the publish.
func (o RunOptions) plan(ctx context.Context) (plan []Planned, skip Skip, warnings []string, err error) {
	if err := CheckArchive(o.Dir); err != nil {
		return nil, skip, nil, err
	}
	if o.Mode == Backdate {
		b, ok := o.Sink.(sinks.Backdater)
		can := false
		if ok {
			if can, err = b.CanBackdate(ctx); err != nil {
				return nil, skip, nil, err
			}
		}
		if !can {
			return nil, skip, nil, &NoBackdateError{Account: o.Account, Software: o.Server.Software, Version: o.Server.Version}
		}
	}
	each := func(fn func(post.Post) error) error { return srcarchive.EachPost(ctx, o.Dir, fn) }
	return Plan(ctx, each, o.Options, o.Server.Limits, o.Log)
}

// Preview plans the publish of the archive in o.Dir and returns the plan
// without journaling or publishing anything.
func Preview(ctx context.Context, o RunOptions) (PreviewResult, error) {
	plan, skip, warnings, err := o.plan(ctx)
	if err != nil {
		return PreviewResult{}, err
	}
	pace := o.pace()
	var eta time.Duration
	if pace.Posts > 0 {
		eta = time.Duration(len(plan)) * pace.PostWindow / time.Duration(pace.Posts)
	}
	res := PreviewResult{DryRun: true, Items: make([]PreviewItem, 0, len(plan)), Skipped: skip, Warnings: warnings,
		ETA: eta, ETASeconds: int(eta.Seconds())}
	for _, p := range plan {
		it := PreviewItem{Key: p.Key, Parent: p.Payload.ParentKey, Visibility: string(p.Payload.Post.Visibility),
			Text: p.Payload.Post.Text, Media: len(p.Payload.Post.Media)}
		if !p.Payload.PublishedAt.IsZero() {
			t := p.Payload.PublishedAt
			it.PublishedAt = &t
		}
		res.Items = append(res.Items, it)
	}
	return res, nil
}

// Run plans the publish of the archive in o.Dir, freezes the plan in the
// journal (or finds the job of an earlier run with the same options) and
// publishes its pending items. The result's JobID is set as soon as the job
// exists, also with an error; a rerun resumes. Posts the target refused for
// good are listed in the result and reported as *RefusedError.
func Run(ctx context.Context, o RunOptions) (Result, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	plan, _, _, err := o.plan(ctx)
	if err != nil {
		return Result{}, err
	}
	params, err := json.Marshal(struct {
		Options Options `json:"options"`
	}{o.Options})
	if err != nil {
		return Result{}, fmt.Errorf("archive publish: %w", err)
	}
	job, err := Freeze(ctx, o.Journal, o.Dir+" → "+o.Account, o.Account, string(params), plan)
	if err != nil {
		return Result{}, err
	}
	o.Log.Info("publishing", "archive", o.Dir, "to", o.Account, "mode", o.Mode, "items", len(plan), "job", job.ID)
	res, err := Apply(ctx, o.Journal, job, o.Sink, o.pace(), o.Log, o.Progress)
	if err != nil {
		return res, err
	}
	if len(res.Failed) > 0 {
		return res, &RefusedError{Account: o.Account, Posts: len(res.Failed)}
	}
	return res, nil
}
