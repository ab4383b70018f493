package bluesky

import (
	"context"
	"fmt"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/bskyarchive"
	"github.com/fedi-ferry/ferry/migrate"
	"github.com/fedi-ferry/ferry/migrate/bskygraph"
	"github.com/fedi-ferry/ferry/migrate/pdsmove"
	sinkarchive "github.com/fedi-ferry/ferry/sinks/archive"
)

// resolver looks up DID documents in the platform's PLC directory.
func (s *Session) resolver() atproto.Resolver {
	return atproto.Resolver{PLCURL: s.plc, HTTPClient: s.opts.HTTPClient}
}

// Export writes the account's follows, blocks, lists and mutes
// (package migrate/bskygraph), naming each account by the handle its DID
// document declares and by its DID. o.Client is unused.
func (s *Session) Export(ctx context.Context, o migrate.ExportOptions) ([]migrate.ExportResult, error) {
	r := s.resolver()
	res, err := bskygraph.Export(ctx, bskygraph.ExportOptions{Client: s.c, Dir: o.Dir, Types: o.Types, Log: o.Log,
		Handles: r.DeclaredHandle})
	return res, authError(err)
}

// ImportFiles plans, journals and applies a graph import onto the account
// (package migrate/bskygraph): handles are resolved by the account's PDS,
// DIDs checked in the PLC directory, fediverse addresses followed through
// Bridgy Fed. o.Client, Software, Method and Concurrency are the
// fediverse importer's and unused.
func (s *Session) ImportFiles(ctx context.Context, o migrate.ImportFilesOptions) (migrate.ImportFilesResult, error) {
	if o.Account == "" {
		o.Account = s.acct.Handle
	}
	r := s.resolver()
	res, err := bskygraph.ImportFiles(ctx, bskygraph.ImportOptions{ImportOptions: o.ImportOptions, PDS: s.c,
		FailuresDir: o.FailuresDir,
		CheckDID: func(ctx context.Context, did string) error {
			if _, err := r.DeclaredHandle(ctx, did); err != nil {
				return fmt.Errorf("its DID document does not resolve: %w", err)
			}
			return nil
		}})
	return res, authError(err)
}

// PDSMoveOptions are the options of a move of the account to another PDS
// (package migrate/pdsmove) this session supplies: the account's client on
// its current PDS, the HTTP client, the user agent and the PLC directory.
func (s *Session) PDSMoveOptions() pdsmove.Options {
	return pdsmove.Options{Old: s.c, HTTP: s.opts.HTTPClient, UserAgent: s.opts.UserAgent, PLCURL: s.plc, Log: s.log}
}

// Update brings the archive in o.Dir up to date with the account
// (package bskyarchive): the repository's CAR file, its blobs, and its
// posts in ferry's archive layout.
func (s *Session) Update(ctx context.Context, o sinkarchive.UpdateOptions) (sinkarchive.UpdateResult, error) {
	if o.Account == "" {
		o.Account = s.acct.Handle
	}
	res, err := bskyarchive.Update(ctx, bskyarchive.Options{UpdateOptions: o, Client: s.c})
	return res, authError(err)
}
