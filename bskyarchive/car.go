package bskyarchive

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	car "github.com/ipld/go-car"
	carutil "github.com/ipld/go-car/util"
)

// mergeCAR writes to out a CAR file whose root is diff's (the new commit)
// and whose blocks are diff's followed by those of old not in diff: the
// repository at the new revision, plus the blocks of records deleted
// since (an archive keeps history). diff is what com.atproto.sync.getRepo
// returns with `since` set to old's revision.
func mergeCAR(old io.Reader, diff []byte, out io.Writer) error {
	dr, err := car.NewCarReader(bytes.NewReader(diff))
	if err != nil {
		return fmt.Errorf("read the new blocks: %w", err)
	}
	if len(dr.Header.Roots) == 0 {
		return fmt.Errorf("the new blocks have no root")
	}
	if err := car.WriteHeader(&car.CarHeader{Roots: dr.Header.Roots, Version: 1}, out); err != nil {
		return err
	}
	seen := map[string]bool{}
	for {
		b, err := dr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read the new blocks: %w", err)
		}
		seen[b.Cid().KeyString()] = true
		if err := carutil.LdWrite(out, b.Cid().Bytes(), b.RawData()); err != nil {
			return err
		}
	}
	or, err := car.NewCarReader(old)
	if err != nil {
		return fmt.Errorf("read %s: %w", CARFile, err)
	}
	for {
		b, err := or.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", CARFile, err)
		}
		if seen[b.Cid().KeyString()] {
			continue
		}
		if err := carutil.LdWrite(out, b.Cid().Bytes(), b.RawData()); err != nil {
			return err
		}
	}
}

// updateCAR merges diff into the CAR file at path, through a temporary
// file renamed into place.
func updateCAR(path string, diff []byte) (err error) {
	old, err := os.Open(path)
	if err != nil {
		return err
	}
	defer old.Close()
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = mergeCAR(old, diff, f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
