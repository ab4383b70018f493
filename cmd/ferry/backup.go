package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/fedi-ferry/ferry/config"
	"github.com/fedi-ferry/ferry/migrate"
	"github.com/fedi-ferry/ferry/platform"
	sinkarchive "github.com/fedi-ferry/ferry/sinks/archive"
	"github.com/fedi-ferry/ferry/state"
)

// BackupResult is what one [[backup]] job did: the graph export's files
// and the archive run, each nil when the job has no such part or the part
// failed before it produced anything.
type BackupResult struct {
	Graph   []migrate.ExportResult    `json:"graph,omitempty"`
	Archive *sinkarchive.UpdateResult `json:"archive,omitempty"`
}

// runBackupJob runs a [[backup]] job: the graph export into b.Graph and the
// archive of b.Account into b.Archive, as `ferry export` and `ferry
// archive` do (incremental, resumable), with the daemon's database st and
// logger. The two parts are independent: one failing does not keep the
// other from running; the error joins both. Media files the archive could
// not download fail the job (the next run retries them), as they make
// `ferry archive` exit with a partial failure.
func runBackupJob(ctx context.Context, g *globalOptions, st *state.Store, b config.BackupSpec) (BackupResult, error) {
	var res BackupResult
	acct, err := account(ctx, st, b.Account)
	if err != nil {
		return res, err
	}
	sess, err := g.session(acct)
	if err != nil {
		return res, err
	}
	var errs []error
	if b.Graph != "" {
		gp, ok := sess.(platform.GraphPorter)
		if !ok {
			return res, noRole(acct, "export the social graph")
		}
		out, err := gp.Export(ctx, migrate.ExportOptions{Dir: b.Graph, Log: g.log})
		res.Graph = out
		if err != nil {
			errs = append(errs, fmt.Errorf("graph export: %w", authHint(err, acct)))
		}
	}
	if b.Archive != "" {
		arc, ok := sess.(platform.Archiver)
		if !ok {
			return res, noRole(acct, "archive posts")
		}
		out, err := arc.Update(ctx, archiveRunOptions(g, st, acct, archiveOptions{Out: b.Archive, MediaWorkers: 4}))
		res.Archive = &out
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("archive: %w", authHint(err, acct)))
		case len(out.MediaFailed) > 0:
			errs = append(errs, fmt.Errorf("archive %s: %d media files could not be downloaded; the next run retries them", acct.Handle, len(out.MediaFailed)))
		}
	}
	return res, errors.Join(errs...)
}
