package publish

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/state"
)

// writeOutbox writes an archive directory with n public notes in
// Mastodon's outbox shape.
func writeOutbox(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	var items []string
	for i := range n {
		id := fmt.Sprintf("https://old.example/users/me/statuses/%d", 100+i)
		items = append(items, fmt.Sprintf(`{"id":"%s/activity","type":"Create","actor":"https://old.example/users/me","published":"2023-01-0%dT12:00:00Z",`+
			`"to":["https://www.w3.org/ns/activitystreams#Public"],"cc":[],"object":{"id":"%s","type":"Note","published":"2023-01-0%dT12:00:00Z",`+
			`"url":"https://old.example/@me/%d","to":["https://www.w3.org/ns/activitystreams#Public"],"cc":[],"content":"<p>note %d</p>","attachment":[],"tag":[]}}`,
			id, i+1, id, i+1, 100+i, i))
	}
	body := `{"id":"outbox.json","type":"OrderedCollection","orderedItems":[` + strings.Join(items, ",") + `]}`
	if err := os.WriteFile(filepath.Join(dir, "outbox.json"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A directory without outbox.json is refused before anything is planned.
func TestRunRefusesNonArchive(t *testing.T) {
	dir := t.TempDir()
	if err := CheckArchive(dir); !errors.Is(err, ErrNoOutbox) {
		t.Fatalf("CheckArchive: %v", err)
	}
	_, err := Preview(t.Context(), RunOptions{Options: Options{Mode: Repost}, Dir: dir})
	if !errors.Is(err, ErrNoOutbox) {
		t.Fatalf("Preview: %v", err)
	}
}

// Backdating to a sink that cannot backdate is a typed refusal naming the
// server. (The dry-run decorator over no real sink answers "cannot".)
func TestRunRefusesBackdateWithoutAbility(t *testing.T) {
	o := RunOptions{Options: Options{Mode: Backdate}, Dir: writeOutbox(t, 1), Account: "me@new.example",
		Server: Server{Software: "mastodon", Version: "4.3.0"}, Sink: sinks.DryRun(nil, slog.New(slog.DiscardHandler))}
	_, err := Preview(t.Context(), o)
	var nb *NoBackdateError
	if !errors.As(err, &nb) || !errors.Is(err, sinks.ErrNoBackdate) || nb.Software != "mastodon" {
		t.Fatalf("Preview: %v", err)
	}
}

// Preview plans without a journal; Run freezes the same plan, publishes it
// and, run again, finds nothing left to do.
func TestPreviewAndRun(t *testing.T) {
	dir := writeOutbox(t, 3)
	st := state.TestStore(t)
	o := RunOptions{Options: Options{Mode: Repost, NoNote: true}, Dir: dir, Account: "me@new.example",
		Server: Server{Software: "mastodon", Limits: post.Limits{MaxChars: 500}}, Sink: sinks.DryRun(nil, slog.New(slog.DiscardHandler)), Journal: st}
	pre, err := Preview(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !pre.DryRun || len(pre.Items) != 3 || pre.ETA <= 0 || pre.ETASeconds != int(pre.ETA.Seconds()) {
		t.Fatalf("preview %+v", pre)
	}
	if jobs, _ := st.Jobs(t.Context(), JobKind); len(jobs) != 0 {
		t.Fatalf("Preview journaled %d jobs", len(jobs))
	}
	o.Server.Software = "gotosocial" // not paced: the test does not wait for Mastodon's budget
	res, err := Run(t.Context(), o)
	if err != nil || res.JobID == 0 || res.Published != 3 {
		t.Fatalf("run: %+v, %v", res, err)
	}
	again, err := Run(t.Context(), o)
	if err != nil || again.JobID != res.JobID || again.Published != 0 {
		t.Fatalf("second run: %+v, %v", again, err)
	}
}
