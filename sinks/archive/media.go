package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sync/errgroup"
)

func mediaClient(o Options) *http.Client {
	if o.Media != nil {
		return o.Media
	}
	return apiOf(o).HTTP()
}

func maxBytes(o Options) int64 {
	if o.MaxMediaBytes > 0 {
		return o.MaxMediaBytes
	}
	return 512 << 20
}

func fileExists(dir, rel string) bool {
	fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel)))
	return err == nil && fi.Mode().IsRegular()
}

// downloadMedia downloads every queued media file not downloaded yet (a
// file already on disk counts as downloaded), MediaWorkers at a time.
func downloadMedia(ctx context.Context, s *Store, o Options, log *slog.Logger) (downloaded int, failed []MediaFailure, err error) {
	jobs, err := s.PendingMedia(ctx)
	if err != nil {
		return 0, nil, err
	}
	workers := o.MediaWorkers
	if workers <= 0 {
		workers = 4
	}
	hc, limit := mediaClient(o), maxBytes(o)
	var mu sync.Mutex
	var firstErr error
	var g errgroup.Group // the workers report through firstErr: a failed download does not stop the others
	g.SetLimit(workers)
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			derr := error(nil)
			if !fileExists(s.dir, j.Path) {
				derr = download(ctx, hc, s.dir, j.Path, j.URL, limit)
			}
			msg := ""
			if derr != nil {
				msg = derr.Error()
			}
			ferr := s.FinishMedia(context.WithoutCancel(ctx), j.Path, msg)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case ferr != nil && firstErr == nil:
				firstErr = ferr
			case derr != nil:
				failed = append(failed, MediaFailure{Path: j.Path, Error: msg})
				log.Warn("media download failed; it will be retried on the next run", "path", j.Path, "err", derr)
			default:
				downloaded++
			}
			return nil
		})
	}
	_ = g.Wait() // every worker returns nil
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return downloaded, failed, firstErr
}

// download fetches rawURL into dir/rel through a temporary file, so a
// partial download never looks complete.
func download(ctx context.Context, hc *http.Client, dir, rel, rawURL string, limit int64) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("media address of %s is invalid", rel)
	}
	shown := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("download %s: %w", shown, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("download %s: %w", shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download %s: %s", shown, resp.Status)
	}
	dst := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("download %s: %w", shown, err)
	}
	f, err := os.CreateTemp(filepath.Dir(dst), ".part-*")
	if err != nil {
		return fmt.Errorf("download %s: %w", shown, err)
	}
	n, err := io.Copy(f, io.LimitReader(resp.Body, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("larger than %d MiB", limit>>20)
	}
	err = errors.Join(err, f.Close())
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), dst)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("download %s: %w", shown, err)
	}
	return nil
}
