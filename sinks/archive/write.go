package archive

import (
	"archive/zip"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Write regenerates outbox.json, likes.json, bookmarks.json and actor.json
// in the store's directory from its records, streaming (memory stays at one
// record). Each file is written beside its final name and renamed into
// place, so a crash leaves the previous version intact.
func Write(ctx context.Context, s *Store) error {
	total, _, err := s.Count(ctx)
	if err != nil {
		return err
	}
	err = writeFile(s.dir, "outbox.json", func(w io.Writer) error {
		head, err := json.Marshal(map[string]any{"@context": outboxContext, "id": "outbox.json", "type": "OrderedCollection", "totalItems": total})
		if err != nil {
			return err
		}
		if _, err := w.Write(append(head[:len(head)-1], []byte(`,"orderedItems":[`)...)); err != nil {
			return err
		}
		first := true
		err = s.EachActivity(ctx, func(a Activity) error {
			data, err := json.Marshal(a)
			if err != nil {
				return fmt.Errorf("encode %s: %w", a.ID, err)
			}
			if !first {
				if _, err := io.WriteString(w, ",\n"); err != nil {
					return err
				}
			}
			first = false
			_, err = w.Write(data)
			return err
		})
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, "]}\n")
		return err
	})
	if err != nil {
		return err
	}
	for _, name := range []string{"likes", "bookmarks"} {
		err := writeFile(s.dir, name+".json", func(w io.Writer) error {
			if _, err := fmt.Fprintf(w, `{"@context":"https://www.w3.org/ns/activitystreams","id":"%s.json","type":"OrderedCollection","orderedItems":[`, name); err != nil {
				return err
			}
			first := true
			err := s.EachInCollection(ctx, name, func(uri string) error {
				data, _ := json.Marshal(uri)
				if !first {
					data = append([]byte(","), data...)
				}
				first = false
				_, err := w.Write(data)
				return err
			})
			if err != nil {
				return err
			}
			_, err = io.WriteString(w, "]}\n")
			return err
		})
		if err != nil {
			return err
		}
	}
	actor, err := s.Meta(ctx, "actor")
	if err != nil || actor == "" {
		return err
	}
	return writeFile(s.dir, "actor.json", func(w io.Writer) error {
		_, err := io.WriteString(w, actor+"\n")
		return err
	})
}

// writeFile writes dir/name through a temporary file and a rename.
func writeFile(dir, name string, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp := f.Name()
	bw := bufio.NewWriterSize(f, 64<<10)
	err = fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	err = errors.Join(err, f.Close())
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// Zip writes the archive in dir (its Mastodon layout, without ferry's
// private directory and temporary files) as a zip file at file.
func Zip(ctx context.Context, dir, file string) (err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("zip %s: %w", dir, err)
	}
	out, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("zip: %w", err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("zip: %w", cerr)
		}
		if err != nil {
			os.Remove(file)
		}
	}()
	zw := zip.NewWriter(out)
	outAbs, _ := filepath.Abs(file)
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(abs, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == PrivateDir {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") || p == outAbs {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := zip.FileInfoHeader(info)
		if err != nil {
			return err
		}
		h.Name = rel
		h.Method = zip.Deflate
		if strings.HasPrefix(rel, "media_attachments/") || strings.HasPrefix(rel, "avatar.") || strings.HasPrefix(rel, "header.") {
			h.Method = zip.Store // already compressed
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, f)
		return errors.Join(err, f.Close())
	})
	if err != nil {
		return fmt.Errorf("zip %s: %w", abs, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("zip: %w", err)
	}
	return nil
}
