// Package layering_test enforces the layers table of ARCHITECTURE.md: every
// package of the module must be listed there, and may import (outside the
// standard library and third-party modules) only what its row allows. The
// table is the single source of truth, so the document cannot drift from the
// code: a new package or a new import across layers fails `go test ./...`
// until the table says it is allowed.
package layering_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/fedi-ferry/ferry"

// layers maps a package pattern ("post", "sinks/...") to the patterns it
// may import. "everything" allows any package of the module.
type layers map[string][]string

// parseLayers reads the first Markdown table after the "## Layers" heading:
// | `package` | job | `allowed`, `allowed/...` |
func parseLayers(md []byte) (layers, error) {
	out := layers{}
	in := false
	sc := bufio.NewScanner(bytes.NewReader(md))
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "## ") {
			if in && len(out) > 0 {
				break
			}
			in = strings.EqualFold(strings.TrimSpace(l[3:]), "layers")
			continue
		}
		if !in || !strings.HasPrefix(l, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		if len(cells) < 3 {
			return nil, fmt.Errorf("ARCHITECTURE.md:%d: a layers row needs three cells: package | job | may import", line)
		}
		pkgs := codeSpans(cells[0])
		if len(pkgs) == 0 {
			continue // the header or the separator row
		}
		allowed := codeSpans(cells[len(cells)-1])
		for _, p := range pkgs {
			if _, dup := out[p]; dup {
				return nil, fmt.Errorf("ARCHITECTURE.md:%d: %s is listed twice", line, p)
			}
			out[p] = allowed
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("ARCHITECTURE.md has no table under a \"## Layers\" heading")
	}
	return out, sc.Err()
}

// codeSpans returns the `quoted` words of a table cell.
func codeSpans(cell string) []string {
	var out []string
	parts := strings.Split(cell, "`")
	for i := 1; i < len(parts); i += 2 {
		if s := strings.TrimSpace(parts[i]); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// matches reports whether the module-relative package p matches pattern:
// "x" is x alone, "x/..." is x and everything under it.
func matches(pattern, p string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == pattern
}

// rowFor returns the most specific pattern of l that matches p: the
// package itself, else the deepest "x/..." above it.
func (l layers) rowFor(p string) (string, bool) {
	if _, ok := l[p]; ok {
		return p, true
	}
	best, found := "", false
	for pat := range l {
		if matches(pat, p) && (!found || len(pat) > len(best)) {
			best, found = pat, true
		}
	}
	return best, found
}

// check returns one message per package missing from the table and per
// import the table does not allow, sorted. imports maps a module-relative
// package to the module-relative packages it imports.
func check(l layers, imports map[string][]string) []string {
	var bad []string
	for p, imps := range imports {
		row, ok := l.rowFor(p)
		if !ok {
			bad = append(bad, fmt.Sprintf("%s is not in ARCHITECTURE.md's layers table", p))
			continue
		}
	next:
		for _, imp := range imps {
			for _, a := range l[row] {
				if a == "everything" || matches(a, imp) {
					continue next
				}
			}
			bad = append(bad, fmt.Sprintf("%s imports %s, which its layer (%s) may not import", p, imp, row))
		}
	}
	sort.Strings(bad)
	return bad
}

// moduleImports lists every package of the module with the module packages
// its non-test files import.
func moduleImports(t *testing.T, root string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	res := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		p, ok := rel(f[0])
		if !ok {
			continue
		}
		res[p] = nil
		for _, imp := range f[1:] {
			if r, ok := rel(imp); ok {
				res[p] = append(res[p], r)
			}
		}
	}
	return res
}

func rel(importPath string) (string, bool) {
	if importPath == module {
		return ".", true
	}
	return strings.CutPrefix(importPath, module+"/")
}

func TestLayers(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(root, "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := parseLayers(md)
	if err != nil {
		t.Fatal(err)
	}
	imports := moduleImports(t, root)
	if len(imports) < 10 {
		t.Fatalf("go list found only %d packages: is the test running in the module?", len(imports))
	}
	for _, msg := range check(l, imports) {
		t.Error(msg)
	}
}

// TestCheckRefusesForbiddenImport shows the check failing: a contract
// package importing the state store, and a package the table forgot.
func TestCheckRefusesForbiddenImport(t *testing.T) {
	md := []byte("# x\n\n## Layers\n\n| Package | Job | May import |\n|---|---|---|\n" +
		"| `post` | vocabulary | |\n| `sinks`, `sources` | contracts | `post` |\n" +
		"| `sinks/...` | plugins | `sinks`, `post`, `fedi` |\n| `cmd/...` | wiring | `everything` |\n\n## Next\n| `x` | y | `z` |\n")
	l, err := parseLayers(md)
	if err != nil {
		t.Fatal(err)
	}
	got := check(l, map[string][]string{
		"post":          nil,
		"sinks":         {"post", "state"},
		"sinks/archive": {"sinks", "post"},
		"cmd/ferry":     {"state", "sinks/archive"},
		"state":         {"post"},
	})
	want := []string{
		"sinks imports state, which its layer (sinks) may not import",
		"state is not in ARCHITECTURE.md's layers table",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("check:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, ok := l["x"]; ok {
		t.Fatal("a table after the layers section was read as layers")
	}
}
