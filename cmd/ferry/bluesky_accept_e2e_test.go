package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/migrate/pdsmove"
)

// Issue 11's acceptance, on one account of two real PDSes sharing a PLC
// directory: an account with posts (one with an image), a follow, a block
// and a list is archived (the CAR file, the blob, the posts in
// outbox.json), searched, exported and imported into another account;
// then `migrate run` moves it to the second PDS, reading the emailed code
// from standard input, and `migrate verify` finds the DID document naming
// the new PDS, every record and the blob there, the new account active and
// the old one deactivated. (The kills and the bad inputs are
// TestE2EBlueskyPDSMove's and TestE2EBlueskyPDSMoveOldDown's.)
func TestE2EBlueskyAcceptance(t *testing.T) {
	env := testenv.SharedPDS(t, 2)
	t.Setenv("FERRY_PLC_URL", env.PLCURL)
	ctx := t.Context()
	oldPDS, newPDS := env.PDSes[0], env.PDSes[1]
	u, pw := pdsAccount(t, oldPDS, "accept")
	peer, _ := pdsAccount(t, oldPDS, "peer")
	tgt, tpw := pdsAccount(t, oldPDS, "target")
	records := seedBsky(t, u, peer.DID)
	c := newCLI(t, "")
	c.run("login", oldPDS.URL, "--handle", u.Handle, "--password-file", pw, "--name", "acct").mustSucceed(t)
	c.run("login", oldPDS.URL, "--handle", tgt.Handle, "--password-file", tpw, "--name", "target").mustSucceed(t)

	// Archived and searchable.
	dir := filepath.Join(t.TempDir(), "archive")
	c.run("archive", "acct", "--out", dir).mustSucceed(t)
	if fi, err := os.Stat(filepath.Join(dir, "repo.car")); err != nil || fi.Size() == 0 {
		t.Fatalf("repo.car: %v", err)
	}
	if blobs, _ := os.ReadDir(filepath.Join(dir, "blobs")); len(blobs) != 1 {
		t.Errorf("blobs: %d", len(blobs))
	}
	outbox := readFile(t, filepath.Join(dir, "outbox.json"))
	if !strings.Contains(outbox, "hello from the old PDS") || !strings.Contains(outbox, "a picture") {
		t.Errorf("outbox.json lacks the posts")
	}
	if s := c.run("archive", "search", dir, "hello").mustSucceed(t); !strings.Contains(s.stdout, "[hello]") {
		t.Errorf("search:\n%s", s.stdout)
	}

	// Exported and imported into another account.
	gdir := t.TempDir()
	c.run("export", "acct", "--out", gdir).mustSucceed(t)
	for file, want := range map[string]string{
		"following_accounts.csv": peer.Handle + "," + peer.DID,
		"blocked_accounts.csv":   peer.Handle + "," + peer.DID,
		"lists.csv":              "friends," + peer.Handle + "," + peer.DID,
	} {
		if got := readFile(t, filepath.Join(gdir, file)); !strings.Contains(got, want) {
			t.Errorf("%s:\n%s", file, got)
		}
	}
	imp := c.run("import", "target", gdir).mustSucceed(t)
	if !strings.Contains(imp.stdout, "following") || !strings.Contains(imp.stdout, "lists") {
		t.Errorf("import report:\n%s", imp.stdout)
	}
	texp := t.TempDir()
	c.run("export", "target", "--out", texp).mustSucceed(t)
	for _, f := range []string{"following_accounts.csv", "blocked_accounts.csv", "lists.csv"} {
		if readFile(t, filepath.Join(texp, f)) != readFile(t, filepath.Join(gdir, f)) {
			t.Errorf("%s differs after the import", f)
		}
	}

	// Moved to the second PDS; the code read from standard input.
	newPW := writeSecret(t, "Accepted-Password-11")
	move := []string{"migrate", "run", "--from", "acct", "--to", newPDS.URL, "--password-file", newPW}
	if r := c.run(move...); r.code != exitError || !strings.Contains(r.stderr, "emailed a code") {
		t.Fatalf("first run: exit %d\n%s", r.code, r.stderr)
	}
	code, err := oldPDS.EmailToken(ctx, u.DID, "plc_operation")
	if err != nil {
		t.Fatal(err)
	}
	r := c.runIn(strings.NewReader(code+"\n"), move...)
	if r.code != 0 {
		t.Fatalf("migrate run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	v := c.run("--json", "migrate", "verify", "--from", "acct", "--to", newPDS.URL, "--password-file", newPW).mustSucceed(t)
	var ver pdsmove.Verification
	if err := json.Unmarshal([]byte(v.stdout), &ver); err != nil {
		t.Fatal(err)
	}
	if !ver.OK() || ver.NewRecords != int64(records) || ver.ImportedBlobs != 1 || !ver.NewActive || ver.OldActive {
		t.Errorf("verify: %+v", ver)
	}
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
		t.Errorf("DID document services: %+v", doc.Service)
	}
}
