package migrate

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/fakemastodon"
	"github.com/fedi-ferry/ferry/journal"
	"github.com/fedi-ferry/ferry/state"
)

// quirkServer is a fake Mastodon-API server with quirks, an account "me"
// logged in and the accounts bob and carol to follow, list, block and mute.
type quirkServer struct {
	srv *fakemastodon.Server
	c   *fedi.Client
	st  *state.Store
}

func newQuirkServer(t *testing.T, cfg fakemastodon.Config) *quirkServer {
	t.Helper()
	srv := fakemastodon.Start(cfg)
	t.Cleanup(srv.Close)
	_, token := srv.AddAccount("me")
	srv.AddAccount("bob")
	srv.AddAccount("carol")
	base, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	hc, _ := fedi.NewHTTPClient(fedi.HTTPOptions{})
	return &quirkServer{srv: srv, c: fedi.NewClient(base, token, hc), st: state.TestStore(t)}
}

// acct is the handle of a local account of the fake.
func (q *quirkServer) acct(user string) string { return user + "@" + q.srv.Host }

// importFiles writes the files (name → content, "{h}" standing for the
// fake's host) into dir and imports them through the API.
func (q *quirkServer) importFiles(t *testing.T, dir string, files map[string]string) (ImportFilesResult, error) {
	t.Helper()
	var paths []string
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "{h}", q.srv.Host)), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	parsed, err := ReadFiles(paths, "")
	if err != nil {
		t.Fatal(err)
	}
	return ImportFiles(t.Context(), ImportFilesOptions{
		ImportOptions: ImportOptions{Client: q.c, Account: q.acct("me"), Software: "mastodon", Files: parsed,
			Method: MethodAPI, Journal: q.st, VerifyTimeout: time.Second},
		FailuresDir: dir,
	})
}

func rowsFailed(t *testing.T, err error) *RowsFailedError {
	t.Helper()
	var rf *RowsFailedError
	if err != nil && !errors.As(err, &rf) {
		t.Fatalf("import failed: %v", err)
	}
	return rf
}

// Issue 16 item 7: a re-run of a finished import names its failures file;
// a later run that fixed the rows removes the earlier failures file; a row
// that failed for a transient reason is retried by a plain re-run.
func TestImportRerunFailuresFileAndRetry(t *testing.T) {
	q := newQuirkServer(t, fakemastodon.Config{})
	dir := t.TempDir()
	failures := filepath.Join(dir, "following_failures.csv")
	follows := map[string]string{"following_accounts.csv": "Account address,Show boosts,Notify on new posts,Languages\nbob@{h},true,false,\nnobody@{h},true,false,\n"}

	_, err := q.importFiles(t, dir, follows)
	if rf := rowsFailed(t, err); rf == nil || rf.Rows != 1 {
		t.Fatalf("first run: %v, want one row not applied", err)
	}
	if _, err := os.Stat(failures); err != nil {
		t.Fatalf("first run wrote no failures file: %v", err)
	}
	// The same command again: the import had finished.
	res, err := q.importFiles(t, dir, follows)
	rf := rowsFailed(t, err)
	if rf == nil || strings.HasSuffix(strings.TrimSpace(rf.Error()), "see") || len(res.FailureFiles) != 1 {
		t.Fatalf("re-run of a finished import: %v (files %v); want the failures file named", err, res.FailureFiles)
	}

	// The person fixes the file: no failures any more, and the earlier
	// failures file must not send them after rows that are applied.
	fixed := map[string]string{"following_accounts.csv": "Account address,Show boosts,Notify on new posts,Languages\nbob@{h},true,false,\n"}
	if _, err := q.importFiles(t, dir, fixed); err != nil {
		t.Fatalf("fixed run: %v", err)
	}
	if _, err := os.Stat(failures); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the failures file of the earlier run is still there (%v)", err)
	}

	// A row that failed for now (a 503 on every try within the run): as
	// the applier leaves it in the journal.
	carol := map[string]string{"following_accounts.csv": "Account address,Show boosts,Notify on new posts,Languages\ncarol@{h},true,false,\n"}
	res, err = q.importFiles(t, dir, carol)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	items, err := q.st.Items(ctx, res.JobID, journal.ItemFilter{Limit: 10})
	if err != nil || len(items) != 1 {
		t.Fatalf("items %v, %v", items, err)
	}
	it := items[0]
	if _, err := fedi.AccountAction(ctx, q.c, it.RemoteID, "unfollow"); err != nil {
		t.Fatal(err)
	}
	it.Status, it.Error = journal.ItemFailed, "failed for now, retried when the import runs again: POST /api/v1/accounts/x/follow: 503 Service Unavailable"
	if err := q.st.FinishItem(ctx, it); err != nil {
		t.Fatal(err)
	}
	// A plain re-run (no --fresh) retries it.
	res, err = q.importFiles(t, dir, carol)
	if err != nil || res.Finished || res.Types[Following].Applied != 1 || res.Types[Following].Failed != 0 {
		t.Fatalf("plain re-run: %+v %v; want the transient failure retried and applied", res.Report, err)
	}
	rels, err := fedi.Relationships(ctx, q.c, []string{it.RemoteID})
	if err != nil || len(rels) != 1 || !rels[0].Following {
		t.Fatalf("carol is not followed after the retry: %+v %v", rels, err)
	}

	// The same row failed for now in a run that was then killed (the job
	// not finished): resuming applies the rest and retries it too (a list
	// member whose follow request was accepted meanwhile).
	if _, err := fedi.AccountAction(ctx, q.c, it.RemoteID, "unfollow"); err != nil {
		t.Fatal(err)
	}
	if err := q.st.FinishItem(ctx, it); err != nil {
		t.Fatal(err)
	}
	if err := q.st.UpdateJob(ctx, res.JobID, journal.JobPlanned, ""); err != nil {
		t.Fatal(err)
	}
	res, err = q.importFiles(t, dir, carol)
	if err != nil || !res.Resumed || res.Types[Following].Applied != 1 || res.Types[Following].Failed != 0 {
		t.Fatalf("resumed run: %+v %v; want the earlier run's failure retried and applied", res.Report, err)
	}
	if rels, err = fedi.Relationships(ctx, q.c, []string{it.RemoteID}); err != nil || len(rels) != 1 || !rels[0].Following {
		t.Fatalf("carol is not followed after the resumed run: %+v %v", rels, err)
	}
}

// Issue 16 item 8: a server without an endpoint (HTML 404) is reported as
// a missing feature, once, never as "account not found"; export says so
// instead of failing.
func TestMissingEndpointsAreMissingFeatures(t *testing.T) {
	q := newQuirkServer(t, fakemastodon.Config{Software: "snac", Quirks: fakemastodon.Quirks{
		MissingEndpoints: []string{"/api/v1/mutes"}}})
	dir := t.TempDir()
	res, err := q.importFiles(t, dir, map[string]string{"muted_accounts.csv": "Account address,Hide notifications\nbob@{h},true\ncarol@{h},false\n"})
	if rf := rowsFailed(t, err); rf == nil || rf.Rows != 2 {
		t.Fatalf("import: %v, want the two mutes not applied", err)
	}
	notes := strings.Join(res.Notes, "\n")
	if strings.Count(notes, "no mute feature") != 1 {
		t.Errorf("notes %q: want the missing mute feature said once", notes)
	}
	for _, f := range res.Failures {
		if strings.Contains(f.Reason, "not found") && !strings.Contains(f.Reason, "404 with a web page") {
			t.Errorf("failure reason %q reads as an unknown account", f.Reason)
		}
	}

	out, err := Export(t.Context(), ExportOptions{Client: q.c, Dir: t.TempDir(), Types: []Type{Blocks, Mutes}})
	if err != nil {
		t.Fatalf("export failed on a missing endpoint: %v", err)
	}
	if len(out) != 2 || out[1].Type != Mutes || !strings.Contains(out[1].Unsupported, "no mute") || out[1].File != "" {
		t.Fatalf("export results %+v; want mutes unsupported", out)
	}

	// No search API: the accounts cannot be looked up, which is not the
	// same as their not existing.
	q = newQuirkServer(t, fakemastodon.Config{Quirks: fakemastodon.Quirks{MissingEndpoints: []string{"/api/v2/search"}}})
	res, err = q.importFiles(t, t.TempDir(), map[string]string{"blocked_accounts.csv": "bob@{h}\n"})
	rowsFailed(t, err)
	if len(res.Failures) != 1 || strings.Contains(res.Failures[0].Reason, "account not found") ||
		!strings.Contains(res.Failures[0].Reason, "no such feature") {
		t.Fatalf("failures %+v; want 'the server has no such feature'", res.Failures)
	}
}

// Issue 16 item 12: follow settings the server ignores are reported, not
// counted as plainly applied.
func TestImportReportsIgnoredFollowSettings(t *testing.T) {
	q := newQuirkServer(t, fakemastodon.Config{Quirks: fakemastodon.Quirks{FollowSettingsIgnored: true}})
	res, err := q.importFiles(t, t.TempDir(), map[string]string{
		"following_accounts.csv": "Account address,Show boosts,Notify on new posts,Languages\nbob@{h},true,true,\"en,de\"\ncarol@{h},true,false,\n"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Types[Following].Applied != 2 {
		t.Fatalf("counts %+v", res.Types[Following])
	}
	if len(res.Partial) != 1 || res.Partial[0].Entry != q.acct("bob") || res.Partial[0].Note != "followed; the server ignored: notify, languages" {
		t.Fatalf("partial %+v; want bob followed with notify and languages ignored", res.Partial)
	}
	if !strings.Contains(strings.Join(res.Notes, "\n"), q.acct("bob")+": followed; the server ignored: notify, languages") {
		t.Errorf("notes %q", res.Notes)
	}
}

// Issue 16 item 10: two lists created in the same second on a server whose
// list IDs are the creation second: the second renamed the first. ferry
// reads the lists back, reports what did not take, restores the first
// list's title, and a plain re-run (a second later) creates the second.
func TestImportVerifiesCreatedLists(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	q := newQuirkServer(t, fakemastodon.Config{Now: clock, Quirks: fakemastodon.Quirks{ListIDsBySecond: true}})
	dir := t.TempDir()
	files := map[string]string{
		"following_accounts.csv": "Account address,Show boosts,Notify on new posts,Languages\nbob@{h},true,false,\ncarol@{h},true,false,\n",
		"lists.csv":              "Friends,bob@{h}\nWork,carol@{h}\n",
	}
	res, err := q.importFiles(t, dir, files)
	rf := rowsFailed(t, err)
	if rf == nil {
		t.Fatalf("import reported every list applied: %+v", res.Types[Lists])
	}
	var why string
	for _, f := range res.Failures {
		if f.Type == Lists {
			why += f.Reason + "\n"
		}
	}
	if !strings.Contains(why, `"Work"`) || !strings.Contains(why, `"Friends"`) {
		t.Fatalf("list failures %q; want the list that did not take named", why)
	}
	titles := func() []string {
		ls, err := fedi.Lists(context.Background(), q.c)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range ls {
			out = append(out, l.Title)
		}
		return out
	}
	if got := titles(); len(got) != 1 || got[0] != "Friends" {
		t.Fatalf("lists on the server %v; want Friends with its title back", got)
	}

	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	res, err = q.importFiles(t, dir, files)
	if err != nil {
		t.Fatalf("plain re-run: %v (%+v)", err, res.Failures)
	}
	if got := titles(); len(got) != 2 || got[0] != "Friends" || got[1] != "Work" {
		t.Fatalf("lists after the re-run %v; want Friends and Work", got)
	}
}

// Issue 16 item 9: a server whose blocks and mutes lists are stubs ([]
// while relationships show blocking and muting): the export says the
// files are not trustworthy instead of writing empty files without a word.
func TestExportCrossChecksStubBlocksAndMutes(t *testing.T) {
	for _, stub := range []bool{false, true} {
		q := newQuirkServer(t, fakemastodon.Config{Quirks: fakemastodon.Quirks{StubBlocksMutes: stub}})
		ctx := t.Context()
		bob, err := fedi.ResolveAccount(ctx, q.c, q.acct("bob"))
		if err != nil {
			t.Fatal(err)
		}
		carol, err := fedi.ResolveAccount(ctx, q.c, q.acct("carol"))
		if err != nil {
			t.Fatal(err)
		}
		// bob is followed and muted: the export meets him in the
		// following list. carol is followed and nothing else.
		if _, err := fedi.Follow(ctx, q.c, bob.ID, fedi.FollowOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := fedi.Mute(ctx, q.c, bob.ID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := fedi.Follow(ctx, q.c, carol.ID, fedi.FollowOptions{}); err != nil {
			t.Fatal(err)
		}
		out, err := Export(ctx, ExportOptions{Client: q.c, Dir: t.TempDir(), Types: []Type{Following, Blocks, Mutes}})
		if err != nil {
			t.Fatal(err)
		}
		var mutes ExportResult
		for _, r := range out {
			if r.Type == Mutes {
				mutes = r
			}
			if r.Type == Blocks && r.Untrustworthy != "" {
				t.Errorf("stub=%v: blocks flagged although nothing known is blocked: %s", stub, r.Untrustworthy)
			}
		}
		switch {
		case stub && (!strings.Contains(mutes.Untrustworthy, "not trustworthy") || !strings.Contains(mutes.Untrustworthy, "bob")):
			t.Errorf("stub mutes list: %+v; want it flagged, naming bob", mutes)
		case !stub && (mutes.Untrustworthy != "" || mutes.Rows != 1):
			t.Errorf("honest mutes list: %+v; want one row and no warning", mutes)
		}
	}
}
