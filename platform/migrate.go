package platform

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fedi-ferry/ferry/migrate"
	"github.com/fedi-ferry/ferry/migrate/move"
	"github.com/fedi-ferry/ferry/migrate/publish"
	sinkarchive "github.com/fedi-ferry/ferry/sinks/archive"
)

// MoveSide describes sess's account for migrate/move (Mover), with one
// bounded request; an account whose platform cannot migrate, or whose
// token is refused, gets an error that says what to do.
func MoveSide(ctx context.Context, sess Session) (*move.Side, error) {
	acct := sess.Account()
	mv, ok := sess.(Mover)
	if !ok {
		return nil, NoRole(acct, "migrate")
	}
	cctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	side, err := mv.MoveSide(cctx)
	if err != nil {
		return nil, AuthHint(err, acct)
	}
	return side, nil
}

// PublishJournal is what a publish and the migration's steps keep in
// ferry's journal (state.Store implements it).
type PublishJournal interface {
	publish.Journal
	migrate.Journal
	sinkarchive.CursorStore
}

// PublishOptions are the options of a publish of an archive on sess's
// account (publish.Run, publish.Preview): its sink, what its server runs
// (asked now), the journal, and progress lines in log. The caller sets
// Dir.
func PublishOptions(ctx context.Context, sess Session, po publish.Options, journal publish.Journal, log *slog.Logger) (publish.RunOptions, error) {
	acct := sess.Account()
	so, ok := sess.(SinkOpener)
	if !ok {
		return publish.RunOptions{}, NoRole(acct, "publish posts")
	}
	dctx, cancel := context.WithTimeout(ctx, requestTimeout)
	srv, err := sess.Server(dctx)
	cancel()
	if err != nil {
		return publish.RunOptions{}, AuthHint(fmt.Errorf("archive publish: %w", err), acct)
	}
	sink, err := so.Sink(SinkOptions{})
	if err != nil {
		return publish.RunOptions{}, err
	}
	return publish.RunOptions{
		Options: po, Account: acct.Handle,
		Server:  publish.Server{Software: srv.Software, Version: srv.Version, Limits: srv.Limits},
		Sink:    sink,
		Journal: journal, Log: log,
		Progress: func(done, total int, eta time.Duration) {
			if done%20 == 0 || done == total {
				log.Info("progress", "done", done, "total", total, "eta", eta.Round(time.Second))
			}
		},
	}, nil
}

// MigrationOptions are what Migration wires into a move.Migration.
type MigrationOptions struct {
	// Runner is the migration's runner; its Old and New are the sides of
	// Old and New (MoveSide).
	Runner *move.Runner
	// Old is the old account's session; nil when a lifeboat is replayed
	// (the old server is gone).
	Old Session
	// New is the new account's session.
	New Session
	// Journal keeps the steps' plans and the archive's cursors.
	Journal PublishJournal
	// Method is how the graph is replayed.
	Method migrate.Method
	// Progress receives the replay's progress; nil for none.
	Progress func(migrate.Progress)
	// Publish, when not nil, also publishes the lifeboat's archive on the
	// new account with these options.
	Publish *publish.Options
	Log     *slog.Logger
}

// Migration wires a migration's steps to the accounts' sessions: the
// lifeboat's graph export and archive from the old account, the replay
// into the new one and, when asked, the archive's publication there.
func Migration(ctx context.Context, o MigrationOptions) (*move.Migration, error) {
	r, nw := o.Runner, o.New.Account()
	mig := &move.Migration{Runner: r,
		Replay: migrate.ImportOptions{Client: r.New.Client, API: r.New.Graph, Account: nw.Handle, Software: nw.Software,
			Method: o.Method, Journal: o.Journal, Progress: o.Progress, Log: o.Log}}
	if old := r.Old; old != nil {
		mig.Graph = migrate.ExportOptions{Client: old.Client, API: old.Graph, Log: o.Log}
		if _, ok := o.Old.(Archiver); ok && (old.Client != nil || old.Archive != nil) {
			mig.Archive = ArchiveOptions(o.Old.Account().Handle, o.Journal, "", false, 4, "", o.Log)
			mig.Archive.Client, mig.Archive.API = old.Client, old.Archive
		} else {
			mig.NoArchive = "ferry cannot archive " + o.Old.Account().Platform + " accounts yet"
		}
	}
	if o.Publish != nil {
		ro, err := PublishOptions(ctx, o.New, *o.Publish, o.Journal, o.Log)
		if err != nil {
			return nil, err
		}
		mig.Publish = &ro
	}
	return mig, nil
}

// MigrationStore is what a migration reads and keeps in ferry's store
// (state.Store implements it): the accounts and the journal.
type MigrationStore interface {
	AccountLookup
	move.Journal
}

// MigrationAccounts name a migration's accounts as the person gave them.
type MigrationAccounts struct {
	// From is the old account (a handle or a name); empty when
	// FromArchive is set.
	From string
	// FromArchive is the lifeboat directory of a migration whose old
	// server is gone (an earlier migration's directory or an export).
	FromArchive string
	// To is the new account.
	To string
	// Dir is the migration's directory when From is set; empty means
	// move.DefaultDir(DataDir, old, new).
	Dir, DataDir string
}

// OpenedMigration is a migration's runner with its accounts' sessions,
// which count each side's requests.
type OpenedMigration struct {
	// Runner has New, Old (nil with FromArchive), Dir (absolute),
	// Journal and Public set; the caller sets the rest.
	Runner *move.Runner
	// Old is nil with FromArchive.
	Old, New Session
}

// LifeboatError is OpenMigration's error for a FromArchive directory that
// holds no lifeboat.
type LifeboatError struct{ Err error }

func (e *LifeboatError) Error() string { return e.Err.Error() }
func (e *LifeboatError) Unwrap() error { return e.Err }

// OpenMigration loads a migration's accounts from st and describes them
// for migrate/move (MoveSide): the new account first, then the old one or
// the lifeboat directory.
func (r *Registry) OpenMigration(ctx context.Context, st MigrationStore, a MigrationAccounts) (OpenedMigration, error) {
	var m OpenedMigration
	side := func(ref string) (*move.Side, Session, error) {
		acct, err := LookupAccount(ctx, st, ref)
		if err != nil {
			return nil, nil, err
		}
		sess, err := r.Open(acct)
		if err != nil {
			return nil, nil, err
		}
		s, err := MoveSide(ctx, sess)
		return s, sess, err
	}
	nw, newSess, err := side(a.To)
	if err != nil {
		return m, err
	}
	m.New = newSess
	m.Runner = &move.Runner{New: nw, Journal: st, Public: r.PublicClient()}
	if a.From == "" {
		if m.Runner.Dir, err = filepath.Abs(a.FromArchive); err != nil {
			return m, &LifeboatError{err}
		}
		if err := move.CheckLifeboat(m.Runner.Dir); err != nil {
			return m, &LifeboatError{err}
		}
		return m, nil
	}
	if m.Runner.Old, m.Old, err = side(a.From); err != nil {
		return m, err
	}
	dir := a.Dir
	if dir == "" {
		dir = move.DefaultDir(a.DataDir, m.Runner.Old.Handle, nw.Handle)
	}
	m.Runner.Dir, err = filepath.Abs(dir)
	return m, err
}
