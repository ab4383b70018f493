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
		Files: []migrate.Parsed{parsed}, Journal: journal}, FailuresDir: t.TempDir()}
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
	c := res.Report.Types[migrate.Mutes]
	if c == nil || c.Applied != 2 || c.Failed != 0 || c.Pending != 3 {
		t.Fatalf("first run counts = %+v, want 2 applied, 3 pending, 0 failed", c)
	}
	if n := srv.Calls("mute/create"); n != 3 {
		t.Errorf("mute/create called %d times, want 3 (2 allowed, 1 refused)", n)
	}
	// Each hour takes 2 more; the third run finishes the import.
	for run, want := range []int{4, 5} {
		srv.ClearRateLimits() // the hour has passed
		res, err = porter.ImportFiles(ctx, opts)
		if want < 5 && (err == nil || !strings.Contains(err.Error(), "limits mute/create to 2 per hour")) {
			t.Fatalf("run %d: err = %v, want the quota again", run+2, err)
		}
		if want == 5 && err != nil {
			t.Fatalf("run %d: %v", run+2, err)
		}
		if c := res.Report.Types[migrate.Mutes]; c == nil || c.Applied != want || c.Pending != 5-want || c.Failed != 0 {
			t.Fatalf("run %d counts = %+v, want %d applied, the rest pending", run+2, c, want)
		}
	}
}
