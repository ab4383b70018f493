package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/fedi-ferry/ferry/migrate"
	sinkarchive "github.com/fedi-ferry/ferry/sinks/archive"
	srcarchive "github.com/fedi-ferry/ferry/sources/archive"
)

// ArchiveOptions are the options of an archive run of the account
// handle (Archiver.Update; the session supplies the connection): cursors
// in ferry's store, the search index of sources/archive, and the rest as
// given.
func ArchiveOptions(handle string, cursors sinkarchive.CursorStore, dir string, refresh bool, mediaWorkers int, zip string, log *slog.Logger) sinkarchive.UpdateOptions {
	return sinkarchive.UpdateOptions{
		Options: sinkarchive.Options{Cursors: cursors, Account: handle, Refresh: refresh,
			MediaWorkers: mediaWorkers, Logger: log},
		Dir: dir, Index: srcarchive.Reindex, Zip: zip,
	}
}

// BackupOptions say what a backup job ([[backup]]) saves.
type BackupOptions struct {
	// Graph, when not empty, is the directory the social graph is
	// exported to (GraphPorter).
	Graph string
	// Archive, when not empty, is the archive directory (Archiver).
	Archive string
	// Cursors keep where the archive's last run stopped.
	Cursors sinkarchive.CursorStore
	Log     *slog.Logger
}

// BackupResult is what one backup job did: the graph export's files and
// the archive run, each nil when the job has no such part or the part
// failed before it produced anything.
type BackupResult struct {
	Graph   []migrate.ExportResult    `json:"graph,omitempty"`
	Archive *sinkarchive.UpdateResult `json:"archive,omitempty"`
}

// Backup runs a backup job for sess's account: the graph export into
// o.Graph and the archive into o.Archive, as `ferry export` and `ferry
// archive` do (incremental, resumable). The two parts are independent:
// one failing does not keep the other from running; the error joins both.
// Media files the archive could not download fail the job (the next run
// retries them), as they make `ferry archive` exit with a partial failure.
// An account whose platform lacks a part's role fails before either runs.
func Backup(ctx context.Context, sess Session, o BackupOptions) (BackupResult, error) {
	var res BackupResult
	acct := sess.Account()
	gp, canExport := sess.(GraphPorter)
	if o.Graph != "" && !canExport {
		return res, NoRole(acct, "export the social graph")
	}
	arc, canArchive := sess.(Archiver)
	if o.Archive != "" && !canArchive {
		return res, NoRole(acct, "archive posts")
	}
	var errs []error
	if o.Graph != "" {
		out, err := gp.Export(ctx, migrate.ExportOptions{Dir: o.Graph, Log: o.Log})
		res.Graph = out
		if err != nil {
			errs = append(errs, fmt.Errorf("graph export: %w", AuthHint(err, acct)))
		}
	}
	if o.Archive != "" {
		out, err := arc.Update(ctx, ArchiveOptions(acct.Handle, o.Cursors, o.Archive, false, 4, "", o.Log))
		res.Archive = &out
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("archive: %w", AuthHint(err, acct)))
		case len(out.MediaFailed) > 0:
			errs = append(errs, fmt.Errorf("archive %s: %d media files could not be downloaded; the next run retries them", acct.Handle, len(out.MediaFailed)))
		}
	}
	return res, errors.Join(errs...)
}
