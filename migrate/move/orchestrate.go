package move

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/journal"
	"github.com/fedi-ferry/ferry/migrate"
	"github.com/fedi-ferry/ferry/migrate/publish"
	sinkarchive "github.com/fedi-ferry/ferry/sinks/archive"
)

// The lifeboat's parts, relative to the migration directory.
const (
	GraphDir   = "graph"
	ArchiveDir = "archive"
)

// LoadSide reads what a migration needs to know about the logged-in
// account handle behind c: its server's software, its own account and its
// ActivityPub actor ID.
func LoadSide(ctx context.Context, c *fedi.Client, handle string) (*Side, error) {
	sw, err := fedi.NodeInfo(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", handle, err)
	}
	me, err := fedi.VerifyCredentials(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", handle, err)
	}
	uri := me.URI
	if uri == "" {
		if uri, err = fedi.ActorURI(ctx, c.HTTP(), handle); err != nil {
			return nil, err
		}
	}
	return &Side{Handle: handle, Client: c, Software: sw, Account: me, URI: uri}, nil
}

// DefaultDir is where a migration from the account handle from to to keeps
// its lifeboat and reports when not told otherwise: a directory named for
// both under dataDir/migrations.
func DefaultDir(dataDir, from, to string) string {
	name := strings.NewReplacer("@", "_", ":", "_", "/", "_").Replace(from + "-to-" + to)
	return filepath.Join(dataDir, "migrations", name)
}

// ErrNoLifeboat is returned (wrapped) by CheckLifeboat for a directory
// without the graph export a replay needs.
var ErrNoLifeboat = errors.New("holds no graph/ directory")

// CheckLifeboat returns an error wrapping ErrNoLifeboat when dir, the
// lifeboat of a migration whose old server is gone, holds no graph export.
func CheckLifeboat(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, GraphDir)); err != nil {
		return fmt.Errorf("%s %w", dir, ErrNoLifeboat)
	}
	return nil
}

// ReplayFiles lists the graph files in dir a replay imports: every .csv
// file the export wrote except followers (they come by the Move, not by
// import) and earlier failure reports.
func ReplayFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read the lifeboat: %w", err)
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".csv") || n == "followers.csv" || strings.HasSuffix(n, "_failures.csv") {
			continue
		}
		out = append(out, filepath.Join(dir, n))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the lifeboat %s holds no graph files", dir)
	}
	return out, nil
}

// Migration is a whole `migrate run`: the Runner's journaled steps, with
// the lifeboat, the replay and the publish done by the export, archive,
// import and publish packages. The options of each are complete but for the
// directories and files, which Run sets from the Runner's Dir.
type Migration struct {
	Runner *Runner
	// Graph exports the old account's graph (Client of the old account);
	// used when Runner.Old is set.
	Graph migrate.ExportOptions
	// Archive archives the old account's posts; used when Runner.Old is
	// set and NoArchive is empty.
	Archive sinkarchive.UpdateOptions
	// NoArchive, when not empty, says why the lifeboat holds no archive
	// (the old account's platform cannot be archived); the lifeboat's
	// outcome says so.
	NoArchive string
	// Replay imports the lifeboat's graph into the new account; Run sets
	// Files, Mode (merge) and Confirmed.
	Replay migrate.ImportOptions
	// Publish, when not nil, publishes the lifeboat's archive on the new
	// account.
	Publish *publish.RunOptions
}

// Lifeboat is what the lifeboat step saved.
type Lifeboat struct {
	Graph   []migrate.ExportResult   `json:"graph"`
	Archive sinkarchive.UpdateResult `json:"archive"`
}

// MigrationResult is the run's Result and the typed results of the steps
// this run performed (steps done by an earlier run have none).
type MigrationResult struct {
	Result
	Dir      string                     `json:"dir"`
	Lifeboat *Lifeboat                  `json:"lifeboat,omitempty"`
	Replay   *migrate.ImportFilesResult `json:"replay,omitempty"`
	Publish  *publish.Result            `json:"publish,omitempty"`
}

// Run performs the migration's pending steps (Runner.Run) and returns
// their results together. Media files the lifeboat archive could not
// download, rows the replay could not apply and posts the target refused do
// not fail their step: the step's outcome says so and the result lists them.
// On error the result holds what was done so far.
func (m *Migration) Run(ctx context.Context) (MigrationResult, error) {
	r := m.Runner
	res := MigrationResult{Dir: r.Dir}
	r.Steps = Steps{Replay: func(ctx context.Context, dir string) (string, error) { return m.replay(ctx, dir, &res) }}
	if r.Old != nil {
		r.Steps.Lifeboat = func(ctx context.Context, dir string) (string, error) { return m.lifeboat(ctx, dir, &res) }
	}
	if m.Publish != nil {
		r.Steps.Publish = func(ctx context.Context, dir string) (string, error) { return m.publish(ctx, dir, &res) }
	}
	out, err := r.Run(ctx)
	res.Result = out
	return res, err
}

func (m *Migration) lifeboat(ctx context.Context, dir string, res *MigrationResult) (string, error) {
	lb := &Lifeboat{}
	g := m.Graph
	g.Dir = filepath.Join(dir, GraphDir)
	var err error
	if lb.Graph, err = migrate.Export(ctx, g); err != nil {
		return "", fmt.Errorf("lifeboat graph export: %w", err)
	}
	out := "graph and archive of " + m.Runner.Old.Handle + " saved in " + dir
	if m.NoArchive != "" {
		out = "graph of " + m.Runner.Old.Handle + " saved in " + dir + "; no archive: " + m.NoArchive
	} else {
		a := m.Archive
		a.Dir = filepath.Join(dir, ArchiveDir)
		if lb.Archive, err = sinkarchive.Update(ctx, a); err != nil {
			return "", fmt.Errorf("lifeboat archive: %w", err)
		}
	}
	res.Lifeboat = lb
	for _, g := range lb.Graph {
		if g.Untrustworthy != "" {
			out += "; warning: " + g.Untrustworthy
		}
	}
	for _, w := range lb.Archive.Warnings {
		// What the lifeboat lacks must be said before the Move.
		out += "; warning: " + w
	}
	return out, nil
}

func (m *Migration) replay(ctx context.Context, dir string, res *MigrationResult) (string, error) {
	paths, err := ReplayFiles(filepath.Join(dir, GraphDir))
	if err != nil {
		return "", err
	}
	files, err := migrate.ReadFiles(paths, "")
	if err != nil {
		return "", err
	}
	o := migrate.ImportFilesOptions{ImportOptions: m.Replay, FailuresDir: dir}
	o.Files, o.Mode, o.Confirmed = files, migrate.Merge, true
	out, err := migrate.ImportFiles(ctx, o)
	if out.Report != nil {
		res.Replay = &out
	}
	var rf *migrate.RowsFailedError
	if errors.As(err, &rf) {
		return "replayed, with rows not applied: " + rf.Error(), nil
	}
	if err != nil {
		return "", err
	}
	return "graph replayed on " + m.Runner.New.Handle, nil
}

func (m *Migration) publish(ctx context.Context, dir string, res *MigrationResult) (string, error) {
	o := *m.Publish
	o.Dir = filepath.Join(dir, ArchiveDir)
	out, err := publish.Run(ctx, o)
	if out.JobID != 0 {
		res.Publish = &out
	}
	var re *publish.RefusedError
	if errors.As(err, &re) {
		return "published, with posts refused: " + re.Error(), nil
	}
	if err != nil {
		return "", err
	}
	return "archive published on " + m.Runner.New.Handle + " (" + string(o.Mode) + ")", nil
}

// StatusJournal is the part of the state store Status reads. *state.Store
// satisfies it.
type StatusJournal interface {
	Jobs(ctx context.Context, kind string) ([]journal.Job, error)
	Items(ctx context.Context, jobID int64, f journal.ItemFilter) ([]journal.Item, error)
}

// StepStatus is the state of one journaled step.
type StepStatus struct {
	Step    string `json:"step"`
	Status  string `json:"status"`
	Outcome string `json:"outcome,omitempty"`
}

// MigrationStatus is the state of one migration and of its steps.
type MigrationStatus struct {
	ID      int64        `json:"id"`
	Key     string       `json:"migration"`
	Status  string       `json:"status"`
	Updated time.Time    `json:"updated"`
	Steps   []StepStatus `json:"steps"`
}

// Status lists the migrations in the journal with the state of their
// steps.
func Status(ctx context.Context, j StatusJournal) ([]MigrationStatus, error) {
	jobs, err := j.Jobs(ctx, JobKind)
	if err != nil {
		return nil, err
	}
	var out []MigrationStatus
	for _, job := range jobs {
		items, err := j.Items(ctx, job.ID, journal.ItemFilter{})
		if err != nil {
			return nil, err
		}
		ms := MigrationStatus{ID: job.ID, Key: job.Key, Status: job.Status, Updated: job.UpdatedAt}
		for _, it := range items {
			ms.Steps = append(ms.Steps, StepStatus{Step: it.Step, Status: string(it.Status), Outcome: it.RemoteID + it.Error})
		}
		out = append(out, ms)
	}
	return out, nil
}
