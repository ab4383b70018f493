package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/testenv"
)

// writeSyntheticArchive writes an archive directory with n public notes,
// every fifth a reply to the one before, in Mastodon's outbox shape.
func writeSyntheticArchive(t testing.TB, dir string, n int) {
	t.Helper()
	const actor = "https://old.example/users/me"
	base := time.Date(2022, 3, 1, 8, 0, 0, 0, time.UTC)
	var b strings.Builder
	fmt.Fprintf(&b, `{"id":"outbox.json","type":"OrderedCollection","totalItems":%d,"orderedItems":[`, n)
	for i := range n {
		id := fmt.Sprintf("%s/statuses/%d", actor, 1000+i)
		reply := "null"
		if i%5 == 4 {
			reply = fmt.Sprintf("%q", fmt.Sprintf("%s/statuses/%d", actor, 1000+i-1))
		}
		if i > 0 {
			b.WriteString(",\n")
		}
		pub := base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)
		fmt.Fprintf(&b, `{"id":"%s/activity","type":"Create","actor":"%s","published":"%s","to":["https://www.w3.org/ns/activitystreams#Public"],"cc":[],`+
			`"object":{"id":"%s","type":"Note","inReplyTo":%s,"published":"%s","url":"https://old.example/@me/%d","to":["https://www.w3.org/ns/activitystreams#Public"],"cc":[],`+
			`"content":"<p>synthetic post %d of the kill test</p>","attachment":[],"tag":[]}}`, id, actor, pub, id, reply, pub, 1000+i, i)
	}
	b.WriteString("]}\n")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "outbox.json"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestE2EArchivePublishKill kills `ferry archive publish` (a real
// subprocess) with SIGKILL at random moments, resumes it, and checks on
// the target that every post is there exactly once.
func TestE2EArchivePublishKill(t *testing.T) {
	testenv.Require(t)
	env := testenv.Shared(t, 2)
	b := env.Instances[1]
	ctx := t.Context()
	bob, err := b.CreateUser(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	bin := ferryBinary(t)
	c := newCLI(t, env.CAFile)
	c.run("login", b.BaseURL, "--token-file", writeTokenFile(t, bob.Token), "--name", "target").mustSucceed(t)
	dir := filepath.Join(t.TempDir(), "archive")
	const n = 100
	writeSyntheticArchive(t, dir, n)

	args := []string{"--data-dir", c.dataDir, "--ca-file", env.CAFile, "--log-format", "json",
		"archive", "publish", dir, "--to", "target", "--mode", "backdate"}
	kills := 0
	for attempt := range 8 {
		cmd := exec.CommandContext(ctx, bin, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if attempt < 3 {
			select {
			case err := <-done:
				t.Logf("run %d finished before the kill: %v", attempt, err)
			case <-untilPosts(t, bob, (attempt+1)*n/5+rand.IntN(n/5)):
				cmd.Process.Signal(syscall.SIGKILL)
				<-done
				kills++
				t.Logf("run %d killed; %d posts on the target so far", attempt, len(arcStatuses(t, ctx, bob)))
				continue
			}
		} else if err := <-done; err != nil {
			t.Fatalf("resumed run: %v\n%s", err, stderr.String())
		}
		break
	}
	if kills == 0 {
		t.Log("no run was killed (the publish was faster than every kill)")
	}
	got := arcStatuses(t, ctx, bob)
	seen := map[string]int{}
	byID := map[string]arcStatus{}
	for _, s := range got {
		seen[s.Text]++
		byID[s.ID] = s
	}
	for txt, k := range seen {
		if k > 1 {
			t.Errorf("%q published %d times", txt, k)
		}
	}
	if len(got) != n {
		t.Errorf("%d posts on the target, want %d", len(got), n)
	}
	replies := 0
	for _, s := range got {
		if s.InReplyToID != "" {
			if _, ok := byID[s.InReplyToID]; !ok {
				t.Errorf("reply %s points at %s, not one of the published posts", s.ID, s.InReplyToID)
			}
			replies++
		}
	}
	if replies != n/5 {
		t.Errorf("%d replies, want %d", replies, n/5)
	}
}

// untilPosts returns a channel closed once u has at least k posts.
func untilPosts(t *testing.T, u *testenv.User, k int) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		for t.Context().Err() == nil {
			var me struct {
				StatusesCount int `json:"statuses_count"`
			}
			if err := u.API(t.Context(), "GET", "/api/v1/accounts/verify_credentials", nil, &me); err == nil && me.StatusesCount >= k {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return ch
}
