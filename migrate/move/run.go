package move

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/journal"
	"github.com/fedi-ferry/ferry/sinks"
)

// JobKind is the journal kind of migrations.
const JobKind = "migrate"

// The journaled steps, in order. Each is one item of the migration's job.
const (
	StepLifeboat = "lifeboat"
	StepAlias    = "alias"
	StepVisible  = "alias-visible"
	StepMove     = "move"
	StepReplay   = "replay"
	StepVerify   = "verify"
	StepPublish  = "publish"
)

// Journal is what a migration needs of the write journal (package journal
// documents the contract). The state store satisfies it.
type Journal interface {
	CreateJob(ctx context.Context, j journal.Job) (journal.Job, bool, error)
	FreezePlan(ctx context.Context, jobID int64, items []journal.Item) error
	Items(ctx context.Context, jobID int64, f journal.ItemFilter) ([]journal.Item, error)
	BeginItem(ctx context.Context, jobID int64, step, key string) (int, error)
	FinishItem(ctx context.Context, it journal.Item) error
	UpdateJob(ctx context.Context, id int64, status, params string) error
}

// Steps are the parts of a migration other packages implement. Each must
// be safe to run again after an interruption (they are journaled as a whole:
// a step interrupted half-way runs again from its start, and the graph import
// and the archive publish resume their own journals).
type Steps struct {
	// Lifeboat exports the old account's graph and archive into dir.
	Lifeboat func(ctx context.Context, dir string) (summary string, err error)
	// Replay imports the lifeboat's graph files from dir into the new
	// account.
	Replay func(ctx context.Context, dir string) (summary string, err error)
	// Publish, when not nil, publishes the lifeboat's archive on the new
	// account.
	Publish func(ctx context.Context, dir string) (summary string, err error)
}

// Runner performs one migration.
type Runner struct {
	Old *Side // nil for the dead-instance path (no alias, no Move)
	New *Side
	// Dir is the migration's directory: the lifeboat (graph/, archive/),
	// not_moved.csv and the summary live there.
	Dir     string
	Steps   Steps
	Journal Journal
	// Public fetches public documents (actors) and resolves handles.
	Public *http.Client
	// Password returns the old account's password for the Move; it is
	// called at most once, only when the Move is sent through the API.
	Password func() (string, error)
	// Code returns the old account's one-time code of two-factor
	// authentication, for servers that ask for it at the Move (Misskey
	// signs in); called at most once, only when asked. nil: none can be
	// given.
	Code func() (string, error)
	// AliasManual leaves setting the alias to the person even where the
	// server has an API for it: ferry shows what to set and waits.
	AliasManual bool
	// Out receives the guidance a person must follow (web forms on
	// servers without an API) and progress lines.
	Out io.Writer
	// AliasWait bounds waiting for the alias to be visible; 0 = 1 hour.
	AliasWait time.Duration
	// MoveWait bounds waiting for the Move to take effect (and, on servers
	// without an API, for the person to start it); 0 = 1 hour.
	MoveWait time.Duration
	// VerifyWindow is how long to wait for followers to arrive; 0 = 2 minutes.
	VerifyWindow time.Duration
	// Poll is the first interval between checks while waiting; 0 = 5 s.
	Poll time.Duration
	Log  *slog.Logger
}

// Key identifies the migration in the journal.
func (r *Runner) Key() string {
	from := "archive:" + r.Dir
	if r.Old != nil {
		from = r.Old.URI
	}
	return from + " -> " + r.New.URI
}

// Result is what a run did, step by step.
type Result struct {
	JobID  int64             `json:"job_id"`
	Steps  map[string]string `json:"steps"` // step → outcome
	Verify *VerifyResult     `json:"verify,omitempty"`
}

func (r *Runner) defaults() {
	if r.AliasWait <= 0 {
		r.AliasWait = time.Hour
	}
	if r.MoveWait <= 0 {
		r.MoveWait = time.Hour
	}
	if r.VerifyWindow <= 0 {
		r.VerifyWindow = 2 * time.Minute
	}
	if r.Poll <= 0 {
		r.Poll = 5 * time.Second
	}
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	if r.Out == nil {
		r.Out = io.Discard
	}
}

// Run performs the migration's pending steps in order and records each as
// it finishes. A step that fails stops the run with its error; running
// again continues with that step. The Move is never sent twice: before
// sending, the run checks whether an earlier attempt already took effect.
func (r *Runner) Run(ctx context.Context) (Result, error) {
	r.defaults()
	job, _, err := r.Journal.CreateJob(ctx, journal.Job{Kind: JobKind, Key: r.Key(), Account: r.New.Handle,
		Params: mustJSON(map[string]string{"dir": r.Dir})})
	if err != nil {
		return Result{}, err
	}
	res := Result{JobID: job.ID, Steps: map[string]string{}}
	if job.Status == journal.JobPlanning {
		if err := r.Journal.FreezePlan(ctx, job.ID, r.plan()); err != nil {
			return res, err
		}
	}
	items, err := r.Journal.Items(ctx, job.ID, journal.ItemFilter{})
	if err != nil {
		return res, err
	}
	for _, it := range items {
		if it.Status != journal.ItemPending {
			res.Steps[it.Step] = string(it.Status) + " earlier: " + it.RemoteID
			continue
		}
		fmt.Fprintf(r.Out, "== %s\n", it.Step)
		summary, err := r.apply(ctx, job.ID, it, &res)
		if err != nil {
			return res, fmt.Errorf("migration step %s: %w", it.Step, err)
		}
		it.Status, it.RemoteID = journal.ItemDone, summary
		if err := r.Journal.FinishItem(ctx, it); err != nil {
			return res, err
		}
		res.Steps[it.Step] = "done: " + summary
		fmt.Fprintf(r.Out, "   %s\n", summary)
	}
	return res, r.Journal.UpdateJob(ctx, job.ID, journal.JobDone, "")
}

// plan lists the steps for the journal.
func (r *Runner) plan() []journal.Item {
	var steps []string
	if r.Old != nil {
		steps = []string{StepLifeboat, StepAlias, StepVisible, StepMove}
	}
	steps = append(steps, StepReplay, StepVerify)
	if r.Steps.Publish != nil {
		steps = append(steps, StepPublish)
	}
	items := make([]journal.Item, len(steps))
	for i, s := range steps {
		items[i] = journal.Item{Step: s, Key: s}
	}
	return items
}

func (r *Runner) apply(ctx context.Context, jobID int64, it journal.Item, res *Result) (string, error) {
	switch it.Step {
	case StepLifeboat:
		return r.Steps.Lifeboat(ctx, r.Dir)
	case StepAlias:
		return r.alias(ctx)
	case StepVisible:
		return r.waitVisible(ctx)
	case StepMove:
		return r.move(ctx, jobID, it)
	case StepReplay:
		return r.Steps.Replay(ctx, r.Dir)
	case StepVerify:
		v, err := r.Verify(ctx)
		if err != nil {
			return "", err
		}
		res.Verify = &v
		return v.Summary(), nil
	case StepPublish:
		return r.Steps.Publish(ctx, r.Dir)
	}
	return "", fmt.Errorf("unknown step %q in the journal", it.Step)
}

// alias makes the new account list the old one in alsoKnownAs.
func (r *Runner) alias(ctx context.Context) (string, error) {
	have, err := NewAliases(ctx, r.New, r.Public)
	if err == nil && (contains(have, r.Old.URI) || contains(have, r.Old.Handle)) {
		return r.New.Handle + " already lists " + r.Old.Handle, nil
	}
	if r.New.Abilities().AliasAPI && !r.AliasManual {
		if err := r.New.api().AddAlias(ctx, r.Old.URI, r.Old.Handle); err != nil {
			return "", err
		}
		return "added " + r.Old.Handle + " to " + r.New.Handle + "'s aliases", nil
	}
	// Mastodon: a web form. Say exactly what to do; the next step waits.
	if r.AliasManual {
		fmt.Fprintf(r.Out, "Set the alias yourself: ")
	} else {
		fmt.Fprintf(r.Out, "%s's server (%s) has no API for aliases. ", r.New.Handle, orName(r.New.Software.Name))
	}
	g := r.New.Guidance()
	if g.Alias == SupportAdminOnly {
		fmt.Fprintf(r.Out, "Only the server's administrator can add it, on the command line:\n\n  %s\n\n"+
			"with the old account\n\n  %s\n\nferry waits until it is visible.\n", g.AliasCommand, r.Old.Handle)
		return "asked the administrator to add " + r.Old.Handle + " to " + r.New.Handle + "'s aliases", nil
	}
	fmt.Fprintf(r.Out, "In a browser, signed in as %s, open\n\n  %s\n\n"+
		"and add this alias (the old account):\n\n  %s\n\nferry waits until it is visible.\n",
		r.New.Handle, PageURL(r.New.Base(), g.AliasPage, r.New.Account.ID), r.Old.Handle)
	return "asked to add " + r.Old.Handle + " in " + r.New.Handle + "'s settings", nil
}

// waitVisible waits until the new account's alias can be seen by the old
// account's server: first until the new account publishes it, then by asking
// the old server to refresh its copy of the new account. Sending a Move
// before that would be refused ("not an alias of this account").
func (r *Runner) waitVisible(ctx context.Context) (string, error) {
	start := time.Now()
	err := r.poll(ctx, r.AliasWait, "the alias on "+r.New.Handle, func() (bool, error) {
		have, err := NewAliases(ctx, r.New, r.Public)
		if err != nil {
			r.Log.Debug("reading aliases failed; trying again", "account", r.New.Handle, "err", err)
			return false, nil
		}
		return contains(have, r.Old.URI) || contains(have, r.Old.Handle), nil
	})
	if err != nil {
		return "", err
	}
	// The old server checks the new account's alsoKnownAs from its own
	// copy; resolving the new account through it refreshes a stale copy.
	if err := r.Old.api().Refresh(ctx, r.New.URI); err != nil {
		r.Log.Debug("asking the old server to refresh the new account failed", "err", err)
	}
	return fmt.Sprintf("%s lists %s (after %s)", r.New.Handle, r.Old.Handle, time.Since(start).Round(time.Second)), nil
}

// move sends the Move (or guides the person through it) and waits until the
// old account shows it. It never sends a second Move: a previous attempt
// that took effect is found first.
func (r *Runner) move(ctx context.Context, jobID int64, it journal.Item) (string, error) {
	if done, err := r.moved(ctx); err != nil {
		return "", err
	} else if done {
		return r.Old.Handle + " already points to " + r.New.Handle, nil
	}
	g := r.Old.Guidance()
	if !r.Old.Abilities().MoveAPI {
		if g.Move == SupportNone {
			return "", fmt.Errorf("%s's server (%s) cannot send a Move", r.Old.Handle, orName(r.Old.Software.Name))
		}
		if !g.Verifiable {
			// The old account never shows `moved` here (snac2): waiting
			// for it would only end in a timeout.
			fmt.Fprintf(r.Out, "%s's server (%s) has no API or page for the Move; only its administrator can send it:\n\n  %s\n\n"+
				"with the new account\n\n  %s\n\nThe server never shows a Move, so ferry cannot check it; it goes on.\n",
				r.Old.Handle, orName(r.Old.Software.Name), g.MoveCommand, r.New.Handle)
			return "asked the administrator of " + r.Old.Handle + "'s server to send the Move (not verifiable)", nil
		}
		fmt.Fprintf(r.Out, "%s's server (%s) has no API for the Move. ", r.Old.Handle, orName(r.Old.Software.Name))
		r.guideMove(g)
	} else {
		if _, err := r.Journal.BeginItem(ctx, jobID, it.Step, it.Key); err != nil {
			return "", err
		}
		secrets := r.secrets()
		err := r.poll(ctx, r.MoveWait, "the old server to accept the Move", func() (bool, error) {
			err := r.Old.api().MoveAccount(ctx, r.New.URI, r.New.Handle, secrets)
			if err == nil {
				return true, nil
			}
			if notAliasedYet(err) {
				// Refused before anything was recorded (GoToSocial checks
				// the alias before it logs an attempt), so no cooldown
				// starts: wait for the server's copy to refresh.
				fmt.Fprintf(r.Out, "   %s's server does not see the alias yet; waiting\n", r.Old.Handle)
				return false, nil
			}
			if ambiguous(err) {
				// The answer was lost: the Move may have been made. Look
				// before anything is sent again.
				if done, merr := r.moved(ctx); merr == nil && done {
					fmt.Fprintf(r.Out, "   the Move's answer was lost, but %s shows it: it was made\n", r.Old.Handle)
					return true, nil
				}
			}
			return false, err
		})
		var ge *GuidedError
		switch {
		case errors.As(err, &ge) && g.MovePage != "":
			fmt.Fprintf(r.Out, "ferry cannot send the Move from %s itself: %s. ", r.Old.Handle, ge.Reason)
			r.guideMove(g)
		case err != nil:
			return "", err
		}
	}
	if err := r.poll(ctx, r.MoveWait, r.Old.Handle+" to show the Move", func() (bool, error) { return r.moved(ctx) }); err != nil {
		return "", err
	}
	return r.Old.Handle + " moved to " + r.New.Handle, nil
}

// guideMove tells the person where to send the Move themselves.
func (r *Runner) guideMove(g Guidance) {
	fmt.Fprintf(r.Out, "In a browser, signed in as %s, open\n\n  %s\n\n"+
		"enter the new account\n\n  %s\n\nand your password, and confirm. ferry waits until the Move shows.\n",
		r.Old.Handle, PageURL(r.Old.Base(), g.MovePage, r.Old.Account.ID), r.New.Handle)
}

// secrets are the Move's secrets, each read at most once.
func (r *Runner) secrets() Secrets {
	password := sync.OnceValues(func() (string, error) {
		if r.Password == nil {
			return "", ErrNoPassword
		}
		pw, err := r.Password()
		if err != nil {
			return "", fmt.Errorf("the Move needs %s's password: %w", r.Old.Handle, err)
		}
		return pw, nil
	})
	s := Secrets{Password: password}
	if r.Code != nil {
		s.Code = sync.OnceValues(func() (string, error) {
			code, err := r.Code()
			if err != nil {
				return "", fmt.Errorf("the Move needs %s's one-time code: %w", r.Old.Handle, err)
			}
			return code, nil
		})
	}
	return s
}

// ambiguous reports whether err is a write whose answer was lost, in the
// Mastodon client's words or another platform's (sinks' error classes).
func ambiguous(err error) bool { return fedi.IsAmbiguous(err) || sinks.IsAmbiguous(err) }

// moved reports whether the old account now points to the new one.
func (r *Runner) moved(ctx context.Context) (bool, error) {
	me, err := r.Old.api().Me(ctx)
	if err != nil {
		return false, err
	}
	if me.Moved == nil {
		return false, nil
	}
	if !sameAccount(me.Moved, r.New) {
		return false, fmt.Errorf("%s has moved to %s, not to %s", r.Old.Handle, me.Moved.Acct, r.New.Handle)
	}
	return true, nil
}

// notAliasedYet recognises the servers' refusal of a Move whose target does
// not (yet) list the account as an alias.
func notAliasedYet(err error) bool {
	if fedi.StatusCode(err) != http.StatusUnprocessableEntity && fedi.StatusCode(err) != http.StatusBadRequest {
		return false
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "alias") || strings.Contains(msg, "alsoknownas")
}

// poll calls check until it reports true, with growing intervals, for at
// most limit.
func (r *Runner) poll(ctx context.Context, limit time.Duration, what string, check func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	wait := r.Poll
	for {
		ok, err := check()
		if err != nil || ok {
			return err
		}
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("gave up waiting for %s after %s; run the command again to keep waiting", what, limit)
		}
		r.Log.Debug("waiting", "for", what, "next_check", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(wait*3/2, time.Minute)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(strings.TrimPrefix(v, "@"), strings.TrimPrefix(s, "@")) {
			return true
		}
	}
	return false
}

func mustJSON(v map[string]string) string {
	b, _ := json.Marshal(v) // a map of strings always encodes
	return string(b)
}

// ErrNoPassword is returned by password sources that have none to give.
var ErrNoPassword = errors.New("no password given (use --password-file, FERRY_PASSWORD or a terminal)")
