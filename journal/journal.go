// Package journal holds the values of ferry's write journal: how every
// multi-step write (a graph import, an archive publish, a migration, a
// route's mirror) survives a crash or a kill, by plan → journal → apply.
//
//  1. The caller creates a Job, identified by (Kind, Key), and freezes its
//     whole plan as Items in one transaction. A crash before the commit
//     leaves no plan; a rerun plans again from scratch.
//  2. It applies items in order. Before a non-idempotent remote write it
//     begins the item, which counts the attempt durably: an item found
//     pending with Attempts > 0 after a crash may already have been applied
//     remotely, and the caller must check the server before applying again.
//  3. Finishing an item records its outcome (done, failed or skipped) and
//     its remote ID in one transaction.
//
// A rerun with the same (Kind, Key) finds the job and continues with the
// items still pending.
//
// The packages that write through a journal (migrate, migrate/publish,
// migrate/move) declare the methods they need in terms of these types;
// package state stores them. This package imports nothing from ferry, so
// those packages need not import the store.
package journal

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound reports that a job or item does not exist. Stores wrap it
// with %w; test with errors.Is.
var ErrNotFound = errors.New("not found")

// Job statuses.
const (
	JobPlanning = "planning" // created, plan not frozen yet
	JobPlanned  = "planned"  // plan frozen, items being applied
	JobDone     = "done"     // every item finished (done, failed or skipped)
	JobFailed   = "failed"   // stopped for a reason the caller recorded in Params
)

// ItemStatus is where one planned item stands.
type ItemStatus string

// Item statuses.
const (
	ItemPending ItemStatus = "pending"
	ItemDone    ItemStatus = "done"
	ItemFailed  ItemStatus = "failed"  // will not be retried; Error says why
	ItemSkipped ItemStatus = "skipped" // nothing to do (already there); Error may say why
)

// Job is one multi-step write.
type Job struct {
	ID        int64
	Kind      string // what the job does: "import", "publish", "migrate" …
	Key       string // the caller's identity for the job, unique per Kind
	Account   string // the account handle the job writes to, if any
	Status    string
	Params    string // caller-defined JSON (inputs, options, progress notes)
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Item is one step of a job's frozen plan. (JobID, Step, Key) identifies it;
// Seq orders the items of a job as they were planned.
type Item struct {
	JobID     int64
	Seq       int64
	Step      string // a phase of the job: "follow", "block", "list" …
	Key       string // the item's identity within its step, e.g. an account handle
	Payload   string // caller-defined JSON: what to apply
	Status    ItemStatus
	Attempts  int    // attempts begun so far
	Error     string // why the item failed or was skipped
	RemoteID  string // what the apply created or touched, if anything
	UpdatedAt time.Time
}

// ItemFilter selects items of a job. Zero fields match everything.
type ItemFilter struct {
	Step     string
	Status   ItemStatus
	AfterSeq int64 // only items planned after this one, for paging
	Limit    int   // 0 = no limit
}

// InFlightGrace is how long a request sent by an attempt may still be on
// its way to the server after the process that sent it was killed. A check
// of the server made sooner could miss a write that lands a moment later
// and lead to a duplicate.
const InFlightGrace = 3 * time.Second

// RetryPause is how long a run waits before trying an item again after
// its try-th attempt failed for a reason that may pass (a 5xx, a reset, a
// lost answer): 1 s, doubling to 8 s. A caller whose next attempt first
// waits out InFlightGrace counts that wait as part of the pause.
func RetryPause(try int) time.Duration { return time.Duration(1<<min(try-1, 3)) * time.Second }

// Sleep waits d (nothing when d <= 0) or until ctx ends, whose error it
// then returns: the pauses above, taken in a way a shutdown interrupts.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SettleWait is how long to wait before checking the server for the
// outcome of the item's last attempt: what is left of InFlightGrace since
// that attempt began, or 0.
func (it Item) SettleWait(now time.Time) time.Duration {
	if it.Attempts == 0 {
		return 0
	}
	return max(InFlightGrace-now.Sub(it.UpdatedAt), 0)
}
