package migrate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/fedi-ferry/ferry/fedi"
)

// ExportOptions describe one export.
type ExportOptions struct {
	Client *fedi.Client
	// API, when not nil, is used instead of Client: another platform's
	// server in the Mastodon API's terms (see API).
	API API
	// Dir receives the files; it is created if needed.
	Dir string
	// Types to export; empty means all.
	Types []Type
	Log   *slog.Logger
}

// ExportResult is what Export wrote for one type.
type ExportResult struct {
	Type Type   `json:"type"`
	File string `json:"file,omitempty"` // empty when nothing was written
	Rows int    `json:"rows"`
	// Unsupported says why no file was written although the type was
	// asked for (the server has no such feature).
	Unsupported string `json:"unsupported,omitempty"`
	// Untrustworthy, when set, says why the file is likely incomplete: the
	// server's list disagrees with its own relationships (a stub list).
	Untrustworthy string `json:"untrustworthy,omitempty"`
}

// Export writes the account's graph as Mastodon-format CSV files into
// o.Dir, one per type, paging through the API with flat memory. Each file is
// written to a temporary name and renamed, so a re-run replaces it
// atomically and a failed run leaves the previous file. When the server
// lacks an endpoint (GoToSocial has no user-level domain blocks) no file is
// written for the type and the result says so, rather than an empty file
// that would read as "nothing".
func Export(ctx context.Context, o ExportOptions) ([]ExportResult, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	types := o.Types
	if len(types) == 0 {
		types = AllTypes()
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("export: create %s: %w", o.Dir, err)
	}
	api := apiOf(o.API, o.Client)
	if api == nil {
		return nil, errors.New("export: no client")
	}
	me, err := api.VerifyCredentials(ctx)
	if err != nil {
		return nil, err
	}
	host := api.Host()
	seen := newSeenAccounts()
	var out []ExportResult
	for _, t := range types {
		res := ExportResult{Type: t}
		path := filepath.Join(o.Dir, t.FileName())
		err := WriteAtomic(path, func(f *os.File) error {
			w := NewWriter(f, t)
			n, err := exportType(ctx, api, me, host, t, w, seen)
			res.Rows = n
			if err != nil {
				return err
			}
			return w.Flush()
		})
		switch {
		case err == nil:
			res.File = path
		case t == DomainBlocks && fedi.IsNotFound(err):
			res.Unsupported = "this server has no user-level domain blocks"
		case fedi.IsMissingEndpoint(err):
			// A server without the API (snac2's mutes): say so once
			// instead of failing the export or writing an empty file.
			res.Unsupported = strings.TrimPrefix(noFeature(t), noFeaturePrefix)
			res.Unsupported = "this server has " + res.Unsupported
		default:
			return out, fmt.Errorf("export %s of %s: %w", t, me.Acct, err)
		}
		o.Log.Info("exported", "type", t, "rows", res.Rows, "file", res.File)
		out = append(out, res)
	}
	if err := crossCheck(ctx, api, seen, out); err != nil {
		// The files are written; the check only warns.
		o.Log.Warn("could not cross-check the block and mute lists", "err", err)
	}
	return out, nil
}

func exportType(ctx context.Context, c API, me fedi.Account, host string, t Type, w *Writer, seen *seenAccounts) (int, error) {
	n := 0
	acct := func(a fedi.Account) string { seen.add(t, a); return accountKeyCase(a.Acct, host) }
	switch t {
	case Following, Mutes:
		// The settings (boosts, notify, languages; hidden notifications)
		// are in the relationships: one more request per page.
		page := func(accts []fedi.Account) error {
			ids := make([]string, len(accts))
			for i, a := range accts {
				ids[i] = a.ID
			}
			rels, err := c.Relationships(ctx, ids)
			if err != nil {
				return err
			}
			byID := map[string]fedi.Relationship{}
			for _, r := range rels {
				byID[r.ID] = r
			}
			for _, a := range accts {
				rel, ok := byID[a.ID]
				r := Row{Type: t, Account: acct(a)}
				if ok {
					r.ShowBoosts, r.Notify, r.Languages = &rel.ShowingReblogs, &rel.Notifying, rel.Languages
					r.HideNotifications = &rel.MutingNotifications
				}
				w.Write(r)
				n++
			}
			return nil
		}
		if t == Following {
			return n, c.Following(ctx, me.ID, page)
		}
		return n, c.Mutes(ctx, page)
	case Followers, Blocks:
		page := func(accts []fedi.Account) error {
			for _, a := range accts {
				w.Write(Row{Type: t, Account: acct(a)})
				n++
			}
			return nil
		}
		if t == Followers {
			return n, c.Followers(ctx, me.ID, page)
		}
		return n, c.Blocks(ctx, page)
	case DomainBlocks:
		return n, c.DomainBlocks(ctx, func(ds []string) error {
			for _, d := range ds {
				w.Write(Row{Type: t, Domain: d})
				n++
			}
			return nil
		})
	case Bookmarks:
		return n, c.Bookmarks(ctx, func(ss []fedi.StatusRef) error {
			for _, s := range ss {
				w.Write(Row{Type: t, URI: s.URI})
				n++
			}
			return nil
		})
	case Lists:
		ls, err := c.Lists(ctx)
		if err != nil {
			return 0, err
		}
		for _, l := range ls {
			if err := c.ListMembers(ctx, l.ID, func(accts []fedi.Account) error {
				for _, a := range accts {
					w.Write(Row{Type: t, List: l.Title, Account: acct(a)})
					n++
				}
				return nil
			}); err != nil {
				return n, err
			}
		}
		return n, nil
	}
	return 0, fmt.Errorf("unknown type %q", t)
}

// accountKeyCase is user@domain for an address a server wrote, keeping the
// username's case (Mastodon writes local accounts as user@local_domain).
func accountKeyCase(acct, localHost string) string {
	acct = strings.TrimPrefix(acct, "@")
	if !strings.Contains(acct, "@") {
		acct += "@" + localHost
	}
	return acct
}

// WriteAtomic writes path through a temporary file in the same directory
// (created 0600 by os.CreateTemp) and renames it into place only when fill
// succeeded, so a reader never sees half a file and a failed export
// leaves the previous one.
func WriteAtomic(path string, fill func(*os.File) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chmod(f.Name(), 0o600); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// WriteFailures writes <type>_failures.csv into dir for every type with
// failures in rep, removes that file for every type rep counts without
// failures, and returns the files written.
func WriteFailures(dir string, rep *Report) ([]string, error) {
	byType := map[Type][]Failure{}
	for _, f := range rep.Failures {
		byType[f.Type] = append(byType[f.Type], f)
	}
	var files []string
	for _, t := range AllTypes() {
		rows := byType[t]
		path := filepath.Join(dir, string(t)+"_failures.csv")
		if len(rows) == 0 {
			if _, imported := rep.Types[t]; imported {
				// An earlier run's failures of this type were fixed (or
				// retried): its file would send the person after rows
				// that are now applied.
				if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return files, fmt.Errorf("remove %s: %w", path, err)
				}
			}
			continue
		}
		err := WriteAtomic(path, func(f *os.File) error {
			fw := NewFailureWriter(f, t)
			for _, fl := range rows {
				if fl.raw != nil {
					fw.WriteRaw(fl.raw)
					continue
				}
				r := fl.Row
				r.Pos = Pos{File: fl.Source}
				fw.Write(r, fl.Reason)
			}
			return fw.Flush()
		})
		if err != nil {
			return files, fmt.Errorf("write %s: %w", path, err)
		}
		files = append(files, path)
	}
	return files, nil
}
