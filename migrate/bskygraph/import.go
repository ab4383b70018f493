package bskygraph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/bridgy"
	"github.com/fedi-ferry/ferry/journal"
	"github.com/fedi-ferry/ferry/migrate"
)

// JobKind is the journal kind of Bluesky graph imports.
const JobKind = "bsky-graph-import"

// Plan steps, in the order they are applied.
const (
	stepFollow     = "follow"
	stepList       = "list"
	stepListAdd    = "list-add"
	stepBlock      = "block"
	stepMute       = "mute"
	stepUnfollow   = "unfollow"
	stepListRemove = "list-remove"
	stepUnblock    = "unblock"
	stepUnmute     = "unmute"
	stepUnsupport  = "unsupported"
)

// Resolve finds the DID of a handle. An error means the handle names no
// account (or cannot be looked up now).
type Resolve func(ctx context.Context, handle string) (string, error)

// ImportOptions describe one import onto a Bluesky account. From
// migrate.ImportOptions it uses Account, Files, Mode, DryRun, Confirmed,
// Fresh, Journal, Progress and Log; Client, Software, Method,
// Concurrency and VerifyTimeout are the fediverse importer's.
type ImportOptions struct {
	migrate.ImportOptions
	// PDS is the importing account's client.
	PDS *atproto.Client
	// Resolve finds the DIDs of handles; nil asks the account's PDS
	// (com.atproto.identity.resolveHandle).
	Resolve Resolve
	// CheckDID, when not nil, checks that a DID given by a file names an
	// account (its DID document resolves); nil trusts the file.
	CheckDID func(ctx context.Context, did string) error
	// FailuresDir receives <type>_failures.csv (required unless DryRun).
	FailuresDir string
}

// payload is what the journal keeps for one item.
type payload struct {
	Type   migrate.Type `json:"type"`
	Source string       `json:"source,omitempty"`
	// Entry is the account as the file named it (a handle, a fediverse
	// address, a DID), or "list: account" for list members.
	Entry string `json:"entry"`
	// DID is the account the item acts on; RKey the record written or
	// removed.
	DID  string `json:"did,omitempty"`
	RKey string `json:"rkey,omitempty"`
	// List is the list's name; ListURI its record.
	List    string `json:"list,omitempty"`
	ListURI string `json:"list_uri,omitempty"`
	Note    string `json:"note,omitempty"`
}

// ImportFiles plans, journals and applies o.Files onto the account (Import)
// and writes the rows it could not apply into <type>_failures.csv in
// o.FailuresDir (migrate.WriteFailures), as migrate.ImportFiles does for a
// fediverse account; the errors are the same (migrate.ErrNeedsConfirmation,
// *migrate.RowsFailedError, a stop before the end).
func ImportFiles(ctx context.Context, o ImportOptions) (migrate.ImportFilesResult, error) {
	rep, err := Import(ctx, o)
	res := migrate.ImportFilesResult{Report: rep}
	if rep == nil || errors.Is(err, migrate.ErrNeedsConfirmation) {
		return res, err
	}
	if !o.DryRun {
		files, werr := migrate.WriteFailures(o.FailuresDir, rep)
		res.FailureFiles = files
		if werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if err != nil {
		return res, err
	}
	if n := rep.FailedRows(); n > 0 && !o.DryRun {
		return res, &migrate.RowsFailedError{Rows: n, Files: res.FailureFiles}
	}
	return res, nil
}

// Import plans the rows of o.Files against what the account has, freezes
// the plan in the journal and applies it item by item. Killed at any
// point, the same call resumes: a record is written at the key frozen in
// the plan, so a write retried after a lost answer finds it there. Rows
// that cannot be applied are failures in the report, not errors.
func Import(ctx context.Context, o ImportOptions) (*migrate.Report, error) {
	if o.Mode == "" {
		o.Mode = migrate.Merge
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.PDS == nil || (o.Journal == nil && !o.DryRun) {
		return nil, errors.New("import: a client and a journal are required")
	}
	if o.Resolve == nil {
		c := o.PDS
		o.Resolve = func(ctx context.Context, h string) (string, error) {
			hd, err := syntax.ParseHandle(h)
			if err != nil {
				return "", err
			}
			did, err := c.ResolveHandle(ctx, hd)
			return did.String(), err
		}
	}
	rep := &migrate.Report{Account: o.Account, Method: "api", Mode: o.Mode, DryRun: o.DryRun, Types: map[migrate.Type]*migrate.Counts{}}
	for _, f := range o.Files {
		counts(rep, f.Type)
		for _, e := range f.Errors {
			rep.Failures = append(rep.Failures, migrate.Failure{Type: f.Type, Source: e.Pos.String(), Entry: e.Raw, Reason: e.Reason,
				Row: migrate.Row{Type: f.Type, Account: e.Raw, List: e.Raw}})
			counts(rep, f.Type).Failed++
		}
	}
	if o.DryRun {
		items, notes, err := plan(ctx, o)
		if err != nil {
			return nil, err
		}
		rep.Notes = append(rep.Notes, notes...)
		for _, it := range items {
			rep.Plan = append(rep.Plan, planEntry(it))
		}
		summarize(rep, items)
		rep.Removals = removals(items)
		return rep, nil
	}

	key := jobKey(o)
	params, _ := json.Marshal(map[string]any{"mode": o.Mode})
	newJob := journal.Job{Kind: JobKind, Key: key, Account: o.Account, Params: string(params)}
	job, created, err := o.Journal.CreateJob(ctx, newJob)
	if err != nil {
		return nil, fmt.Errorf("import into %s: %w", o.Account, err)
	}
	if !created && job.Status == journal.JobDone && o.Fresh {
		if err := o.Journal.DeleteJob(ctx, job.ID); err != nil {
			return nil, fmt.Errorf("import into %s: start afresh: %w", o.Account, err)
		}
		if job, _, err = o.Journal.CreateJob(ctx, newJob); err != nil {
			return nil, fmt.Errorf("import into %s: %w", o.Account, err)
		}
		created = true
	}
	rep.JobID = job.ID
	switch job.Status {
	case journal.JobDone:
		rep.Finished = true
		rep.Notes = append(rep.Notes, fmt.Sprintf("this import already finished on %s; nothing was done (use --fresh to run it again)",
			job.UpdatedAt.Local().Format(time.DateTime)))
	case journal.JobPlanning:
		items, notes, err := plan(ctx, o)
		if err != nil {
			return nil, err
		}
		rep.Notes = append(rep.Notes, notes...)
		if rm := removals(items); len(rm) > 0 && !o.Confirmed {
			rep.Removals = rm
			summarize(rep, items)
			_ = o.Journal.DeleteJob(context.WithoutCancel(ctx), job.ID)
			return rep, migrate.ErrNeedsConfirmation
		}
		if err := o.Journal.FreezePlan(ctx, job.ID, items); err != nil {
			return nil, fmt.Errorf("import into %s: %w", o.Account, err)
		}
		o.Log.Info("plan frozen", "account", o.Account, "job", job.ID, "items", len(items))
	default:
		rep.Resumed = !created
		o.Log.Info("resuming import", "account", o.Account, "job", job.ID)
	}
	if job.Status != journal.JobDone {
		if err := apply(ctx, o, job); err != nil {
			if ferr := fillReport(ctx, o.Journal, job.ID, rep); ferr != nil {
				return nil, errors.Join(err, ferr)
			}
			return rep, err
		}
		if err := o.Journal.UpdateJob(ctx, job.ID, journal.JobDone, ""); err != nil {
			return nil, fmt.Errorf("import into %s: %w", o.Account, err)
		}
	}
	if err := fillReport(ctx, o.Journal, job.ID, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// jobKey identifies an import by its account, mode and rows, so that the
// same command resumes it.
func jobKey(o ImportOptions) string {
	h := sha256.New()
	fmt.Fprintf(h, "bsky\x00%s\x00%s\n", o.Account, o.Mode)
	files := append([]migrate.Parsed(nil), o.Files...)
	sort.SliceStable(files, func(i, j int) bool { return files[i].Type < files[j].Type })
	for _, f := range files {
		for _, r := range f.Rows {
			b, _ := json.Marshal(struct {
				R migrate.Row
				F string
			}{r, r.Pos.File})
			h.Write(b)
			h.Write([]byte{'\n'})
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func counts(rep *migrate.Report, t migrate.Type) *migrate.Counts {
	c := rep.Types[t]
	if c == nil {
		c = &migrate.Counts{}
		rep.Types[t] = c
	}
	return c
}

// state is what the account has now.
type state struct {
	follows, blocks map[string]string            // subject DID → rkey
	lists           map[string]string            // name → list URI
	items           map[string]map[string]string // list URI → subject DID → rkey
	mutes           map[string]bool              // muted DIDs
	mutesErr        error                        // why mutes cannot be read or written here
}

func readState(ctx context.Context, c *atproto.Client, wantMutes bool) (*state, error) {
	s := &state{follows: map[string]string{}, blocks: map[string]string{}, lists: map[string]string{},
		items: map[string]map[string]string{}, mutes: map[string]bool{}}
	for coll, m := range map[string]map[string]string{FollowCollection: s.follows, BlockCollection: s.blocks} {
		if err := eachRecord(ctx, c, coll, func(r atproto.Record) error {
			if d := subjectOf(r); d != "" {
				if _, dup := m[d]; !dup {
					m[d] = r.RKey
				}
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if err := eachRecord(ctx, c, ListCollection, func(r atproto.Record) error {
		if l, ok := r.Value.(*bsky.GraphList); ok {
			if _, dup := s.lists[l.Name]; !dup {
				s.lists[l.Name] = r.URI
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := eachRecord(ctx, c, ListItemCollection, func(r atproto.Record) error {
		if it, ok := r.Value.(*bsky.GraphListitem); ok {
			if s.items[it.List] == nil {
				s.items[it.List] = map[string]string{}
			}
			s.items[it.List][it.Subject] = r.RKey
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if wantMutes {
		cursor := ""
		for {
			out, err := bsky.GraphGetMutes(ctx, c, cursor, 100)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, atproto.ErrAuth) {
					return nil, err
				}
				s.mutesErr = &appViewError{err}
				break
			}
			for _, m := range out.Mutes {
				s.mutes[m.Did] = true
			}
			if out.Cursor == nil || *out.Cursor == "" || len(out.Mutes) == 0 {
				break
			}
			cursor = *out.Cursor
		}
	}
	return s, nil
}

// planner builds the items of a plan.
type planner struct {
	o        ImportOptions
	items    []journal.Item
	keys     map[string]bool
	now      time.Time
	seq      int64
	clock    uint
	resolved map[string]resolved
}

type resolved struct {
	did, why string
}

func (p *planner) add(step, key string, status journal.ItemStatus, why string, pl payload) {
	k := step + "\x00" + key
	if p.keys[k] {
		return // the same account twice in the files
	}
	p.keys[k] = true
	b, _ := json.Marshal(pl)
	p.items = append(p.items, journal.Item{Step: step, Key: key, Payload: string(b), Status: status, Error: why})
}

// rkey is the record key a new record of the plan is written at, frozen
// with the plan: a TID of the planning time plus the item's place in the
// plan, so that records list in the files' order.
func (p *planner) rkey() string {
	p.seq++
	return syntax.NewTID(p.now.UnixMicro()+p.seq, p.clock).String()
}

// resolve finds the DID of a row's account: the DID column of a Bluesky
// export, the handle, or the Bridgy Fed handle of a fediverse address.
func (p *planner) resolve(ctx context.Context, r migrate.Row) (string, string) {
	id := r.DID
	if id == "" {
		id = r.Account
	}
	if got, ok := p.resolved[id]; ok {
		return got.did, got.why
	}
	var res resolved
	switch {
	case r.DID != "":
		res.did = r.DID
		if p.o.CheckDID != nil {
			if err := p.o.CheckDID(ctx, r.DID); err != nil {
				res = resolved{why: fmt.Sprintf("%s does not name an account: %v", r.DID, err)}
			}
		}
	case strings.Contains(r.Account, "@"):
		h, err := bridgy.BlueskyHandle(r.Account)
		if err != nil {
			res.why = "not bridged: " + err.Error()
			break
		}
		did, err := p.o.Resolve(ctx, h)
		if err != nil {
			res.why = bridgy.NotBridged("@"+r.Account, h, err.Error())
			break
		}
		res.did = did
	default:
		did, err := p.o.Resolve(ctx, r.Account)
		if err != nil {
			res.why = fmt.Sprintf("the handle %s does not resolve: %v", r.Account, err)
			break
		}
		res.did = did
	}
	p.resolved[id] = res
	return res.did, res.why
}

func plan(ctx context.Context, o ImportOptions) ([]journal.Item, []string, error) {
	wantMutes := false
	for _, f := range o.Files {
		wantMutes = wantMutes || (f.Type == migrate.Mutes && (len(f.Rows) > 0 || o.Mode == migrate.Overwrite))
	}
	st, err := readState(ctx, o.PDS, wantMutes)
	if err != nil {
		return nil, nil, fmt.Errorf("import into %s: read the account's graph: %w", o.Account, err)
	}
	sum := sha256.Sum256([]byte(o.Account))
	p := &planner{o: o, keys: map[string]bool{}, now: time.Now(), clock: uint(sum[0])<<2 | uint(sum[1])>>6, resolved: map[string]resolved{}}
	total := 0
	for _, f := range o.Files {
		total += len(f.Rows)
	}
	done := 0
	progress := func() {
		done++
		if o.Progress != nil {
			o.Progress(migrate.Progress{Phase: "resolving", Done: done, Total: total})
		}
	}
	var notes []string
	listed := map[migrate.Type]bool{}
	wanted := map[string]map[string]bool{FollowCollection: {}, BlockCollection: {}, "mute": {}}
	wantedItems := map[string]map[string]bool{} // list URI → DIDs
	// Lists first: members need their list's URI.
	newLists := map[string]string{}
	order := []migrate.Type{migrate.Following, migrate.Lists, migrate.Blocks, migrate.Mutes, migrate.Followers, migrate.DomainBlocks, migrate.Bookmarks}
	for _, t := range order {
		for _, f := range o.Files {
			if f.Type != t {
				continue
			}
			listed[t] = true
			for _, r := range f.Rows {
				src := r.Pos.String()
				entry := r.Account
				switch t {
				case migrate.Followers, migrate.DomainBlocks, migrate.Bookmarks:
					why := map[migrate.Type]string{migrate.Followers: noFollowers, migrate.DomainBlocks: noDomainBlocks, migrate.Bookmarks: noBookmarks}[t]
					if t == migrate.DomainBlocks {
						entry = r.Domain
					} else if t == migrate.Bookmarks {
						entry = r.URI
					}
					p.add(stepUnsupport, src, journal.ItemFailed, why, payload{Type: t, Source: src, Entry: entry})
					progress()
					continue
				}
				if t == migrate.Mutes && st.mutesErr != nil {
					p.add(stepMute, entry, journal.ItemFailed, st.mutesErr.Error(), payload{Type: t, Source: src, Entry: entry, DID: r.DID})
					progress()
					continue
				}
				did, why := p.resolve(ctx, r)
				progress()
				if ctx.Err() != nil {
					return nil, nil, ctx.Err()
				}
				switch t {
				case migrate.Following, migrate.Blocks:
					coll, step, have := FollowCollection, stepFollow, st.follows
					if t == migrate.Blocks {
						coll, step, have = BlockCollection, stepBlock, st.blocks
					}
					pl := payload{Type: t, Source: src, Entry: entry, DID: did}
					switch {
					case why != "":
						p.add(step, entry, journal.ItemFailed, why, pl)
					case did == o.PDS.DID():
						p.add(step, did, journal.ItemFailed, "this is the importing account itself", pl)
					case have[did] != "":
						wanted[coll][did] = true
						p.add(step, did, journal.ItemSkipped, "", pl)
					default:
						wanted[coll][did] = true
						pl.RKey = p.rkey()
						p.add(step, did, journal.ItemPending, "", pl)
					}
				case migrate.Mutes:
					pl := payload{Type: t, Source: src, Entry: entry, DID: did}
					switch {
					case why != "":
						p.add(stepMute, entry, journal.ItemFailed, why, pl)
					case st.mutes[did]:
						wanted["mute"][did] = true
						p.add(stepMute, did, journal.ItemSkipped, "", pl)
					default:
						wanted["mute"][did] = true
						p.add(stepMute, did, journal.ItemPending, "", pl)
					}
				case migrate.Lists:
					uri, ok := st.lists[r.List]
					if !ok {
						if uri, ok = newLists[r.List]; !ok {
							rk := p.rkey()
							uri = "at://" + o.PDS.DID() + "/" + ListCollection + "/" + rk
							newLists[r.List] = uri
							p.add(stepList, r.List, journal.ItemPending, "", payload{Type: t, Source: src, Entry: r.List, List: r.List, ListURI: uri, RKey: rk})
						}
					}
					pl := payload{Type: t, Source: src, Entry: r.List + ": " + entry, DID: did, List: r.List, ListURI: uri}
					key := r.List + "\x00" + did
					switch {
					case why != "":
						p.add(stepListAdd, r.List+"\x00"+entry, journal.ItemFailed, why, pl)
					case st.items[uri][did] != "":
						markItem(wantedItems, uri, did)
						p.add(stepListAdd, key, journal.ItemSkipped, "", pl)
					default:
						markItem(wantedItems, uri, did)
						pl.RKey = p.rkey()
						p.add(stepListAdd, key, journal.ItemPending, "", pl)
					}
				}
			}
		}
	}
	if o.Mode == migrate.Overwrite {
		p.removals(st, listed, wanted, wantedItems)
	}
	if listed[migrate.Mutes] && st.mutesErr != nil {
		notes = append(notes, st.mutesErr.Error())
	}
	return p.items, notes, nil
}

func markItem(m map[string]map[string]bool, uri, did string) {
	if m[uri] == nil {
		m[uri] = map[string]bool{}
	}
	m[uri][did] = true
}

// removals plans, for an overwrite, taking away what the account has of
// each imported type and the files do not list.
func (p *planner) removals(st *state, listed map[migrate.Type]bool, wanted map[string]map[string]bool, wantedItems map[string]map[string]bool) {
	sorted := func(m map[string]string) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	if listed[migrate.Following] {
		for _, did := range sorted(st.follows) {
			if !wanted[FollowCollection][did] {
				p.add(stepUnfollow, did, journal.ItemPending, "", payload{Type: migrate.Following, Entry: did, DID: did, RKey: st.follows[did]})
			}
		}
	}
	if listed[migrate.Lists] {
		for _, name := range sorted(st.lists) {
			uri := st.lists[name]
			for _, did := range sorted(st.items[uri]) {
				if !wantedItems[uri][did] {
					p.add(stepListRemove, name+"\x00"+did, journal.ItemPending, "",
						payload{Type: migrate.Lists, Entry: name + ": " + did, DID: did, List: name, ListURI: uri, RKey: st.items[uri][did]})
				}
			}
		}
	}
	if listed[migrate.Blocks] {
		for _, did := range sorted(st.blocks) {
			if !wanted[BlockCollection][did] {
				p.add(stepUnblock, did, journal.ItemPending, "", payload{Type: migrate.Blocks, Entry: did, DID: did, RKey: st.blocks[did]})
			}
		}
	}
	if listed[migrate.Mutes] && st.mutesErr == nil {
		var dids []string
		for did := range st.mutes {
			dids = append(dids, did)
		}
		sort.Strings(dids)
		for _, did := range dids {
			if !wanted["mute"][did] {
				p.add(stepUnmute, did, journal.ItemPending, "", payload{Type: migrate.Mutes, Entry: did, DID: did})
			}
		}
	}
}

func isRemoval(step string) bool {
	return step == stepUnfollow || step == stepListRemove || step == stepUnblock || step == stepUnmute
}

// apply applies the pending items of the job's frozen plan, in plan order.
func apply(ctx context.Context, o ImportOptions, job journal.Job) error {
	all, err := o.Journal.Items(ctx, job.ID, journal.ItemFilter{})
	if err != nil {
		return fmt.Errorf("import into %s: %w", o.Account, err)
	}
	total, done := len(all), 0
	for _, it := range all {
		if it.Status != journal.ItemPending {
			done++
		}
	}
	for _, it := range all {
		if it.Status != journal.ItemPending {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := o.Journal.BeginItem(ctx, job.ID, it.Step, it.Key); err != nil {
			return fmt.Errorf("import into %s: %w", o.Account, err)
		}
		var pl payload
		if err := json.Unmarshal([]byte(it.Payload), &pl); err != nil {
			return fmt.Errorf("import into %s: item %s/%s: %w", o.Account, it.Step, it.Key, err)
		}
		remote, err := applyItem(ctx, o.PDS, it.Step, pl)
		switch {
		case err == nil:
			it.Status, it.Error, it.RemoteID = journal.ItemDone, "", remote
		case ctx.Err() != nil || errors.Is(err, atproto.ErrAuth):
			// Stop: the item stays pending and the next run writes it at
			// the same key (or finds it there).
			return fmt.Errorf("import into %s: %w", o.Account, err)
		default:
			it.Status, it.Error = journal.ItemFailed, err.Error()
		}
		if err := o.Journal.FinishItem(ctx, it); err != nil {
			return fmt.Errorf("import into %s: %w", o.Account, err)
		}
		done++
		if o.Progress != nil {
			o.Progress(migrate.Progress{Phase: "applying", Done: done, Total: total})
		}
		o.Log.Debug("applied", "step", it.Step, "entry", pl.Entry, "status", it.Status)
	}
	return nil
}

func applyItem(ctx context.Context, c *atproto.Client, step string, pl payload) (string, error) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	create := func(coll string, rec lexutil.CBOR) (string, error) {
		r, _, err := c.CreateRecord(ctx, coll, pl.RKey, rec, true)
		return r.URI, err
	}
	switch step {
	case stepFollow:
		return create(FollowCollection, &bsky.GraphFollow{LexiconTypeID: FollowCollection, Subject: pl.DID, CreatedAt: now})
	case stepBlock:
		return create(BlockCollection, &bsky.GraphBlock{LexiconTypeID: BlockCollection, Subject: pl.DID, CreatedAt: now})
	case stepList:
		purpose := "app.bsky.graph.defs#curatelist"
		return create(ListCollection, &bsky.GraphList{LexiconTypeID: ListCollection, Name: pl.List, Purpose: &purpose, CreatedAt: now})
	case stepListAdd:
		return create(ListItemCollection, &bsky.GraphListitem{LexiconTypeID: ListItemCollection, List: pl.ListURI, Subject: pl.DID, CreatedAt: now})
	case stepMute:
		if err := bsky.GraphMuteActor(ctx, c, &bsky.GraphMuteActor_Input{Actor: pl.DID}); err != nil {
			return "", &appViewError{err}
		}
		return "", nil
	case stepUnmute:
		if err := bsky.GraphUnmuteActor(ctx, c, &bsky.GraphUnmuteActor_Input{Actor: pl.DID}); err != nil {
			return "", &appViewError{err}
		}
		return "", nil
	case stepUnfollow:
		return "", c.DeleteRecord(ctx, FollowCollection, pl.RKey)
	case stepUnblock:
		return "", c.DeleteRecord(ctx, BlockCollection, pl.RKey)
	case stepListRemove:
		return "", c.DeleteRecord(ctx, ListItemCollection, pl.RKey)
	}
	return "", fmt.Errorf("unknown step %q", step)
}

func fillReport(ctx context.Context, j migrate.Journal, jobID int64, rep *migrate.Report) error {
	items, err := j.Items(ctx, jobID, journal.ItemFilter{})
	if err != nil {
		return fmt.Errorf("report of import job %d: %w", jobID, err)
	}
	summarize(rep, items)
	return nil
}

// summarize adds the items' outcomes to rep.
func summarize(rep *migrate.Report, items []journal.Item) {
	for _, it := range items {
		var p payload
		_ = json.Unmarshal([]byte(it.Payload), &p)
		if it.Step == stepList {
			continue // bookkeeping: the members are counted
		}
		c := counts(rep, p.Type)
		switch it.Status {
		case journal.ItemDone:
			if isRemoval(it.Step) {
				c.Removed++
			} else {
				c.Applied++
			}
		case journal.ItemSkipped:
			c.Already++
		case journal.ItemFailed:
			c.Failed++
			acct := p.Entry
			if p.Type == migrate.Lists {
				acct = strings.TrimPrefix(p.Entry, p.List+": ")
			}
			rep.Failures = append(rep.Failures, migrate.Failure{Type: p.Type, Source: p.Source, Entry: p.Entry, Reason: it.Error,
				Row: migrate.Row{Type: p.Type, Account: acct, DID: p.DID, List: p.List, Domain: p.Entry, URI: p.Entry}})
		default:
			c.Pending++
		}
	}
}

func planEntry(it journal.Item) migrate.PlanEntry {
	var p payload
	_ = json.Unmarshal([]byte(it.Payload), &p)
	note := p.Note
	if it.Error != "" {
		note = it.Error
	}
	return migrate.PlanEntry{Step: it.Step, Entry: p.Entry, Status: string(it.Status), Note: note, Source: p.Source}
}

func removals(items []journal.Item) []migrate.PlanEntry {
	var out []migrate.PlanEntry
	for _, it := range items {
		if isRemoval(it.Step) && it.Status == journal.ItemPending {
			out = append(out, planEntry(it))
		}
	}
	return out
}
