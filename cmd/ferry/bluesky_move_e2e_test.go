package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/api/bsky"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/migrate/pdsmove"
)

// seedBsky gives the account a post with an image, a plain post, a
// follow, a block and a list with other in it; it returns the number of
// records.
func seedBsky(t *testing.T, u *testenv.PDSAccount, other string) int {
	t.Helper()
	ctx := t.Context()
	c, err := atproto.Login(ctx, u.PDS.URL, u.Handle, u.Password, atproto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	blob, err := c.UploadBlob(ctx, buf.Bytes(), "image/png")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	ts := now.Format(time.RFC3339)
	key := func(i int) string { return atproto.RecordKey("seed", u.DID, now.Add(time.Duration(i)*time.Second)) }
	check := func(_ atproto.Record, _ bool, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check(c.CreateRecord(ctx, "app.bsky.feed.post", key(0), &bsky.FeedPost{LexiconTypeID: "app.bsky.feed.post", Text: "hello from the old PDS", CreatedAt: ts}, true))
	check(c.CreateRecord(ctx, "app.bsky.feed.post", key(1), &bsky.FeedPost{LexiconTypeID: "app.bsky.feed.post", Text: "a picture", CreatedAt: ts,
		Embed: &bsky.FeedPost_Embed{EmbedImages: &bsky.EmbedImages{LexiconTypeID: "app.bsky.embed.images",
			Images: []*bsky.EmbedImages_Image{{Alt: "pixels", Image: blob}}}}}, true))
	check(c.CreateRecord(ctx, "app.bsky.graph.follow", key(2), &bsky.GraphFollow{LexiconTypeID: "app.bsky.graph.follow", Subject: other, CreatedAt: ts}, true))
	check(c.CreateRecord(ctx, "app.bsky.graph.block", key(3), &bsky.GraphBlock{LexiconTypeID: "app.bsky.graph.block", Subject: other, CreatedAt: ts}, true))
	purpose := "app.bsky.graph.defs#curatelist"
	list, _, err := c.CreateRecord(ctx, "app.bsky.graph.list", key(4), &bsky.GraphList{LexiconTypeID: "app.bsky.graph.list", Name: "friends", Purpose: &purpose, CreatedAt: ts}, true)
	if err != nil {
		t.Fatal(err)
	}
	check(c.CreateRecord(ctx, "app.bsky.graph.listitem", key(5), &bsky.GraphListitem{LexiconTypeID: "app.bsky.graph.listitem", List: list.URI, Subject: other, CreatedAt: ts}, true))
	return 6
}

// proc is ferry running as a separate process, to be killed.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	stdin  io.WriteCloser
	done   chan int
}

func startFerry(t *testing.T, dataDir string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(ferryBinary(t), append([]string{"--data-dir", dataDir}, args...)...)
	p := &proc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan int, 1)}
	cmd.Stderr, cmd.Stdout = p.stderr, io.Discard
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = in
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		p.done <- code
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return p
}

// waitStderr waits until the process has written want to stderr.
func (p *proc) waitStderr(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(p.stderr.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("ferry did not write %q:\n%s", want, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// requestsTo counts the proxy's requests of an XRPC method.
func requestsTo(fp *testenv.FaultProxy, method string) int {
	n := 0
	for pat, c := range fp.Counts() {
		if strings.HasSuffix(pat, "/xrpc/"+method) {
			n += c.Requests
		}
	}
	return n
}

// pdsAccount creates an account on pds and writes its password to a 0600
// file.
func pdsAccount(t *testing.T, pds *testenv.PDS, name string) (*testenv.PDSAccount, string) {
	t.Helper()
	u, err := pds.CreateAccount(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u, writeSecret(t, u.Password)
}

func writeSecret(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// `ferry migrate run` moves a Bluesky account between two real PDSes that
// share a PLC directory. The new PDS first refuses the account (a handle
// it has); then the run is SIGKILLed while it waits for the emailed code
// (after the repository import), given a wrong code, and SIGKILLed again
// after the PLC operation while the new PDS activates the account; the
// next run completes without repeating a step that was done, and `ferry
// migrate verify` finds the DID document naming the new PDS, every record
// and the blob there, the new account active and the old one deactivated.
// All requests to the new PDS pass a proxy that counts them.
func TestE2EBlueskyPDSMove(t *testing.T) {
	env := testenv.SharedPDS(t, 2)
	t.Setenv("FERRY_PLC_URL", env.PLCURL)
	ctx := t.Context()
	oldPDS, newPDS := env.PDSes[0], env.PDSes[1]
	u, pwFile := pdsAccount(t, oldPDS, "mover")
	other, _ := pdsAccount(t, oldPDS, "other")
	records := seedBsky(t, u, other.DID)
	taken, err := newPDS.CreateAccount(ctx, "taken")
	if err != nil {
		t.Fatal(err)
	}
	fp, err := testenv.NewFaultProxyTo(newPDS.URL, testenv.FaultOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fp.Close() })
	c := newCLI(t, "")
	c.run("login", oldPDS.URL, "--handle", u.Handle, "--password-file", pwFile, "--name", "old").mustSucceed(t)
	newPW := writeSecret(t, "Moved-Password-2026")
	move := []string{"migrate", "run", "--from", "old", "--to", fp.BaseURL, "--password-file", newPW}

	plan := c.run("migrate", "plan", "--from", "old", "--to", fp.BaseURL).mustSucceed(t)
	for _, w := range []string{"did:plc", "answers", "create-account", "submit-plc", "going back is another move"} {
		if !strings.Contains(plan.stdout, w) {
			t.Errorf("plan lacks %q:\n%s", w, plan.stdout)
		}
	}

	if st := c.run("migrate", "status").mustSucceed(t); !strings.Contains(st.stdout, "no migrations yet") {
		t.Errorf("the plan wrote to the journal:\n%s", st.stdout)
	}

	// The new PDS refuses the account: nothing changed, say what to do.
	r := c.run(append(move, "--handle", taken.Handle)...)
	if r.code != exitError || !strings.Contains(r.stderr, "refused to create the account") ||
		!strings.Contains(r.stderr, "nothing has changed") || !strings.Contains(r.stderr, "--handle") {
		t.Fatalf("refused account: exit %d\n%s", r.code, r.stderr)
	}

	// Killed while it waits for the code, after the repository import.
	p := startFerry(t, c.dataDir, move...)
	p.waitStderr(t, "reading the code the old PDS emailed from standard input")
	if !strings.Contains(p.stderr.String(), "imported the repository") || !strings.Contains(p.stderr.String(), "uploaded 1 blobs") {
		t.Fatalf("before the code:\n%s", p.stderr.String())
	}
	p.kill(t)

	// A wrong code: a clear message; the account has not moved.
	r = c.run(append(move, "--plc-token-file", writeSecret(t, "WRONG-12345"))...)
	if r.code != exitError || !strings.Contains(r.stderr, "did not accept the code") || !strings.Contains(r.stderr, "still lives on") {
		t.Fatalf("wrong code: exit %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "imported the repository") || strings.Contains(r.stderr, "created the account") {
		t.Fatalf("a done step ran again:\n%s", r.stderr)
	}

	// Killed after the PLC operation, while the new PDS activates.
	code, err := oldPDS.EmailToken(ctx, u.DID, "plc_operation")
	if err != nil {
		t.Fatal(err)
	}
	fp.SetFaults(testenv.FaultOptions{Slow: 1, SlowDelay: 10 * time.Minute, Paths: regexp.MustCompile(`activateAccount`)})
	p = startFerry(t, c.dataDir, append(move, "--plc-token-file", writeSecret(t, code))...)
	p.waitStderr(t, "submitted the PLC operation")
	for requestsTo(fp, "com.atproto.server.activateAccount") == 0 {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // forwarded; the answer is held
	p.kill(t)
	fp.SetFaults(testenv.FaultOptions{})

	r = c.run(move...).mustSucceed(t)
	for _, w := range []string{"the account was already active", "deactivated the account"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("last run lacks %q:\n%s", w, r.stderr)
		}
	}
	for method, n := range map[string]int{
		"com.atproto.server.createAccount":        2, // the refused one, then the account
		"com.atproto.repo.importRepo":             1,
		"com.atproto.identity.submitPlcOperation": 1,
		"com.atproto.server.activateAccount":      1,
	} {
		if got := requestsTo(fp, method); got != n {
			t.Errorf("%s: %d requests, want %d", method, got, n)
		}
	}

	status := c.run("migrate", "status").mustSucceed(t)
	if !strings.Contains(status.stdout, "Bluesky move "+u.DID) || !strings.Contains(status.stdout, "deactivate-old") ||
		strings.Contains(status.stdout, "\"sig\"") {
		t.Errorf("migrate status:\n%s", status.stdout)
	}
	v := c.run("--json", "migrate", "verify", "--from", "old", "--to", fp.BaseURL, "--password-file", newPW).mustSucceed(t)
	var ver pdsmove.Verification
	if err := json.Unmarshal([]byte(v.stdout), &ver); err != nil {
		t.Fatalf("%v\n%s", err, v.stdout)
	}
	if !ver.OK() || !ver.PointsAtNew || !ver.NewActive || ver.OldActive || !ver.OldChecked ||
		ver.NewRecords != int64(records) || ver.ImportedBlobs != 1 || ver.OldRecords != int64(records) {
		t.Errorf("verify: %+v", ver)
	}
	// The DID document, read from the PLC directory directly.
	var doc struct {
		Service []struct{ ServiceEndpoint string } `json:"service"`
	}
	resp, err := http.Get(env.PLCURL + "/" + u.DID)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if len(doc.Service) != 1 || doc.Service[0].ServiceEndpoint != newPDS.URL {
		t.Errorf("DID document services: %+v, want %s", doc.Service, newPDS.URL)
	}
}

// The old PDS goes down after the PLC operation: the run says the account
// lives on the new PDS and what is left to do.
func TestE2EBlueskyPDSMoveOldDown(t *testing.T) {
	env := testenv.SharedPDS(t, 2)
	t.Setenv("FERRY_PLC_URL", env.PLCURL)
	ctx := t.Context()
	oldPDS, newPDS := env.PDSes[0], env.PDSes[1]
	u, pwFile := pdsAccount(t, oldPDS, "downer")
	other, _ := pdsAccount(t, oldPDS, "other")
	seedBsky(t, u, other.DID)
	oldProxy, err := testenv.NewFaultProxyTo(oldPDS.URL, testenv.FaultOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newProxy, err := testenv.NewFaultProxyTo(newPDS.URL, testenv.FaultOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { oldProxy.Close(); newProxy.Close() })
	c := newCLI(t, "")
	c.run("login", oldProxy.BaseURL, "--handle", u.Handle, "--password-file", pwFile, "--name", "old").mustSucceed(t)
	move := []string{"migrate", "run", "--from", "old", "--to", newProxy.BaseURL, "--password-file", writeSecret(t, "Moved-Password-2026")}

	// Without a code (standard input empty): stop and say how to give it.
	r := c.run(move...)
	if r.code != exitError || !strings.Contains(r.stderr, "--plc-token-file") || !strings.Contains(r.stderr, "still lives on") {
		t.Fatalf("no code: exit %d\n%s", r.code, r.stderr)
	}
	code, err := oldPDS.EmailToken(ctx, u.DID, "plc_operation")
	if err != nil {
		t.Fatal(err)
	}
	// The old PDS goes away while the new one activates the account.
	newProxy.SetFaults(testenv.FaultOptions{Slow: 1, SlowDelay: 3 * time.Second, Paths: regexp.MustCompile(`activateAccount`)})
	p := startFerry(t, c.dataDir, append(move, "--plc-token-file", writeSecret(t, code))...)
	for requestsTo(newProxy, "com.atproto.server.activateAccount") == 0 {
		time.Sleep(50 * time.Millisecond)
	}
	oldProxy.Close()
	if got := <-p.done; got != exitError {
		t.Fatalf("exit %d\n%s", got, p.stderr.String())
	}
	out := p.stderr.String()
	for _, w := range []string{"deactivate-old", "it lives on " + strings.TrimPrefix(newProxy.BaseURL, "http://") + " and is active there",
		"still holds an active copy", "again once", "nothing left to do"} {
		if !strings.Contains(out, w) {
			t.Errorf("old PDS down: the message lacks %q:\n%s", w, out)
		}
	}
	status := c.run("migrate", "status").mustSucceed(t)
	if !strings.Contains(status.stdout, "deactivate-old") || !strings.Contains(status.stdout, "begun 1 times") {
		t.Errorf("migrate status:\n%s", status.stdout)
	}
	// Run again while it is still down: the same message, nothing redone.
	r = c.run(move...)
	if r.code != exitError || !strings.Contains(r.stderr, "still holds an active copy") || strings.Contains(r.stderr, "submitted") {
		t.Fatalf("again with the old PDS down: exit %d\n%s", r.code, r.stderr)
	}
}
