package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/testenv"
)

// TestE2ESoak runs the write paths (archive publish, feed mirror, graph
// import) as real subprocesses through a FaultProxy with the acceptance
// mix of faults, and kills them with SIGKILL at random moments, at least
// FERRY_SOAK_KILLS times in all (default 60); then lets each finish and
// counts on the server what arrived twice and what never arrived. It runs
// only with FERRY_SOAK=1 (`make soak`) and prints one FIGURES line.
func TestE2ESoak(t *testing.T) {
	if os.Getenv("FERRY_SOAK") != "1" {
		t.Skip("soak test; run it with `make soak` (FERRY_SOAK=1)")
	}
	testenv.Require(t)
	killsWanted := 60
	if v, err := strconv.Atoi(os.Getenv("FERRY_SOAK_KILLS")); err == nil && v > 0 {
		killsWanted = v
	}
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("FERRY_SOAK_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d (FERRY_SOAK_SEED to repeat the faults and kill moments)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	env := testenv.Shared(t, 2)
	bin := ferryBinary(t)
	start := time.Now()

	type path struct {
		name  string
		quota int
		setup func(s *faultSetup) []string // returns the command line
		count func(s *faultSetup) (distinct, total, want int)
	}
	var importOthers []*testenv.User // the accounts the import follows
	paths := []path{
		{name: "publish", quota: killsWanted * 2 / 5, setup: func(s *faultSetup) []string {
			dir := filepath.Join(t.TempDir(), "archive")
			writeSyntheticArchive(t, dir, 60)
			return []string{"archive", "publish", dir, "--to", s.handle, "--mode", "backdate"}
		}, count: func(s *faultSetup) (int, int, int) {
			seen, sts := countTexts(t, s.user, regexp.MustCompile(`synthetic post \d+ `))
			return len(seen), len(sts), 60
		}},
		{name: "mirror", quota: killsWanted * 2 / 5, setup: func(s *faultSetup) []string {
			f := newMirFeed(t)
			items := make([]mirRSSItem, 40)
			t0 := time.Now().Add(-3 * time.Hour)
			for i := range items {
				items[i] = mirRSSItem{GUID: fmt.Sprintf("soak-%d", i), Title: fmt.Sprintf("Soak item %d", i),
					Link: fmt.Sprintf("%s/soak-%d", f.srv.URL, i), HTML: "<p>soak</p>", At: t0.Add(time.Duration(i) * time.Minute)}
			}
			f.set(f.rssDoc(items...))
			cfg := mirWriteConfig(t, fmt.Sprintf("[[route]]\nname = \"soak\"\nsource = { type = \"feed\", url = \"%s/feed.xml\" }\n"+
				"first_run = \"last:40\"\ntemplate = \"{{.Title}}\"\n"+
				// 40 items are over the default runaway cap of 30 an hour.
				"max_per_hour = 100\n\n[[route.sink]]\naccount = \"%s\"\n", f.srv.URL, s.handle))
			return []string{"--config", cfg, "mirror", "--route", "soak"}
		}, count: func(s *faultSetup) (int, int, int) {
			seen, sts := countTexts(t, s.user, regexp.MustCompile(`Soak item \d+\b`))
			return len(seen), len(sts), 40
		}},
		{name: "import", quota: killsWanted - 2*(killsWanted*2/5), setup: func(s *faultSetup) []string {
			others := createUsers(t, t.Context(), repeatInstance(env.Instances[1], 12)...)
			dir := t.TempDir()
			var b strings.Builder
			for _, o := range others {
				b.WriteString(o.Acct + "\n")
			}
			if err := os.WriteFile(filepath.Join(dir, "following_accounts.csv"), []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			importOthers = others
			return []string{"import", s.handle, dir}
		}, count: func(s *faultSetup) (int, int, int) {
			n := 0
			for _, o := range importOthers {
				if relationTo(t, t.Context(), s.user, o.Acct).Following {
					n++
				}
			}
			return n, n, len(importOthers)
		}},
	}
	totalKills, totalDups, totalLost, totalItems, totalRuns := 0, 0, 0, 0, 0
	var requests int
	for _, p := range paths {
		s := newFaultSetup(t, env, env.Instances[0])
		args := append([]string{"--data-dir", s.cli.dataDir, "--ca-file", env.CAFile, "--log-format", "json"}, p.setup(s)...)
		s.proxy.SetFaults(faultMix(rng.Uint64()))
		kills, runs := 0, 0
		for kills < p.quota && runs < p.quota*3 {
			runs++
			killed, err := soakRun(t, bin, args, 100*time.Millisecond+time.Duration(rng.IntN(1500))*time.Millisecond)
			if killed {
				kills++
				continue
			}
			if err == nil {
				if d, _, want := p.count(s); d == want {
					break // finished before the kill: nothing left to interrupt
				}
			}
		}
		// Then run until done, as cron would: what is still missing after
		// 20 more runs is counted lost.
		for range 20 {
			if d, _, want := p.count(s); d == want {
				break
			}
			runs++
			if _, err := soakRun(t, bin, args, 0); err != nil {
				t.Logf("%s: run %d: %v", p.name, runs, err)
			}
		}
		distinct, total, want := p.count(s)
		dups, lost := total-distinct, want-distinct
		t.Logf("%s: kills=%d runs=%d items=%d duplicates=%d lost=%d requests=%d injected=%v",
			p.name, kills, runs, want, dups, lost, s.proxy.Requests(), s.proxy.Injected())
		if dups > 0 || lost > 0 {
			t.Errorf("%s: %d duplicates, %d lost", p.name, dups, lost)
		}
		checkNoBlindResend(t, s.proxy, statusPattern)
		totalKills += kills
		totalDups += dups
		totalLost += lost
		totalItems += want
		totalRuns += runs
		requests += s.proxy.Requests()
	}
	t.Logf("FIGURES soak: kills=%d runs=%d items=%d duplicates=%d lost=%d requests=%d wall=%s seed=%d",
		totalKills, totalRuns, totalItems, totalDups, totalLost, requests, time.Since(start).Round(time.Second), seed)
	if totalKills < 50 {
		t.Errorf("only %d kills; the soak needs at least 50", totalKills)
	}
}

// soakRun runs ferry with args and kills it with SIGKILL after killAfter
// (0: never). It reports whether the kill happened and, if the run ended
// on its own, its error.
func soakRun(t *testing.T, bin string, args []string, killAfter time.Duration) (bool, error) {
	cmd := exec.CommandContext(t.Context(), bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timer <-chan time.Time
	if killAfter > 0 {
		timer = time.After(killAfter)
	}
	select {
	case err := <-done:
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return false, fmt.Errorf("exit %d: %s", ee.ExitCode(), lastLines(stderr.String(), 2))
			}
		}
		return false, err
	case <-timer:
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return true, nil
	}
}
