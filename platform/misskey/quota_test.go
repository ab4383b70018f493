package misskey_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/fakemisskey"
	"github.com/fedi-ferry/ferry/migrate"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/state"
)

// An import that meets Misskey's hourly quota (mute/create: 20 an hour,
// lowered to 2 here) stops at the first 429 it cannot wait out, leaves
// the remaining rows pending (not failed), names the limit and the time
// to come back, and a later run continues with them.
func TestImportStopsAtHourlyQuota(t *testing.T) {
	srv := fakemisskey.Start(fakemisskey.Config{RateLimits: map[string]fakemisskey.RateLimit{
		"mute/create": {Max: 2, Duration: time.Hour}}})
	defer srv.Close()
	ctx := t.Context()
	reg := registry(t)
	p, info, err := reg.Detect(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	me := srv.AddUser("me", "pw")
	acct, err := platform.Login(ctx, p, info, platform.LoginRequest{Server: srv.URL, Token: srv.AddToken(me, []string{"read:account", "write:mutes", "read:mutes"})})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := p.Open(acct)
	if err != nil {
		t.Fatal(err)
	}
	porter := sess.(platform.GraphPorter)
	csv := "Account address,Hide notifications\n"
	for i := range 5 {
		name := fmt.Sprintf("peer%d", i)
		srv.AddUser(name, "pw")
		csv += name + "@" + srv.Host + ",true\n"
	}
	parsed, err := migrate.ParseFile(strings.NewReader(csv), "muted_accounts.csv", migrate.Mutes)
	if err != nil {
		t.Fatal(err)
	}
	journal := state.TestStore(t)
	opts := migrate.ImportFilesOptions{ImportOptions: migrate.ImportOptions{Account: acct.Handle, Software: acct.Software,
		Files: []migrate.Parsed{parsed}, Journal: journal, Concurrency: 1}, FailuresDir: t.TempDir()}
	start := time.Now()
	res, err := porter.ImportFiles(ctx, opts)
	var quota interface{ Transient() bool }
	if err == nil || !strings.Contains(err.Error(), "the server limits mute/create to 2 per hour; try again after ") ||
		!strings.Contains(err.Error(), "run the same ferry import again") {
		t.Fatalf("err = %v, want the hourly quota named", err)
	}
	if !errors.As(err, &quota) {
		t.Errorf("err %T does not carry the quota", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the import took %v: it retried the limited row", d)
	}
	// One row at a time, so the counts are exact (rows applied
	// concurrently with the refused one may be cut short after their
	// call: they stay pending and the next run checks the server first).
	c := res.Report.Types[migrate.Mutes]
	if c == nil || c.Applied != 2 || c.Failed != 0 || c.Pending != 3 {
		t.Fatalf("first run counts = %+v, want 2 applied, 3 pending, 0 failed", c)
	}
	// Each hour takes 2 more, until the import finishes.
	runs := 1
	for err != nil {
		if !strings.Contains(err.Error(), "limits mute/create to 2 per hour") {
			t.Fatalf("run %d: %v, want the quota again", runs, err)
		}
		if runs++; runs > 6 {
			t.Fatal("the import did not finish in 6 runs")
		}
		srv.ClearRateLimits() // the hour has passed
		res, err = porter.ImportFiles(ctx, opts)
		if c := res.Report.Types[migrate.Mutes]; c == nil || c.Failed != 0 {
			t.Fatalf("run %d counts = %+v, want none failed", runs, c)
		}
	}
	if c := res.Report.Types[migrate.Mutes]; c.Applied+c.Already != 5 || c.Pending != 0 {
		t.Fatalf("last run counts = %+v, want all 5 done", c)
	}
	if n := srv.Calls("mute/create"); n > 5+runs-1 {
		t.Errorf("mute/create called %d times in %d runs: more than one refused call per run", n, runs)
	}
}

// A follow imported with "Notify on new posts" is stored by Misskey in the
// follow record (users/relation's "following.notify"): the import reports
// it applied, not "the server ignored: notify", and a second import finds
// it already done.
func TestImportFollowWithNotify(t *testing.T) {
	srv := fakemisskey.Start(fakemisskey.Config{})
	defer srv.Close()
	ctx := t.Context()
	p, info, err := registry(t).Detect(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := platform.Login(ctx, p, info, platform.LoginRequest{Server: srv.URL, Token: srv.AddToken(srv.AddUser("me", "pw"), nil)})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := p.Open(acct)
	if err != nil {
		t.Fatal(err)
	}
	srv.AddUser("carol", "pw")
	csv := "Account address,Show boosts,Notify on new posts,Languages\ncarol@" + srv.Host + ",true,true,\n"
	parsed, err := migrate.ParseFile(strings.NewReader(csv), "following_accounts.csv", migrate.Following)
	if err != nil {
		t.Fatal(err)
	}
	journal := state.TestStore(t)
	for run, fresh := range []bool{false, true} {
		res, err := sess.(platform.GraphPorter).ImportFiles(ctx, migrate.ImportFilesOptions{ImportOptions: migrate.ImportOptions{
			Account: acct.Handle, Software: acct.Software, Files: []migrate.Parsed{parsed}, Journal: journal, Fresh: fresh}, FailuresDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		c := res.Report.Types[migrate.Following]
		if len(res.Report.Partial) != 0 || c == nil || c.Failed != 0 || (run == 0 && c.Applied != 1) || (run == 1 && c.Already != 1) {
			t.Fatalf("run %d: counts %+v, partial %+v", run+1, c, res.Report.Partial)
		}
	}
	if n := srv.Calls("following/update"); n != 1 {
		t.Errorf("following/update called %d times, want once", n)
	}
}
