package archive

import (
	"context"
	"fmt"
	"path/filepath"
)

// Indexer rebuilds a search index over the archive directory dir and
// returns how many posts it holds. sources/archive.Reindex is one; the
// archive writer takes it as a parameter because sinks do not import
// sources.
type Indexer func(ctx context.Context, dir string) (int, error)

// UpdateOptions describe one `ferry archive` run: bring the archive in Dir
// up to date, index it, and optionally write it as a zip file.
type UpdateOptions struct {
	// Options configure the fetch (client, cursors, account, refresh …).
	Options
	// Dir is the archive directory; a relative path is made absolute.
	Dir string
	// Index, when not nil, rebuilds the search index after the run.
	Index Indexer
	// Zip, when not empty, is a zip file the archive is also written to.
	Zip string
}

// UpdateResult is what Update did: the run's Summary, how many posts the
// search index holds and the zip file written.
type UpdateResult struct {
	Summary
	Indexed int    `json:"indexed"`
	Zip     string `json:"zip,omitempty"`
}

// Update opens (or creates) the archive in o.Dir, runs Run on it, rebuilds
// its search index with o.Index and writes o.Zip. Media files that could not
// be downloaded do not fail it: they are listed in the result's MediaFailed
// and the next run tries again. On error the result holds what was done.
func Update(ctx context.Context, o UpdateOptions) (UpdateResult, error) {
	var res UpdateResult
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return res, fmt.Errorf("archive directory %q: %w", o.Dir, err)
	}
	store, err := OpenStore(ctx, dir)
	if err != nil {
		return res, err
	}
	defer store.Close()
	res.Summary, err = Run(ctx, store, o.Options)
	if err != nil {
		return res, fmt.Errorf("archive %s: %w", o.Account, err)
	}
	if o.Index != nil {
		if res.Indexed, err = o.Index(ctx, dir); err != nil {
			return res, err
		}
	}
	if o.Zip != "" {
		if err := Zip(ctx, dir, o.Zip); err != nil {
			return res, err
		}
		res.Zip = o.Zip
	}
	return res, nil
}
