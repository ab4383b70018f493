// Package bridgestore keeps the mirroring engine's state in ferry's
// store (SQLite or PostgreSQL): it implements bridge.Store (declared by its consumer, the engine)
// on *state.Store, and daemon.StatusStore beside it. It is the one place that
// knows both sides' types, so neither imports the other.
package bridgestore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/daemon"
	"github.com/fedi-ferry/ferry/state"
)

// Store is bridge.Store on ferry's store. It is safe for concurrent
// use, like the store under it.
type Store struct {
	st *state.Store

	mu   sync.Mutex
	jobs map[string]int64 // route → journal job ID
}

// New returns the engine's store kept in st.
func New(st *state.Store) *Store {
	return &Store{st: st, jobs: map[string]int64{}}
}

// RouteState implements bridge.Store.
func (b *Store) RouteState(ctx context.Context, route string) (bridge.RouteState, error) {
	r, err := b.st.BridgeRoute(ctx, route)
	if err != nil {
		return bridge.RouteState{}, err
	}
	return bridge.RouteState{Cursor: r.Cursor, Started: r.Started, Paused: r.Paused}, nil
}

// SaveCursor implements bridge.Store.
func (b *Store) SaveCursor(ctx context.Context, route, cursor string, newest time.Time) error {
	return b.st.BridgeSaveCursor(ctx, route, cursor, newest)
}

// FindItem implements bridge.Store.
func (b *Store) FindItem(ctx context.Context, route string, id bridge.Identity) (string, string, bool, error) {
	return b.st.BridgeFindItem(ctx, route, id.OriginID, id.Link, id.ContentHash)
}

// KnownItems implements bridge.Store.
func (b *Store) KnownItems(ctx context.Context, route string, originIDs []string) (map[string]bridge.Known, error) {
	m, err := b.st.BridgeItemsByOrigin(ctx, route, originIDs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bridge.Known, len(m))
	for id, v := range m {
		out[id] = bridge.Known{Item: v[0], Version: v[1]}
	}
	return out, nil
}

// SaveItems implements bridge.Store.
func (b *Store) SaveItems(ctx context.Context, route string, ids []bridge.Identity) error {
	items := make([]state.BridgeItem, len(ids))
	for i, id := range ids {
		items[i] = state.BridgeItem{OriginID: id.OriginID, Item: id.Item, Link: id.Link,
			ContentHash: id.ContentHash, Version: id.Version, CreatedAt: id.CreatedAt}
	}
	return b.st.BridgeSaveItems(ctx, route, items)
}

func toCopies(cs []state.BridgeCopy) []bridge.Copy {
	out := make([]bridge.Copy, len(cs))
	for i, c := range cs {
		out[i] = bridge.Copy{Item: c.Item, Sink: c.Sink, Part: c.Part, State: c.State, RemoteID: c.RemoteID,
			RemoteURL: c.RemoteURL, Version: c.Version, Error: c.Error, OriginAt: c.OriginAt, CreatedAt: c.CreatedAt, Link: c.Link}
	}
	return out
}

// Copies implements bridge.Store.
func (b *Store) Copies(ctx context.Context, route, item string) ([]bridge.Copy, error) {
	cs, err := b.st.BridgeCopies(ctx, route, item)
	return toCopies(cs), err
}

// CopiesBetween implements bridge.Store.
func (b *Store) CopiesBetween(ctx context.Context, route string, from, to time.Time) ([]bridge.Copy, error) {
	cs, err := b.st.BridgeCopiesBetween(ctx, route, from, to)
	return toCopies(cs), err
}

// IsCopy implements bridge.Store.
func (b *Store) IsCopy(ctx context.Context, account, remoteID string) (bool, error) {
	return b.st.BridgeIsCopy(ctx, account, remoteID)
}

// PostedSince implements bridge.Store.
func (b *Store) PostedSince(ctx context.Context, route string, t time.Time) (int, error) {
	return b.st.BridgePostedSince(ctx, route, t)
}

func (b *Store) job(ctx context.Context, route string) (state.Job, error) {
	b.mu.Lock()
	id, ok := b.jobs[route]
	b.mu.Unlock()
	if ok {
		return state.Job{ID: id}, nil
	}
	j, err := b.st.BridgeJob(ctx, route)
	if err != nil {
		return j, err
	}
	b.mu.Lock()
	b.jobs[route] = j.ID
	b.mu.Unlock()
	return j, nil
}

// Plan implements bridge.Store.
func (b *Store) Plan(ctx context.Context, route string, steps []bridge.Step) error {
	j, err := b.job(ctx, route)
	if err != nil {
		return err
	}
	items := make([]state.Item, len(steps))
	for i, s := range steps {
		payload, err := json.Marshal(s)
		if err != nil {
			return fmt.Errorf("journal a step of route %s: %w", route, err)
		}
		items[i] = state.Item{Step: s.Kind, Key: s.Key(), Payload: string(payload)}
	}
	return b.st.FreezePlan(ctx, j.ID, items)
}

// Pending implements bridge.Store.
func (b *Store) Pending(ctx context.Context, route string) ([]bridge.Step, error) {
	j, err := b.job(ctx, route)
	if err != nil {
		return nil, err
	}
	items, err := b.st.Items(ctx, j.ID, state.ItemFilter{Status: state.ItemPending})
	if err != nil {
		return nil, err
	}
	out := make([]bridge.Step, 0, len(items))
	for _, it := range items {
		var s bridge.Step
		if err := json.Unmarshal([]byte(it.Payload), &s); err != nil {
			return nil, fmt.Errorf("route %s: journaled step %s: %w", route, it.Key, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Begin implements bridge.Store.
func (b *Store) Begin(ctx context.Context, route string, s bridge.Step) (int, error) {
	j, err := b.job(ctx, route)
	if err != nil {
		return 0, err
	}
	return b.st.BeginItem(ctx, j.ID, s.Kind, s.Key())
}

// Finish implements bridge.Store.
func (b *Store) Finish(ctx context.Context, route string, s bridge.Step, c bridge.Copy) error {
	j, err := b.job(ctx, route)
	if err != nil {
		return err
	}
	status := state.ItemDone
	switch c.State {
	case bridge.CopyFailed:
		status = state.ItemFailed
	case "", bridge.CopySkipped:
		status = state.ItemSkipped
	}
	it := state.Item{JobID: j.ID, Step: s.Kind, Key: s.Key(), Status: status, Error: c.Error, RemoteID: c.RemoteID}
	return b.st.BridgeFinish(ctx, it, state.BridgeCopy{Route: route, Item: c.Item, Sink: c.Sink, Part: c.Part,
		State: c.State, RemoteID: c.RemoteID, RemoteURL: c.RemoteURL, Version: c.Version, Error: c.Error, OriginAt: c.OriginAt})
}

var _ bridge.Store = (*Store)(nil)

// RouteStates implements daemon.StatusStore.
func (b *Store) RouteStates(ctx context.Context) ([]daemon.RouteState, error) {
	rs, err := b.st.BridgeRoutes(ctx)
	if err != nil {
		return nil, err
	}
	// Who runs what: the live run leases (PostgreSQL; none on SQLite).
	ls, err := b.st.Leases(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	runs := map[string]state.Lease{}
	for _, l := range ls {
		if name, ok := strings.CutPrefix(l.Name, state.LeaseRun); ok {
			runs[name] = l
		}
	}
	out := make([]daemon.RouteState, len(rs))
	for i, r := range rs {
		out[i] = daemon.RouteState{Name: r.Name, Paused: r.Paused, Schedule: r.Schedule, NextRunAt: r.NextRunAt,
			LastRunAt: r.LastRunAt, LastOKAt: r.LastOKAt, LastError: r.LastError, Transient: r.Transient,
			FailCount: r.FailCount, NewestAt: r.NewestAt, Posted: r.Posted, Failed: r.Failed,
			Holder: runs[r.Name].Holder, LeaseExpires: runs[r.Name].ExpiresAt}
	}
	return out, nil
}
