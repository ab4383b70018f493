package bridge

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fedi-ferry/ferry/post"

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
// sink refuses for good is recorded as failed and never tried again; any
// other failure stops the run, leaving the step (and those after it)
// journaled for the next one.
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
		if err := e.applyStep(ctx, r, *t, s, res); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) applyStep(ctx context.Context, r *Route, t Target, s Step, res *Result) error {
	// Writes to one account are serialised with the loop-guard checks of
	// routes reading it: the copy is recorded before anyone looks.
	defer e.lock("account\x00" + strings.ToLower(t.Account))()
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
			if f, ok := t.Sink.(sinks.Finder); ok {
				ref, found, err := f.Find(ctx, d, e.now().Add(-findWindow))
				if err != nil {
					return fmt.Errorf("route %s, sink %s: %w", r.Name, t.Account, err)
				}
				if found {
					log.Info("found the copy an interrupted run made; not posting again", "remote_id", ref.ID)
					base.State, base.RemoteID, base.RemoteURL = CopyPosted, ref.ID, ref.URL
					res.Published++
					return e.finish(ctx, r, s, base)
				}
			}
		}
		if prev >= mediaAttempts && len(d.Post.Media) > 0 {
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
				return e.finish(ctx, r, s, base)
			}
			return fmt.Errorf("route %s, sink %s: %w", r.Name, t.Account, err)
		}
		log.Info("mirrored", "remote_id", ref.ID)
		base.State, base.RemoteID, base.RemoteURL = CopyPosted, ref.ID, ref.URL
		res.Published++
		return e.finish(ctx, r, s, base)

	case StepEdit:
		ed, ok := t.Sink.(sinks.Editor)
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
				return fmt.Errorf("route %s, sink %s: %w", r.Name, t.Account, err)
			}
			// Keep the copy as it is, and do not try this version again.
			log.Error("the sink refused the edit", "err", err)
			base.Error = err.Error()
			res.Failed++
			return e.finish(ctx, r, s, base)
		}
		log.Info("edited the copy", "remote_id", cur.RemoteID)
		res.Edited++
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
				return fmt.Errorf("route %s, sink %s: %w", r.Name, t.Account, err)
			}
			log.Error("the sink refused the delete", "err", err)
			base.State, base.Error = CopyPosted, err.Error()
			res.Failed++
			return e.finish(ctx, r, s, base)
		}
		log.Info("deleted the copy", "remote_id", cur.RemoteID)
		res.Deleted++
		return e.finish(ctx, r, s, base)
	}
	return e.store.Finish(ctx, r.Name, s, Copy{})
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
