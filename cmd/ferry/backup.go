package main

import (
	"context"

	"github.com/fedi-ferry/ferry/config"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/state"
)

// runBackupJob runs a [[backup]] job (platform.Backup) with the daemon's
// database st and logger.
func runBackupJob(ctx context.Context, g *globalOptions, st *state.Store, b config.BackupSpec) (platform.BackupResult, error) {
	acct, err := platform.LookupAccount(ctx, st, b.Account)
	if err != nil {
		return platform.BackupResult{}, err
	}
	sess, err := g.session(acct)
	if err != nil {
		return platform.BackupResult{}, err
	}
	return platform.Backup(ctx, sess, platform.BackupOptions{Graph: b.Graph, Archive: b.Archive, Cursors: st, Log: g.log})
}
