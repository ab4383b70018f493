package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/testenv"
)

// TestE2EImportBenchRateLimited imports follows into an account on a
// GoToSocial server with its rate limiter on, more than one window's worth
// of requests: every row must be applied (zero failed rows) with at most
// one 429 per window, because the transport learns the budget from the
// X-RateLimit-* headers and waits for the reset. GoToSocial's window is a
// fixed 5 minutes per client IP, so the test waits out one window; it runs
// only with FERRY_BENCH=1 (bench/run.sh picks it up by its name).
func TestE2EImportBenchRateLimited(t *testing.T) {
	if os.Getenv("FERRY_BENCH") != "1" {
		t.Skip("set FERRY_BENCH=1 to run the rate-limited import")
	}
	// limit requests per window; the import alone needs about 2n+3, and
	// the harness spends a few of the first window starting the server and
	// creating the importing user.
	const limit, n, window = 60, 45, 5 * time.Minute
	testenv.Require(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()

	// The targets live on servers without a limit (so creating them costs
	// the limited one nothing); they are resolved from the limited server.
	shared := testenv.Shared(t, 3)
	var ins []*testenv.Instance
	for i := range n {
		ins = append(ins, shared.Instances[[]int{0, 2}[i%2]])
	}
	targets := createUsers(t, ctx, ins...)

	serverStart := time.Now() // GoToSocial's first window starts with the server
	env := testenv.StartT(t, 1, testenv.Options{RateLimitRequests: limit})
	dst := createUsers(t, ctx, env.Instances[0])[0]
	cli := newCLI(t, env.CAFile)
	loginCLI(t, cli, dst)

	dir := t.TempDir()
	var sb strings.Builder
	sb.WriteString("Account address,Show boosts,Notify on new posts,Languages\n")
	for _, u := range targets {
		fmt.Fprintf(&sb, "%s,true,false,\n", u.Acct)
	}
	file := filepath.Join(dir, "following_accounts.csv")
	if err := os.WriteFile(file, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	var out, errb syncBuffer
	code := run(ctx, cli.args("--json", "import", dst.Acct, file, "--method", "api"), strings.NewReader(""), &out, &errb)
	end := time.Now()
	r := result{code: code, stdout: out.String(), stderr: errb.String()}
	assertNoToken(t, dst.Token, r)
	if code != 0 {
		t.Fatalf("import exited %d\n%s\n%s", code, r.stdout, r.stderr)
	}
	var rep struct {
		Types       map[string]struct{ Applied, Failed int }
		Failures    []json.RawMessage
		Requests    int64
		RateLimited int64 `json:"rate_limited"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	// The windows the import touched, counted from the server's start.
	windows := int64(end.Sub(serverStart)/window-start.Sub(serverStart)/window) + 1
	fol := rep.Types["following"]
	fmt.Printf("FIGURES import-ratelimited limit=%d/5min N=%d applied=%d failed=%d requests=%d requests/follow=%.3f 429s=%d windows=%d wall=%s\n",
		limit, n, fol.Applied, len(rep.Failures), rep.Requests, float64(rep.Requests)/float64(max(fol.Applied, 1)),
		rep.RateLimited, windows, end.Sub(start).Round(time.Second))
	if fol.Applied != n || len(rep.Failures) != 0 {
		t.Errorf("applied %d of %d follows, %d failed rows:\n%s", fol.Applied, n, len(rep.Failures), r.stdout)
	}
	if rep.Requests <= limit {
		t.Errorf("the import sent %d requests, within one window of %d: the test proves nothing", rep.Requests, limit)
	}
	if windows < 2 {
		t.Errorf("the import finished inside one window (%s): it did not wait for a reset", end.Sub(start).Round(time.Second))
	}
	if rep.RateLimited > windows {
		t.Errorf("%d 429s over %d windows; want at most one per window", rep.RateLimited, windows)
	}
}
