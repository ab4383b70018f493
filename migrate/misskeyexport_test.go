package migrate

import (
	"os"
	"path/filepath"
	"testing"
)

// Misskey's own exports (Settings → Import and export) are headerless
// files named by type and date; a blocking or mute export must never be
// taken for a follow list.
func TestReadsMisskeyExports(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"following-2024-11-02-10-11-12.csv":  "alice@misskey.example\nbob@other.example\n",
		"blocking-2024-11-02-10-11-12.csv":   "troll@bad.example\n",
		"mute-2024-11-02-10-11-12.csv":       "loud@misskey.example\n",
		"user-lists-2024-11-02-10-11-12.csv": "friends,alice@misskey.example\nfriends,bob@other.example\n",
	}
	want := map[string]Type{
		"following-2024-11-02-10-11-12.csv":  Following,
		"blocking-2024-11-02-10-11-12.csv":   Blocks,
		"mute-2024-11-02-10-11-12.csv":       Mutes,
		"user-lists-2024-11-02-10-11-12.csv": Lists,
	}
	var paths []string
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	parsed, err := ReadFiles(paths, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range parsed {
		name := filepath.Base(f.Rows[0].Pos.File)
		if f.Type != want[name] || len(f.Errors) != 0 {
			t.Errorf("%s: read as %s (errors %v), want %s", name, f.Type, f.Errors, want[name])
		}
		if f.Type == Lists && (len(f.Rows) != 2 || f.Rows[0].List != "friends" || f.Rows[0].Account != "alice@misskey.example") {
			t.Errorf("lists: %+v", f.Rows)
		}
	}
}
