// Package graphtest is the contract suite every platform's graph role
// (platform.GraphPorter: Export and Import through package migrate) must
// pass. A platform's test calls Run with two sessions on its real
// server(s), a way to make further accounts there, a journal, and the
// types the platform lacks; the suite builds a graph on the first account,
// checks the exported files byte for byte against Mastodon's documented
// CSV formats, imports them onto the second account and compares by
// exporting again, then checks the import's promises: a repeated import
// applies nothing, a dry run changes nothing, a malformed row and an
// unknown account are reported (file:line, reason, failures file) while
// the rest applies, and an overwrite removes only once confirmed.
package graphtest

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/migrate"
)

// Porter is the graph role under test: platform.GraphPorter's methods,
// declared here where they are consumed. The session supplies the
// connection (and, on import, the account's handle and software); the
// suite the rest of the options.
type Porter interface {
	Export(ctx context.Context, o migrate.ExportOptions) ([]migrate.ExportResult, error)
	ImportFiles(ctx context.Context, o migrate.ImportFilesOptions) (migrate.ImportFilesResult, error)
}

// importInto imports with p, writing any failures files into a directory
// of the test's own, and returns the import's report. Rows that failed are
// in the report, which the suite checks, so they are not an error here.
func importInto(t *testing.T, ctx context.Context, p Porter, o migrate.ImportOptions) (*migrate.Report, error) {
	t.Helper()
	res, err := p.ImportFiles(ctx, migrate.ImportFilesOptions{ImportOptions: o, FailuresDir: t.TempDir()})
	if rf := (*migrate.RowsFailedError)(nil); errors.As(err, &rf) {
		err = nil
	}
	return res.Report, err
}

// Account is one account of the platform under test.
type Account struct {
	// Handle is the account's address, user@host, as its export writes it.
	Handle string
	// Porter is the account's session.
	Porter Porter
}

// Peer is a further account on the platform's server(s), which the
// suite's accounts follow, list, block, mute and bookmark. It acts through
// a channel independent of the Porter (the server's API as a person's
// client would use it).
type Peer interface {
	// Handle is the peer's address, user@host, exactly as exports on the
	// suite's servers write it. The peer follows requests at once (it is
	// not locked).
	Handle() string
	// Follow makes the peer follow the account at handle, so that it is
	// among that account's followers once Follow returns or soon after.
	Follow(ctx context.Context, handle string) error
	// Post publishes a public post and returns its ActivityPub URI (what
	// bookmarks.csv lists).
	Post(ctx context.Context, text string) (uri string, err error)
}

// Env is what a platform's test provides.
type Env struct {
	// Source is the account whose graph the suite builds and exports; it
	// must start empty (a new account).
	Source Account
	// Target is the account the export is imported onto; it must start
	// empty too.
	Target Account
	// NewPeer makes a new, unlocked account on the platform's server(s).
	// The suite makes six.
	NewPeer func(ctx context.Context) (Peer, error)
	// Journal keeps the imports' plans and progress (state.Store
	// implements it); one journal serves both accounts.
	Journal migrate.Journal
	// Unsupported names the types the platform lacks, with the reason
	// (for example "GoToSocial has no user-level domain blocks"). The
	// suite skips their checks with that reason, and checks that Export
	// writes no file for them and says why, and that Import reports their
	// rows as failures rather than failing.
	Unsupported map[migrate.Type]string
	// Method is how every import of the suite applies rows ("" is
	// migrate.MethodAuto); a platform with a server-side importer runs the
	// suite once per method.
	Method migrate.Method
	// NoFollowLanguages, when not empty, says why the platform keeps no
	// languages on a follow (GoToSocial has none); the suite then follows
	// without them and skips that check with the reason.
	NoFollowLanguages string
	// MutesHideNotifications, when not empty, says why every mute on the
	// platform hides the muted account's notifications (Misskey's do); the
	// suite then mutes with notifications hidden.
	MutesHideNotifications string
	// Settle bounds waiting for the servers to agree after a write
	// (federation is asynchronous: a remote follow counts once accepted);
	// 0 means a minute.
	Settle time.Duration
}

// listTitle has a comma and a space, so its cell must be quoted.
const listTitle = "graphtest, close friends"

// suite is one run's shared state.
type suite struct {
	e   Env
	ctx context.Context
	// peers: followed with settings, listed, bookmarked, follows the
	// source (0); followed with defaults, listed (1); blocked (2); muted
	// with notifications shown (3); followed by the later partial imports
	// (4); blocked only in a dry run (5).
	peers []Peer
	// want are the source's files as Mastodon's format writes them.
	want map[migrate.Type]file
	// imported is the report of the import of the export onto the target.
	imported *migrate.Report
	// exported is where the source's export was written; it outlives the
	// subtest that writes it.
	exported string
}

// Run runs the contract suite. It stops at the first failed stage that
// later stages depend on.
func Run(t *testing.T, e Env) {
	if e.Settle <= 0 {
		e.Settle = time.Minute
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	s := &suite{e: e, ctx: ctx, exported: filepath.Join(t.TempDir(), "source")}

	if !t.Run("Seed", s.seed) {
		return
	}
	if !t.Run("ExportFormat", s.exportFormat) {
		return
	}
	if !t.Run("ImportReproducesGraph", s.importReproduces) {
		return
	}
	t.Run("SecondImportIsNoOp", s.secondImport)
	t.Run("DryRunChangesNothing", s.dryRun)
	t.Run("UnsupportedRowsReported", s.unsupportedRows)
	t.Run("MalformedRowSkipped", s.malformedRow)
	t.Run("UnresolvableHandleInFailuresFile", s.unresolvable)
	t.Run("OverwriteRemovesOnlyWhenConfirmed", s.overwrite)
}

// settingsRow is the following row of peers[0]: boosts hidden, notify
// on, and two languages (a quoted cell) where the platform keeps them.
func (s *suite) settingsRow() string {
	if s.e.NoFollowLanguages != "" {
		return s.peers[0].Handle() + ",false,true,"
	}
	return s.peers[0].Handle() + `,false,true,"de, en"`
}

func (s *suite) supported(t migrate.Type) bool { _, no := s.e.Unsupported[t]; return !no }

// seed makes the peers and builds the source's graph: the peers' side
// through their own channel, the source's side by importing files written
// here in Mastodon's format. The export checks then compare what the
// server kept with what was written.
func (s *suite) seed(t *testing.T) {
	ctx := s.ctx
	for range 6 {
		p, err := s.e.NewPeer(ctx)
		if err != nil {
			t.Fatalf("new peer: %v", err)
		}
		s.peers = append(s.peers, p)
	}
	p := s.peers
	s.want = map[migrate.Type]file{
		migrate.Following: {header: "Account address,Show boosts,Notify on new posts,Languages",
			rows: []string{s.settingsRow(), p[1].Handle() + ",true,false,"}},
		migrate.Followers: {header: "Account address", rows: []string{p[0].Handle()}},
		migrate.Lists:     {rows: []string{`"` + listTitle + `",` + p[0].Handle(), `"` + listTitle + `",` + p[1].Handle()}},
		migrate.Blocks:    {rows: []string{p[2].Handle()}},
		migrate.Mutes:     {header: "Account address,Hide notifications", rows: []string{p[3].Handle() + "," + strconv.FormatBool(s.e.MutesHideNotifications != "")}},
	}
	if s.supported(migrate.Bookmarks) {
		uri, err := p[0].Post(ctx, "graphtest: a post to bookmark")
		if err != nil {
			t.Fatalf("peer post: %v", err)
		}
		s.want[migrate.Bookmarks] = file{rows: []string{uri}}
	}
	if s.supported(migrate.DomainBlocks) {
		domain := fmt.Sprintf("graphtest-%d.example", time.Now().UnixNano())
		s.want[migrate.DomainBlocks] = file{rows: []string{domain}}
	}
	if s.supported(migrate.Followers) {
		if err := p[0].Follow(ctx, s.e.Source.Handle); err != nil {
			t.Fatalf("peer follows the source: %v", err)
		}
	} else {
		delete(s.want, migrate.Followers)
	}
	for _, typ := range []migrate.Type{migrate.Following, migrate.Lists, migrate.Blocks, migrate.Mutes} {
		if !s.supported(typ) {
			delete(s.want, typ)
		}
	}

	dir := t.TempDir()
	for typ, f := range s.want {
		if typ != migrate.Followers { // followers are made, not imported
			writeFile(t, filepath.Join(dir, typ.FileName()), f.bytes())
		}
	}
	rep, err := importInto(t, ctx, s.e.Source.Porter, migrate.ImportOptions{Files: parseDir(t, dir), Journal: s.e.Journal, Method: s.e.Method})
	if err != nil {
		t.Fatalf("seeding the source: %v", err)
	}
	if len(rep.Failures) > 0 {
		t.Fatalf("seeding the source: failures %+v", rep.Failures)
	}
}

// exportFormat exports the source and checks every file against
// Mastodon's format: the header row where Mastodon writes one, the cells
// (quoted only when needed), "\n" line ends; row order is the server's.
func (s *suite) exportFormat(t *testing.T) {
	dir := s.exported
	res := s.exportUntil(t, s.e.Source, dir, s.want)
	t.Run("FollowLanguages", func(t *testing.T) {
		if s.e.NoFollowLanguages != "" {
			t.Skip(s.e.NoFollowLanguages)
		}
		if !strings.Contains(readFile(t, filepath.Join(dir, migrate.Following.FileName())), s.settingsRow()+"\n") {
			t.Errorf("the languages of %s's follow are not exported", s.peers[0].Handle())
		}
	})
	for _, typ := range migrate.AllTypes() {
		t.Run(string(typ), func(t *testing.T) {
			r, ok := res[typ]
			if !ok {
				t.Fatalf("Export returned no result for %s", typ)
			}
			if why, no := s.e.Unsupported[typ]; no {
				if r.File != "" || r.Unsupported == "" {
					t.Errorf("unsupported %s: result %+v; want no file and the reason", typ, r)
				}
				if _, err := os.Stat(filepath.Join(dir, typ.FileName())); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("unsupported %s: %s written (%v)", typ, typ.FileName(), err)
				}
				t.Skip(why)
			}
			if r.File != filepath.Join(dir, typ.FileName()) || r.Rows != len(s.want[typ].rows) {
				t.Errorf("result %+v; want %s with %d rows", r, typ.FileName(), len(s.want[typ].rows))
			}
			got := readFile(t, filepath.Join(dir, typ.FileName()))
			if d := s.want[typ].diff(got); d != "" {
				t.Errorf("%s: %s\n%s", typ.FileName(), d, got)
			}
		})
	}
}

// importReproduces imports the source's export onto the target and
// exports the target: the same files, but for followers (which follow an
// account; no import can make them), whose rows are reported as failures.
func (s *suite) importReproduces(t *testing.T) {
	rep, err := s.importTarget(t, migrate.ImportOptions{Files: parseDir(t, s.exported)})
	if err != nil {
		t.Fatal(err)
	}
	s.imported = rep
	for _, f := range rep.Failures {
		if f.Type != migrate.Followers || f.Reason == "" || f.Source != filepath.Join(s.exported, migrate.Followers.FileName())+":2" {
			t.Errorf("failure %+v; only the followers row may fail, with its file:line and reason", f)
		}
	}
	if s.supported(migrate.Followers) && len(rep.Failures) != 1 {
		t.Errorf("failures %+v; want the followers row reported", rep.Failures)
	}
	for typ, c := range rep.Types {
		if want := len(s.want[typ].rows); typ != migrate.Followers && (c.Applied != want || c.Failed != 0 || c.Pending != 0) {
			t.Errorf("%s: %+v; want %d applied", typ, *c, want)
		}
	}
	s.exportUntil(t, s.e.Target, t.TempDir(), s.targetWant())
}

// targetWant is what the target's export must hold after the import.
func (s *suite) targetWant() map[migrate.Type]file {
	w := map[migrate.Type]file{}
	for typ, f := range s.want {
		w[typ] = f
	}
	if f, ok := w[migrate.Followers]; ok {
		w[migrate.Followers] = file{header: f.header}
	}
	return w
}

// secondImport repeats the import: the journal knows it finished (the
// report is that job's, and the account is unchanged), a dry run plans
// nothing, and a fresh plan against the account finds everything already
// there and applies nothing.
func (s *suite) secondImport(t *testing.T) {
	files := parseDir(t, s.exported)
	again, err := s.importTarget(t, migrate.ImportOptions{Files: files})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Finished || again.JobID != s.imported.JobID || again.Resumed {
		t.Errorf("same import again: finished=%v, job %d (first %d), resumed=%v; want the finished job reported",
			again.Finished, again.JobID, s.imported.JobID, again.Resumed)
	}
	s.exportNow(t, s.e.Target, s.targetWant())
	dry, err := s.importTarget(t, migrate.ImportOptions{Files: files, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range dry.Plan {
		if p.Status == "pending" {
			t.Errorf("plan after the import still has %+v", p)
		}
	}
	fresh, err := s.importTarget(t, migrate.ImportOptions{Files: files, Fresh: true})
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Finished || applied(fresh) != 0 {
		t.Errorf("fresh import: finished=%v, applied %d; want a new plan with nothing to apply", fresh.Finished, applied(fresh))
	}
	for typ, c := range fresh.Types {
		if want := len(s.want[typ].rows); typ != migrate.Followers && c.Already != want {
			t.Errorf("fresh import, %s: %+v; want all %d already there", typ, *c, want)
		}
	}
	s.exportUntil(t, s.e.Target, t.TempDir(), s.targetWant())
}

// dryRun plans a follow and a block and checks that they are in the plan
// and not on the server.
func (s *suite) dryRun(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, migrate.Following.FileName()),
		"Account address,Show boosts,Notify on new posts,Languages\n"+s.peers[4].Handle()+",true,false,\n")
	writeFile(t, filepath.Join(dir, migrate.Blocks.FileName()), s.peers[5].Handle()+"\n")
	rep, err := s.importTarget(t, migrate.ImportOptions{Files: parseDir(t, dir), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.DryRun || applied(rep) != 0 {
		t.Errorf("dry run: %+v", rep)
	}
	if !slices.ContainsFunc(rep.Plan, func(p migrate.PlanEntry) bool { return p.Status == "pending" }) {
		t.Errorf("dry-run plan has nothing pending: %+v", rep.Plan)
	}
	// The server's importer takes a type's rows in one upload, which the
	// plan shows as one entry; otherwise every row is its own entry.
	if s.e.Method != migrate.MethodServer {
		for _, h := range []string{s.peers[4].Handle(), s.peers[5].Handle()} {
			if !slices.ContainsFunc(rep.Plan, func(p migrate.PlanEntry) bool { return p.Status == "pending" && strings.EqualFold(p.Entry, h) }) {
				t.Errorf("dry-run plan lacks a pending entry for %s: %+v", h, rep.Plan)
			}
		}
	}
	s.exportNow(t, s.e.Target, s.targetWant())
}

// unsupportedRows imports one row of each type the platform lacks: the
// import does not fail, it reports the row with a reason.
func (s *suite) unsupportedRows(t *testing.T) {
	if len(s.e.Unsupported) == 0 {
		t.Skip("the platform supports every type")
	}
	_, host, _ := strings.Cut(s.peers[4].Handle(), "@")
	sample := map[migrate.Type]string{
		migrate.Following:    s.peers[4].Handle() + "\n",
		migrate.Followers:    s.peers[4].Handle() + "\n",
		migrate.Lists:        "graphtest," + s.peers[4].Handle() + "\n",
		migrate.Blocks:       s.peers[4].Handle() + "\n",
		migrate.Mutes:        s.peers[4].Handle() + "\n",
		migrate.DomainBlocks: "graphtest-unsupported.example\n",
		migrate.Bookmarks:    "https://" + host + "/graphtest/no-such-post\n",
	}
	for typ := range s.e.Unsupported {
		t.Run(string(typ), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), typ.FileName())
			writeFile(t, path, sample[typ])
			p, err := parse(path, typ)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := s.importTarget(t, migrate.ImportOptions{Files: []migrate.Parsed{p}})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Failures) != 1 || rep.Failures[0].Type != typ || rep.Failures[0].Source != path+":1" || rep.Failures[0].Reason == "" || applied(rep) != 0 {
				t.Errorf("report %+v; want the row at %s:1 reported with a reason, nothing applied", rep, path)
			}
		})
	}
}

// malformedRow imports a following file whose second row cannot be read:
// the report names it by file:line, and the other rows apply.
func (s *suite) malformedRow(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, migrate.Following.FileName())
	writeFile(t, name, "Account address,Show boosts,Notify on new posts,Languages\n"+
		s.settingsRow()+"\n"+
		"not an address at all,true,false,\n"+
		s.peers[4].Handle()+",true,false,\n")
	rep, err := s.importTarget(t, migrate.ImportOptions{Files: parseDir(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Failures) != 1 || rep.Failures[0].Source != name+":3" || rep.Failures[0].Reason == "" {
		t.Fatalf("failures %+v; want the row at %s:3 with its reason", rep.Failures, name)
	}
	if c := rep.Types[migrate.Following]; c == nil || c.Applied != 1 || c.Already != 1 || c.Failed != 1 {
		t.Errorf("following: %+v; want 1 applied, 1 already there, 1 failed", c)
	}
	want := s.targetWant()
	f := want[migrate.Following]
	want[migrate.Following] = file{header: f.header, rows: append(slices.Clone(f.rows), s.peers[4].Handle()+",true,false,")}
	s.exportUntil(t, s.e.Target, t.TempDir(), want)
}

// unresolvable imports a follow of an account that does not exist: the
// row fails with its reason, and the failures file lists it so that it
// can be fixed and imported again.
func (s *suite) unresolvable(t *testing.T) {
	_, host, _ := strings.Cut(s.peers[0].Handle(), "@")
	missing := fmt.Sprintf("graphtest-nobody-%d@%s", time.Now().UnixNano()%1e9, host)
	dir := t.TempDir()
	name := filepath.Join(dir, migrate.Following.FileName())
	writeFile(t, name, "Account address,Show boosts,Notify on new posts,Languages\n"+missing+",false,true,\n")
	rep, err := s.importTarget(t, migrate.ImportOptions{Files: parseDir(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Failures) != 1 || !strings.EqualFold(rep.Failures[0].Entry, missing) || rep.Failures[0].Reason == "" {
		t.Fatalf("failures %+v; want %s with its reason", rep.Failures, missing)
	}
	out := t.TempDir()
	files, err := migrate.WriteFailures(out, rep)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(out, "following_failures.csv")
	if !slices.Equal(files, []string{path}) {
		t.Fatalf("failures files %v; want %s", files, path)
	}
	got := readFile(t, path)
	recs, err := csv.NewReader(strings.NewReader(got)).ReadAll()
	want := [][]string{
		{"Account address", "Show boosts", "Notify on new posts", "Languages", "Source", "Reason"},
		{strings.ToLower(missing), "false", "true", "", name + ":2", rep.Failures[0].Reason},
	}
	if err != nil || len(recs) == 2 && (len(recs[1]) == 0 || !strings.EqualFold(recs[1][0], missing)) {
		t.Fatalf("following_failures.csv (%v):\n%s", err, got)
	}
	recs[1][0] = strings.ToLower(recs[1][0])
	if !slices.EqualFunc(recs, want, slices.Equal) {
		t.Errorf("following_failures.csv:\n%s\nwant the records %q", got, want)
	}
}

// overwrite imports the source's following file in overwrite mode onto
// the target, which follows one account more: unconfirmed, it returns the
// removal for review and changes nothing; confirmed, it unfollows that
// account and leaves the other types alone.
func (s *suite) overwrite(t *testing.T) {
	if !s.supported(migrate.Following) {
		t.Skip(s.e.Unsupported[migrate.Following])
	}
	extra := s.peers[4].Handle()
	following, err := parse(filepath.Join(s.exported, migrate.Following.FileName()), migrate.Following)
	if err != nil {
		t.Fatal(err)
	}
	// The extra follow is there (MalformedRowSkipped made it; make sure).
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, migrate.Following.FileName()), extra+"\n")
	if _, err := s.importTarget(t, migrate.ImportOptions{Files: parseDir(t, dir), Fresh: true}); err != nil {
		t.Fatal(err)
	}
	before := s.targetWant()
	f := before[migrate.Following]
	before[migrate.Following] = file{header: f.header, rows: append(slices.Clone(f.rows), extra+",true,false,")}
	s.exportUntil(t, s.e.Target, t.TempDir(), before)

	o := migrate.ImportOptions{Files: []migrate.Parsed{following}, Mode: migrate.Overwrite}
	rep, err := s.importTarget(t, o)
	if !errors.Is(err, migrate.ErrNeedsConfirmation) {
		t.Fatalf("unconfirmed overwrite: %v; want ErrNeedsConfirmation", err)
	}
	if rep == nil || len(rep.Removals) != 1 || !strings.EqualFold(rep.Removals[0].Entry, extra) {
		t.Fatalf("unconfirmed overwrite: removals %+v; want only %s", rep, extra)
	}
	s.exportNow(t, s.e.Target, before)

	o.Confirmed = true
	rep, err = s.importTarget(t, o)
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Types[migrate.Following]; c == nil || c.Removed != 1 || c.Applied != 0 {
		t.Errorf("confirmed overwrite: following %+v; want 1 removed, nothing applied", c)
	}
	s.exportUntil(t, s.e.Target, t.TempDir(), s.targetWant())
}

// importTarget imports onto the target with the suite's journal.
func (s *suite) importTarget(t *testing.T, o migrate.ImportOptions) (*migrate.Report, error) {
	t.Helper()
	o.Journal, o.Method = s.e.Journal, s.e.Method
	return importInto(t, s.ctx, s.e.Target.Porter, o)
}

// exportUntil exports acct into dir (again and again, until the servers
// have settled) until every file matches want; it fails the test with the
// differences when they do not within Settle. It returns the last results
// by type.
func (s *suite) exportUntil(t *testing.T, acct Account, dir string, want map[migrate.Type]file) map[migrate.Type]migrate.ExportResult {
	t.Helper()
	deadline := time.Now().Add(s.e.Settle)
	for {
		res, diffs := s.export(t, acct, dir, want)
		if len(diffs) == 0 {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("export of %s after %v:\n%s", acct.Handle, s.e.Settle, strings.Join(diffs, "\n"))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// exportNow exports acct once and fails unless every file matches want.
func (s *suite) exportNow(t *testing.T, acct Account, want map[migrate.Type]file) {
	t.Helper()
	if _, diffs := s.export(t, acct, t.TempDir(), want); len(diffs) > 0 {
		t.Fatalf("export of %s:\n%s", acct.Handle, strings.Join(diffs, "\n"))
	}
}

func (s *suite) export(t *testing.T, acct Account, dir string, want map[migrate.Type]file) (map[migrate.Type]migrate.ExportResult, []string) {
	t.Helper()
	results, err := acct.Porter.Export(s.ctx, migrate.ExportOptions{Dir: dir})
	if err != nil {
		t.Fatalf("export of %s: %v", acct.Handle, err)
	}
	res := map[migrate.Type]migrate.ExportResult{}
	for _, r := range results {
		res[r.Type] = r
	}
	var diffs []string
	for typ, w := range want {
		b, err := os.ReadFile(filepath.Join(dir, typ.FileName()))
		if err != nil {
			diffs = append(diffs, err.Error())
			continue
		}
		if d := w.diff(string(b)); d != "" {
			diffs = append(diffs, fmt.Sprintf("%s: %s\n%s", typ.FileName(), d, b))
		}
	}
	return res, diffs
}

// file is a graph file as Mastodon writes it: the header line (or none)
// and the row lines, without their "\n".
type file struct {
	header string
	rows   []string
}

func (f file) bytes() string {
	var b strings.Builder
	if f.header != "" {
		b.WriteString(f.header + "\n")
	}
	for _, r := range f.rows {
		b.WriteString(r + "\n")
	}
	return b.String()
}

// diff says how got differs from f, rows in any order; "" when it does
// not.
func (f file) diff(got string) string {
	if got != "" && !strings.HasSuffix(got, "\n") || strings.Contains(got, "\r") {
		return "lines must end in \\n"
	}
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if got == "" {
		lines = nil
	}
	if f.header != "" {
		if len(lines) == 0 || lines[0] != f.header {
			return fmt.Sprintf("want the header %q", f.header)
		}
		lines = lines[1:]
	}
	want := slices.Sorted(slices.Values(f.rows))
	slices.Sort(lines)
	if !slices.Equal(lines, want) {
		return fmt.Sprintf("rows %q, want %q", lines, want)
	}
	return ""
}

func applied(r *migrate.Report) int {
	n := 0
	for _, c := range r.Types {
		n += c.Applied + c.Removed
	}
	return n
}

// parseDir parses every graph file in dir, in migrate.AllTypes order.
func parseDir(t *testing.T, dir string) []migrate.Parsed {
	t.Helper()
	var out []migrate.Parsed
	for _, typ := range migrate.AllTypes() {
		path := filepath.Join(dir, typ.FileName())
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			continue
		}
		p, err := parse(path, typ)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func parse(path string, typ migrate.Type) (migrate.Parsed, error) {
	f, err := os.Open(path)
	if err != nil {
		return migrate.Parsed{}, err
	}
	defer f.Close()
	return migrate.ParseFile(f, path, typ)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
