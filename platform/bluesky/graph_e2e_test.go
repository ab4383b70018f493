package bluesky_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/api/bsky"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/migrate"
	"github.com/fedi-ferry/ferry/migrate/bskygraph"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/platform/bluesky"
	"github.com/fedi-ferry/ferry/state"
)

// graphSession logs u in through the platform and returns its session.
func graphSession(t *testing.T, p *bluesky.Platform, pds string, u *testenv.PDSAccount) *bluesky.Session {
	t.Helper()
	ctx := t.Context()
	srv, err := p.Detect(ctx, pds)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := platform.Login(ctx, p, srv, platform.LoginRequest{Server: pds, Identifier: u.Handle, Password: password(u.Password)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Open(acct)
	if err != nil {
		t.Fatal(err)
	}
	return s.(*bluesky.Session)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// records lists the subjects of a collection of c's repository.
func subjects(t *testing.T, c *atproto.Client, coll string) []string {
	t.Helper()
	recs, _, err := c.ListRecords(t.Context(), coll, "", 100, true)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		switch v := r.Value.(type) {
		case *bsky.GraphFollow:
			out = append(out, v.Subject)
		case *bsky.GraphBlock:
			out = append(out, v.Subject)
		case *bsky.GraphListitem:
			out = append(out, v.Subject)
		case *bsky.GraphList:
			out = append(out, v.Name)
		}
	}
	return out
}

// The Bluesky graph role against a real PDS: a graph made through the
// PDS's API is exported (handles and DIDs; mutes reported as the app
// view's, which this PDS has none of), imported onto a second account
// (dry run first, then for real, then again as a no-op), and an import
// with rows that cannot apply lands them in the failures files with the
// reason: an unknown handle, a fediverse account that is not bridged, a
// malformed row, a mute. A fediverse address is followed through its
// Bridgy Fed handle when a resolver knows it.
func TestE2EGraphBluesky(t *testing.T) {
	env := testenv.SharedPDS(t, 1)
	ctx := t.Context()
	pds := env.PDSes[0]
	mk := func(name string) *testenv.PDSAccount {
		u, err := pds.CreateAccount(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	src, dst := mk("gsrc"), mk("gdst")
	peers := []*testenv.PDSAccount{mk("peer"), mk("peer"), mk("peer"), mk("peer")}
	store := state.TestStore(t)
	penv := platform.Env{UserAgent: "ferry-test", Tokens: store}
	p := bluesky.New(penv, bluesky.Options{PLCURL: env.PLCURL})
	ss, ds := graphSession(t, p, pds.URL, src), graphSession(t, p, pds.URL, dst)

	// The source's graph, made as a person's app makes it: records in
	// its repository.
	sc := ss.Client()
	now := time.Now().UTC().Format(time.RFC3339)
	tid := func(i int) string {
		return atproto.RecordKey("graph-seed", src.Handle, time.Now().Add(time.Duration(i)*time.Second))
	}
	for i, peer := range peers[:2] {
		if _, _, err := sc.CreateRecord(ctx, bskygraph.FollowCollection, tid(i), &bsky.GraphFollow{LexiconTypeID: bskygraph.FollowCollection, Subject: peer.DID, CreatedAt: now}, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := sc.CreateRecord(ctx, bskygraph.BlockCollection, tid(3), &bsky.GraphBlock{LexiconTypeID: bskygraph.BlockCollection, Subject: peers[2].DID, CreatedAt: now}, true); err != nil {
		t.Fatal(err)
	}
	purpose := "app.bsky.graph.defs#curatelist"
	list, _, err := sc.CreateRecord(ctx, bskygraph.ListCollection, tid(4), &bsky.GraphList{LexiconTypeID: bskygraph.ListCollection, Name: "close, friends", Purpose: &purpose, CreatedAt: now}, true)
	if err != nil {
		t.Fatal(err)
	}
	for i, peer := range peers[:2] {
		if _, _, err := sc.CreateRecord(ctx, bskygraph.ListItemCollection, tid(5+i), &bsky.GraphListitem{LexiconTypeID: bskygraph.ListItemCollection, List: list.URI, Subject: peer.DID, CreatedAt: now}, true); err != nil {
			t.Fatal(err)
		}
	}

	// Export.
	dir := t.TempDir()
	res, err := ss.Export(ctx, migrate.ExportOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	byType := map[migrate.Type]migrate.ExportResult{}
	for _, r := range res {
		byType[r.Type] = r
	}
	want := map[migrate.Type]string{
		migrate.Following: "Account address,DID\n" + peers[0].Handle + "," + peers[0].DID + "\n" + peers[1].Handle + "," + peers[1].DID + "\n",
		migrate.Blocks:    "Account address,DID\n" + peers[2].Handle + "," + peers[2].DID + "\n",
		migrate.Lists: "List name,Account address,DID\n\"close, friends\"," + peers[0].Handle + "," + peers[0].DID + "\n" +
			"\"close, friends\"," + peers[1].Handle + "," + peers[1].DID + "\n",
	}
	for typ, body := range want {
		r := byType[typ]
		if r.File != filepath.Join(dir, typ.FileName()) || r.Unsupported != "" {
			t.Fatalf("%s: %+v", typ, r)
		}
		if got := readFile(t, r.File); got != body {
			t.Errorf("%s:\n%s\nwant\n%s", typ, got, body)
		}
		if fi, err := os.Stat(r.File); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", r.File, fi.Mode(), err)
		}
	}
	// Mutes are the app view's; this PDS has none, and the export says so
	// rather than writing an empty file.
	if r := byType[migrate.Mutes]; r.File != "" || !strings.Contains(r.Unsupported, "app view") {
		t.Errorf("mutes: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, migrate.Mutes.FileName())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a mutes file was written: %v", err)
	}
	for _, typ := range []migrate.Type{migrate.Followers, migrate.DomainBlocks, migrate.Bookmarks} {
		if r := byType[typ]; r.File != "" || r.Unsupported == "" {
			t.Errorf("%s: %+v", typ, r)
		}
	}

	// The files read back with migrate's reader: handles and DIDs.
	files, err := migrate.ReadFiles([]string{dir}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if len(f.Errors) > 0 {
			t.Fatalf("%s: %v", f.Type, f.Errors[0])
		}
	}
	imp := func(o migrate.ImportOptions) (migrate.ImportFilesResult, error) {
		o.Journal = store
		return ds.ImportFiles(ctx, migrate.ImportFilesOptions{ImportOptions: o, FailuresDir: dir})
	}

	// A dry run plans and changes nothing.
	dry, err := imp(migrate.ImportOptions{Files: files, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := dry.Types[migrate.Following]; c == nil || c.Pending != 2 || c.Applied != 0 {
		t.Fatalf("dry run: %+v", dry.Report)
	}
	if len(dry.Plan) != 6 { // 2 follows, a list, 2 members, a block
		t.Errorf("dry-run plan: %+v", dry.Plan)
	}
	dc := ds.Client()
	if got := subjects(t, dc, bskygraph.FollowCollection); len(got) != 0 {
		t.Fatalf("the dry run followed %v", got)
	}

	// The import.
	rep, err := imp(migrate.ImportOptions{Files: files})
	if err != nil {
		t.Fatalf("import: %v (%+v)", err, rep.Report)
	}
	for typ, n := range map[migrate.Type]int{migrate.Following: 2, migrate.Lists: 2, migrate.Blocks: 1} {
		if c := rep.Types[typ]; c == nil || c.Applied != n || c.Failed != 0 {
			t.Errorf("%s: %+v", typ, c)
		}
	}
	if got := subjects(t, dc, bskygraph.FollowCollection); !slices.Equal(got, []string{peers[0].DID, peers[1].DID}) {
		t.Errorf("follows: %v", got)
	}
	if got := subjects(t, dc, bskygraph.BlockCollection); !slices.Equal(got, []string{peers[2].DID}) {
		t.Errorf("blocks: %v", got)
	}
	if got := subjects(t, dc, bskygraph.ListCollection); !slices.Equal(got, []string{"close, friends"}) {
		t.Errorf("lists: %v", got)
	}
	// The target's own export is the source's.
	dir2 := t.TempDir()
	if _, err := ds.Export(ctx, migrate.ExportOptions{Dir: dir2, Types: []migrate.Type{migrate.Following, migrate.Blocks, migrate.Lists}}); err != nil {
		t.Fatal(err)
	}
	for typ, body := range want {
		if got := readFile(t, filepath.Join(dir2, typ.FileName())); got != body {
			t.Errorf("re-export %s:\n%s\nwant\n%s", typ, got, body)
		}
	}

	// The same import again does nothing.
	again, err := imp(migrate.ImportOptions{Files: files})
	if err != nil || !again.Finished {
		t.Fatalf("second import: %v %+v", err, again.Report)
	}
	if got := subjects(t, dc, bskygraph.FollowCollection); len(got) != 2 {
		t.Errorf("follows after the second import: %v", got)
	}
	// --fresh plans again: everything is already there.
	fresh, err := imp(migrate.ImportOptions{Files: files, Fresh: true})
	if err != nil || fresh.Types[migrate.Following].Already != 2 || fresh.Types[migrate.Following].Applied != 0 {
		t.Fatalf("fresh import: %v %+v", err, fresh.Report)
	}

	// An overwrite removes what the file does not list, only once confirmed.
	ow := t.TempDir()
	os.WriteFile(filepath.Join(ow, "following_accounts.csv"), []byte("Account address,DID\n"+peers[0].Handle+","+peers[0].DID+"\n"), 0o600)
	owFiles, err := migrate.ReadFiles([]string{ow}, "")
	if err != nil {
		t.Fatal(err)
	}
	owRes, err := imp(migrate.ImportOptions{Files: owFiles, Mode: migrate.Overwrite})
	if !errors.Is(err, migrate.ErrNeedsConfirmation) || len(owRes.Removals) != 1 || owRes.Removals[0].Entry != peers[1].DID {
		t.Fatalf("overwrite without confirmation: %v %+v", err, owRes.Report)
	}
	if got := subjects(t, dc, bskygraph.FollowCollection); len(got) != 2 {
		t.Fatalf("an unconfirmed overwrite removed follows: %v", got)
	}
	owRes, err = imp(migrate.ImportOptions{Files: owFiles, Mode: migrate.Overwrite, Confirmed: true})
	if err != nil || owRes.Types[migrate.Following].Removed != 1 || owRes.Types[migrate.Following].Already != 1 {
		t.Fatalf("confirmed overwrite: %v %+v", err, owRes.Report)
	}
	if got := subjects(t, dc, bskygraph.FollowCollection); !slices.Equal(got, []string{peers[0].DID}) {
		t.Errorf("follows after the overwrite: %v", got)
	}
	// Blocks and lists were not in the files: untouched.
	if got := subjects(t, dc, bskygraph.BlockCollection); len(got) != 1 {
		t.Errorf("blocks after the overwrite: %v", got)
	}

	// Rows that cannot apply: each in the failures file with its reason,
	// the rest applied.
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "following_accounts.csv"), []byte("Account address,DID\n"+
		peers[3].Handle+","+peers[3].DID+"\n"+
		"nobody-ferry-test.test,\n"+
		"bob@example.social,\n"+
		"not an address,\n"), 0o600)
	os.WriteFile(filepath.Join(bad, "muted_accounts.csv"), []byte("Account address,DID\n"+peers[3].Handle+","+peers[3].DID+"\n"), 0o600)
	badFiles, err := migrate.ReadFiles([]string{bad}, "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := ds.ImportFiles(ctx, migrate.ImportFilesOptions{ImportOptions: migrate.ImportOptions{Files: badFiles, Journal: store}, FailuresDir: bad})
	var rf *migrate.RowsFailedError
	if !errors.As(err, &rf) || rf.Rows != 4 {
		t.Fatalf("import with bad rows: %v %+v", err, out.Report)
	}
	if c := out.Types[migrate.Following]; c.Applied != 1 || c.Failed != 3 {
		t.Errorf("following: %+v", c)
	}
	failures := readFile(t, filepath.Join(bad, "following_failures.csv"))
	for _, w := range []string{"nobody-ferry-test.test", "does not resolve",
		"bob@example.social", "not bridged: @bob@example.social would be bob.example.social.ap.brid.gy",
		"following_accounts.csv:5", "not an address"} {
		if !strings.Contains(failures, w) {
			t.Errorf("following_failures.csv lacks %q:\n%s", w, failures)
		}
	}
	mutes := readFile(t, filepath.Join(bad, "mutes_failures.csv"))
	if !strings.Contains(mutes, peers[3].Handle) || !strings.Contains(mutes, "app view") {
		t.Errorf("mutes_failures.csv:\n%s", mutes)
	}

	// A fediverse address whose Bridgy Fed handle resolves is followed
	// under it (the resolver stands in for Bridgy Fed's DNS here).
	fedi := t.TempDir()
	os.WriteFile(filepath.Join(fedi, "following_accounts.csv"), []byte("Account address,Show boosts,Notify on new posts,Languages\ncarol_x@example.social,true,false,\n"), 0o600)
	fediFiles, err := migrate.ReadFiles([]string{fedi}, "")
	if err != nil {
		t.Fatal(err)
	}
	third := graphSession(t, p, pds.URL, mk("gthird"))
	var asked []string
	fr, err := bskygraph.ImportFiles(ctx, bskygraph.ImportOptions{
		ImportOptions: migrate.ImportOptions{Account: third.Account().Handle, Files: fediFiles, Journal: store},
		PDS:           third.Client(), FailuresDir: fedi,
		Resolve: func(ctx context.Context, h string) (string, error) {
			asked = append(asked, h)
			if h == "carol-x.example.social.ap.brid.gy" {
				return peers[3].DID, nil
			}
			return "", errors.New("no such handle")
		}})
	if err != nil || fr.Types[migrate.Following].Applied != 1 {
		t.Fatalf("bridged follow: %v %+v", err, fr.Report)
	}
	if !slices.Equal(asked, []string{"carol-x.example.social.ap.brid.gy"}) {
		t.Errorf("resolved %v", asked)
	}
	if got := subjects(t, third.Client(), bskygraph.FollowCollection); !slices.Equal(got, []string{peers[3].DID}) {
		t.Errorf("bridged follow: %v", got)
	}
}

// The Bluesky graph import exactly once: through a proxy that loses half
// the PDS's answers to createRecord (the record is written, the answer
// never arrives), and stopped halfway and run again, every follow is
// written once.
func TestE2EGraphBlueskyLostAnswersAndResume(t *testing.T) {
	env := testenv.SharedPDS(t, 1)
	ctx := t.Context()
	pds := env.PDSes[0]
	mk := func(name string) *testenv.PDSAccount {
		u, err := pds.CreateAccount(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	var rows strings.Builder
	rows.WriteString("Account address,DID\n")
	for range 8 {
		p := mk("lpeer")
		rows.WriteString(p.Handle + "," + p.DID + "\n")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "following_accounts.csv"), []byte(rows.String()), 0o600)
	files, err := migrate.ReadFiles([]string{dir}, "")
	if err != nil {
		t.Fatal(err)
	}
	store := state.TestStore(t)
	p := bluesky.New(platform.Env{UserAgent: "ferry-test", Tokens: store}, bluesky.Options{PLCURL: env.PLCURL})

	fp, err := testenv.NewFaultProxyTo(pds.URL, testenv.FaultOptions{Seed: 11, Lost: 0.5,
		Paths: regexp.MustCompile(`createRecord`)})
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Close()
	lossy := graphSession(t, p, fp.BaseURL, mk("lossy"))
	res, err := lossy.ImportFiles(ctx, migrate.ImportFilesOptions{ImportOptions: migrate.ImportOptions{Files: files, Journal: store}, FailuresDir: dir})
	if err != nil || res.Types[migrate.Following].Applied != 8 {
		t.Fatalf("import through lost answers: %v %+v", err, res.Report)
	}
	if fp.Injected()[testenv.FaultLost] == 0 {
		t.Fatal("no answer was lost")
	}
	if got := subjects(t, lossy.Client(), bskygraph.FollowCollection); len(got) != 8 {
		t.Errorf("%d follow records after %d lost answers, want 8", len(got), fp.Injected()[testenv.FaultLost])
	}

	// Stopped after three writes, then run again.
	fp.SetFaults(testenv.FaultOptions{})
	creates := func() int {
		n := 0
		for pat, c := range fp.Counts() {
			if strings.HasSuffix(pat, "createRecord") {
				n += c.Requests
			}
		}
		return n
	}
	before := creates()
	stopped := graphSession(t, p, fp.BaseURL, mk("stopped"))
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := stopped.ImportFiles(cctx, migrate.ImportFilesOptions{ImportOptions: migrate.ImportOptions{Files: files, Journal: store}, FailuresDir: dir})
		done <- err
	}()
	for creates() < before+3 {
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	stoppedEarly := <-done != nil
	res, err = stopped.ImportFiles(ctx, migrate.ImportFilesOptions{ImportOptions: migrate.ImportOptions{Files: files, Journal: store}, FailuresDir: dir})
	if err != nil {
		t.Fatalf("resumed import: %v", err)
	}
	if got := subjects(t, stopped.Client(), bskygraph.FollowCollection); len(got) != 8 {
		t.Errorf("%d follow records after a resumed import, want 8", len(got))
	}
	c := res.Types[migrate.Following]
	if c.Applied+c.Already != 8 || c.Failed != 0 || (stoppedEarly && !res.Resumed) {
		t.Errorf("resumed: %+v (stopped early %v, resumed %v)", c, stoppedEarly, res.Resumed)
	}
	if creates()-before > 8+1 {
		t.Errorf("%d creates for 8 follows", creates()-before)
	}
}
