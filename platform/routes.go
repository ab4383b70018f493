package platform

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/config"
	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/state"
)

// Routes builds the bridge routes of a config file: one session per
// account (one paced connection, shared by a route's source and sinks and
// by every route built here), sources by their type and sinks by their
// account's platform. Build routes from one goroutine; RecordBudgets may
// be called from several once they are built.
type Routes struct {
	reg   *Registry
	accts map[string]state.Account
	dry   bool

	mu       sync.Mutex
	sessions map[string]Session // by handle
	sinks    map[string]sinks.Sink
}

// Routes returns a builder for routes whose accounts are accts, by the
// reference the config file uses (ConfigAccounts). With dry set, every
// sink is wrapped in sinks.DryRun and publishes nothing.
func (r *Registry) Routes(accts map[string]state.Account, dry bool) *Routes {
	return &Routes{reg: r, accts: accts, dry: dry, sessions: map[string]Session{}, sinks: map[string]sinks.Sink{}}
}

func (w *Routes) session(a state.Account) (Session, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.sessions[a.Handle]; ok {
		return s, nil
	}
	s, err := w.reg.Open(a)
	if err != nil {
		return nil, err
	}
	w.sessions[a.Handle] = s
	return s, nil
}

// sourceSpec is the route's source as Registry.Source takes it.
func (w *Routes) sourceSpec(spec config.RouteSpec) (SourceSpec, error) {
	switch {
	case spec.Feed != nil:
		return SourceSpec{Type: SourceFeed, URL: spec.Feed.URL, UserAgent: spec.Feed.UserAgent}, nil
	case spec.Account != nil:
		s, err := w.session(w.accts[spec.Account.Account])
		if err != nil {
			return SourceSpec{}, err
		}
		return SourceSpec{Type: SourceAccount, Session: s, Stream: spec.Account.Stream == nil || *spec.Account.Stream,
			Boosts: spec.Route.Boosts == bridge.PolicyLink, SkipQuotes: spec.Account.Quotes == bridge.PolicySkip}, nil
	case spec.Archive != nil:
		return SourceSpec{Type: SourceArchive, Path: spec.Archive.Path}, nil
	}
	return SourceSpec{}, fmt.Errorf("route %s: no source", spec.Route.Name)
}

// DescribeSource names spec's source for people: its type and its
// address, account or directory ("feed https://…").
func DescribeSource(spec config.RouteSpec) string {
	switch {
	case spec.Feed != nil:
		return SourceFeed + " " + spec.Feed.URL
	case spec.Account != nil:
		return SourceAccount + " " + spec.Account.Account
	case spec.Archive != nil:
		return SourceArchive + " " + spec.Archive.Path
	}
	return ""
}

// Route builds the bridge route spec configures; stream reports whether
// its source should also be streamed (account sources whose platform can,
// unless stream = false). spec is not changed.
func (w *Routes) Route(spec config.RouteSpec) (r *bridge.Route, stream bool, err error) {
	rt := spec.Route // a copy; Sinks is copied below before it is changed
	rt.Sinks = append([]bridge.Target(nil), spec.Route.Sinks...)
	ss, err := w.sourceSpec(spec)
	if err != nil {
		return nil, false, err
	}
	src, err := w.reg.Source(ss)
	if err != nil {
		return nil, false, fmt.Errorf("route %s: %w", rt.Name, err)
	}
	rt.Source, rt.Kind, rt.SourceAccount = src.Source, src.Kind, src.Account
	for i := range rt.Sinks {
		a := w.accts[rt.Sinks[i].Account]
		opts := SinkOptions{LocalOnly: spec.Sinks[i].LocalOnly}
		// One sink per account and options: routes share it, so the
		// account's pacing and limits are one.
		key := a.Handle
		if opts.LocalOnly {
			key += "\x00local-only"
		}
		s, ok := w.sinks[key]
		if !ok {
			sess, err := w.session(a)
			if err != nil {
				return nil, false, err
			}
			so, can := sess.(SinkOpener)
			if !can {
				return nil, false, fmt.Errorf("route %s: %w", rt.Name, NoRole(a, "publish posts"))
			}
			if s, err = so.Sink(opts); err != nil {
				return nil, false, fmt.Errorf("route %s, sink %s: %w", rt.Name, a.Handle, err)
			}
			if w.dry {
				s = sinks.DryRun(s, w.reg.env.Logger)
			}
			w.sinks[key] = s
		}
		rt.Sinks[i].Account, rt.Sinks[i].Sink = a.Handle, s
	}
	if err := rt.Validate(); err != nil {
		return nil, false, err
	}
	return &rt, src.Stream, nil
}

// KV keeps small values by key (state.Store implements it); Get returns
// an error when there is no value.
type KV interface {
	Get(ctx context.Context, key string) (string, error)
	Set(ctx context.Context, key, value string) error
}

// AccountBudget is an account's API use as the last process that mirrored
// for it recorded it (RecordBudgets), for `ferry status`.
type AccountBudget struct {
	Account     string        `json:"account"`
	Updated     time.Time     `json:"updated"`
	Requests    int64         `json:"requests"`     // by the recording process
	RateLimited int64         `json:"rate_limited"` // 429 answers it received
	Budgets     []fedi.Budget `json:"budgets"`      // as the server last announced them
}

// budgetKey is the KV key of an account's recorded budget.
func budgetKey(handle string) string { return "ratebudget/" + strings.ToLower(handle) }

// RecordBudgets stores in kv, for every account of the routes built so
// far whose platform counts (Metered), its requests and its rate-limit
// budgets as its server last announced them. A failure is logged, not
// returned: the budgets are information, not state.
func (w *Routes) RecordBudgets(ctx context.Context, kv KV) {
	w.mu.Lock()
	sessions := make(map[string]Session, len(w.sessions))
	for h, s := range w.sessions {
		sessions[h] = s
	}
	w.mu.Unlock()
	for handle, sess := range sessions {
		m, ok := sess.(Metered)
		if !ok {
			continue
		}
		u := m.Usage()
		b, err := json.Marshal(AccountBudget{Account: handle, Updated: time.Now().UTC(), Requests: u.Requests,
			RateLimited: u.RateLimited, Budgets: u.Budgets})
		if err == nil {
			err = kv.Set(ctx, budgetKey(handle), string(b))
		}
		if err != nil {
			w.reg.env.Logger.Warn("could not record the rate-limit budget", "account", handle, "err", err)
		}
	}
}

// BudgetLeft is one rate-limit budget of an account as it stands now.
type BudgetLeft struct {
	// Name is the budget's key without its host ("api", "api statuses").
	Name             string
	Remaining, Limit int
}

// Left returns the account's budgets as they stand at now: a budget whose
// window has reset since it was recorded is whole again.
func (b AccountBudget) Left(now time.Time) []BudgetLeft {
	out := make([]BudgetLeft, 0, len(b.Budgets))
	for _, f := range b.Budgets {
		if !f.Reset.IsZero() && f.Reset.Before(now) {
			f.Remaining = f.Limit
		}
		name := f.Key // "host/api#statuses"
		if _, rest, ok := strings.Cut(f.Key, "/"); ok {
			name = strings.ReplaceAll(rest, "#", " ")
		}
		out = append(out, BudgetLeft{Name: name, Remaining: f.Remaining, Limit: f.Limit})
	}
	return out
}

// Budgets returns the recorded budgets of accts, in their order; an
// account never used by a route has none and is left out.
func Budgets(ctx context.Context, kv KV, accts []state.Account) []AccountBudget {
	out := []AccountBudget{}
	for _, a := range accts {
		v, err := kv.Get(ctx, budgetKey(a.Handle))
		if err != nil {
			continue
		}
		var ab AccountBudget
		if json.Unmarshal([]byte(v), &ab) == nil {
			out = append(out, ab)
		}
	}
	return out
}
