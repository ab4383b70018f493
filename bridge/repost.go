package bridge

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/fedi-ferry/ferry/sinks"
)

// repost carries edit step s to a sink that cannot edit in place, under
// Policy.Edits = PolicyRepost: the copy cur, when younger than
// Policy.RepostWithin, is deleted and the new version published in its
// place, answering what the copy answered; the new copy's remote ID then
// replaces the old one in the route's state, so that later edits, deletes
// and the loop guard find it. An older copy keeps its text.
//
// The step is journaled like any other: Begin counts the attempt before
// the delete, and Finish records the new copy. A run that dies between
// the two repeats the step: the delete of a copy already gone succeeds,
// and the publish carries the edit step's Draft.Key, derived from the
// route, the origin post, the part and the edit's version, so the sink's
// Finder (a lookup of that key on Bluesky) finds a copy an interrupted
// attempt made instead of posting a second one. A step begun once is
// finished whatever the copy's age by then: its delete may have happened.
func (e *Engine) repost(ctx context.Context, r *Route, t Target, s Step, cur Copy, mine func(int) (Copy, bool), res *Result) error {
	log := e.log.With("route", r.Name, "sink", t.Account, "origin", s.Item, "part", s.Part)
	base := Copy{Item: s.Item, Sink: t.Account, Part: s.Part, Version: s.Version, OriginAt: s.OriginAt,
		State: CopyPosted, RemoteID: cur.RemoteID}
	del, canDelete := t.Sink.(sinks.Deleter)
	within := cmp.Or(t.Policy.RepostWithin, DefaultRepostWithin)
	prev, err := e.store.Begin(ctx, r.Name, s)
	if err != nil {
		return fmt.Errorf("route %s: %w", r.Name, err)
	}
	if prev == 0 {
		age := e.clock.Now().Sub(cur.CreatedAt)
		switch {
		case !canDelete:
			log.Warn("the origin post was edited; the sink can neither edit nor delete, so the copy keeps its text",
				"remote_id", cur.RemoteID)
			return e.finish(ctx, r, s, base)
		case cur.CreatedAt.IsZero() || age > within:
			// Recording the new version makes this the only time it is said.
			log.Info("the origin post was edited; the copy is older than repost_within, so it keeps its text",
				"remote_id", cur.RemoteID, "age", age.Round(time.Second), "repost_within", within)
			return e.finish(ctx, r, s, base)
		}
	}

	d := s.Draft
	if s.Part == 0 && s.ParentItem == "" && d.Post.InReplyTo != "" {
		// An edit step does not name the thread parent its publish named:
		// find it again, so that the new copy answers what the old one did.
		item, found, err := e.known(ctx, r, d.Post.InReplyTo, nil)
		if err != nil {
			return fmt.Errorf("route %s: %w", r.Name, err)
		}
		if found {
			s.ParentItem = item
		}
	}
	if d.ReplyTo, err = e.replyTo(ctx, r, t, s, mine); err != nil {
		return err
	}
	if prev > 0 {
		// An earlier attempt may have deleted the copy and published the
		// new version before it could record it.
		ref, found, err := e.findEarlier(ctx, r, t, d)
		if err != nil {
			return err
		}
		if found {
			log.Info("found the new version an interrupted run posted; not posting again", "remote_id", ref.ID)
			base.RemoteID, base.RemoteURL = ref.ID, ref.URL
			res.Edited++
			e.tell(r, t, s, false)
			return e.finish(ctx, r, s, base)
		}
	}
	if err := del.Delete(ctx, cur.RemoteID); err != nil {
		if !sinks.IsPermanent(err) {
			return transient(r, t, err)
		}
		log.Error("the sink refused to delete the copy to repost it; the copy keeps its text", "remote_id", cur.RemoteID, "err", err)
		base.Error = err.Error()
		res.Failed++
		e.tell(r, t, s, true)
		return e.finish(ctx, r, s, base)
	}
	ref, err := t.Sink.Publish(ctx, d)
	if err != nil {
		if !sinks.IsPermanent(err) {
			return transient(r, t, err)
		}
		// The old copy is gone and the sink will not take the new one.
		log.Error("the sink refused the new version of an edited post; its copy was deleted", "err", err)
		base.State, base.Error = CopyFailed, err.Error()
		res.Failed++
		e.tell(r, t, s, true)
		return e.finish(ctx, r, s, base)
	}
	log.Info("reposted the edited post", "old_remote_id", cur.RemoteID, "remote_id", ref.ID)
	base.RemoteID, base.RemoteURL = ref.ID, ref.URL
	res.Edited++
	e.tell(r, t, s, false)
	return e.finish(ctx, r, s, base)
}
