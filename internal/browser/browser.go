// Package browser runs a real headless Chromium for tests: the DOM of a
// page after its scripts ran (--dump-dom) and screenshots kept as test
// artefacts. Chromium comes from the system's packages (Debian's
// "chromium"; .ci/run installs it).
package browser

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// Require returns the path of the Chromium binary. When there is none the
// test is skipped, saying why (and in -short mode), unless CI=true or FERRY_E2E=1: then a
// missing browser fails it.
func Require(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping the browser test in -short mode")
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium is not installed (apt-get install chromium); the browser test needs it"
	if os.Getenv("CI") == "true" || os.Getenv("FERRY_E2E") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// FileURL is the file:// address of the local file path with the query q
// (already encoded, without "?"; "" for none).
func FileURL(t testing.TB, path, q string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q}
	return u.String()
}

// run runs Chromium headless on address with extra flags, each run with
// its own profile so tests can run side by side.
func run(t testing.TB, bin, address string, flags ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--no-first-run", "--disable-extensions", "--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=5000"}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, address)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", address, err, tail(stderr.String()))
	}
	return stdout.Bytes()
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}

// DOM returns the document at address as Chromium has it once its scripts
// ran, parsed.
func DOM(t testing.TB, bin, address string) *html.Node {
	t.Helper()
	out := run(t, bin, address, "--dump-dom")
	doc, err := html.Parse(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("parse the DOM of %s: %v", address, err)
	}
	if len(All(doc, func(n *html.Node) bool { return n.Data == "body" })) == 0 {
		t.Fatalf("chromium printed no document for %s:\n%s", address, tail(string(out)))
	}
	return doc
}

// ArtifactDir is where a test keeps its screenshots: $FERRY_ARTIFACTS/<test
// name> when set (CI keeps that directory), else a temporary directory.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	base := os.Getenv("FERRY_ARTIFACTS")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Screenshot saves a PNG of address seen in a window width×height as
// ArtifactDir/name and returns its path; dark asks for the dark colour
// scheme (prefers-color-scheme: dark).
func Screenshot(t testing.TB, bin, address, name string, width, height int, dark bool) string {
	t.Helper()
	file := filepath.Join(ArtifactDir(t), name)
	flags := []string{"--screenshot=" + file, "--window-size=" + strconv.Itoa(width) + "," + strconv.Itoa(height)}
	if dark {
		flags = append(flags, "--force-dark-mode", "--blink-settings=preferredColorScheme=0")
	}
	run(t, bin, address, flags...)
	fi, err := os.Stat(file)
	if err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot of %s: %v", address, err)
	}
	t.Logf("screenshot %s (%dx%d): %s", address, width, height, file)
	return file
}

// All returns the element nodes under n (n included) for which match is
// true, in document order.
func All(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && match(d) {
			out = append(out, d)
		}
	}
	if n.Type == html.ElementNode && match(n) {
		out = append([]*html.Node{n}, out...)
	}
	return out
}

// Attr returns n's attribute key and whether it is there.
func Attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// HasClass reports whether n's class attribute holds class.
func HasClass(n *html.Node, class string) bool {
	v, _ := Attr(n, "class")
	for _, c := range strings.Fields(v) {
		if c == class {
			return true
		}
	}
	return false
}

// Text is the text content of n.
func Text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}
