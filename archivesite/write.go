package archivesite

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
)

// manifestFile lists the files Build wrote with the hash of their content,
// so a re-run knows which it may skip and which month pages it made (the
// only files it ever removes).
const manifestFile = ".ferry-site.json"

type manifest struct {
	Version int               `json:"version"`
	Files   map[string]string `json:"files"` // site-relative name → sha256 of the content
}

// writer writes the site's files into root, skipping those whose content
// is already there.
type writer struct {
	root *os.Root
	log  *slog.Logger
	res  *Result
	old  manifest
	new  manifest
}

func (w *writer) loadManifest() error {
	w.new = manifest{Version: 1, Files: map[string]string{}}
	b, err := w.root.ReadFile(manifestFile)
	if errors.Is(err, fs.ErrNotExist) {
		w.old = manifest{Files: map[string]string{}}
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &w.old); err != nil || w.old.Files == nil {
		// A damaged manifest only costs a full rewrite.
		w.old = manifest{Files: map[string]string{}}
	}
	return nil
}

// write puts content at name unless the same content is there already:
// the hash in the manifest must match and the file must still have that
// size (a file edited or truncated by hand is rewritten).
func (w *writer) write(name string, content []byte) error {
	sum := sha256.Sum256(content)
	h := hex.EncodeToString(sum[:])
	w.new.Files[name] = h
	w.res.Bytes += int64(len(content))
	if name == "index.html" {
		w.res.FirstPageBytes = int64(len(content))
	}
	if w.old.Files[name] == h {
		if fi, err := w.root.Stat(name); err == nil && fi.Mode().IsRegular() && fi.Size() == int64(len(content)) {
			w.res.PagesSkipped++
			return nil
		}
	}
	if err := writeAtomic(w.root, name, content); err != nil {
		return err
	}
	w.res.PagesWritten++
	w.log.Debug("wrote", "file", name, "bytes", len(content))
	return nil
}

// finish removes the pages of the previous build that this one did not
// produce (months gone from the archive) and saves the manifest.
func (w *writer) finish() error {
	var gone []string
	for name := range w.old.Files {
		if _, ok := w.new.Files[name]; !ok && safeRel(name) != "" && strings.HasSuffix(name, ".html") {
			gone = append(gone, name)
		}
	}
	sort.Strings(gone)
	for _, name := range gone {
		if err := w.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		w.res.PagesRemoved++
	}
	b, err := json.MarshalIndent(w.new, "", " ")
	if err != nil {
		return err
	}
	return writeAtomic(w.root, manifestFile, append(b, '\n'))
}

// writeAtomic writes name through a temporary file renamed into place, so
// a browser or a crash never sees half a page.
func writeAtomic(root *os.Root, name string, content []byte) error {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	tmp := name + ".tmp"
	if err := root.WriteFile(tmp, content, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := root.Rename(tmp, name); err != nil {
		root.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// mediaDir is where the site keeps the archive's media files.
const mediaDir = "media"

// mediaCopier copies media files from the archive into the site, once: a
// file already there with the same size, not older than the archive's, is
// left alone. Names come from the
// archive (untrusted): both ends are os.Roots, so nothing is read or
// written outside the archive and the site.
type mediaCopier struct {
	src, dst *os.Root
	res      *Result
	done     map[string]string // archive-relative path → site URL ("" when missing)
}

// url returns the site-relative URL of the archive file rel, copying it in
// first; "" when the archive does not have it.
func (m *mediaCopier) url(rel string) (string, error) {
	if m.done == nil {
		m.done = map[string]string{}
	}
	if u, ok := m.done[rel]; ok {
		return u, nil
	}
	u, err := m.copy(rel)
	if err != nil {
		return "", err
	}
	if u == "" {
		m.res.MediaMissing++
	}
	m.done[rel] = u
	return u, nil
}

func (m *mediaCopier) copy(rel string) (string, error) {
	if safeRel(rel) == "" {
		return "", nil
	}
	in, err := m.src.Open(rel)
	if err != nil {
		// Missing, or a name that leads out of the archive: either way
		// there is no file to show.
		return "", nil
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return "", nil
	}
	to := mediaDir + "/" + rel
	u := siteURL(to)
	if have, err := m.dst.Stat(to); err == nil && have.Mode().IsRegular() && have.Size() == fi.Size() && !have.ModTime().Before(fi.ModTime()) {
		return u, nil
	}
	if err := m.dst.MkdirAll(path.Dir(to), 0o755); err != nil {
		return "", fmt.Errorf("copy %s: %w", rel, err)
	}
	tmp := to + ".tmp"
	out, err := m.dst.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", fmt.Errorf("copy %s: %w", rel, err)
	}
	n, err := io.Copy(out, in)
	err = errors.Join(err, out.Close())
	if err == nil {
		err = m.dst.Rename(tmp, to)
	}
	if err != nil {
		m.dst.Remove(tmp)
		return "", fmt.Errorf("copy %s: %w", rel, err)
	}
	m.res.MediaCopied++
	m.res.MediaBytes += n
	return u, nil
}

// siteURL percent-encodes each segment of a site-relative path, so a file
// name with "#", "?" or spaces still links to itself.
func siteURL(rel string) string {
	var b bytes.Buffer
	for i, seg := range strings.Split(rel, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(url.PathEscape(seg))
	}
	return b.String()
}
