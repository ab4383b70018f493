package archive

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Limits bound what Import accepts. Zero fields take the defaults.
type Limits struct {
	// MaxMemberBytes bounds one member's uncompressed size (default 2 GiB).
	MaxMemberBytes int64
	// MaxTotalBytes bounds the sum of the members' sizes (default 64 GiB).
	MaxTotalBytes int64
	// MaxRatio bounds uncompressed/compressed size, per zip member and for
	// a whole tar.gz, once past 1 MiB (default 100: media barely
	// compresses, JSON about 10×).
	MaxRatio float64
	// MaxEntries bounds the number of members (default 1 000 000).
	MaxEntries int
}

func (l Limits) withDefaults() Limits {
	if l.MaxMemberBytes <= 0 {
		l.MaxMemberBytes = 2 << 30
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = 64 << 30
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = 100
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = 1_000_000
	}
	return l
}

// ratioFloor is the size below which the compression ratio is not checked.
const ratioFloor = 1 << 20

// ErrUnsafe is wrapped by every refusal of a hostile or damaged archive.
var ErrUnsafe = errors.New("refused")

// EntryError names the archive member Import refused and why.
type EntryError struct {
	Entry  string
	Reason string
}

func (e *EntryError) Error() string { return fmt.Sprintf("archive entry %q: %s", e.Entry, e.Reason) }
func (e *EntryError) Unwrap() error { return ErrUnsafe }

// ImportSummary is what Import copied.
type ImportSummary struct {
	Source  string   `json:"source"`
	Into    string   `json:"into"`
	Format  string   `json:"format"` // zip, tar.gz or dir
	Files   int      `json:"files"`
	Media   int      `json:"media"`
	Bytes   int64    `json:"bytes"`
	Ignored []string `json:"ignored,omitempty"` // members outside the layout
}

// Import copies the Mastodon-layout archive at src (a .zip, a .tar.gz or a
// directory, told apart by content) into the directory into, which must
// not exist or be empty. Only the layout's members are copied: outbox.json,
// actor.json, likes.json, bookmarks.json, avatar.* and header.* at the
// root, and every member under a media_attachments/ segment (placed at the
// same path from media_attachments/ on). Members with absolute or escaping
// names, links or special files, duplicate names, oversized members and
// decompression bombs, and malformed JSON are refused with an *EntryError
// naming the member; nothing is ever written outside into, and on any
// error everything Import wrote is removed.
func Import(ctx context.Context, src, into string, l Limits) (sum ImportSummary, err error) {
	l = l.withDefaults()
	sum = ImportSummary{Source: src, Into: into}
	if err := prepareTarget(into); err != nil {
		return sum, err
	}
	root, err := os.OpenRoot(into)
	if err != nil {
		return sum, fmt.Errorf("import into %s: %w", into, err)
	}
	defer func() {
		root.Close()
		if err != nil {
			cleanTarget(into)
		}
	}()
	x := &extractor{root: root, l: l, seen: map[string]bool{}, sum: &sum}
	fi, err := os.Stat(src)
	if err != nil {
		return sum, fmt.Errorf("import: %w", err)
	}
	switch {
	case fi.IsDir():
		sum.Format = "dir"
		err = x.fromDir(ctx, src)
	default:
		var magic [4]byte
		f, oerr := os.Open(src)
		if oerr != nil {
			return sum, fmt.Errorf("import: %w", oerr)
		}
		_, rerr := io.ReadFull(f, magic[:])
		f.Close()
		switch {
		case rerr != nil:
			return sum, fmt.Errorf("import %s: not a zip or tar.gz archive", src)
		case bytes.Equal(magic[:], []byte("PK\x03\x04")) || bytes.Equal(magic[:], []byte("PK\x05\x06")):
			sum.Format = "zip"
			err = x.fromZip(ctx, src)
		case magic[0] == 0x1f && magic[1] == 0x8b:
			sum.Format = "tar.gz"
			err = x.fromTarGz(ctx, src, fi.Size())
		default:
			return sum, fmt.Errorf("import %s: not a zip or tar.gz archive, nor a directory", src)
		}
	}
	if err != nil {
		return sum, fmt.Errorf("import %s: %w", src, err)
	}
	if !x.seen["outbox.json"] {
		return sum, fmt.Errorf("import %s: no outbox.json: this is not a Mastodon or ferry archive", src)
	}
	for _, name := range []string{"outbox.json", "likes.json", "bookmarks.json", "actor.json"} {
		if x.seen[name] {
			if err := validateJSON(ctx, filepath.Join(into, name), name); err != nil {
				return sum, fmt.Errorf("import %s: %w", src, err)
			}
		}
	}
	return sum, nil
}

func prepareTarget(into string) error {
	if err := os.MkdirAll(into, 0o755); err != nil {
		return fmt.Errorf("import into %s: %w", into, err)
	}
	ents, err := os.ReadDir(into)
	if err != nil {
		return fmt.Errorf("import into %s: %w", into, err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("import into %s: the directory is not empty; give a new or empty directory", into)
	}
	return nil
}

// cleanTarget empties into after a failed import (into was empty before).
func cleanTarget(into string) {
	ents, _ := os.ReadDir(into)
	for _, e := range ents {
		os.RemoveAll(filepath.Join(into, e.Name()))
	}
}

type extractor struct {
	root  *os.Root
	l     Limits
	seen  map[string]bool // raw member names and target names
	total int64
	n     int
	sum   *ImportSummary
}

// target checks a member's name and returns where it goes ("" = ignored).
func (x *extractor) target(name string) (string, error) {
	refuse := func(why string) (string, error) { return "", &EntryError{Entry: name, Reason: why} }
	x.n++
	if x.n > x.l.MaxEntries {
		return refuse(fmt.Sprintf("more than %d members", x.l.MaxEntries))
	}
	switch {
	case name == "":
		return refuse("empty name")
	case strings.ContainsAny(name, "\x00\\"):
		return refuse("the name contains a NUL or a backslash")
	case strings.HasPrefix(name, "/") || (len(name) > 1 && name[1] == ':'):
		return refuse("absolute path")
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == ".." {
			return refuse("the path leaves the archive (..)")
		}
	}
	clean := path.Clean(name)
	if x.seen["raw:"+clean] {
		return refuse("duplicate name")
	}
	x.seen["raw:"+clean] = true
	var dst string
	switch {
	case clean == PrivateDirName || strings.HasPrefix(clean, PrivateDirName+"/"):
		return "", nil // a ferry archive's private files are rebuilt, never copied
	case strings.Contains("/"+clean, "/media_attachments/"):
		i := strings.Index("/"+clean, "/media_attachments/")
		dst = clean[i:]
	case clean == "outbox.json", clean == "actor.json", clean == "likes.json", clean == "bookmarks.json":
		dst = clean
	case !strings.Contains(clean, "/") && (strings.HasPrefix(clean, "avatar.") || strings.HasPrefix(clean, "header.")):
		dst = clean
	default:
		return "", nil
	}
	for _, seg := range strings.Split(dst, "/") {
		if seg == "" || seg == "." || strings.HasPrefix(seg, ".") {
			return refuse("unusual path segment")
		}
	}
	if x.seen[dst] {
		return refuse("duplicate name (another member lands at " + dst + ")")
	}
	x.seen[dst] = true
	return dst, nil
}

// write copies one member's content to dst, enforcing the size limits
// whatever the member's header claims.
func (x *extractor) write(ctx context.Context, entry, dst string, r io.Reader, declared int64) error {
	if declared > x.l.MaxMemberBytes {
		return &EntryError{Entry: entry, Reason: fmt.Sprintf("member larger than %d MiB", x.l.MaxMemberBytes>>20)}
	}
	if dir := path.Dir(dst); dir != "." {
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("%s: %w", entry, err)
		}
	}
	f, err := x.root.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("%s: %w", entry, err)
	}
	n, err := io.Copy(f, &ctxReader{ctx: ctx, r: io.LimitReader(r, x.l.MaxMemberBytes+1)})
	err = errors.Join(err, f.Close())
	if err != nil {
		return fmt.Errorf("%s: %w", entry, err)
	}
	if n > x.l.MaxMemberBytes {
		return &EntryError{Entry: entry, Reason: fmt.Sprintf("member larger than %d MiB", x.l.MaxMemberBytes>>20)}
	}
	x.total += n
	if x.total > x.l.MaxTotalBytes {
		return &EntryError{Entry: entry, Reason: fmt.Sprintf("the archive unpacks to more than %d MiB", x.l.MaxTotalBytes>>20)}
	}
	x.sum.Files++
	x.sum.Bytes += n
	if strings.HasPrefix(dst, "media_attachments/") {
		x.sum.Media++
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (x *extractor) fromZip(ctx context.Context, src string) error {
	zr, err := zip.OpenReader(src)
	if err != nil {
		return fmt.Errorf("read zip: %w", err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Mode()&fs.ModeSymlink != 0 {
			return &EntryError{Entry: f.Name, Reason: "symbolic link"}
		}
		if f.Mode().IsDir() || strings.HasSuffix(f.Name, "/") {
			continue
		}
		if !f.Mode().IsRegular() {
			return &EntryError{Entry: f.Name, Reason: "not a regular file"}
		}
		dst, err := x.target(f.Name)
		if err != nil {
			return err
		}
		if dst == "" {
			x.sum.Ignored = append(x.sum.Ignored, f.Name)
			continue
		}
		if f.UncompressedSize64 > ratioFloor && float64(f.UncompressedSize64) > x.l.MaxRatio*float64(max(f.CompressedSize64, 1)) {
			return x.bomb(f.Name)
		}
		rc, err := f.Open()
		if err != nil {
			return &EntryError{Entry: f.Name, Reason: err.Error()}
		}
		// Declared sizes can lie: bound the ratio on what actually comes out.
		limit := int64(max(x.l.MaxRatio*float64(max(f.CompressedSize64, 1)), ratioFloor))
		lr := &ratioReader{r: rc, limit: limit}
		err = x.write(ctx, f.Name, dst, lr, int64(min(f.UncompressedSize64, 1<<62)))
		rc.Close()
		if lr.over {
			return x.bomb(f.Name)
		}
		if err != nil {
			var ee *EntryError
			if errors.As(err, &ee) {
				return err
			}
			return &EntryError{Entry: f.Name, Reason: err.Error()}
		}
	}
	return nil
}

// bomb is the refusal of a member (or stream) that inflates too much.
func (x *extractor) bomb(entry string) *EntryError {
	return &EntryError{Entry: entry, Reason: fmt.Sprintf("compression ratio over %.0f (a decompression bomb?)", x.l.MaxRatio)}
}

// ratioReader fails once more than limit bytes were read.
type ratioReader struct {
	r     io.Reader
	limit int64
	n     int64
	over  bool
}

func (r *ratioReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if r.n > r.limit {
		r.over = true
		return n, errors.New("compression ratio exceeded")
	}
	return n, err
}

func (x *extractor) fromTarGz(ctx context.Context, src string, size int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("read tar.gz: %w", err)
	}
	defer gz.Close()
	// The whole stream's ratio is what a tar.gz bomb inflates.
	limit := int64(max(x.l.MaxRatio*float64(max(size, 1)), ratioFloor))
	lr := &ratioReader{r: gz, limit: limit}
	tr := tar.NewReader(lr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if lr.over {
			return x.bomb("(tar stream)")
		}
		if err != nil {
			return fmt.Errorf("read tar.gz: %w", err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeSymlink:
			return &EntryError{Entry: h.Name, Reason: "symbolic link"}
		case tar.TypeLink:
			return &EntryError{Entry: h.Name, Reason: "hard link"}
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old archives use TypeRegA
		case tar.TypeXGlobalHeader:
			continue
		default:
			return &EntryError{Entry: h.Name, Reason: "not a regular file"}
		}
		dst, err := x.target(h.Name)
		if err != nil {
			return err
		}
		if dst == "" {
			x.sum.Ignored = append(x.sum.Ignored, h.Name)
			continue
		}
		if err := x.write(ctx, h.Name, dst, tr, h.Size); err != nil {
			if lr.over {
				return x.bomb(h.Name)
			}
			return err
		}
	}
}

func (x *extractor) fromDir(ctx context.Context, src string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			if rel == PrivateDirName {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return &EntryError{Entry: rel, Reason: "symbolic link"}
		}
		if !d.Type().IsRegular() {
			return &EntryError{Entry: rel, Reason: "not a regular file"}
		}
		dst, err := x.target(rel)
		if err != nil {
			return err
		}
		if dst == "" {
			x.sum.Ignored = append(x.sum.Ignored, rel)
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return err
		}
		return x.write(ctx, rel, dst, f, info.Size())
	})
}

// PrivateDirName is the directory of ferry's own files inside an archive
// (the search index); it is never imported from an archive.
const PrivateDirName = ".ferry"

// validateJSON checks that a member is well-formed JSON (outbox.json also
// that its items are objects), streaming.
func validateJSON(ctx context.Context, file, name string) error {
	if name == "outbox.json" {
		err := EachItem(ctx, file, func(n int, raw json.RawMessage) error {
			var a rawActivity
			if err := json.Unmarshal(raw, &a); err != nil {
				return fmt.Errorf("item %d: %w", n, err)
			}
			return nil
		})
		if err != nil {
			return &EntryError{Entry: name, Reason: "malformed: " + err.Error()}
		}
		return nil
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReader(f))
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if depth != 0 {
				return &EntryError{Entry: name, Reason: "malformed JSON: unexpected end of file"}
			}
			return nil
		}
		if err != nil {
			return &EntryError{Entry: name, Reason: fmt.Sprintf("malformed JSON near byte %d: %v", dec.InputOffset(), err)}
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
}
