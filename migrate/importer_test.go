package migrate

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A directory means its .csv and .txt files, in name order, without hidden
// files and earlier failure reports.
func TestReadFilesDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"following_accounts.csv": "Account address,Show boosts,Notify on new posts,Languages\nalice@a.example,true,false,\n",
		"blocked_accounts.csv":   "bob@b.example\n",
		"following_failures.csv": "Account address,Reason\ncarol@c.example,gone\n",
		".hidden.csv":            "dave@d.example\n",
		"notes.md":               "not a graph file\n",
		"handles.txt":            "@erin@e.example\n",
	})
	files, err := ReadFiles([]string{dir}, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		if len(f.Rows) != 1 {
			t.Fatalf("%+v: want one row", f)
		}
		names = append(names, filepath.Base(f.Rows[0].Pos.File))
	}
	want := []string{"blocked_accounts.csv", "following_accounts.csv", "handles.txt"}
	if len(names) != len(want) {
		t.Fatalf("read %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("read %v, want %v", names, want)
		}
	}
	if files[0].Type != Blocks || files[1].Type != Following {
		t.Errorf("types %s, %s", files[0].Type, files[1].Type)
	}
	if got := DefaultFailuresDir([]string{dir}); got != dir {
		t.Errorf("failures dir for a directory: %s", got)
	}
	file := filepath.Join(dir, "handles.txt")
	if got := DefaultFailuresDir([]string{file}); got != dir {
		t.Errorf("failures dir for a file: %s", got)
	}
}

// What the person named wrongly is an *InputError; commands report it as a
// usage mistake.
func TestReadFilesInputErrors(t *testing.T) {
	empty := t.TempDir()
	bad := filepath.Join(t.TempDir(), "data.csv")
	if err := os.WriteFile(bad, []byte("1,2,3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, paths := range map[string][]string{
		"missing":      {filepath.Join(empty, "nope.csv")},
		"empty dir":    {empty},
		"unknown kind": {bad},
	} {
		_, err := ReadFiles(paths, "")
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("%s: %v (%T), want an *InputError", name, err, err)
		}
	}
}

func TestParseModeAndMethod(t *testing.T) {
	if m, err := ParseMode("overwrite"); err != nil || m != Overwrite {
		t.Errorf("ParseMode(overwrite) = %q, %v", m, err)
	}
	if _, err := ParseMode("replace"); err == nil {
		t.Error("ParseMode accepted replace")
	}
	if m, err := ParseMethod("server"); err != nil || m != MethodServer {
		t.Errorf("ParseMethod(server) = %q, %v", m, err)
	}
	if _, err := ParseMethod("bulk"); err == nil {
		t.Error("ParseMethod accepted bulk")
	}
}
