// Package migrate moves a person's social graph between servers: it exports
// follows, followers, lists, blocks, mutes, domain blocks and bookmarks in
// Mastodon's own CSV formats, and imports such files (and looser lists of
// handles) into any Mastodon-compatible account.
//
// Every import follows plan → journal → apply: the whole plan (each row
// resolved to an account on the importing server and diffed against what
// the account already has) is frozen in the journal before anything is
// written; items are then applied one by one, idempotently, and marked done
// in the journal. Killed at any point, the same import resumes where it
// stopped, without applying anything twice.
package migrate

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

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/journal"
)

// Journal is what an import needs of the write journal (the plan →
// journal → apply contract is documented in package journal). The state
// store satisfies it.
type Journal interface {
	CreateJob(ctx context.Context, j journal.Job) (journal.Job, bool, error)
	DeleteJob(ctx context.Context, id int64) error
	UpdateJob(ctx context.Context, id int64, status, params string) error
	FreezePlan(ctx context.Context, jobID int64, items []journal.Item) error
	Items(ctx context.Context, jobID int64, f journal.ItemFilter) ([]journal.Item, error)
	Item(ctx context.Context, jobID int64, step, key string) (journal.Item, error)
	BeginItem(ctx context.Context, jobID int64, step, key string) (int, error)
	FinishItem(ctx context.Context, it journal.Item) error
}

// Mode says what an import does with what the account has and the files
// do not list.
type Mode string

// Import modes, as in Mastodon's importer.
const (
	Merge     Mode = "merge"     // only add
	Overwrite Mode = "overwrite" // also remove what the files do not list
)

// Method says how rows are applied.
type Method string

// Import methods.
const (
	// MethodAuto uses the server's bulk importer for the types it supports
	// (GoToSocial: following, blocks, mutes), verifies through the API and
	// applies what the server left out through the API; API otherwise.
	MethodAuto Method = "auto"
	// MethodAPI resolves and applies every row through the client API.
	MethodAPI Method = "api"
	// MethodServer uses the bulk importer where there is one and reports
	// rows it did not apply as failures, without an API fallback.
	MethodServer Method = "server"
)

// JobKind is the journal kind of graph imports.
const JobKind = "graph-import"

// ErrNeedsConfirmation is returned (with the plan in the Report) when an
// overwrite import would remove things and ImportOptions.Confirmed is false.
var ErrNeedsConfirmation = errors.New("the overwrite import removes entries: review them and confirm")

// ImportOptions describe one import.
type ImportOptions struct {
	// Client talks to the importing account's server.
	Client *fedi.Client
	// API, when not nil, is used instead of Client: another platform's
	// server in the Mastodon API's terms (see API).
	API API
	// Account is the importing account's handle (user@host), the journal's
	// job owner and the label in messages.
	Account string
	// Software is the server's software ("mastodon", "gotosocial" …), used
	// to pick the bulk importer and the per-family limits.
	Software string
	// Files are the parsed inputs, in the order given.
	Files []Parsed
	Mode  Mode
	// Method defaults to MethodAuto.
	Method Method
	// DryRun plans (resolving handles, reading the account's current
	// state) and returns the plan without journaling or writing anything.
	DryRun bool
	// Confirmed allows an overwrite that removes entries.
	Confirmed bool
	// Fresh plans again even when the same import already finished.
	Fresh bool
	// Journal stores the plan and progress; required unless DryRun.
	Journal Journal
	// Concurrency is how many requests run at once while resolving and
	// applying; 0 means 4. The transport paces them in any case.
	Concurrency int
	// VerifyTimeout bounds waiting for a server-side bulk import to show
	// up through the API; 0 means 5 minutes.
	VerifyTimeout time.Duration
	// Progress, when not nil, is called after each resolved address and
	// each applied item, from several goroutines.
	Progress func(Progress)
	// Log receives debug and info lines; nil discards.
	Log *slog.Logger
}

// Progress is a snapshot of an import.
type Progress struct {
	// Phase is "resolving" while the plan resolves addresses, then
	// "applying".
	Phase       string
	Done, Total int
	// ETA is the estimated time left, 0 when unknown; when a per-family
	// limit is reached it includes the wait for the next window.
	ETA time.Duration
	// Waiting, when not empty, says why the import is pausing.
	Waiting string
}

// Counts are the outcomes of one type's rows.
type Counts struct {
	Applied int `json:"applied"`           // written to the server by this import
	Already int `json:"already"`           // the account already had it
	Failed  int `json:"failed"`            // not applied; see Failures
	Pending int `json:"pending,omitempty"` // planned, not applied yet (dry run, interrupted)
	Removed int `json:"removed,omitempty"` // overwrite: taken away
}

// Failure is a row that was not applied, and why.
type Failure struct {
	Row    Row    `json:"-"`
	Type   Type   `json:"type"`
	Source string `json:"source"` // file:line
	Entry  string `json:"entry"`  // the account, domain, URI or list+account
	Reason string `json:"reason"`
	raw    *RowError
}

// Moved is an account that had moved and was followed at its new address.
type Moved struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// PlanEntry is one step of the plan, as shown by a dry run.
type PlanEntry struct {
	Step   string `json:"step"`
	Entry  string `json:"entry"`
	Status string `json:"status"` // pending, skipped, failed
	Note   string `json:"note,omitempty"`
	Source string `json:"source,omitempty"`
}

// Report is the outcome of an import (or, with DryRun, of its plan).
type Report struct {
	Account  string           `json:"account"`
	JobID    int64            `json:"job_id,omitempty"`
	Resumed  bool             `json:"resumed,omitempty"`  // continued an interrupted import
	Finished bool             `json:"finished,omitempty"` // the same import had already finished
	DryRun   bool             `json:"dry_run,omitempty"`
	Method   Method           `json:"method"`
	Mode     Mode             `json:"mode"`
	Types    map[Type]*Counts `json:"types"`
	Moved    []Moved          `json:"moved,omitempty"`
	Failures []Failure        `json:"failures,omitempty"`
	Notes    []string         `json:"notes,omitempty"`
	// Partial lists rows applied with a caveat the server imposed: a follow
	// made without the settings asked for ("followed; the server ignored:
	// notify, languages").
	Partial []PlanEntry `json:"partial,omitempty"`
	// Removals lists what an overwrite removes (shown before confirming).
	Removals []PlanEntry `json:"removals,omitempty"`
	// Plan is the whole plan, filled for dry runs.
	Plan []PlanEntry `json:"plan,omitempty"`
}

func (r *Report) counts(t Type) *Counts {
	if r.Types == nil {
		r.Types = map[Type]*Counts{}
	}
	c := r.Types[t]
	if c == nil {
		c = &Counts{}
		r.Types[t] = c
	}
	return c
}

// FailedRows is the number of rows not applied.
func (r *Report) FailedRows() int { return len(r.Failures) }

// payload is what the journal keeps for one item: what to apply, where it
// came from, and what planning learned.
type payload struct {
	Type     Type   `json:"type"`
	Source   string `json:"source,omitempty"`
	Entry    string `json:"entry"` // as shown: the account, domain, URI or "list: account"
	TargetID string `json:"target_id,omitempty"`
	// MovedTo is the address followed instead of Entry (the account moved).
	MovedTo   string   `json:"moved_to,omitempty"`
	Reblogs   *bool    `json:"reblogs,omitempty"`
	Notify    *bool    `json:"notify,omitempty"`
	Languages []string `json:"languages,omitempty"`
	HideNotif *bool    `json:"hide_notifications,omitempty"`
	Domain    string   `json:"domain,omitempty"`
	URI       string   `json:"uri,omitempty"`
	List      string   `json:"list,omitempty"`
	Note      string   `json:"note,omitempty"`
	// CSV is the file a server-side bulk import uploads, and Sources the
	// file:line of each of its rows, in order.
	CSV     string   `json:"csv,omitempty"`
	Sources []string `json:"sources,omitempty"`
}

func (p payload) row() Row {
	r := Row{Type: p.Type, ShowBoosts: p.Reblogs, Notify: p.Notify, Languages: p.Languages,
		HideNotifications: p.HideNotif, Domain: p.Domain, URI: p.URI, List: p.List}
	switch p.Type {
	case Following, Followers, Blocks, Mutes, Lists:
		r.Account = p.accountEntry()
	}
	r.Pos.File = p.Source
	return r
}

// accountEntry is the account address of an account item.
func (p payload) accountEntry() string {
	if p.Type == Lists {
		if _, a, ok := cutListEntry(p.Entry); ok {
			return a
		}
	}
	return p.Entry
}

// jobKey identifies an import by its account, options and the content of
// its rows, so that running the same command again resumes it.
func jobKey(o ImportOptions) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\n", o.Account, o.Mode, o.Method)
	files := append([]Parsed(nil), o.Files...)
	sort.SliceStable(files, func(i, j int) bool { return files[i].Type < files[j].Type })
	for _, f := range files {
		for _, r := range f.Rows {
			b, _ := json.Marshal(struct {
				R Row
				F string
			}{r, r.Pos.File})
			h.Write(b)
			h.Write([]byte{'\n'})
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// Import plans, journals and applies the rows of o.Files to the account
// o.Client logs in as, and returns the report. Rows that cannot be applied
// (unknown accounts, dead servers, unsupported types) are in
// Report.Failures; they do not make Import fail. The error is for problems
// that stop the whole import: the account's token refused, the journal
// unavailable, the context ended (the import then resumes when run again
// with the same inputs), or ErrNeedsConfirmation.
//
// Rows of a Bluesky export (rows with a DID) are followed through Bridgy
// Fed: each is mapped to the fediverse address Bridgy Fed gives the
// Bluesky account (package bridgy), and one that does not resolve is a
// failure saying the account is not bridged.
func Import(ctx context.Context, o ImportOptions) (*Report, error) {
	var n int
	o.Files, n = bridgeRows(o.Files)
	rep, err := importGraph(ctx, o)
	if rep != nil && n > 0 {
		explainBridged(rep, n)
	}
	return rep, err
}

func importGraph(ctx context.Context, o ImportOptions) (*Report, error) {
	if o.Method == "" {
		o.Method = MethodAuto
	}
	if o.Mode == "" {
		o.Mode = Merge
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.VerifyTimeout <= 0 {
		o.VerifyTimeout = 5 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.API = apiOf(o.API, o.Client)
	if o.API == nil || (o.Journal == nil && !o.DryRun) {
		return nil, errors.New("import: a client and a journal are required")
	}
	rep := &Report{Account: o.Account, Method: o.Method, Mode: o.Mode, DryRun: o.DryRun}
	for _, f := range o.Files {
		rep.counts(f.Type)
		for _, e := range f.Errors {
			rep.Failures = append(rep.Failures, Failure{Type: f.Type, Source: e.Pos.String(), Entry: e.Raw, Reason: e.Reason, raw: e})
			rep.counts(f.Type).Failed++
		}
	}

	if o.DryRun {
		pl, err := newPlanner(o).plan(ctx)
		if err != nil {
			return nil, err
		}
		for _, it := range pl.items {
			rep.Plan = append(rep.Plan, planEntry(it))
		}
		summarize(rep, pl.items)
		rep.Removals = removals(pl.items)
		return rep, nil
	}

	key := jobKey(o)
	params, _ := json.Marshal(map[string]any{"mode": o.Mode, "method": o.Method, "files": fileNames(o.Files)})
	job, created, err := o.Journal.CreateJob(ctx, journal.Job{Kind: JobKind, Key: key, Account: o.Account, Params: string(params)})
	if err != nil {
		return nil, fmt.Errorf("import into %s: %w", o.Account, err)
	}
	if !created && job.Status == journal.JobDone && o.Fresh {
		if err := o.Journal.DeleteJob(ctx, job.ID); err != nil {
			return nil, fmt.Errorf("import into %s: start afresh: %w", o.Account, err)
		}
		if job, _, err = o.Journal.CreateJob(ctx, journal.Job{Kind: JobKind, Key: key, Account: o.Account, Params: string(params)}); err != nil {
			return nil, fmt.Errorf("import into %s: %w", o.Account, err)
		}
		created = true
	}
	rep.JobID = job.ID
	var retry []journal.Item
	if job.Status == journal.JobDone {
		if retry, err = retryableItems(ctx, o.Journal, job.ID); err != nil {
			return nil, err
		}
	}
	switch {
	case job.Status == journal.JobDone && len(retry) > 0:
		// Rows that failed for a reason that may have gone away are tried
		// again by the same command; the rest of the plan stays as it is.
		rep.Notes = append(rep.Notes, fmt.Sprintf("this import finished on %s; trying again the %d rows that failed for now",
			job.UpdatedAt.Local().Format(time.DateTime), len(retry)))
		ap := &applier{o: o, job: job}
		if err := ap.retry(ctx, retry); err != nil {
			if ferr := fillReport(ctx, o.Journal, job.ID, rep); ferr != nil {
				return nil, errors.Join(err, ferr)
			}
			return rep, err
		}
	case job.Status == journal.JobDone:
		rep.Finished = true
		rep.Notes = append(rep.Notes, fmt.Sprintf("this import already finished on %s; nothing was done (use --fresh to run it again)",
			job.UpdatedAt.Local().Format(time.DateTime)))
	case job.Status == journal.JobPlanning:
		// New, or killed while planning: nothing was written yet, so plan
		// (again) from scratch.
		pl, err := newPlanner(o).plan(ctx)
		if err != nil {
			return nil, err
		}
		if rm := removals(pl.items); len(rm) > 0 && !o.Confirmed {
			rep.Removals = rm
			summarize(rep, pl.items)
			// Keep no half-made job: the next run plans again.
			_ = o.Journal.DeleteJob(context.WithoutCancel(ctx), job.ID)
			return rep, ErrNeedsConfirmation
		}
		if err := o.Journal.FreezePlan(ctx, job.ID, pl.items); err != nil {
			return nil, fmt.Errorf("import into %s: %w", o.Account, err)
		}
		o.Log.Info("plan frozen", "account", o.Account, "job", job.ID, "items", len(pl.items))
	default:
		rep.Resumed = !created
		o.Log.Info("resuming import", "account", o.Account, "job", job.ID)
		// Rows an interrupted run left failed for now (a follow request
		// not yet accepted when its list member came up) are tried again
		// once the rest is applied, as a rerun of a finished import does.
		if retry, err = retryableItems(ctx, o.Journal, job.ID); err != nil {
			return nil, err
		}
	}

	if job.Status != journal.JobDone {
		ap := &applier{o: o, job: job}
		err := ap.run(ctx)
		if err == nil && len(retry) > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("trying again the %d rows an earlier run left failed for now", len(retry)))
			err = ap.retry(ctx, retry)
		}
		if err != nil {
			// Keep the report of what happened so far.
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
	noteMissing(rep)
	notePartial(rep)
	return rep, nil
}

func fileNames(fs []Parsed) []string {
	var out []string
	for _, f := range fs {
		if len(f.Rows) > 0 {
			out = append(out, f.Rows[0].Pos.File)
		}
	}
	return out
}

// fillReport counts the journal's items into rep.
func fillReport(ctx context.Context, j Journal, jobID int64, rep *Report) error {
	if err := eachItem(ctx, j, jobID, func(items []journal.Item) { summarize(rep, items) }); err != nil {
		return fmt.Errorf("report of import job %d: %w", jobID, err)
	}
	return nil
}

// eachItem calls fn with every item of the job, in plan order, a page at a
// time: memory stays flat however large the plan.
func eachItem(ctx context.Context, j Journal, jobID int64, fn func([]journal.Item)) error {
	var after int64
	for {
		items, err := j.Items(ctx, jobID, journal.ItemFilter{AfterSeq: after, Limit: 1000})
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return nil
		}
		fn(items)
		after = items[len(items)-1].Seq
	}
}

// summarize adds the items' outcomes to rep.
func summarize(rep *Report, items []journal.Item) {
	for _, it := range items {
		var p payload
		_ = json.Unmarshal([]byte(it.Payload), &p)
		if it.Step == stepServerImport || it.Step == stepList {
			continue // bookkeeping; the rows are counted by their own items
		}
		c := rep.counts(p.Type)
		removal := isRemoval(it.Step)
		switch it.Status {
		case journal.ItemDone:
			if removal {
				c.Removed++
			} else {
				c.Applied++
			}
			if strings.HasPrefix(it.Error, ignoredPrefix) {
				rep.Partial = append(rep.Partial, planEntry(it))
			}
		case journal.ItemSkipped:
			c.Already++
		case journal.ItemFailed:
			c.Failed++
			rep.Failures = append(rep.Failures, Failure{Row: p.row(), Type: p.Type, Source: p.Source, Entry: p.Entry, Reason: it.Error})
		default:
			c.Pending++
		}
		if p.MovedTo != "" && it.Step == stepFollow && it.Status != journal.ItemFailed {
			rep.Moved = append(rep.Moved, Moved{From: p.Entry, To: p.MovedTo})
		}
	}
}

func planEntry(it journal.Item) PlanEntry {
	var p payload
	_ = json.Unmarshal([]byte(it.Payload), &p)
	note := p.Note
	if it.Error != "" {
		note = it.Error
	}
	if p.MovedTo != "" {
		note = "moved: follow " + p.MovedTo + " instead"
	}
	return PlanEntry{Step: it.Step, Entry: p.Entry, Status: string(it.Status), Note: note, Source: p.Source}
}

func removals(items []journal.Item) []PlanEntry {
	var out []PlanEntry
	for _, it := range items {
		if isRemoval(it.Step) && it.Status == journal.ItemPending {
			out = append(out, planEntry(it))
		}
	}
	return out
}
