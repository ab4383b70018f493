package platform

import (
	"context"
	"fmt"
	"log/slog"
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
	return publish.RunOptions{
		Options: po, Account: acct.Handle,
		Server:  publish.Server{Software: srv.Software, Version: srv.Version, Limits: srv.Limits},
		Sink:    so.Sink(),
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
		Replay: migrate.ImportOptions{Client: r.New.Client, Account: nw.Handle, Software: nw.Software,
			Method: o.Method, Journal: o.Journal, Progress: o.Progress, Log: o.Log}}
	if old := r.Old; old != nil {
		mig.Graph = migrate.ExportOptions{Client: old.Client, Log: o.Log}
		mig.Archive = ArchiveOptions(o.Old.Account().Handle, o.Journal, "", false, 4, "", o.Log)
		mig.Archive.Client = old.Client
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
