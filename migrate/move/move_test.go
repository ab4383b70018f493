package move

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/state"
)

func side(t *testing.T, f *fakeMastodon) *Side {
	t.Helper()
	base, err := fedi.ParseServer(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	hc, _ := fedi.NewHTTPClient(fedi.HTTPOptions{})
	c := fedi.NewClient(base, "token", hc)
	me, err := fedi.VerifyCredentials(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	sw, err := fedi.NodeInfo(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return &Side{Handle: f.acct(), Client: c, Software: sw, Account: me, URI: f.actor()}
}

func publicClient() *http.Client {
	hc, _ := fedi.NewHTTPClient(fedi.HTTPOptions{})
	return hc
}

// On Mastodon both the alias and the Move are web forms: ferry must say
// exactly what to do, wait until it is done, never send anything itself,
// and finish the migration; a second run repeats nothing.
func TestGuidedMigrationOnMastodon(t *testing.T) {
	oldSrv, newSrv := newFakeMastodon(t, "old"), newFakeMastodon(t, "new")
	newSrv.follower = []string{"a@moved.invalid"}
	st := state.TestStore(t)
	dir := t.TempDir()
	var lifeboats, replays int

	outR, outW := io.Pipe()
	defer outW.Close()
	var guidance strings.Builder
	person := make(chan error, 1)
	go func() {
		// The person: reads ferry's guidance and fills in the forms.
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			line := sc.Text()
			guidance.WriteString(line + "\n")
			switch {
			case strings.Contains(line, newSrv.srv.URL+"/settings/aliases"):
				time.Sleep(200 * time.Millisecond) // ferry must wait, not race ahead
				browserPost(t, newSrv.srv.URL+"/settings/aliases", url.Values{"account_alias[acct]": {oldSrv.acct()}})
			case strings.Contains(line, oldSrv.srv.URL+"/settings/migration"):
				code := browserPost(t, oldSrv.srv.URL+"/settings/migration", url.Values{
					"account_migration[acct]": {newSrv.acct()}, "account_migration[current_password]": {"pw"}})
				if code != http.StatusFound {
					person <- errors.New("the Move form was refused: the alias was not visible yet")
				}
			}
		}
		person <- nil
	}()

	r := &Runner{
		Old: side(t, oldSrv), New: side(t, newSrv), Dir: dir, Journal: st, Public: publicClient(), Out: outW,
		Poll: 50 * time.Millisecond, VerifyWindow: 300 * time.Millisecond, AliasWait: 30 * time.Second, MoveWait: 30 * time.Second,
		Password: func() (string, error) { return "", errors.New("the password must not be asked for a guided Move") },
		Steps: Steps{
			Lifeboat: func(ctx context.Context, dir string) (string, error) {
				lifeboats++
				if err := os.MkdirAll(filepath.Join(dir, "graph"), 0o700); err != nil {
					return "", err
				}
				return "exported", os.WriteFile(filepath.Join(dir, FollowersFile), []byte("a@moved.invalid\nb@stayed.invalid\n"), 0o600)
			},
			Replay: func(ctx context.Context, dir string) (string, error) { replays++; return "replayed", nil },
		},
	}
	plan, err := Preflight(t.Context(), r.Old, r.New, r.Public)
	if err != nil || plan.Blocked() {
		t.Fatalf("preflight: %+v, %v", plan, err)
	}
	res, err := r.Run(t.Context())
	if err != nil {
		t.Fatalf("run: %v\nguidance:\n%s", err, guidance.String())
	}
	outW.Close()
	if err := <-person; err != nil {
		t.Fatal(err)
	}
	if oldSrv.moves != 1 || lifeboats != 1 || replays != 1 {
		t.Fatalf("moves=%d lifeboats=%d replays=%d, want 1 each", oldSrv.moves, lifeboats, replays)
	}
	g := guidance.String()
	for _, want := range []string{"has no API for aliases", "add this alias", oldSrv.acct(), "has no API for the Move", newSrv.acct()} {
		if !strings.Contains(g, want) {
			t.Errorf("guidance lacks %q:\n%s", want, g)
		}
	}
	v := res.Verify
	if v == nil || !v.OldMoved || v.Followers != 2 || v.Moved != 1 || len(v.NotMoved) != 1 || v.NotMoved[0].Account != "b@stayed.invalid" {
		t.Fatalf("verify = %+v", v)
	}
	csv, err := os.ReadFile(filepath.Join(dir, NotMovedFile))
	if err != nil || !strings.Contains(string(csv), "b@stayed.invalid,unknown") {
		t.Fatalf("not_moved.csv: %q %v", csv, err)
	}

	// Again: everything is done; nothing is repeated or asked.
	r.Out = io.Discard
	if _, err := r.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if oldSrv.moves != 1 || lifeboats != 1 || replays != 1 {
		t.Fatalf("second run repeated work: moves=%d lifeboats=%d replays=%d", oldSrv.moves, lifeboats, replays)
	}
}

func TestPreflightRefusesAccountMovedElsewhere(t *testing.T) {
	oldSrv, newSrv := newFakeMastodon(t, "old"), newFakeMastodon(t, "new")
	oldSrv.movedTo = map[string]string{"id": "9", "acct": "other@elsewhere.example", "username": "other", "uri": "https://elsewhere.example/users/other"}
	plan, err := Preflight(t.Context(), side(t, oldSrv), side(t, newSrv), publicClient())
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Blocked() || !strings.Contains(strings.Join(plan.Blockers(), " "), "already moved to other@elsewhere.example") {
		t.Fatalf("plan = %+v; want it blocked, explaining the earlier Move", plan)
	}
}

func TestPreflightDescribesWhatCannotMove(t *testing.T) {
	oldSrv, newSrv := newFakeMastodon(t, "old"), newFakeMastodon(t, "new")
	plan, err := Preflight(t.Context(), side(t, oldSrv), side(t, newSrv), publicClient())
	if err != nil || plan.Blocked() {
		t.Fatalf("plan = %+v, %v", plan, err)
	}
	if !strings.Contains(plan.Warning, "30 days") || len(plan.CannotMove) == 0 || len(plan.Steps) != 6 {
		t.Fatalf("plan = %+v", plan)
	}
}

func TestReadFollowersToleratesHeadersAndDuplicates(t *testing.T) {
	p := filepath.Join(t.TempDir(), "followers.csv")
	if err := os.WriteFile(p, []byte("\ufeffAccount address\r\n@A@x.example\r\na@x.example\n\nlocal\nb@y.example,extra\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readFollowers(p)
	if err != nil || strings.Join(got, " ") != "a@x.example b@y.example" {
		t.Fatalf("readFollowers = %v, %v", got, err)
	}
}
