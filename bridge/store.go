package bridge

import (
	"context"
	"strconv"
	"time"

	"github.com/fedi-ferry/ferry/sinks"
)

// Store is what the engine keeps between runs. It is declared here, by its
// consumer; cmd/ferry adapts the SQLite store (state) to it. Every method
// takes the route name; implementations must be safe for concurrent use.
type Store interface {
	// RouteState returns the route's cursor and flags; a route never seen
	// has the zero RouteState.
	RouteState(ctx context.Context, route string) (RouteState, error)
	// SaveCursor stores the source cursor after a page was fully handled,
	// marks the first run done and any pause over. newest is the creation
	// time of the newest origin post handled (zero if none).
	SaveCursor(ctx context.Context, route, cursor string, newest time.Time) error

	// FindItem returns the item an origin post belongs to, matching its
	// origin ID, then its link, then its content hash (empty values are
	// not matched), and the Version saved with the identity that matched;
	// found is false for a new item.
	FindItem(ctx context.Context, route string, id Identity) (item, version string, found bool, err error)
	// KnownItems returns, for those of originIDs already seen, the item
	// and Version saved with them (FindItem by origin ID, in bulk).
	KnownItems(ctx context.Context, route string, originIDs []string) (map[string]Known, error)
	// SaveItems records identities as seen (or refreshes them) in one
	// transaction.
	SaveItems(ctx context.Context, route string, ids []Identity) error

	// Copies returns the copies of item, all sinks and parts.
	Copies(ctx context.Context, route, item string) ([]Copy, error)
	// CopiesBetween returns posted part-0 copies of origin posts created
	// in [from, to].
	CopiesBetween(ctx context.Context, route string, from, to time.Time) ([]Copy, error)
	// IsCopy reports whether remoteID on account is a copy made by any
	// route (the two-way loop guard).
	IsCopy(ctx context.Context, account, remoteID string) (bool, error)
	// PostedSince counts the route's copies created (posted or failed)
	// since t.
	PostedSince(ctx context.Context, route string, t time.Time) (int, error)

	// Plan journals steps (plan → journal → apply). Steps whose Key is
	// already journaled are left as they are, so planning again after a
	// crash is harmless.
	Plan(ctx context.Context, route string, steps []Step) error
	// Pending returns the route's journaled steps not yet finished, in
	// plan order.
	Pending(ctx context.Context, route string) ([]Step, error)
	// Begin durably counts an attempt at step and returns how many there
	// were before: above zero, an earlier run may have applied it.
	Begin(ctx context.Context, route string, step Step) (previous int, err error)
	// Finish marks step finished and records c in one transaction.
	// A Copy with an empty State only finishes the step.
	Finish(ctx context.Context, route string, step Step, c Copy) error
}

// RouteState is what the store knows about a route.
type RouteState struct {
	Cursor  string
	Started bool // the first run is done
	Paused  bool // the route was paused and has not run since
}

// Identity is one way an origin post is recognised.
type Identity struct {
	OriginID    string
	Item        string // the item it belongs to; "" = a new item named OriginID
	Link        string
	ContentHash string
	// Version is OriginVersion of the post when it was last seen: when it
	// is unchanged, the engine need not look at the copies at all.
	Version   string
	CreatedAt time.Time
}

// Known is what KnownItems returns for one origin ID.
type Known struct {
	Item    string
	Version string
}

// Copy states, as the store records them.
const (
	CopyPosted  = "posted"
	CopyFailed  = "failed"
	CopySkipped = "skipped"
	CopyDeleted = "deleted"
)

// Copy is what became of one part of an item on one sink.
type Copy struct {
	Item      string
	Sink      string // the sink account
	Part      int
	State     string
	RemoteID  string
	RemoteURL string
	Version   string // hash of the content last sent
	Error     string
	OriginAt  time.Time
	CreatedAt time.Time
	// Link is the origin post's identity link (Identity.Link: the URI on
	// account routes), "" if none.
	Link string
}

// Step kinds.
const (
	StepPublish = "publish"
	StepEdit    = "edit"
	StepDelete  = "delete"
)

// Step is one journaled write to a sink. Its Key is deterministic, so the
// same intent planned twice is one step.
type Step struct {
	Kind    string
	Sink    string
	Item    string
	Part    int
	Version string
	// ParentItem is, for part 0 of a publish, the item it answers (a self
	// thread); the reply target is resolved from the parent's copies when
	// the step is applied, since it may have been posted by this very run.
	ParentItem string `json:",omitempty"`
	OriginAt   time.Time
	Draft      sinks.Draft
}

// Key identifies the step in the journal.
func (s Step) Key() string {
	k := s.Kind + "\x1f" + s.Sink + "\x1f" + s.Item + "\x1f" + strconv.Itoa(s.Part)
	if s.Kind == StepEdit {
		k += "\x1f" + s.Version
	}
	return k
}
