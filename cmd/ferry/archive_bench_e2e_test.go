package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/testenv"
)

// TestE2EArchiveBench measures `ferry archive` (the built binary, as a
// subprocess) on accounts with N posts, a few of them with media: requests
// for the timeline (goal ⌈N/40⌉; one more when N is a multiple of 40, the
// empty page that shows the end) and for media (one per file), all
// requests, wall time and peak memory (the process's max RSS), for a first
// run, an incremental run with nothing new and a --refresh run. Memory must
// stay flat in N. Heavy: it runs only with FERRY_BENCH=1; N comes from
// FERRY_BENCH_ARCHIVE_N (comma-separated, default "200,2000"). Figures are
// printed on lines starting with FIGURES (and appended to $FERRY_BENCH_OUT
// when set).
func TestE2EArchiveBench(t *testing.T) {
	if os.Getenv("FERRY_BENCH") != "1" {
		t.Skip("set FERRY_BENCH=1 to run the archive benchmark")
	}
	testenv.Require(t)
	env := testenv.Shared(t, 1)
	a := env.Instances[0]
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Minute)
	defer cancel()
	bin := ferryBinary(t)
	sizes := []int{200, 2000}
	if s := os.Getenv("FERRY_BENCH_ARCHIVE_N"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, n)
		}
	}
	const mediaPosts = 5
	c := newCLI(t, env.CAFile)
	var report strings.Builder
	rssFirst := map[int]int64{}
	for _, n := range sizes {
		u, err := a.CreateUser(ctx, "", true)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("bench%d", n)
		c.run("login", a.BaseURL, "--token-file", writeTokenFile(t, u.Token), "--name", name).mustSucceed(t)
		start := time.Now()
		arcCreatePosts(t, ctx, u, n, mediaPosts)
		t.Logf("N=%d: created the posts in %s", n, time.Since(start).Round(time.Millisecond))

		dir := filepath.Join(t.TempDir(), "archive")
		for _, run := range []struct {
			name  string
			extra []string
		}{{"first", nil}, {"incremental", nil}, {"refresh", []string{"--refresh"}}} {
			args := append([]string{"--data-dir", c.dataDir, "--ca-file", env.CAFile, "--json", "archive", name, "--out", dir}, run.extra...)
			cmd := exec.CommandContext(ctx, bin, args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			start := time.Now()
			out, err := cmd.Output()
			wall := time.Since(start)
			if err != nil {
				t.Fatalf("archive N=%d (%s): %v\n%s\n%s", n, run.name, err, out, stderr.String())
			}
			var sum arcSummary
			if err := json.Unmarshal(out, &sum); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB on Linux
			line := fmt.Sprintf("FIGURES archive run=%s N=%d posts=%d new=%d timeline_requests=%d (goal ⌈N/40⌉=%d) media_requests=%d requests_total=%d wall=%s maxrss=%.1fMiB",
				run.name, n, sum.TotalPosts, sum.NewPosts, sum.StatusPages, (n+39)/40, sum.MediaDownloaded, sum.Requests,
				wall.Round(time.Millisecond), float64(rss)/1024)
			fmt.Println(line)
			t.Log(line)
			report.WriteString(line + "\n")
			if sum.TotalPosts != n {
				t.Errorf("%s run: %d posts archived, want %d", run.name, sum.TotalPosts, n)
			}
			switch run.name {
			case "first":
				rssFirst[n] = rss
				if sum.StatusPages > n/40+1 || sum.MediaDownloaded != mediaPosts {
					t.Errorf("first run: %d timeline requests (want ≤ %d), %d media downloads (want %d)", sum.StatusPages, n/40+1, sum.MediaDownloaded, mediaPosts)
				}
			case "incremental":
				if sum.StatusPages != 1 || sum.NewPosts != 0 || sum.MediaDownloaded != 0 {
					t.Errorf("incremental run: %+v", sum)
				}
			case "refresh":
				if sum.StatusPages > n/40+1 || sum.Requests > int64(sum.StatusPages)+3 {
					t.Errorf("refresh run: %d timeline requests, %d in all (want ≤ %d, ≤ timeline + 3)", sum.StatusPages, sum.Requests, n/40+1)
				}
			}
		}
	}
	if lo, hi := slices.Min(sizes), slices.Max(sizes); lo < hi {
		small, large := rssFirst[lo], rssFirst[hi]
		line := fmt.Sprintf("FIGURES archive maxrss N=%d / N=%d = %.2f", hi, lo, float64(large)/float64(small))
		fmt.Println(line)
		report.WriteString(line + "\n")
		if float64(large) > 1.5*float64(small) {
			t.Errorf("peak memory grows with N: %d KiB at N=%d, %d KiB at N=%d", small, lo, large, hi)
		}
	}
	if f := os.Getenv("FERRY_BENCH_OUT"); f != "" {
		fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		if _, err := fh.WriteString(report.String()); err != nil {
			t.Fatal(err)
		}
	}
}

// arcCreatePosts creates n posts as u, withMedia of them with an image,
// a few goroutines at a time.
func arcCreatePosts(t *testing.T, ctx context.Context, u *testenv.User, n, withMedia int) {
	t.Helper()
	media := make([]string, withMedia)
	for i := range media {
		media[i] = arcUpload(t, ctx, u, fmt.Sprintf("benchmark picture %d", i))
	}
	const workers = 4
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				q := url.Values{"status": {fmt.Sprintf("benchmark post %d: the quick brown fox jumps over the lazy dog", i)}, "visibility": {"public"}}
				if step := n / max(withMedia, 1); step > 0 && i%step == 0 && i/step < withMedia {
					q.Set("media_ids[]", media[i/step])
				}
				if err := u.API(ctx, http.MethodPost, "/api/v1/statuses", q, nil); err != nil {
					errs <- fmt.Errorf("post %d: %w", i, err)
					return
				}
			}
		})
	}
	var err error
	for i := range n {
		select {
		case next <- i:
			continue
		case err = <-errs:
		}
		break
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}
