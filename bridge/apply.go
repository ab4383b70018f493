package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/schedule"
	"github.com/fedi-ferry/ferry/sinks"
)

// mediaAttempts is how many failed attempts at a post with media are made
// before it is posted with links to the media instead.
const mediaAttempts = 3

func mediaLinks(ms []post.Media) string {
	var links []string
	for _, m := range ms {
		if m.URL != "" {
			links = append(links, m.URL)
		}
	}
	return strings.Join(links, "\n")
}

// findWindow is how far back a sink's Finder looks for a copy made by an
// attempt that crashed before it was recorded.
const findWindow = 24 * time.Hour

// apply applies the route's journaled steps in plan order. A step the
// sink refuses for good is recorded as failed and never tried again; a
// transient failure is tried again within the run (see Retry); any other
// failure, or a transient one that outlasts the retries, stops the run,
// leaving the step (and those after it) journaled for the next one.
func (e *Engine) apply(ctx context.Context, r *Route, res *Result) error {
	steps, err := e.store.Pending(ctx, r.Name)
	if err != nil {
		return fmt.Errorf("route %s: %w", r.Name, err)
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		var t *Target
		for i := range r.Sinks {
			if strings.EqualFold(r.Sinks[i].Account, s.Sink) {
				t = &r.Sinks[i]
			}
		}
		if t == nil {
			// The sink was removed from the route: drop the step.
			if err := e.store.Finish(ctx, r.Name, s, Copy{}); err != nil {
				return fmt.Errorf("route %s: %w", r.Name, err)
			}
			continue
		}
		if err := e.applyRetrying(ctx, r, *t, s, res); err != nil {
			return err
		}
	}
	return nil
}

// applyRetrying applies one step, trying it again after transient
// failures within the bounds of e.retry. A retry goes through applyStep
// from the start, exactly as a run resuming after a crash would: the
// failed attempt may have reached the server before its answer was lost,
// so a publish is looked for with the sink's Finder (the attempt was
// counted by Begin) before it is ever sent again.
func (e *Engine) applyRetrying(ctx context.Context, r *Route, t Target, s Step, res *Result) error {
	pause := e.retry.First
	var spent time.Duration
	for retry := 0; ; retry++ {
		err := e.applyStep(ctx, r, t, s, res, retry)
		var te *TransientError
		if err == nil || !errors.As(err, &te) || retry >= e.retry.Attempts || ctx.Err() != nil {
			return err
		}
		wait := max(pause, te.RetryAfter)
		if spent+wait > e.retry.Total {
			return err
		}
		e.log.Warn("the sink failed for now; trying again", "route", r.Name, "sink", t.Account, "origin", s.Item,
			"part", s.Part, "step", s.Kind, "in", wait, "err", te.Err)
		res.Retried++
		select {
		case <-ctx.Done():
			return err
		case <-e.clock.After(wait):
		}
		spent += wait
		pause *= 2
	}
}

// TransientError wraps a sink failure that may pass by itself: a server
// error, a rate limit, a reset connection, a timeout (anything
// sinks.IsPermanent does not call permanent). The step stays journaled,
// and the route should be tried again soon.
type TransientError struct {
	Err error
	// RetryAfter is how long the server asked to wait; 0 if it did not.
	RetryAfter time.Duration
}

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// retryAfterer is implemented by errors that carry a server's request to
// wait (a Retry-After header, a rate-limit reset).
type retryAfterer interface{ RetryAfter() time.Duration }

// RetryAfter returns how long err says to wait before trying again, or 0.
func RetryAfter(err error) time.Duration {
	var ra retryAfterer
	if errors.As(err, &ra) {
		return max(ra.RetryAfter(), 0)
	}
	return 0
}

// transient wraps a sink's failure of step s as a TransientError.
func transient(r *Route, t Target, err error) error {
	return &TransientError{Err: fmt.Errorf("route %s, sink %s: %w", r.Name, t.Account, err), RetryAfter: RetryAfter(err)}
}

// applyStep applies step s once; retry counts the attempts made at it
// earlier in this run.
func (e *Engine) applyStep(ctx context.Context, r *Route, t Target, s Step, res *Result, retry int) error {
	// Writes to one account exclude the loop-guard checks of routes
	// reading it, so the copy is recorded before anyone looks; they do
	// not exclude each other (feeds by the thousand post to one account:
	// one at a time, the daemon's workers queued here while polls waited).
	defer e.share("account\x00" + strings.ToLower(t.Account))()
	log := e.log.With("route", r.Name, "sink", t.Account, "origin", s.Item, "part", s.Part)
	copies, err := e.store.Copies(ctx, r.Name, s.Item)
	if err != nil {
		return fmt.Errorf("route %s: %w", r.Name, err)
	}
	mine := func(part int) (Copy, bool) {
		for _, c := range copies {
			if c.Part == part && strings.EqualFold(c.Sink, t.Account) {
				return c, true
			}
		}
		return Copy{}, false
	}
	cur, have := mine(s.Part)
	base := Copy{Item: s.Item, Sink: t.Account, Part: s.Part, Version: s.Version, OriginAt: s.OriginAt}

	switch s.Kind {
	case StepPublish:
		if have && cur.State == CopyPosted {
			return e.store.Finish(ctx, r.Name, s, Copy{}) // already there
		}
		d := s.Draft
		if d.ReplyTo, err = e.replyTo(ctx, r, t, s, mine); err != nil {
			return err
		}
		prev, err := e.store.Begin(ctx, r.Name, s)
		if err != nil {
			return fmt.Errorf("route %s: %w", r.Name, err)
		}
		if prev > 0 {
			// An earlier attempt may have posted before it could record.
			ref, found, err := e.findEarlier(ctx, r, t, d)
			if err != nil {
				return err
			}
			if found {
				log.Info("found the copy an interrupted run made; not posting again", "remote_id", ref.ID)
				base.State, base.RemoteID, base.RemoteURL = CopyPosted, ref.ID, ref.URL
				res.Published++
				e.tell(r, t, s, false)
				return e.finish(ctx, r, s, base)
			}
		}
		// Only a run's first attempt falls back: the media failing
		// mediaAttempts runs in a row is a pattern, a few quick retries
		// after one 502 are not.
		if retry == 0 && prev >= mediaAttempts && len(d.Post.Media) > 0 {
			// The media keep failing (a dead enclosure link, a file the
			// server rejects): post with links to them instead of never.
			log.Warn("posting with links instead of the media after repeated failures", "attempts", prev)
			d.Post.Text = strings.TrimSpace(d.Post.Text + "\n\n" + mediaLinks(d.Post.Media))
			d.Post.Media = nil
		}
		ref, err := t.Sink.Publish(ctx, d)
		if err != nil {
			if sinks.IsPermanent(err) {
				log.Error("the sink refused the post; it will not be retried", "err", err)
				base.State, base.Error = CopyFailed, err.Error()
				res.Failed++
				e.tell(r, t, s, true)
				return e.finish(ctx, r, s, base)
			}
			return transient(r, t, err)
		}
		log.Info("mirrored", "remote_id", ref.ID)
		base.State, base.RemoteID, base.RemoteURL = CopyPosted, ref.ID, ref.URL
		res.Published++
		e.tell(r, t, s, false)
		return e.finish(ctx, r, s, base)

	case StepEdit:
		ed, ok := t.Sink.(sinks.Editor)
		if have && cur.State == CopyPosted && !ok && t.Policy.Edits == PolicyRepost {
			return e.repost(ctx, r, t, s, cur, mine, res)
		}
		if !have || cur.State != CopyPosted || !ok {
			base.State = cur.State
			if !have {
				base.State = ""
			}
			return e.finish(ctx, r, s, base)
		}
		if _, err := e.store.Begin(ctx, r.Name, s); err != nil {
			return fmt.Errorf("route %s: %w", r.Name, err)
		}
		base.State, base.RemoteID = CopyPosted, cur.RemoteID
		if err := ed.Edit(ctx, cur.RemoteID, s.Draft); err != nil {
			if !sinks.IsPermanent(err) {
				return transient(r, t, err)
			}
			// Keep the copy as it is, and do not try this version again.
			log.Error("the sink refused the edit", "err", err)
			base.Error = err.Error()
			res.Failed++
			e.tell(r, t, s, true)
			return e.finish(ctx, r, s, base)
		}
		log.Info("edited the copy", "remote_id", cur.RemoteID)
		res.Edited++
		e.tell(r, t, s, false)
		return e.finish(ctx, r, s, base)

	case StepDelete:
		del, ok := t.Sink.(sinks.Deleter)
		if !have || cur.State != CopyPosted || !ok {
			return e.store.Finish(ctx, r.Name, s, Copy{})
		}
		if _, err := e.store.Begin(ctx, r.Name, s); err != nil {
			return fmt.Errorf("route %s: %w", r.Name, err)
		}
		base.State, base.RemoteID, base.Version = CopyDeleted, cur.RemoteID, ""
		if err := del.Delete(ctx, cur.RemoteID); err != nil {
			if !sinks.IsPermanent(err) {
				return transient(r, t, err)
			}
			log.Error("the sink refused the delete", "err", err)
			base.State, base.Error = CopyPosted, err.Error()
			res.Failed++
			e.tell(r, t, s, true)
			return e.finish(ctx, r, s, base)
		}
		log.Info("deleted the copy", "remote_id", cur.RemoteID)
		res.Deleted++
		e.tell(r, t, s, false)
		return e.finish(ctx, r, s, base)
	}
	return e.store.Finish(ctx, r.Name, s, Copy{})
}

// tell reports a step the sink carried out, or refused for good, to
// Options.Applied.
func (e *Engine) tell(r *Route, t Target, s Step, refused bool) {
	e.applied(Applied{Route: r.Name, Sink: t.Account, Kind: s.Kind, Refused: refused, OriginAt: s.OriginAt, At: e.clock.Now()})
}

func (e *Engine) finish(ctx context.Context, r *Route, s Step, c Copy) error {
	if err := e.store.Finish(ctx, r.Name, s, c); err != nil {
		return fmt.Errorf("route %s: %w", r.Name, err)
	}
	return nil
}

// replyTo resolves the sink-side post a publish answers: the previous
// part of a split post, or the last part of the thread parent's copy.
func (e *Engine) replyTo(ctx context.Context, r *Route, t Target, s Step, mine func(int) (Copy, bool)) (string, error) {
	if s.Part > 0 {
		if c, ok := mine(s.Part - 1); ok && c.State == CopyPosted {
			return c.RemoteID, nil
		}
		return "", nil
	}
	if s.ParentItem == "" {
		return "", nil
	}
	parent, err := e.store.Copies(ctx, r.Name, s.ParentItem)
	if err != nil {
		return "", fmt.Errorf("route %s: %w", r.Name, err)
	}
	id := ""
	last := -1
	for _, c := range parent {
		if strings.EqualFold(c.Sink, t.Account) && c.State == CopyPosted && c.Part > last {
			id, last = c.RemoteID, c.Part
		}
	}
	return id, nil
}

// Outcome classifies an error returned by Run or Handle for scheduling
// the route's next run, and returns how long the server asked to wait
// (0 if it did not). A nil error is schedule.OK; a refusal that repeating
// will not fix (sinks.IsPermanent: a revoked token, a 404, a 422, a feed
// that is gone) is schedule.Permanent; anything
// else (server errors, rate limits, network failures, timeouts) is
// schedule.Transient.
func Outcome(err error) (schedule.Outcome, time.Duration) {
	switch {
	case err == nil:
		return schedule.OK, 0
	case sinks.IsPermanent(err):
		return schedule.Permanent, RetryAfter(err)
	}
	return schedule.Transient, RetryAfter(err)
}

// findEarlier asks t's sink, when it is a Finder, for a post an earlier,
// interrupted attempt at d made. An error is transient: not knowing
// whether the post exists, the caller must never post it again now.
func (e *Engine) findEarlier(ctx context.Context, r *Route, t Target, d sinks.Draft) (post.Ref, bool, error) {
	f, ok := t.Sink.(sinks.Finder)
	if !ok {
		return post.Ref{}, false, nil
	}
	ref, found, err := f.Find(ctx, d, e.clock.Now().Add(-findWindow))
	if err != nil {
		return post.Ref{}, false, transient(r, t, fmt.Errorf("look for the copy of an earlier attempt: %w", err))
	}
	return ref, found, nil
}
