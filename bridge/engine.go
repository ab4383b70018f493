package bridge

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/sources"
)

// Verifier is implemented by sources that can tell whether an origin post
// still exists. The engine uses it to confirm a suspected delete (a
// mirrored post missing from the source's recent window) before it
// deletes the copy: a missing post may just have scrolled out.
type Verifier interface {
	// Exists reports whether the origin post originID exists; an error
	// means "do not know" and nothing is deleted.
	Exists(ctx context.Context, originID string) (bool, error)
}

// URIVerifier is a Verifier that can also find a post by its permanent
// URI (the ActivityPub id). A server that changes a post's ID on edit
// (snac2) answers 404 for the ID the post was first seen under although
// the post is there: the engine asks by URI before it takes an unseen
// post for deleted. An error means "do not know".
type URIVerifier interface {
	ExistsURI(ctx context.Context, uri string) (bool, error)
}

// Options configure an Engine.
type Options struct {
	Logger *slog.Logger // nil discards
	// DryRun plans without writing anything, neither to sinks nor to the
	// store; Result.Planned lists what would be done.
	DryRun bool
	// Clock tells the time and times the pauses between retries; nil
	// means the real clock. Tests pass a fake one.
	Clock clockwork.Clock
	// Retry bounds how a transiently failing step is tried again within
	// a run; the zero value means DefaultRetry.
	Retry Retry
	// Applied, if not nil, is called after each step a sink carried out
	// or refused for good (metrics). It must be quick and safe for
	// concurrent use.
	Applied func(Applied)
}

// Applied is a step a sink carried out (a copy published, edited or
// deleted) or refused for good, for Options.Applied.
type Applied struct {
	Route string
	Sink  string // the sink account
	Kind  string // StepPublish, StepEdit or StepDelete
	// Refused reports that the sink refused the step for good.
	Refused bool
	// OriginAt is when the origin post was made; At is when the step
	// ended. At-OriginAt is how far the copy lags behind its origin.
	OriginAt, At time.Time
}

// Retry bounds the retries of one step within a run. A step whose sink
// fails transiently (a 5xx, a 429, a reset connection, a timeout) is
// tried again after First, then twice as long each time, at most
// Attempts more times and only while the pauses add up to no more than
// Total. A server's Retry-After lengthens a pause, within Total.
type Retry struct {
	Attempts int
	First    time.Duration
	Total    time.Duration
}

// DefaultRetry retries a step four times within 30 seconds (1s, 2s, 4s, 8s).
var DefaultRetry = Retry{Attempts: 4, First: time.Second, Total: 30 * time.Second}

// Engine runs routes. It is safe for concurrent use: runs of the same route
// are serialised, and so are writes to one sink account and the loop-guard
// checks of posts read from it.
type Engine struct {
	store Store
	log   *slog.Logger
	dry   bool
	clock clockwork.Clock
	retry Retry
	// applied is Options.Applied, never nil.
	applied func(Applied)

	mu     sync.Mutex
	locks  map[string]*sync.RWMutex
	limits map[string]post.Limits
}

// New returns an Engine keeping its state in store.
func New(store Store, o Options) *Engine {
	e := &Engine{store: store, log: o.Logger, dry: o.DryRun, clock: o.Clock, retry: o.Retry, applied: o.Applied,
		locks: map[string]*sync.RWMutex{}, limits: map[string]post.Limits{}}
	if e.applied == nil {
		e.applied = func(Applied) {}
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.clock == nil {
		e.clock = clockwork.NewRealClock()
	}
	if e.retry == (Retry{}) {
		e.retry = DefaultRetry
	}
	return e
}

// Result counts what a run did.
type Result struct {
	Fetched   int // posts read from the source
	New       int // posts not seen before
	Published int // copies made (parts count separately)
	Edited    int
	Deleted   int
	Skipped   int // new posts left out by filters, age or policy
	Failed    int // steps the sink refused for good
	// Retried counts the steps tried again within the run after a
	// transient failure.
	Retried int
	// Capped reports that the route reached its posts-per-hour cap; the
	// rest waits for the next run.
	Capped bool
	// Baseline reports a first run (or a resume after a pause): existing
	// posts were recorded as seen.
	Baseline bool
	// Wait is the source's earliest next poll, if it said.
	Wait time.Duration
	// Planned lists, in a dry run, every step that would be applied.
	Planned []Step
}

func (r *Result) add(o Result) {
	r.Fetched += o.Fetched
	r.New += o.New
	r.Published += o.Published
	r.Edited += o.Edited
	r.Deleted += o.Deleted
	r.Skipped += o.Skipped
	r.Failed += o.Failed
	r.Retried += o.Retried
	r.Capped = r.Capped || o.Capped
	r.Planned = append(r.Planned, o.Planned...)
}

// lock takes key's lock exclusively and returns its release.
func (e *Engine) lock(key string) func() {
	l := e.keyLock(key)
	l.Lock()
	return l.Unlock
}

// share takes key's lock shared with other sharers (excluding lock) and
// returns its release.
func (e *Engine) share(key string) func() {
	l := e.keyLock(key)
	l.RLock()
	return l.RUnlock
}

func (e *Engine) keyLock(key string) *sync.RWMutex {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.locks[key]
	if l == nil {
		l = &sync.RWMutex{}
		e.locks[key] = l
	}
	return l
}

// maxPages bounds one run, so a route with a huge backlog yields to the
// others; the next run continues from the saved cursor.
const maxPages = 10

// Run makes one pass over the route: it finishes steps an earlier run left
// journaled, then reads the source from the saved cursor and mirrors what
// is new, edited or deleted. The first run of a route (and the first after
// a pause, unless CatchUp) records the existing posts as seen and mirrors
// only the newest FirstRun of them.
func (e *Engine) Run(ctx context.Context, r *Route) (Result, error) {
	defer e.lock("route\x00" + r.Name)()
	var res Result
	if !e.dry {
		if err := e.apply(ctx, r, &res); err != nil {
			return res, err
		}
	}
	st, err := e.store.RouteState(ctx, r.Name)
	if err != nil {
		return res, fmt.Errorf("route %s: %w", r.Name, err)
	}
	if !st.Started || (st.Paused && !r.CatchUp) {
		res.Baseline = true
		return res, e.baseline(ctx, r, &res)
	}
	cursor := st.Cursor
	for range maxPages {
		page, err := r.Source.Fetch(ctx, cursor)
		if err != nil {
			return res, fmt.Errorf("route %s: read the source: %w", r.Name, err)
		}
		res.Wait = page.Wait
		res.Fetched += len(page.Posts)
		capped, err := e.handle(ctx, r, page.Posts, &res)
		if err != nil {
			return res, err
		}
		if capped {
			res.Capped = true
			e.log.Warn("route reached its posts-per-hour cap; the rest waits", "route", r.Name)
			return res, nil // the cursor stays: the rest of the page is read again
		}
		if !e.dry && (page.Next != cursor || len(page.Posts) > 0) {
			if err := e.store.SaveCursor(ctx, r.Name, page.Next, newest(page.Posts)); err != nil {
				return res, fmt.Errorf("route %s: %w", r.Name, err)
			}
		}
		cursor = page.Next
		if !page.More {
			break
		}
	}
	if v, ok := r.Source.(Verifier); ok && r.Kind == KindAccount {
		if err := e.checkWindow(ctx, r, v, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Handle applies one event pushed by a streaming source. Events for a
// route whose first run has not happened are ignored: that run records
// the origin's posts.
func (e *Engine) Handle(ctx context.Context, r *Route, ev sources.Event) (Result, error) {
	defer e.lock("route\x00" + r.Name)()
	var res Result
	st, err := e.store.RouteState(ctx, r.Name)
	if err != nil {
		return res, fmt.Errorf("route %s: %w", r.Name, err)
	}
	if !st.Started || st.Paused {
		return res, nil
	}
	switch ev.Kind {
	case sources.Created, sources.Edited:
		res.Fetched = 1
		_, err = e.handle(ctx, r, []post.Post{ev.Post}, &res)
	case sources.Deleted:
		p := ev.Post
		p.Deleted = true
		_, err = e.handle(ctx, r, []post.Post{p}, &res)
	}
	return res, err
}

// baseline records the origin's current posts as seen, plans the newest
// FirstRun of them, and saves the cursor.
func (e *Engine) baseline(ctx context.Context, r *Route, res *Result) error {
	page, err := r.Source.Fetch(ctx, "")
	if err != nil {
		return fmt.Errorf("route %s: read the source: %w", r.Name, err)
	}
	res.Fetched += len(page.Posts)
	res.Wait = page.Wait
	posts := page.Posts
	keep := 0
	if r.FirstRun > 0 {
		keep = min(r.FirstRun, len(posts))
	}
	var ids []Identity
	for _, p := range posts[:len(posts)-keep] {
		if p.OriginID == "" {
			continue
		}
		id := e.identity(r, p)
		item, _, found, err := e.store.FindItem(ctx, r.Name, id)
		if err != nil {
			return err
		}
		if found {
			id.Item = item
		}
		ids = append(ids, id)
	}
	e.log.Info("first run: existing posts recorded as seen", "route", r.Name, "seen", len(ids), "posting", keep)
	if e.dry {
		res.Skipped += len(ids)
	} else if err := e.store.SaveItems(ctx, r.Name, ids); err != nil {
		return err
	}
	if keep > 0 {
		if _, err := e.handle(ctx, r, posts[len(posts)-keep:], res); err != nil {
			return err
		}
	}
	if e.dry {
		return nil
	}
	// A source whose newest page is not the tail of its order (an account
	// read newest first) gives the cursor to continue after it.
	return e.store.SaveCursor(ctx, r.Name, page.Next, newest(posts))
}

func newest(ps []post.Post) time.Time {
	var t time.Time
	for _, p := range ps {
		if p.CreatedAt.After(t) {
			t = p.CreatedAt
		}
	}
	return t
}

// identity computes how a post is recognised on this route.
func (e *Engine) identity(r *Route, p post.Post) Identity {
	id := Identity{OriginID: p.OriginID, CreatedAt: p.CreatedAt, Version: OriginVersion(p)}
	switch r.Kind {
	case KindFeed:
		id.Link = CanonicalLink(p.URL)
		id.ContentHash = ContentHash(p)
	case KindAccount:
		// The URI (the ActivityPub id) stays when a server changes a
		// post's ID on edit (snac2): the edit is then an edit, not a new
		// post.
		id.Link = p.URI
	}
	return id
}

// CanonicalLink normalises a feed item's link for identity: scheme and
// host lower case, default ports, fragment and tracking parameters
// (utm_*, fbclid, gclid) removed, trailing slash dropped.
func CanonicalLink(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return strings.TrimSpace(raw)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme == "http" {
		u.Scheme = "https" // the same item moved to https is the same item
	}
	u.Host = strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(u.Host), ":443"), ":80")
	u.Fragment = ""
	q := u.Query()
	for k := range q {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "utm_") || lk == "fbclid" || lk == "gclid" || lk == "mc_cid" || lk == "mc_eid" {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u.String()
}

// ContentHash identifies a feed item by its title and text, white space
// and case folded, so that the same item under a new GUID and link is
// still recognised. Items without both are not matched by content.
func ContentHash(p post.Post) string {
	norm := func(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }
	t, x := norm(p.Title), norm(p.Text)
	if t == "" || x == "" {
		return ""
	}
	h := sha256.Sum256([]byte(t + "\x00" + x))
	return hex.EncodeToString(h[:12])
}

// handle plans and applies the steps a batch of posts (oldest first)
// needs. It reports capped when the runaway cap stopped it before the end.
func (e *Engine) handle(ctx context.Context, r *Route, posts []post.Post, res *Result) (capped bool, err error) {
	maxHour := r.MaxPerHour
	if maxHour <= 0 {
		maxHour = DefaultMaxPerHour
	}
	// What the route posted in the last hour is counted at its first
	// publish: most runs publish nothing and need not ask (nothing is
	// posted by this route before then: the route's lock is held).
	made, counted := 0, e.dry
	var steps []Step
	var ids []Identity
	batch := map[string]string{} // origin ID → item, for posts of this batch not yet saved
	origins := make([]string, 0, len(posts))
	for _, p := range posts {
		origins = append(origins, p.OriginID)
	}
	known, err := e.store.KnownItems(ctx, r.Name, origins)
	if err != nil {
		return false, fmt.Errorf("route %s: %w", r.Name, err)
	}
	for _, p := range posts {
		if p.OriginID == "" {
			continue
		}
		if _, dup := batch[p.OriginID]; dup && !p.Deleted {
			continue // the same item twice in one feed
		}
		ps, id, err := e.plan(ctx, r, p, res, batch, known)
		if err != nil {
			return false, err
		}
		publishes := 0
		for _, s := range ps {
			if s.Kind == StepPublish && s.Part == 0 {
				publishes++
			}
		}
		if publishes > 0 && !counted {
			if made, err = e.store.PostedSince(ctx, r.Name, e.clock.Now().Add(-time.Hour)); err != nil {
				return false, err
			}
			counted = true
		}
		if publishes > 0 && made+publishes > maxHour {
			capped = true
			break
		}
		made += publishes
		steps = append(steps, ps...)
		if id.OriginID != "" {
			ids = append(ids, id)
			batch[id.OriginID] = cmp.Or(id.Item, id.OriginID)
		}
	}
	if e.dry {
		res.Planned = append(res.Planned, steps...)
		for _, s := range steps {
			e.log.Info("dry run: would "+s.Kind, "route", r.Name, "sink", s.Sink, "origin", s.Item, "part", s.Part,
				"visibility", string(s.Draft.Post.Visibility), "cw", s.Draft.Post.Summary, "text", s.Draft.Post.Text)
		}
		return capped, nil
	}
	if len(steps) > 0 {
		if err := e.store.Plan(ctx, r.Name, steps); err != nil {
			return false, fmt.Errorf("route %s: %w", r.Name, err)
		}
	}
	if err := e.store.SaveItems(ctx, r.Name, ids); err != nil {
		return false, fmt.Errorf("route %s: %w", r.Name, err)
	}
	if len(steps) > 0 {
		if err := e.apply(ctx, r, res); err != nil {
			return false, err
		}
	}
	return capped, nil
}

// plan works out what one post needs: nothing (known and unchanged, or
// left out), publishes (new), edits (changed) or deletes (deleted). id is
// the identity to record as seen; a zero id records nothing.
func (e *Engine) plan(ctx context.Context, r *Route, p post.Post, res *Result, batch map[string]string, known map[string]Known) ([]Step, Identity, error) {
	if r.Kind == KindAccount && r.SourceAccount != "" {
		// Hold the account's lock exclusively: a copy this engine is
		// posting there right now is recorded before we look.
		unlock := e.lock("account\x00" + strings.ToLower(r.SourceAccount))
		isCopy, err := e.store.IsCopy(ctx, r.SourceAccount, p.OriginID)
		unlock()
		if err != nil {
			return nil, Identity{}, err
		}
		if isCopy {
			e.log.Debug("not mirroring a copy back (two-way route)", "route", r.Name, "origin", p.OriginID)
			return nil, Identity{}, nil
		}
	}
	id := e.identity(r, p)
	k, found := known[p.OriginID]
	item, seenVersion := k.Item, k.Version
	if !found {
		// Not seen under this origin ID: maybe under another GUID with
		// the same link or content.
		var err error
		if item, seenVersion, found, err = e.store.FindItem(ctx, r.Name, id); err != nil {
			return nil, Identity{}, err
		}
	}
	if found {
		id.Item = item
	} else {
		item = p.OriginID
	}
	if p.Deleted {
		if !found {
			return nil, Identity{}, nil
		}
		steps, err := e.planDelete(ctx, r, item)
		return steps, Identity{}, err
	}
	if found {
		if seenVersion == id.Version {
			return nil, id, nil // unchanged since last seen
		}
		steps, err := e.planEdit(ctx, r, item, p)
		return steps, id, err
	}
	res.New++
	if reason := e.leaveOut(ctx, r, &p, batch); reason != "" {
		e.log.Debug("left out", "route", r.Name, "origin", p.OriginID, "reason", reason)
		res.Skipped++
		return nil, id, nil
	}
	parentItem, err := e.threadParent(ctx, r, p, batch)
	if err != nil {
		return nil, Identity{}, err
	}
	version := OriginVersion(p)
	var steps []Step
	for _, t := range r.Sinks {
		out, err := render(e.template(r), p, t.Policy, e.sinkLimits(ctx, t), parentItem != "")
		if err != nil {
			return nil, Identity{}, fmt.Errorf("route %s, post %s: %w", r.Name, p.OriginID, err)
		}
		if out.Skip != "" {
			e.log.Debug("left out for a sink", "route", r.Name, "sink", t.Account, "origin", p.OriginID, "reason", out.Skip)
			res.Skipped++
			continue
		}
		for i, d := range out.Drafts {
			s := Step{Kind: StepPublish, Sink: t.Account, Item: item, Part: i, Version: version,
				OriginAt: p.CreatedAt, Draft: d}
			if i == 0 {
				s.ParentItem = parentItem
			}
			s.Draft.Key = stepKey(r.Name, s)
			steps = append(steps, s)
		}
	}
	return steps, id, nil
}

// stepKey is the idempotency key sent with a publish: stable for (route,
// sink, item, part).
func stepKey(route string, s Step) string {
	h := sha256.Sum256([]byte(route + "\x1f" + s.Key()))
	return "ferry-" + hex.EncodeToString(h[:16])
}

func (e *Engine) template(r *Route) *template.Template {
	if r.Template != nil {
		return r.Template
	}
	return DefaultTemplate(r.Kind)
}

// leaveOut applies the route-level rules (age, filters, replies and
// boosts) and returns why p is left out, or "". A reply or boost under
// policy "link" is rewritten into a post linking to it.
func (e *Engine) leaveOut(ctx context.Context, r *Route, p *post.Post, batch map[string]string) string {
	if r.MaxAge > 0 && !p.CreatedAt.IsZero() && p.CreatedAt.Before(e.clock.Now().Add(-r.MaxAge)) {
		return "older than max_age"
	}
	if p.IsBoost() {
		if r.Boosts != PolicyLink {
			return "a boost (boosts = skip)"
		}
		link := p.URL
		if link == "" {
			link = p.BoostOf
		}
		*p = post.Post{OriginID: p.OriginID, CreatedAt: p.CreatedAt, Visibility: p.Visibility, Language: p.Language,
			Text: "Boosted: " + link}
		return ""
	}
	if p.Visibility == post.Direct && !slices.Contains(r.Filter.Visibility, post.Direct) {
		return "a direct message (only mirrored when the filter lists direct)"
	}
	if ok, why := r.Filter.Match(*p); !ok {
		return "filter: " + why
	}
	if p.InReplyTo != "" || p.ReplyToURI != "" {
		known := false
		if p.InReplyTo != "" {
			_, found, err := e.known(ctx, r, p.InReplyTo, batch)
			known = err == nil && found
		}
		if !known {
			if r.Replies != PolicyLink {
				return "a reply to someone else (replies = skip)"
			}
			p.Text = "Replied: " + p.URL
			p.InReplyTo, p.ReplyToURI, p.Mentions, p.Media, p.Poll = "", "", nil, nil, nil
		}
	}
	return ""
}

// threadParent returns the item p answers when it continues one of the
// route's own threads, or "".
func (e *Engine) threadParent(ctx context.Context, r *Route, p post.Post, batch map[string]string) (string, error) {
	if p.InReplyTo == "" {
		return "", nil
	}
	item, found, err := e.known(ctx, r, p.InReplyTo, batch)
	if err != nil || !found {
		return "", err
	}
	return item, nil
}

// known finds the item of an origin ID among the batch being planned,
// then in the store.
func (e *Engine) known(ctx context.Context, r *Route, originID string, batch map[string]string) (string, bool, error) {
	if item, ok := batch[originID]; ok {
		return item, true, nil
	}
	item, _, found, err := e.store.FindItem(ctx, r.Name, Identity{OriginID: originID})
	return item, found, err
}

// planEdit compares a known post with its copies and plans edits where
// the origin changed.
func (e *Engine) planEdit(ctx context.Context, r *Route, item string, p post.Post) ([]Step, error) {
	copies, err := e.store.Copies(ctx, r.Name, item)
	if err != nil || len(copies) == 0 {
		return nil, err
	}
	// An account post is compared by content even without an edit time:
	// some servers never send edited_at (Hollo). An unchanged post has an
	// unchanged version.
	version := OriginVersion(p)
	var steps []Step
	for _, t := range r.Sinks {
		var mine []Copy
		for _, c := range copies {
			if strings.EqualFold(c.Sink, t.Account) {
				mine = append(mine, c)
			}
		}
		if len(mine) == 0 || mine[0].State != CopyPosted || mine[0].Version == version {
			continue
		}
		parentItem, err := e.threadParent(ctx, r, p, nil)
		if err != nil {
			return nil, err
		}
		out, err := render(e.template(r), p, t.Policy, e.sinkLimits(ctx, t), parentItem != "")
		if err != nil {
			return nil, fmt.Errorf("route %s, post %s: %w", r.Name, p.OriginID, err)
		}
		if out.Skip != "" {
			continue // an edit that makes a post unfit leaves the copy as it was
		}
		for i, d := range out.Drafts {
			s := Step{Sink: t.Account, Item: item, Part: i, Version: version, OriginAt: p.CreatedAt, Draft: d}
			if i < len(mine) && mine[i].State == CopyPosted {
				s.Kind = StepEdit
			} else {
				s.Kind = StepPublish
			}
			s.Draft.Key = stepKey(r.Name, s)
			steps = append(steps, s)
		}
		for i := len(mine) - 1; i >= len(out.Drafts); i-- {
			if mine[i].State == CopyPosted {
				steps = append(steps, Step{Kind: StepDelete, Sink: t.Account, Item: item, Part: i})
			}
		}
	}
	return steps, nil
}

// planDelete plans deleting every posted copy of item, last part first.
func (e *Engine) planDelete(ctx context.Context, r *Route, item string) ([]Step, error) {
	copies, err := e.store.Copies(ctx, r.Name, item)
	if err != nil {
		return nil, err
	}
	var steps []Step
	for i := len(copies) - 1; i >= 0; i-- {
		if c := copies[i]; c.State == CopyPosted {
			steps = append(steps, Step{Kind: StepDelete, Sink: c.Sink, Item: item, Part: c.Part})
		}
	}
	return steps, nil
}

// checkWindow reads the source's newest page again to notice edits of
// posts older than the cursor, and posts deleted at the origin: a copy of
// a post made within the window's time span but missing from it is
// verified with the source before its copy is deleted.
func (e *Engine) checkWindow(ctx context.Context, r *Route, v Verifier, res *Result) error {
	page, err := r.Source.Fetch(ctx, "")
	if err != nil {
		return fmt.Errorf("route %s: read the recent posts: %w", r.Name, err)
	}
	if len(page.Posts) == 0 {
		// Every post gone (or none yet): each copy is checked.
		return e.verifyCopies(ctx, r, v, time.Time{}, nil, res)
	}
	var window Result
	if _, err := e.handle(ctx, r, page.Posts, &window); err != nil {
		return err
	}
	window.Fetched, window.New = 0, 0
	res.add(window)
	// Present: the window's posts under their current origin IDs and
	// under the items they were first seen as (an ID that changed on edit).
	present := map[string]bool{}
	from := page.Posts[0].CreatedAt
	for _, p := range page.Posts {
		present[p.OriginID] = true
		if item, _, found, err := e.store.FindItem(ctx, r.Name, e.identity(r, p)); err != nil {
			return err
		} else if found {
			present[item] = true
		}
		if p.CreatedAt.Before(from) {
			from = p.CreatedAt
		}
	}
	// Every copy from the window's oldest post on is checked, newer ones
	// included: a deleted newest post is missing from the window but not
	// older than anything in it.
	return e.verifyCopies(ctx, r, v, from, present, res)
}

// emptyWindowChecks is how many of the newest copies are verified when the
// source's window is empty.
const emptyWindowChecks = 40

// verifyCopies asks the source about every posted copy of a post made
// since from whose origin is not present, and deletes the copies of those
// gone.
func (e *Engine) verifyCopies(ctx context.Context, r *Route, v Verifier, from time.Time, present map[string]bool, res *Result) error {
	copies, err := e.store.CopiesBetween(ctx, r.Name, from, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))
	if err != nil {
		return err
	}
	if from.IsZero() && len(copies) > emptyWindowChecks {
		// An empty window may be a server's passing glitch: check the
		// newest copies, not the whole history, one request each.
		copies = copies[len(copies)-emptyWindowChecks:]
	}
	var gone []post.Post
	checked := map[string]bool{}
	for _, c := range copies {
		if present[c.Item] || checked[c.Item] {
			continue
		}
		checked[c.Item] = true
		exists, err := v.Exists(ctx, c.Item)
		if err == nil && !exists && from.IsZero() && c.Link != "" {
			// The window is empty, so an edited post whose ID changed was
			// not seen under its new ID either: only its URI tells an
			// edit from a delete. (In a non-empty window such a post is
			// present under its identity.) Sources without URIVerifier
			// have IDs that never change: their 404 is a delete.
			if uv, ok := v.(URIVerifier); ok {
				exists, err = uv.ExistsURI(ctx, c.Link)
			}
		}
		if err != nil {
			e.log.Warn("could not verify a suspected delete; keeping the copy", "route", r.Name, "origin", c.Item, "err", err)
			continue
		}
		if !exists {
			gone = append(gone, post.Post{OriginID: c.Item, Deleted: true})
		}
	}
	if len(gone) > 0 {
		_, err = e.handle(ctx, r, gone, res)
	}
	return err
}

// sinkLimits returns (once per account) what the sink accepts.
func (e *Engine) sinkLimits(ctx context.Context, t Target) post.Limits {
	e.mu.Lock()
	l, ok := e.limits[t.Account]
	e.mu.Unlock()
	if ok {
		return l
	}
	if lim, isLim := t.Sink.(sinks.Limiter); isLim {
		got, err := lim.Limits(ctx)
		if err != nil {
			e.log.Warn("could not read the sink's limits; assuming Mastodon's", "sink", t.Account, "err", err)
			return post.Limits{}
		}
		l = got
	}
	e.mu.Lock()
	e.limits[t.Account] = l
	e.mu.Unlock()
	return l
}
