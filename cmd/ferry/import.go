package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/migrate"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/state"
)

type importOptions struct {
	Type        string
	Mode        string
	Method      string
	DryRun      bool
	Yes         bool
	Fresh       bool
	FailuresDir string
	Concurrency int
	Timeout     time.Duration
}

func newImportCommand(g *globalOptions) *cli.Command {
	var o importOptions
	return &cli.Command{
		Name:      "import",
		Usage:     "import follows, lists, blocks, mutes, domain blocks and bookmarks from CSV files or lists of handles",
		ArgsUsage: "ACCOUNT FILE|DIR…",
		Description: "Reads Mastodon's exports (with or without header rows), GoToSocial's exports, Misskey/Akkoma lists\n" +
			"and plain lists of handles (@user@host or user@host, one a line). A DIR means every .csv and .txt file in it.\n" +
			"The type of each file comes from its header or name (following_accounts.csv …); --type overrides it.\n\n" +
			"ferry first plans: it resolves every handle and compares with what the account already has, and\n" +
			"stores the plan in its database. --dry-run prints the plan and stops. Then it applies the plan; if it is\n" +
			"interrupted (or a server limit such as Mastodon's 400 follows a day is reached), run the same command\n" +
			"again to continue. Rows that cannot be applied are listed in <type>_failures.csv with the reason.\n\n" +
			"--mode overwrite also removes what the files do not list; it shows the removals and needs --yes.\n" +
			"--method server uses the server's own bulk importer (GoToSocial) and checks the result through the API.\n\n" +
			"Across protocols, accounts are followed through Bridgy Fed: a Bluesky export imported into a fediverse\n" +
			"account follows @HANDLE@bsky.brid.gy, a fediverse export imported into a Bluesky account follows\n" +
			"USER.HOST.ap.brid.gy; accounts that are not bridged are listed in the failures file with the reason.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "type", Usage: "the type of every file: following, lists, blocks, mutes, domain_blocks, bookmarks", Destination: &o.Type},
			&cli.StringFlag{Name: "mode", Usage: "merge (only add) or overwrite (also remove what the files do not list)", Value: "merge", Destination: &o.Mode},
			&cli.StringFlag{Name: "method", Usage: "auto, api or server (the server's bulk importer, where it has one)", Value: "auto", Destination: &o.Method},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan and change nothing", Destination: &o.DryRun},
			&cli.BoolFlag{Name: "yes", Usage: "confirm the removals of --mode overwrite", Destination: &o.Yes},
			&cli.BoolFlag{Name: "fresh", Usage: "run an import again that already finished", Destination: &o.Fresh},
			&cli.StringFlag{Name: "failures-dir", Usage: "where to write <type>_failures.csv (default: the directory of the first input)", Destination: &o.FailuresDir},
			&cli.IntFlag{Name: "concurrency", Usage: "requests in flight at once", Value: 4, Destination: &o.Concurrency},
			&cli.DurationFlag{Name: "timeout", Usage: "stop after this long (0 = no limit); run the same command again to continue", Destination: &o.Timeout},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 {
				return usagef("import: give an ACCOUNT and at least one FILE or DIR")
			}
			return runImport(c.Context, g, o, c.Args().First(), c.Args().Tail())
		},
	}
}

func runImport(ctx context.Context, g *globalOptions, o importOptions, ref string, paths []string) error {
	var typ migrate.Type
	if o.Type != "" {
		t, err := migrate.ParseType(o.Type)
		if err != nil {
			return usageError{err.Error()}
		}
		typ = t
	}
	mode, err := migrate.ParseMode(o.Mode)
	if err != nil {
		return usagef("import: --%v", err)
	}
	method, err := migrate.ParseMethod(o.Method)
	if err != nil {
		return usagef("import: --%v", err)
	}
	files, err := migrate.ReadFiles(paths, typ)
	if err != nil {
		return importInputError(err)
	}
	failuresDir := o.FailuresDir
	if failuresDir == "" {
		failuresDir = migrate.DefaultFailuresDir(paths)
	}

	st, acct, sess, err := g.openAccount(ctx, ref)
	if err != nil {
		return err
	}
	defer st.Close()
	gp, ok := sess.(platform.GraphPorter)
	if !ok {
		return platform.NoRole(acct, "import the social graph")
	}
	if !o.DryRun {
		release, err := hold(ctx, st, "import/"+acct.Handle, "importing into "+acct.Handle)
		if err != nil {
			return err
		}
		defer release()
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	started := time.Now()
	prog := newProgress(g.stderr)
	res, err := gp.ImportFiles(ctx, migrate.ImportFilesOptions{
		ImportOptions: migrate.ImportOptions{
			Account:     acct.Handle,
			Software:    acct.Software,
			Files:       files,
			Mode:        mode,
			Method:      method,
			DryRun:      o.DryRun,
			Confirmed:   o.Yes,
			Fresh:       o.Fresh,
			Journal:     st,
			Concurrency: o.Concurrency,
			Progress:    prog.update,
			Log:         g.log,
		},
		FailuresDir: failuresDir,
	})
	prog.end()
	if errors.Is(err, migrate.ErrNeedsConfirmation) {
		if g.JSON {
			if perr := printJSON(g.stdout, res); perr != nil {
				return perr
			}
		} else {
			printRemovals(g.stdout, res.Report)
		}
		return usagef("import: --mode overwrite would remove the %d entries above; run again with --yes to do it", len(res.Removals))
	}
	if res.Report == nil {
		return platform.AuthHint(err, acct)
	}
	stats := platform.UsageOf(sess)
	g.log.Debug("import requests", "requests", stats.Requests, "rate_limited", stats.RateLimited,
		"retries", stats.Retries, "waited", stats.Waited.Round(time.Millisecond), "elapsed", time.Since(started).Round(time.Millisecond))
	if g.JSON {
		out := struct {
			migrate.ImportFilesResult
			Requests    int64   `json:"requests"`
			RateLimited int64   `json:"rate_limited"`
			Seconds     float64 `json:"seconds"`
		}{res, stats.Requests, stats.RateLimited, time.Since(started).Seconds()}
		if perr := printJSON(g.stdout, out); perr != nil {
			return perr
		}
	} else {
		printImportReport(g.stdout, res.Report, res.FailureFiles)
	}
	return importError(err, acct)
}

// importInputError reports the inputs the person named that cannot be
// read as a usage mistake.
func importInputError(err error) error {
	var ie *migrate.InputError
	if errors.As(err, &ie) {
		return usagef("import: %v", ie)
	}
	return fmt.Errorf("import: %w", err)
}

// importError gives the exit status and advice for how an import ended.
func importError(err error, acct state.Account) error {
	var rf *migrate.RowsFailedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &rf):
		return partialError{rf.Error()}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return fmt.Errorf("import into %s stopped before the end (%w); run the same command again to continue", acct.Handle, err)
	}
	return platform.AuthHint(err, acct)
}

func printRemovals(w io.Writer, rep *migrate.Report) {
	fmt.Fprintf(w, "--mode overwrite removes %d entries:\n", len(rep.Removals))
	t := newTable(w, "STEP", "ENTRY")
	for _, r := range rep.Removals {
		t.row(r.Step, r.Entry)
	}
	_ = t.flush()
}

func printImportReport(w io.Writer, rep *migrate.Report, failureFiles []string) {
	switch {
	case rep.DryRun:
		fmt.Fprintf(w, "plan for %s (dry run, nothing changed):\n", rep.Account)
		t := newTable(w, "STEP", "ENTRY", "STATUS", "NOTE", "SOURCE")
		for _, e := range rep.Plan {
			t.row(e.Step, e.Entry, e.Status, dash(e.Note), dash(e.Source))
		}
		_ = t.flush()
	case rep.Resumed:
		fmt.Fprintf(w, "resumed the interrupted import into %s\n", rep.Account)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, n)
	}
	types := make([]string, 0, len(rep.Types))
	for t := range rep.Types {
		types = append(types, string(t))
	}
	sort.Strings(types)
	if rep.Finished {
		// The counts are the journal's, from the run that finished: say
		// so, or they read as if this run had applied them.
		fmt.Fprintln(w, "what that run did:")
	}
	t := newTable(w, "TYPE", "APPLIED", "ALREADY", "FAILED", "PENDING", "REMOVED")
	for _, name := range types {
		c := rep.Types[migrate.Type(name)]
		t.row(name, c.Applied, c.Already, c.Failed, c.Pending, c.Removed)
	}
	_ = t.flush()
	for _, m := range rep.Moved {
		fmt.Fprintf(w, "%s has moved: followed %s instead\n", m.From, m.To)
	}
	for _, f := range failureFiles {
		fmt.Fprintf(w, "rows not applied, with the reason: %s\n", f)
	}
}

// progress draws a one-line progress bar on stderr when it is a terminal.
// Import calls it from several goroutines.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	on := false
	if ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			on = true
		}
	}
	return &progress{w: w, on: on}
}

// progressWidth bounds the drawn line: a line that wraps cannot be redrawn
// in place with \r.
const progressWidth = 79

func (p *progress) update(pr migrate.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on || (time.Since(p.last) < 200*time.Millisecond && pr.Waiting == "" && pr.Done < pr.Total) {
		return
	}
	p.last = time.Now()
	fmt.Fprint(p.w, "\r"+progressLine(pr)+"\x1b[K")
	p.drawn = true
}

// progressLine renders pr in at most progressWidth characters:
// "applying [=====     ] 120/1000 ETA 3m10s — waiting …".
func progressLine(pr migrate.Progress) string {
	const bar = 20
	filled := 0
	if pr.Total > 0 {
		filled = min(max(bar*pr.Done/pr.Total, 0), bar)
	}
	line := fmt.Sprintf("%s [%s%s] %d/%d", pr.Phase, strings.Repeat("=", filled), strings.Repeat(" ", bar-filled), pr.Done, pr.Total)
	if pr.ETA > 0 {
		line += " ETA " + pr.ETA.Round(time.Second).String()
	}
	if pr.Waiting != "" {
		line += " — " + pr.Waiting
	}
	if r := []rune(line); len(r) > progressWidth {
		line = string(r[:progressWidth-1]) + "…"
	}
	return line
}

// end finishes a drawn line, so that what is written next starts on a line
// of its own; the next update draws a new one.
func (p *progress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// Write ends a drawn progress line before passing b on to the progress's
// writer: lines written by a long run (a migration's steps) start on a line
// of their own.
func (p *progress) Write(b []byte) (int, error) {
	p.end()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.w.Write(b)
}
