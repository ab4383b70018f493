package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/internal/fakemastodon"
	"github.com/fedi-ferry/ferry/state"
)

// Two runs of one import never apply it together: while another ferry
// holds the import into an account, a second one refuses before writing
// anything and says why; once the first is done (or died) it goes.
func TestImportRefusedWhileAnotherRuns(t *testing.T) {
	c := newCLI(t, "")
	srv, handle := loginFake(t, c, fakemastodon.Config{})
	srv.AddAccount("friend")
	csv := filepath.Join(t.TempDir(), "following_accounts.csv")
	if err := os.WriteFile(csv, []byte("Account address,Show boosts,Notify on new posts,Languages\nfriend@"+srv.Host+",true,false,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The other ferry: another Store on the same database.
	st, err := state.Open(t.Context(), filepath.Join(c.dataDir, "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	release, err := st.Hold(t.Context(), "import/"+handle)
	if err != nil {
		t.Fatal(err)
	}
	r := c.run("import", handle, csv, "--yes")
	if r.code == 0 || !strings.Contains(r.stderr, "another ferry is importing into "+handle) {
		t.Fatalf("import beside another: exit %d\n%s", r.code, r.stderr)
	}
	// A dry run only reads: it goes.
	c.run("import", handle, csv, "--dry-run").mustSucceed(t)
	release()
	r = c.run("--json", "import", handle, csv, "--yes").mustSucceed(t)
	if !strings.Contains(r.stdout, `"applied": 1`) {
		t.Errorf("the import after the other one ended did not follow:\n%s", r.stdout)
	}
}
