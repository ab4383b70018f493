package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/journal"
)

// applier applies the pending items of a frozen plan.
type applier struct {
	o   ImportOptions
	job journal.Job

	m *meter

	mu      sync.Mutex
	listIDs map[string]string
	missing map[string]string // step → why: the server has no API for it
}

// pageSize is how many pending items are loaded at a time: memory stays
// flat however large the plan.
const pageSize = 200

func (a *applier) run(ctx context.Context) error {
	a.m = newMeter(a.o.Progress, "applying")
	a.listIDs = map[string]string{}
	err := eachItem(ctx, a.o.Journal, a.job.ID, func(items []journal.Item) {
		a.m.grow(len(items), notPending(items))
	})
	if err != nil {
		return fmt.Errorf("import into %s: %w", a.o.Account, err)
	}
	for {
		// Always take the first pending items: a server import may add
		// items behind the current position.
		items, err := a.o.Journal.Items(ctx, a.job.ID, journal.ItemFilter{Status: journal.ItemPending, Limit: pageSize})
		if err != nil {
			return fmt.Errorf("import into %s: %w", a.o.Account, err)
		}
		if len(items) == 0 {
			return nil
		}
		if err := a.applyRuns(ctx, items); err != nil {
			return err
		}
	}
}

// applyRuns applies runs of the same step concurrently; steps stay in
// order (lists before members, follows before list members).
func (a *applier) applyRuns(ctx context.Context, items []journal.Item) error {
	for len(items) > 0 {
		n := 1
		for n < len(items) && items[n].Step == items[0].Step {
			n++
		}
		if err := a.applyBatch(ctx, items[:n]); err != nil {
			return err
		}
		items = items[n:]
	}
	return nil
}

func (a *applier) applyBatch(ctx context.Context, items []journal.Item) error {
	conc := a.o.Concurrency
	if items[0].Step == stepList || items[0].Step == stepServerImport {
		conc = 1
	}
	return forEach(ctx, conc, items, a.applyOne)
}

// forEach calls fn for every item, n at a time. The first error fn returns
// stops the others and is returned; otherwise ctx's error, if any.
func forEach[T any](ctx context.Context, n int, items []T, fn func(context.Context, T) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(n, 1))
	for _, it := range items {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, it) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// applyOne applies one item and records the outcome. Only errors that stop
// the import are returned.
func (a *applier) applyOne(ctx context.Context, it journal.Item) error {
	var p payload
	if err := json.Unmarshal([]byte(it.Payload), &p); err != nil {
		it.Status, it.Error = journal.ItemFailed, "corrupt journal entry: "+err.Error()
		return a.finish(ctx, it)
	}
	if why, ok := a.missingStep(it.Step); ok {
		it.Status, it.Error = journal.ItemFailed, why
		return a.finish(ctx, it)
	}
	for try := 1; ; try++ {
		prev, err := a.o.Journal.BeginItem(ctx, it.JobID, it.Step, it.Key)
		if err != nil {
			return fmt.Errorf("import into %s: %w", a.o.Account, err)
		}
		out, err := a.apply(ctx, it, p, prev)
		var quota *fedi.QuotaError
		if errors.As(err, &quota) {
			// An hourly quota (Misskey: 20 mutes an hour): retrying the
			// row would only collect more 429s. Stop here; this row and
			// the rest stay pending, and running the same import again
			// continues with them.
			a.o.Log.Info("quota used up; stopping", "server", a.o.API.Host(), "step", it.Step, "key", it.Key,
				"until", quota.Reset.Format(time.DateTime))
			return fmt.Errorf("import into %s stopped: %w (run the same ferry import again then: it continues where this run stopped)",
				a.o.Account, quota)
		}
		var rl *fedi.RateLimitError
		if errors.As(err, &rl) {
			// A per-family limit (Mastodon: 400 follows a day). Wait for
			// the window and go on; the person may also stop and rerun.
			wait := time.Until(rl.Reset)
			if rl.Reset.IsZero() || wait <= 0 {
				wait = time.Minute
			}
			until := time.Now().Add(wait)
			// Short enough for the progress line; the log says the rest.
			a.m.report(fmt.Sprintf("%s limit reached; resuming at %s", it.Step, until.Format("Jan 2 15:04")), wait)
			a.o.Log.Info("rate limited; waiting (stop with Ctrl-C and run the same command later to resume)",
				"server", a.o.API.Host(), "step", it.Step, "until", until.Format(time.DateTime))
			if err := journal.Sleep(ctx, wait); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			// 401: the token is gone, and every other row would fail the
			// same way. (403 is per row: a block, a refused follow.)
			if fedi.StatusCode(err) == http.StatusUnauthorized {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if fedi.IsTransient(err) && try < maxTries {
				// A 5xx, a reset, a lost answer: try again after a short,
				// growing pause. The next attempt begins with prev > 0, so
				// apply checks the server for what this one did first
				// instead of repeating it blind.
				a.o.Log.Info("failed for now; trying again", "step", it.Step, "key", it.Key, "try", try,
					"ambiguous", fedi.IsAmbiguous(err), "err", err)
				// BeginItem waits out journal.InFlightGrace before the next
				// attempt; that is part of the pause.
				if err := journal.Sleep(ctx, journal.RetryPause(try)-journal.InFlightGrace); err != nil {
					return err
				}
				continue
			}
			out = it
			out.Status, out.Error = journal.ItemFailed, reason(err)
			if fedi.IsMissingEndpoint(err) {
				out.Error = a.markMissing(it.Step, p.Type)
			} else if fedi.IsTransient(err) || errors.Is(err, errRetryLater) {
				// Marked so that running the same import again retries it
				// (retryItems), without --fresh.
				out.Error = retryPrefix + out.Error
			}
		}
		return a.finish(ctx, out)
	}
}

// maxTries bounds the attempts at one item within a run when they fail
// transiently.
const maxTries = 8

func (a *applier) finish(ctx context.Context, it journal.Item) error {
	if err := a.o.Journal.FinishItem(ctx, it); err != nil {
		return fmt.Errorf("import into %s: %w", a.o.Account, err)
	}
	a.m.step()
	return nil
}

// meter counts the items of one phase of an import and reports Progress.
// It is safe for concurrent use.
type meter struct {
	fn      func(Progress)
	phase   string
	started time.Time

	mu          sync.Mutex
	total, done int
	run         int // items done since started, for the ETA
}

func newMeter(fn func(Progress), phase string) *meter {
	return &meter{fn: fn, phase: phase, started: time.Now()}
}

// notPending counts the items that are done, skipped or failed.
func notPending(items []journal.Item) int {
	n := 0
	for _, it := range items {
		if it.Status != journal.ItemPending {
			n++
		}
	}
	return n
}

// grow adds total items, done of which are already done.
func (m *meter) grow(total, done int) {
	m.mu.Lock()
	m.total += total
	m.done += done
	m.mu.Unlock()
}

// step counts one item done and reports.
func (m *meter) step() {
	m.mu.Lock()
	m.done++
	m.run++
	m.mu.Unlock()
	m.report("", 0)
}

// report reports the progress; waiting says why the import pauses, and
// extra is added to the ETA (the pause).
func (m *meter) report(waiting string, extra time.Duration) {
	if m.fn == nil {
		return
	}
	m.mu.Lock()
	pr := Progress{Phase: m.phase, Done: m.done, Total: m.total, Waiting: waiting}
	if m.run > 0 && m.total > m.done {
		per := time.Since(m.started) / time.Duration(m.run)
		pr.ETA = per*time.Duration(m.total-m.done) + extra
	}
	m.mu.Unlock()
	m.fn(pr)
}

// reason turns an apply error into a failures-CSV reason.
func reason(err error) string {
	switch fedi.StatusCode(err) {
	case http.StatusNotFound:
		return "not found on the server (deleted, suspended, or not visible): " + err.Error()
	case http.StatusForbidden:
		return "the server refused (blocked, or not allowed): " + err.Error()
	case http.StatusGone:
		return "gone: " + err.Error()
	}
	return err.Error()
}

// apply performs one item. prev > 0 means an earlier run began it and may
// have applied it before being killed: the remote state is checked first so
// that nothing is created twice.
func (a *applier) apply(ctx context.Context, it journal.Item, p payload, prev int) (journal.Item, error) {
	c := a.o.API
	out := it
	out.Status, out.RemoteID = journal.ItemDone, p.TargetID
	log := a.o.Log.With("step", it.Step, "key", it.Key)
	resumed := func(note string) (journal.Item, error) {
		log.Debug("found applied on resume", "note", note)
		out.Error = "applied (confirmed after an interruption)"
		return out, nil
	}
	applied := func() { log.Debug("applied", "target", out.RemoteID) }

	if p.TargetID == "" && accountStep(it.Step) {
		// Planned without resolving (a bulk-import fallback): resolve now.
		acc, err := c.ResolveAccount(ctx, p.Entry)
		if err != nil {
			return it, err
		}
		if acc.Moved != nil && acc.Moved.ID != "" && it.Step == stepFollow {
			p.MovedTo, acc = strings.ToLower(acc.Moved.Acct), *acc.Moved
			b, _ := json.Marshal(p)
			out.Payload = string(b)
		}
		p.TargetID, out.RemoteID = acc.ID, acc.ID
	}

	switch it.Step {
	case stepFollow:
		if prev > 0 {
			if rel, err := relationship(ctx, c, p.TargetID); err == nil && (rel.Following || rel.Requested) && p.Note == "" {
				return resumed("following")
			}
		}
		rel, err := c.Follow(ctx, p.TargetID, fedi.FollowOptions{Reblogs: p.Reblogs, Notify: p.Notify, Languages: p.Languages})
		if err != nil {
			return it, err
		}
		if rel.Requested && !rel.Following {
			out.Error = "follow requested: pending until the account (or its server) accepts"
		} else if note := checkFollowSettings(ctx, c, p, rel); note != "" {
			out.Error = note
		}
		applied()
	case stepBlock, stepMute:
		if prev > 0 {
			if rel, err := relationship(ctx, c, p.TargetID); err == nil && (rel.Blocking && it.Step == stepBlock || rel.Muting && it.Step == stepMute) {
				return resumed(it.Step)
			}
		}
		var err error
		if it.Step == stepBlock {
			_, err = c.AccountAction(ctx, p.TargetID, "block")
		} else {
			hide := p.HideNotif == nil || *p.HideNotif
			_, err = c.Mute(ctx, p.TargetID, hide)
		}
		if err != nil {
			return it, err
		}
		applied()
	case stepList:
		if prev > 0 {
			ls, err := c.Lists(ctx)
			if err != nil {
				return it, err
			}
			for _, l := range ls {
				if l.Title == p.List {
					out.RemoteID = l.ID
					return resumed("list exists")
				}
			}
		}
		before, err := listTitles(ctx, c)
		if err != nil {
			return it, err
		}
		l, err := c.CreateList(ctx, p.List)
		if err != nil {
			return it, err
		}
		// Read back: a server may have renamed an existing list instead.
		if err := checkNewList(ctx, c, p.List, l, before); err != nil {
			return it, err
		}
		out.RemoteID = l.ID
		applied()
	case stepListMember, stepListMemberRemove:
		listID, err := a.listID(ctx, p.List)
		if err != nil {
			return it, err
		}
		if it.Step == stepListMember {
			if err := awaitFollow(ctx, c, p.TargetID); err != nil {
				return it, err
			}
		}
		err = c.ListMember(ctx, listID, p.TargetID, it.Step == stepListMemberRemove)
		if fedi.IsAlreadyMember(err) {
			return resumed("already a member")
		}
		if err != nil {
			return it, err
		}
		applied()
	case stepDomainBlock, stepDomainUnblock:
		if err := c.BlockDomain(ctx, p.Domain, it.Step == stepDomainUnblock); err != nil {
			return it, err
		}
		applied()
	case stepBookmark:
		if prev > 0 {
			done, err := c.Bookmarked(ctx, p.TargetID)
			if err != nil {
				return it, err
			}
			if done {
				return resumed("bookmarked")
			}
		}
		if _, err := c.StatusAction(ctx, p.TargetID, "bookmark"); err != nil {
			return it, err
		}
		applied()
	case stepUnbookmark:
		if _, err := c.StatusAction(ctx, p.TargetID, "unbookmark"); err != nil {
			return it, err
		}
		applied()
	case stepUnfollow, stepUnblock, stepUnmute:
		if _, err := c.AccountAction(ctx, p.TargetID, it.Step); err != nil {
			return it, err
		}
		applied()
	case stepServerImport:
		return a.serverImport(ctx, it, p, prev)
	default:
		out.Status, out.Error = journal.ItemFailed, "unknown step "+it.Step
	}
	return out, nil
}

func accountStep(step string) bool {
	switch step {
	case stepFollow, stepBlock, stepMute, stepListMember:
		return true
	}
	return false
}

func relationship(ctx context.Context, c API, id string) (fedi.Relationship, error) {
	rs, err := c.Relationships(ctx, []string{id})
	if err != nil {
		return fedi.Relationship{}, err
	}
	if len(rs) == 0 {
		return fedi.Relationship{}, fmt.Errorf("no relationship to %s", id)
	}
	return rs[0], nil
}

// listID returns the ID of the list with the title, as created or found by
// its "list" item.
func (a *applier) listID(ctx context.Context, title string) (string, error) {
	a.mu.Lock()
	id, ok := a.listIDs[title]
	a.mu.Unlock()
	if ok {
		return id, nil
	}
	it, err := a.o.Journal.Item(ctx, a.job.ID, stepList, title)
	if err != nil {
		return "", fmt.Errorf("list %q: %w", title, err)
	}
	if it.RemoteID == "" {
		err := fmt.Errorf("list %q could not be created: %s", title, it.Error)
		if retryable(it) {
			// The list is retried by the next run; so are its members.
			err = fmt.Errorf("%w: %w", errRetryLater, err)
		}
		return "", err
	}
	a.mu.Lock()
	a.listIDs[title] = it.RemoteID
	a.mu.Unlock()
	return it.RemoteID, nil
}

// followAcceptWait bounds how long a list membership waits for the follow
// it needs to be accepted.
const followAcceptWait = 30 * time.Second

// awaitFollow waits until the account with id is followed, not merely
// requested: servers only list followed accounts, and GoToSocial silently
// drops a list member whose remote follow is still awaiting its Accept.
func awaitFollow(ctx context.Context, c API, id string) error {
	deadline := time.Now().Add(followAcceptWait)
	for {
		rel, err := relationship(ctx, c, id)
		if err != nil {
			return err
		}
		if rel.Following {
			return nil
		}
		if !rel.Requested || time.Now().After(deadline) {
			err := fmt.Errorf("account %s is not followed (follow request pending: %v); list members must be followed first — run the import again once the follow is accepted", id, rel.Requested)
			if rel.Requested {
				err = fmt.Errorf("%w: %w", errRetryLater, err)
			}
			return err
		}
		if err := journal.Sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}
