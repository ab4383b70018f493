package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/testenv"
)

// TestE2EImportBench measures importing N follows into a GoToSocial account
// via the API path and via the server's bulk import: requests per imported
// follow, wall time, and peak memory (max RSS of the ferry process). It is
// heavy (it creates N accounts) and runs only with FERRY_BENCH=1; N comes
// from FERRY_BENCH_N (comma-separated, default "100,300"). Figures are
// logged and written to $FERRY_BENCH_OUT when set; nothing is asserted on
// wall time.
func TestE2EImportBench(t *testing.T) {
	if os.Getenv("FERRY_BENCH") != "1" {
		t.Skip("set FERRY_BENCH=1 to run the import benchmark")
	}
	testenv.Require(t)
	env := testenv.Shared(t, 3)
	A, B, C := env.Instances[0], env.Instances[1], env.Instances[2]
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Minute)
	defer cancel()
	bin := ferryBinary(t)
	sizes := []int{100, 300}
	if s := os.Getenv("FERRY_BENCH_N"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, n)
		}
	}
	var report strings.Builder
	var targets []*testenv.User
	for _, n := range sizes {
		// Targets on the two other instances (remote for the importer, so
		// every resolve is a real WebFinger + actor fetch).
		for len(targets) < n {
			k := min(n-len(targets), 20)
			var ins []*testenv.Instance
			for i := range k {
				ins = append(ins, []*testenv.Instance{A, C}[i%2])
			}
			targets = append(targets, createUsers(t, ctx, ins...)...)
		}
		dir := t.TempDir()
		var sb strings.Builder
		sb.WriteString("Account address,Show boosts,Notify on new posts,Languages\n")
		for _, u := range targets[:n] {
			fmt.Fprintf(&sb, "%s,true,false,\n", u.Acct)
		}
		file := filepath.Join(dir, "following_accounts.csv")
		if err := os.WriteFile(file, []byte(sb.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, method := range []string{"api", "server"} {
			dst := createUsers(t, ctx, B)[0]
			cli := newCLI(t, env.CAFile)
			loginCLI(t, cli, dst)
			start := time.Now()
			cmd := exec.CommandContext(ctx, bin, "--data-dir", cli.dataDir, "--ca-file", env.CAFile, "--json",
				"import", dst.Acct, file, "--method", method, "--failures-dir", dir)
			out, err := cmd.Output()
			wall := time.Since(start)
			if err != nil {
				t.Fatalf("import (%s, N=%d): %v\n%s", method, n, err, out)
			}
			var rep struct {
				Types       map[string]struct{ Applied, Failed int }
				Requests    int64
				RateLimited int64 `json:"rate_limited"`
			}
			if err := json.Unmarshal(out, &rep); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			applied := rep.Types["following"].Applied
			rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB on Linux
			line := fmt.Sprintf("method=%s N=%d applied=%d failed=%d requests=%d requests/follow=%.3f 429s=%d wall=%s maxrss=%.1fMiB",
				method, n, applied, rep.Types["following"].Failed, rep.Requests, float64(rep.Requests)/float64(max(applied, 1)),
				rep.RateLimited, wall.Round(time.Millisecond), float64(rss)/1024)
			fmt.Println("FIGURES import-bench " + line)
			report.WriteString(line + "\n")
			if applied != n {
				t.Errorf("%s: applied %d of %d", method, applied, n)
			}
		}
	}
	if f := os.Getenv("FERRY_BENCH_OUT"); f != "" {
		if err := os.WriteFile(f, []byte(report.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
