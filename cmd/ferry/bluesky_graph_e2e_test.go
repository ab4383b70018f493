package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/api/bsky"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/migrate"
	"github.com/fedi-ferry/ferry/migrate/bskygraph"
)

// `ferry export` and `ferry import` of a Bluesky account's graph, and the
// graph across protocols, on the servers that run here: a PDS and
// GoToSocial. A Bluesky account's follows, block and list go to another
// Bluesky account; imported into a GoToSocial account, they are looked up
// under their Bridgy Fed addresses, which do not resolve here, so each
// lands in the failures file saying the account is not bridged; a
// GoToSocial export imported into a Bluesky account does the same the other
// way.
func TestE2EBlueskyGraphCLI(t *testing.T) {
	penv := testenv.SharedPDS(t, 1)
	t.Setenv("FERRY_PLC_URL", penv.PLCURL)
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	ctx := t.Context()
	c := newCLI(t, env.CAFile)

	src, srcPW := bskyAccount(t, "clisrc")
	dst, dstPW := bskyAccount(t, "clidst")
	peer1, _ := bskyAccount(t, "clipeer")
	peer2, _ := bskyAccount(t, "clipeer")
	c.run("login", src.PDS.URL, "--handle", src.Handle, "--password-file", srcPW, "--name", "src").mustSucceed(t)
	c.run("login", dst.PDS.URL, "--handle", dst.Handle, "--password-file", dstPW, "--name", "dst").mustSucceed(t)
	gts := mirUser(t, in)
	gtsHandle := mirLogin(t, c, in, gts)

	sc, err := atproto.Login(ctx, src.PDS.URL, src.Handle, src.Password, atproto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	key := func(i int) string {
		return atproto.RecordKey("cli-seed", src.Handle, time.Now().Add(time.Duration(i)*time.Second))
	}
	if _, _, err := sc.CreateRecord(ctx, bskygraph.FollowCollection, key(0), &bsky.GraphFollow{LexiconTypeID: bskygraph.FollowCollection, Subject: peer1.DID, CreatedAt: now}, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.CreateRecord(ctx, bskygraph.BlockCollection, key(1), &bsky.GraphBlock{LexiconTypeID: bskygraph.BlockCollection, Subject: peer2.DID, CreatedAt: now}, true); err != nil {
		t.Fatal(err)
	}
	purpose := "app.bsky.graph.defs#curatelist"
	list, _, err := sc.CreateRecord(ctx, bskygraph.ListCollection, key(2), &bsky.GraphList{LexiconTypeID: bskygraph.ListCollection, Name: "friends", Purpose: &purpose, CreatedAt: now}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.CreateRecord(ctx, bskygraph.ListItemCollection, key(3), &bsky.GraphListitem{LexiconTypeID: bskygraph.ListItemCollection, List: list.URI, Subject: peer1.DID, CreatedAt: now}, true); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	exp := c.run("export", "src", "--out", dir).mustSucceed(t)
	for _, w := range []string{"following", "blocks", "lists", "not written: Bluesky keeps mutes in its app view"} {
		if !strings.Contains(exp.stdout, w) {
			t.Errorf("export output lacks %q:\n%s", w, exp.stdout)
		}
	}
	if got, want := readFile(t, filepath.Join(dir, "following_accounts.csv")), "Account address,DID\n"+peer1.Handle+","+peer1.DID+"\n"; got != want {
		t.Errorf("following_accounts.csv = %q, want %q", got, want)
	}

	dry := c.run("import", "dst", dir, "--dry-run").mustSucceed(t)
	if !strings.Contains(dry.stdout, "dry run") || !strings.Contains(dry.stdout, peer1.Handle) {
		t.Errorf("dry run:\n%s", dry.stdout)
	}
	var rep migrate.ImportFilesResult
	r := c.run("--json", "import", "dst", dir).mustSucceed(t)
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	for typ, n := range map[migrate.Type]int{migrate.Following: 1, migrate.Blocks: 1, migrate.Lists: 1} {
		if cnt := rep.Types[typ]; cnt == nil || cnt.Applied != n {
			t.Errorf("%s: %+v", typ, cnt)
		}
	}
	again := c.run("import", "dst", dir).mustSucceed(t)
	if !strings.Contains(again.stdout, "already finished") {
		t.Errorf("second import:\n%s", again.stdout)
	}

	// Into the GoToSocial account: Bridgy Fed addresses, not reachable here.
	fr := c.run("import", gtsHandle, dir)
	if fr.code != exitPartial {
		t.Fatalf("import into GoToSocial: exit %d\n%s\n%s", fr.code, fr.stdout, fr.stderr)
	}
	failures := readFile(t, filepath.Join(dir, "following_failures.csv"))
	for _, w := range []string{peer1.Handle + "@bsky.brid.gy", "not bridged: the Bluesky account " + peer1.Handle, "Bridgy Fed"} {
		if !strings.Contains(failures, w) {
			t.Errorf("following_failures.csv lacks %q:\n%s", w, failures)
		}
	}
	if !strings.Contains(fr.stdout, "Bridgy Fed addresses") {
		t.Errorf("the report does not say the accounts were looked up through Bridgy Fed:\n%s", fr.stdout)
	}

	// A GoToSocial export into a Bluesky account: the other way round.
	other := mirUser(t, in)
	id, err := gts.Resolve(ctx, other.Acct)
	if err != nil {
		t.Fatal(err)
	}
	mustAPI(t, ctx, gts, "POST", "/api/v1/accounts/"+id+"/follow", nil, nil)
	gdir := t.TempDir()
	c.run("export", gtsHandle, "--out", gdir, "--what", "following").mustSucceed(t)
	br := c.run("import", "dst", filepath.Join(gdir, "following_accounts.csv"))
	if br.code != exitPartial {
		t.Fatalf("import of a fediverse export into Bluesky: exit %d\n%s\n%s", br.code, br.stdout, br.stderr)
	}
	bf := readFile(t, filepath.Join(gdir, "following_failures.csv"))
	if !strings.Contains(bf, other.Username+"@"+in.Host) || !strings.Contains(bf, "not bridged") {
		t.Errorf("following_failures.csv:\n%s", bf)
	}
	if _, err := os.Stat(filepath.Join(gdir, "following_failures.csv")); err != nil {
		t.Fatal(err)
	}
}
