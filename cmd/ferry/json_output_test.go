package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/internal/testenv"
)

// oneJSON decodes stdout as exactly one JSON value followed by the end of
// the output (what a script running `ferry --json …` parses) and returns
// it.
func oneJSON(t *testing.T, what, stdout string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: stdout is not JSON: %v\n%s", what, err, stdout)
	}
	var more any
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		t.Fatalf("%s: stdout holds more than one JSON document (next: %v, %v)\n%s", what, more, err, stdout)
	}
	return v
}

// migrateJSON checks the one JSON document of `ferry --json migrate run`:
// the run's steps and the typed results of the steps it performed.
func migrateJSON(t *testing.T, stdout string, performed ...string) {
	t.Helper()
	doc, ok := oneJSON(t, "migrate run", stdout).(map[string]any)
	if !ok {
		t.Fatalf("migrate run: not an object:\n%s", stdout)
	}
	steps, _ := doc["steps"].(map[string]any)
	for _, k := range []string{"replay", "verify"} {
		if _, ok := steps[k]; !ok {
			t.Errorf("migrate run: no step %q in %v", k, steps)
		}
	}
	for _, k := range append([]string{"job_id", "dir", "verify"}, performed...) {
		if doc[k] == nil {
			t.Errorf("migrate run: no %q in the document:\n%s", k, stdout)
		}
	}
}

// jsonCase is one command and what its --json document must hold.
type jsonCase struct {
	name string
	args []string
	code int
	// keys must be in the document (an object), or, for arrays, in its
	// first element; none for an empty array.
	keys []string
}

func checkJSONCases(t *testing.T, c *ferryCLI, cases []jsonCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.run(append([]string{"--json"}, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			v := oneJSON(t, strings.Join(tc.args, " "), r.stdout)
			if arr, ok := v.([]any); ok {
				if len(tc.keys) == 0 {
					if len(arr) != 0 {
						t.Fatalf("want an empty array, got %v", arr)
					}
					return
				}
				if len(arr) == 0 {
					t.Fatalf("want elements with %v, got an empty array", tc.keys)
				}
				v = arr[0]
			}
			obj, ok := v.(map[string]any)
			if !ok && len(tc.keys) > 0 {
				t.Fatalf("want an object with %v, got %T %v", tc.keys, v, v)
			}
			for _, k := range tc.keys {
				if _, ok := obj[k]; !ok {
					t.Errorf("no %q in %v", k, obj)
				}
			}
		})
	}
}

// Every command that needs no server prints exactly one JSON document with
// --json.
func TestJSONOutputOneDocument(t *testing.T) {
	c := newCLI(t, "")
	dir := t.TempDir()
	src, arc := filepath.Join(dir, "src"), filepath.Join(dir, "arc")
	writeSyntheticArchive(t, src, 12)
	cfg := filepath.Join(dir, "ferry.toml")
	if err := os.WriteFile(cfg, []byte("# no routes yet\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkJSONCases(t, c, []jsonCase{
		{name: "version", args: []string{"version"}, keys: []string{"version", "commit"}},
		{name: "accounts", args: []string{"accounts"}},
		{name: "status", args: []string{"--config", cfg, "status"}, keys: []string{"daemon", "accounts"}},
		{name: "config check", args: []string{"--config", cfg, "config", "check"}, keys: []string{"config", "ok", "routes"}},
		{name: "migrate status", args: []string{"migrate", "status"}},
		{name: "archive import", args: []string{"archive", "import", src, "--into", arc}, keys: []string{"format", "files", "posts"}},
		{name: "archive search", args: []string{"archive", "search", arc, "synthetic"}, keys: []string{"url", "snippet"}},
		{name: "archive search none", args: []string{"archive", "search", arc, "nothingmatchesthis"}},
	})
}

// Every command that works with a logged-in account prints exactly one JSON
// document with --json, against a real GoToSocial server.
func TestE2EJSONOutputOneDocument(t *testing.T) {
	testenv.Require(t)
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	ctx := t.Context()
	us := createUsers(t, ctx, in, in)
	me, other := us[0], us[1]
	if _, err := me.Follow(ctx, other); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, env.CAFile)
	loginCLI(t, c, me)
	dir := t.TempDir()
	graph, arc, pub := filepath.Join(dir, "graph"), filepath.Join(dir, "archive"), filepath.Join(dir, "publish")
	writeSyntheticArchive(t, pub, 3)
	checkJSONCases(t, c, []jsonCase{
		{name: "accounts", args: []string{"accounts"}, keys: []string{"handle"}},
		{name: "accounts check", args: []string{"accounts", "check", me.Acct}, keys: []string{"handle", "token_ok"}},
		{name: "export", args: []string{"export", me.Acct, "--out", graph}, keys: []string{"type", "rows"}},
		{name: "import dry run", args: []string{"import", me.Acct, graph, "--dry-run"}, keys: []string{"account", "types", "requests"}},
		{name: "import", args: []string{"import", me.Acct, graph}, keys: []string{"account", "job_id", "types"}},
		{name: "archive", args: []string{"archive", me.Acct, "--out", arc}, keys: []string{"new_posts", "indexed", "requests"}},
		{name: "archive publish dry run", args: []string{"archive", "publish", pub, "--to", me.Acct, "--mode", "repost", "--dry-run"},
			keys: []string{"dry_run", "items", "eta_seconds"}},
		{name: "archive publish", args: []string{"archive", "publish", pub, "--to", me.Acct, "--mode", "repost"},
			keys: []string{"job_id", "published"}},
	})
}
