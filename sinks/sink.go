// Package sinks defines how ferry writes posts to a destination account.
// The bridge (mirroring) and the archive publisher consume sinks through
// these interfaces; each plugin lives in a subpackage (sinks/mastodon), and
// cross-cutting behaviour (dry runs) is a decorator here, applied once by
// the caller, so no plugin can forget it.
package sinks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/fedi-ferry/ferry/post"
)

// Draft is a post made ready for one sink: the caller has already applied
// its policies (visibility, content warnings, mentions) and fitted the text
// to the sink's Limits.
type Draft struct {
	// Post is the content. The sink sends Post.Text (plain text), Summary,
	// Sensitive, Visibility, Language, Media and Poll. Post.InReplyTo and
	// other origin fields are ignored: see ReplyTo.
	Post post.Post
	// ReplyTo is the sink-side ID of the post this one answers, "" for none.
	ReplyTo string
	// PublishedAt, when not zero, asks to keep the post's original date.
	// Only a sink that is a Backdater with CanBackdate true honours it;
	// others return an error wrapping ErrNoBackdate.
	PublishedAt time.Time
	// Key is stable for (job or route, origin post). Sinks send it as an
	// idempotency key where the server has them, so a repeated Publish
	// after a crash returns the post already made instead of a duplicate.
	Key string
}

// Sink publishes posts to one destination account.
type Sink interface {
	// Publish creates the post and returns where it landed. Errors for
	// which IsPermanent is true will fail the same way if repeated.
	Publish(ctx context.Context, d Draft) (post.Ref, error)
}

// Editor is implemented by sinks that can change a published post.
type Editor interface {
	// Edit replaces the text, content warning, sensitivity and language of
	// the post id with d's. Media and polls stay as published.
	Edit(ctx context.Context, id string, d Draft) error
}

// Deleter is implemented by sinks that can remove a published post.
type Deleter interface {
	// Delete removes the post id. Deleting a post that is already gone is
	// not an error.
	Delete(ctx context.Context, id string) error
}

// Limiter is implemented by sinks that know their server's limits.
type Limiter interface {
	Limits(ctx context.Context) (post.Limits, error)
}

// Backdater is implemented by sinks that may be able to create posts with
// their original date and without notifying anyone (GoToSocial's backfill).
type Backdater interface {
	CanBackdate(ctx context.Context) (bool, error)
}

// Finder is implemented by sinks that can look for a post published by an
// earlier, interrupted attempt. Callers use it when the server has no
// idempotency keys: a crash between "posted" and "recorded" would otherwise
// post twice.
type Finder interface {
	// Find looks among the account's posts made since since for one that
	// matches d (same text and parent) and returns it.
	Find(ctx context.Context, d Draft, since time.Time) (ref post.Ref, found bool, err error)
}

// ErrNoBackdate is returned for a Draft with PublishedAt on a sink that
// cannot keep original dates.
var ErrNoBackdate = errors.New("this server cannot create posts with their original date")

// PermanentError marks a failure that repeating will not fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err will recur if the same call is repeated:
// it is marked with PermanentError, or an error in its chain says so
// through a Permanent() bool method (a platform client's refusal of the
// request itself, such as a 4xx other than 408 and 429; a feed's 404).
// Rate limits, timeouts, server errors and network failures are not
// permanent.
func IsPermanent(err error) bool {
	var pe *PermanentError
	if errors.As(err, &pe) {
		return true
	}
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// IsAmbiguous reports whether err is the failure of a write whose outcome
// is unknown (sent, then the answer was lost): an error in its chain says so
// through an Ambiguous() bool method. The caller must look for what the
// attempt did (a Finder) before writing again.
func IsAmbiguous(err error) bool {
	var a interface{ Ambiguous() bool }
	return errors.As(err, &a) && a.Ambiguous()
}

// IsTransient reports whether err may pass if the call is made again later:
// an ambiguous write, an error that says so through a Transient() bool
// method (a rate limit, a server error, a timeout), or a network failure.
// A cancelled context and permanent errors are not transient.
func IsTransient(err error) bool {
	if err == nil || IsPermanent(err) || errors.Is(err, context.Canceled) {
		return false
	}
	if IsAmbiguous(err) {
		return true
	}
	var t interface{ Transient() bool }
	if errors.As(err, &t) {
		return t.Transient()
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded)
}

// DryRun wraps s so that nothing is written: every write is logged and
// answered with a made-up Ref ("dry-run-1", "dry-run-2" …). Reads
// (Limits, CanBackdate) pass through so the caller plans as for real.
//
// The wrapper has exactly the write abilities of s: it is an Editor only
// if s is, and a Deleter only if s is, so a caller's type assertions take
// the same branch in a dry run as for real (a dry run never reports an
// edit that the real run would skip).
func DryRun(s Sink, log *slog.Logger) Sink {
	d := &dryRun{inner: s, log: log}
	_, canEdit := s.(Editor)
	_, canDelete := s.(Deleter)
	switch {
	case canEdit && canDelete:
		return dryRunEditDelete{d}
	case canEdit:
		return dryRunEdit{d}
	case canDelete:
		return dryRunDelete{d}
	}
	return d
}

type dryRun struct {
	inner Sink
	log   *slog.Logger
	n     atomic.Int64
}

// The write abilities DryRun adds when the wrapped sink has them.
type (
	dryRunEdit       struct{ *dryRun }
	dryRunDelete     struct{ *dryRun }
	dryRunEditDelete struct{ *dryRun }
)

func (d dryRunEdit) Edit(ctx context.Context, id string, dr Draft) error { return d.edit(id, dr) }
func (d dryRunDelete) Delete(ctx context.Context, id string) error       { return d.delete(id) }
func (d dryRunEditDelete) Edit(ctx context.Context, id string, dr Draft) error {
	return d.edit(id, dr)
}
func (d dryRunEditDelete) Delete(ctx context.Context, id string) error { return d.delete(id) }

func (d *dryRun) Publish(ctx context.Context, dr Draft) (post.Ref, error) {
	id := fmt.Sprintf("dry-run-%d", d.n.Add(1))
	d.log.Info("dry run: would publish", "key", dr.Key, "reply_to", dr.ReplyTo,
		"visibility", string(dr.Post.Visibility), "chars", len([]rune(dr.Post.Text)), "media", len(dr.Post.Media))
	return post.Ref{ID: id}, nil
}

func (d *dryRun) edit(id string, dr Draft) error {
	d.log.Info("dry run: would edit", "id", id, "key", dr.Key)
	return nil
}

func (d *dryRun) delete(id string) error {
	d.log.Info("dry run: would delete", "id", id)
	return nil
}

func (d *dryRun) Limits(ctx context.Context) (post.Limits, error) {
	if l, ok := d.inner.(Limiter); ok {
		return l.Limits(ctx)
	}
	return post.Limits{}, nil
}

func (d *dryRun) CanBackdate(ctx context.Context) (bool, error) {
	if b, ok := d.inner.(Backdater); ok {
		return b.CanBackdate(ctx)
	}
	return false, nil
}

var (
	_ Editor    = dryRunEdit{}
	_ Deleter   = dryRunDelete{}
	_ Editor    = dryRunEditDelete{}
	_ Deleter   = dryRunEditDelete{}
	_ Limiter   = (*dryRun)(nil)
	_ Backdater = (*dryRun)(nil)
)
