// Package bskygraph exports and imports a Bluesky account's social graph:
// follows, blocks, lists and mutes, in the CSV files of package migrate
// (the same file names; each row names the account by its handle and its
// DID), with migrate's plan → journal → apply, dry run, report and
// failures files.
//
// Follows, blocks, lists and list members are records of the account's own
// repository (app.bsky.graph.follow, .block, .list, .listitem), read with
// listRecords and written with createRecord at a record key frozen in the
// plan, so a retried write cannot make a second record. Mutes are not
// records: they are private state of the Bluesky app view, reached through
// the PDS (app.bsky.graph.getMutes, muteActor). When the PDS cannot reach
// an app view, the export says so instead of writing a file, and the
// import reports every mute row as a failure with that reason. Followers
// (the app view's index of other repositories), domain blocks (Bluesky has
// none) and bookmarks (app-view state with no public export) are not
// exported; their rows are reported when imported.
//
// Fediverse rows (user@host) are followed through Bridgy Fed (package
// bridgy): @bob@example.social is bob.example.social.ap.brid.gy on Bluesky,
// and a row whose bridged handle does not resolve lands in the failures
// file saying the account is not bridged.
package bskygraph

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"golang.org/x/sync/errgroup"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/migrate"
)

// The repository collections of the graph.
const (
	FollowCollection   = "app.bsky.graph.follow"
	BlockCollection    = "app.bsky.graph.block"
	ListCollection     = "app.bsky.graph.list"
	ListItemCollection = "app.bsky.graph.listitem"
)

// Reasons for the types Bluesky has no export or import of.
const (
	noFollowers    = "Bluesky's followers are the app view's index of other accounts' repositories; they cannot be exported from a PDS or imported"
	noDomainBlocks = "Bluesky has no domain blocks"
	noBookmarks    = "Bluesky's bookmarks are private app-view state ferry cannot carry"
)

// Handles finds the handle of a DID, for the export's Account address
// column (atproto.Resolver.DeclaredHandle).
type Handles func(ctx context.Context, did string) (string, error)

// ExportOptions describe one export.
type ExportOptions struct {
	// Client is the account's client.
	Client *atproto.Client
	// Dir receives the files; it is created if needed.
	Dir string
	// Types to export; empty means all of migrate.AllTypes.
	Types []migrate.Type
	// Handles names the accounts; nil leaves the address empty, and the
	// DID alone names the account.
	Handles Handles
	Log     *slog.Logger
}

// Export writes the account's follows, blocks, lists and mutes into
// o.Dir: following_accounts.csv, blocked_accounts.csv, muted_accounts.csv
// (header "Account address,DID") and lists.csv ("List name,Account
// address,DID"). Each file is written under a temporary name and renamed,
// so a failed run leaves the previous file. A type Bluesky or this PDS
// cannot export gets no file and its result says why.
func Export(ctx context.Context, o ExportOptions) ([]migrate.ExportResult, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	types := o.Types
	if len(types) == 0 {
		types = migrate.AllTypes()
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("export: create %s: %w", o.Dir, err)
	}
	names := &namer{handles: o.Handles, cache: map[string]string{}}
	var out []migrate.ExportResult
	for _, t := range types {
		res := migrate.ExportResult{Type: t}
		var fill func(w *csv.Writer) (int, error)
		switch t {
		case migrate.Following:
			fill = func(w *csv.Writer) (int, error) { return exportSubjects(ctx, o.Client, FollowCollection, names, w) }
		case migrate.Blocks:
			fill = func(w *csv.Writer) (int, error) { return exportSubjects(ctx, o.Client, BlockCollection, names, w) }
		case migrate.Lists:
			fill = func(w *csv.Writer) (int, error) { return exportLists(ctx, o.Client, names, w) }
		case migrate.Mutes:
			fill = func(w *csv.Writer) (int, error) { return exportMutes(ctx, o.Client, w) }
		case migrate.Followers:
			res.Unsupported = noFollowers
		case migrate.DomainBlocks:
			res.Unsupported = noDomainBlocks
		case migrate.Bookmarks:
			res.Unsupported = noBookmarks
		default:
			return out, fmt.Errorf("export: unknown type %q", t)
		}
		if fill != nil {
			path := filepath.Join(o.Dir, t.FileName())
			err := migrate.WriteAtomic(path, func(f *os.File) error {
				w := csv.NewWriter(f)
				if t == migrate.Lists {
					_ = w.Write([]string{"List name", "Account address", "DID"})
				} else {
					_ = w.Write([]string{"Account address", "DID"})
				}
				n, err := fill(w)
				res.Rows = n
				if err != nil {
					return err
				}
				w.Flush()
				return w.Error()
			})
			var av *appViewError
			switch {
			case err == nil:
				res.File = path
			case errors.As(err, &av):
				res.Unsupported, res.Rows = av.Error(), 0
			default:
				return out, fmt.Errorf("export %s of %s: %w", t, o.Client.DID(), err)
			}
		}
		o.Log.Info("exported", "type", t, "rows", res.Rows, "file", res.File, "unsupported", res.Unsupported)
		out = append(out, res)
	}
	return out, nil
}

// namer finds and remembers the handles of DIDs.
type namer struct {
	handles Handles
	mu      sync.Mutex
	cache   map[string]string
}

// lookups is how many DID documents are looked up at once.
const lookups = 8

// prefetch looks up the handles of dids not known yet, lookups at a time:
// one request per DID is the slow part of an export.
func (n *namer) prefetch(ctx context.Context, dids []string) {
	if n.handles == nil {
		return
	}
	var g errgroup.Group
	g.SetLimit(lookups)
	for _, did := range dids {
		n.mu.Lock()
		_, known := n.cache[did]
		if !known {
			n.cache[did] = "" // claimed: looked up once
		}
		n.mu.Unlock()
		if known {
			continue
		}
		g.Go(func() error {
			h, err := n.handles(ctx, did)
			if err != nil {
				h = "" // the DID alone names the account
			}
			n.mu.Lock()
			n.cache[did] = h
			n.mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
}

func (n *namer) name(did string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cache[did]
}

// eachRecord calls fn with every record of collection, oldest first.
func eachRecord(ctx context.Context, c *atproto.Client, collection string, fn func(atproto.Record) error) error {
	cursor := ""
	for {
		recs, next, err := c.ListRecords(ctx, collection, cursor, 100, true)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		if next == "" || len(recs) == 0 {
			return nil
		}
		cursor = next
	}
}

// subjectOf is the subject DID of a follow or block record.
func subjectOf(r atproto.Record) string {
	switch v := r.Value.(type) {
	case *bsky.GraphFollow:
		return v.Subject
	case *bsky.GraphBlock:
		return v.Subject
	}
	return ""
}

func exportSubjects(ctx context.Context, c *atproto.Client, collection string, names *namer, w *csv.Writer) (int, error) {
	var dids []string
	seen := map[string]bool{}
	err := eachRecord(ctx, c, collection, func(r atproto.Record) error {
		if did := subjectOf(r); did != "" && !seen[did] {
			// Records of another shape and second follows of one account
			// are left out.
			seen[did] = true
			dids = append(dids, did)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	names.prefetch(ctx, dids)
	for _, did := range dids {
		if err := w.Write([]string{names.name(did), did}); err != nil {
			return 0, err
		}
	}
	return len(dids), ctx.Err()
}

func exportLists(ctx context.Context, c *atproto.Client, names *namer, w *csv.Writer) (int, error) {
	lists := map[string]string{} // list URI → name
	if err := eachRecord(ctx, c, ListCollection, func(r atproto.Record) error {
		if l, ok := r.Value.(*bsky.GraphList); ok {
			lists[r.URI] = l.Name
		}
		return nil
	}); err != nil {
		return 0, err
	}
	type member struct{ list, did string }
	var members []member
	var dids []string
	err := eachRecord(ctx, c, ListItemCollection, func(r atproto.Record) error {
		it, ok := r.Value.(*bsky.GraphListitem)
		if !ok {
			return nil
		}
		name, ok := lists[it.List]
		if !ok {
			return nil // an item of a deleted list
		}
		members = append(members, member{name, it.Subject})
		dids = append(dids, it.Subject)
		return nil
	})
	if err != nil {
		return 0, err
	}
	names.prefetch(ctx, dids)
	for _, m := range members {
		if err := w.Write([]string{m.list, names.name(m.did), m.did}); err != nil {
			return 0, err
		}
	}
	return len(members), ctx.Err()
}

// appViewError is a mute call the PDS could not serve: mutes live in the
// app view.
type appViewError struct{ err error }

func (e *appViewError) Error() string {
	return fmt.Sprintf("Bluesky keeps mutes in its app view, not in the account's repository, and this PDS could not reach an app view: %v", e.err)
}
func (e *appViewError) Unwrap() error { return e.err }

func exportMutes(ctx context.Context, c *atproto.Client, w *csv.Writer) (int, error) {
	n := 0
	cursor := ""
	for {
		out, err := bsky.GraphGetMutes(ctx, c, cursor, 100)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, atproto.ErrAuth) {
				return n, err
			}
			return n, &appViewError{err}
		}
		for _, m := range out.Mutes {
			if _, err := syntax.ParseDID(m.Did); err != nil {
				continue
			}
			n++
			if err := w.Write([]string{m.Handle, m.Did}); err != nil {
				return n, err
			}
		}
		if out.Cursor == nil || *out.Cursor == "" || len(out.Mutes) == 0 {
			return n, nil
		}
		cursor = *out.Cursor
	}
}
