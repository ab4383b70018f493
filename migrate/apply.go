package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/state"
)

// applier applies the pending items of a frozen plan.
type applier struct {
	o   ImportOptions
	job state.Job

	total, done int
	started     time.Time
	appliedRun  int // items applied by this run, for the ETA

	mu      sync.Mutex
	listIDs map[string]string
}

// pageSize is how many pending items are loaded at a time: memory stays
// flat however large the plan.
const pageSize = 200

func (a *applier) run(ctx context.Context) error {
	a.started = time.Now()
	a.listIDs = map[string]string{}
	if err := a.countItems(ctx); err != nil {
		return err
	}
	for {
		// Always take the first pending items: a server import may add
		// items behind the current position.
		items, err := a.o.Journal.Items(ctx, a.job.ID, state.ItemFilter{Status: state.ItemPending, Limit: pageSize})
		if err != nil {
			return fmt.Errorf("import into %s: %w", a.o.Account, err)
		}
		if len(items) == 0 {
			return nil
		}
		// Apply runs of the same step concurrently; steps stay in order
		// (lists before members, follows before list members).
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
	}
}

func (a *applier) countItems(ctx context.Context) error {
	var after int64
	for {
		items, err := a.o.Journal.Items(ctx, a.job.ID, state.ItemFilter{AfterSeq: after, Limit: 1000})
		if err != nil {
			return fmt.Errorf("import into %s: %w", a.o.Account, err)
		}
		if len(items) == 0 {
			return nil
		}
		for _, it := range items {
			a.total++
			if it.Status != state.ItemPending {
				a.done++
			}
		}
		after = items[len(items)-1].Seq
	}
}

func (a *applier) applyBatch(ctx context.Context, items []state.Item) error {
	conc := a.o.Concurrency
	if items[0].Step == stepList || items[0].Step == stepServerImport {
		conc = 1
	}
	ch := make(chan state.Item)
	var wg sync.WaitGroup
	var fatal error
	var once sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range conc {
		wg.Go(func() {
			for it := range ch {
				if err := a.applyOne(ctx, it); err != nil {
					once.Do(func() { fatal = err; cancel() })
				}
			}
		})
	}
	for _, it := range items {
		select {
		case ch <- it:
		case <-ctx.Done():
		}
	}
	close(ch)
	wg.Wait()
	if fatal != nil {
		return fatal
	}
	return ctx.Err()
}

// applyOne applies one item and records the outcome. Only errors that stop
// the import are returned.
func (a *applier) applyOne(ctx context.Context, it state.Item) error {
	var p payload
	if err := json.Unmarshal([]byte(it.Payload), &p); err != nil {
		it.Status, it.Error = state.ItemFailed, "corrupt journal entry: "+err.Error()
		return a.finish(ctx, it)
	}
	for {
		prev, err := a.o.Journal.BeginItem(ctx, it.JobID, it.Step, it.Key)
		if err != nil {
			return fmt.Errorf("import into %s: %w", a.o.Account, err)
		}
		out, err := a.apply(ctx, it, p, prev)
		var rl *fedi.RateLimitError
		if errors.As(err, &rl) {
			// A per-family limit (Mastodon: 400 follows a day). Wait for
			// the window and go on; the person may also stop and rerun.
			wait := time.Until(rl.Reset)
			if rl.Reset.IsZero() || wait <= 0 {
				wait = time.Minute
			}
			a.report(fmt.Sprintf("%s limit reached at %s; continuing at %s (stop with Ctrl-C and run the same command later to resume)",
				it.Step, a.o.Client.Base().Host, time.Now().Add(wait).Format(time.DateTime)), wait)
			a.o.Log.Info("rate limited; waiting", "step", it.Step, "wait", wait.Round(time.Second))
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
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
			out = it
			out.Status, out.Error = state.ItemFailed, reason(err)
		}
		return a.finish(ctx, out)
	}
}

func (a *applier) finish(ctx context.Context, it state.Item) error {
	if err := a.o.Journal.FinishItem(ctx, it, nil); err != nil {
		return fmt.Errorf("import into %s: %w", a.o.Account, err)
	}
	a.mu.Lock()
	a.done++
	a.appliedRun++
	a.mu.Unlock()
	a.report("", 0)
	return nil
}

func (a *applier) report(waiting string, extra time.Duration) {
	if a.o.Progress == nil {
		return
	}
	a.mu.Lock()
	pr := Progress{Done: a.done, Total: a.total, Waiting: waiting}
	if a.appliedRun > 0 {
		per := time.Since(a.started) / time.Duration(a.appliedRun)
		pr.ETA = per*time.Duration(a.total-a.done) + extra
	}
	a.mu.Unlock()
	a.o.Progress(pr)
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
func (a *applier) apply(ctx context.Context, it state.Item, p payload, prev int) (state.Item, error) {
	c := a.o.Client
	out := it
	out.Status, out.RemoteID = state.ItemDone, p.TargetID
	log := a.o.Log.With("step", it.Step, "key", it.Key)
	resumed := func(note string) (state.Item, error) {
		log.Debug("found applied on resume", "note", note)
		out.Error = "applied (confirmed after an interruption)"
		return out, nil
	}
	applied := func() { log.Debug("applied", "target", out.RemoteID) }

	if p.TargetID == "" && accountStep(it.Step) {
		// Planned without resolving (a bulk-import fallback): resolve now.
		acc, err := fedi.ResolveAccount(ctx, c, p.Entry)
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
		rel, err := fedi.Follow(ctx, c, p.TargetID, fedi.FollowOptions{Reblogs: p.Reblogs, Notify: p.Notify, Languages: p.Languages})
		if err != nil {
			return it, err
		}
		if rel.Requested && !rel.Following {
			out.Error = "follow requested; the account approves followers"
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
			_, err = fedi.AccountAction(ctx, c, p.TargetID, "block")
		} else {
			hide := p.HideNotif == nil || *p.HideNotif
			_, err = fedi.Mute(ctx, c, p.TargetID, hide)
		}
		if err != nil {
			return it, err
		}
		applied()
	case stepList:
		if prev > 0 {
			ls, err := fedi.Lists(ctx, c)
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
		l, err := fedi.CreateList(ctx, c, p.List)
		if err != nil {
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
		err = fedi.ListMember(ctx, c, listID, p.TargetID, it.Step == stepListMemberRemove)
		if fedi.IsAlreadyMember(err) {
			return resumed("already a member")
		}
		if err != nil {
			return it, err
		}
		applied()
	case stepDomainBlock, stepDomainUnblock:
		if err := fedi.BlockDomain(ctx, c, p.Domain, it.Step == stepDomainUnblock); err != nil {
			return it, err
		}
		applied()
	case stepBookmark:
		if prev > 0 {
			var s fedi.StatusRef
			if _, err := c.Do(ctx, http.MethodGet, "/api/v1/statuses/"+url.PathEscape(p.TargetID), nil, nil, &s); err == nil && s.Bookmarked {
				return resumed("bookmarked")
			}
		}
		if _, err := fedi.StatusAction(ctx, c, p.TargetID, "bookmark"); err != nil {
			return it, err
		}
		applied()
	case stepUnbookmark:
		if _, err := fedi.StatusAction(ctx, c, p.TargetID, "unbookmark"); err != nil {
			return it, err
		}
		applied()
	case stepUnfollow, stepUnblock, stepUnmute:
		if _, err := fedi.AccountAction(ctx, c, p.TargetID, it.Step); err != nil {
			return it, err
		}
		applied()
	case stepServerImport:
		return a.serverImport(ctx, it, p, prev)
	default:
		out.Status, out.Error = state.ItemFailed, "unknown step "+it.Step
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

func relationship(ctx context.Context, c *fedi.Client, id string) (fedi.Relationship, error) {
	rs, err := fedi.Relationships(ctx, c, []string{id})
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
		return "", fmt.Errorf("list %q could not be created: %s", title, it.Error)
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
func awaitFollow(ctx context.Context, c *fedi.Client, id string) error {
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
			return fmt.Errorf("account %s is not followed (follow request pending: %v); list members must be followed first — run the import again once the follow is accepted", id, rel.Requested)
		}
		t := time.NewTimer(500 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
