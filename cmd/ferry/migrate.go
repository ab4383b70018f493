package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/fedi-ferry/ferry/migrate/move"
	"github.com/fedi-ferry/ferry/migrate/publish"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/state"
)

type migrateOptions struct {
	From, To     string
	FromArchive  string
	Dir          string
	Publish      string
	Yes          bool
	PasswordFile string
	AliasManual  bool
	AliasWait    time.Duration
	MoveWait     time.Duration
	VerifyWindow time.Duration
	ReplayMethod string
}

func newMigrateCommand(g *globalOptions) *cli.Command {
	var o migrateOptions
	accounts := []cli.Flag{
		&cli.StringFlag{Name: "from", Usage: "the old `ACCOUNT` (logged in with ferry login)", Destination: &o.From},
		&cli.StringFlag{Name: "to", Usage: "the new `ACCOUNT` (logged in with ferry login)", Destination: &o.To},
		&cli.StringFlag{Name: "dir", Usage: "the migration's directory (lifeboat, reports); default: <data-dir>/migrations/OLD-to-NEW", Destination: &o.Dir},
	}
	runFlags := append(append([]cli.Flag{}, accounts...),
		&cli.StringFlag{Name: "from-archive", Usage: "the old server is gone: replay the lifeboat in `DIR` (from an earlier export) instead of moving", Destination: &o.FromArchive},
		&cli.StringFlag{Name: "publish-archive", Usage: "also publish the archived posts on the new account: backdate or repost", Destination: &o.Publish},
		&cli.BoolFlag{Name: "yes", Usage: "do not ask for confirmation before the Move", Destination: &o.Yes},
		&cli.StringFlag{Name: "password-file", Usage: "read the old account's password (for the Move) from `FILE` (mode 0600); also FERRY_PASSWORD; else asked on the terminal", Destination: &o.PasswordFile},
		&cli.BoolFlag{Name: "alias-manual", Usage: "do not set the alias through the API: show what to set and wait", Destination: &o.AliasManual},
		&cli.DurationFlag{Name: "alias-wait", Usage: "how long to wait for the alias to become visible", Value: time.Hour, Destination: &o.AliasWait},
		&cli.DurationFlag{Name: "move-wait", Usage: "how long to wait for the Move to take effect", Value: time.Hour, Destination: &o.MoveWait},
		&cli.DurationFlag{Name: "verify-window", Usage: "how long to wait for followers to arrive before reporting who has not", Value: 2 * time.Minute, Destination: &o.VerifyWindow},
		&cli.StringFlag{Name: "replay-method", Usage: "how the graph is replayed: auto, api or server (see ferry import)", Value: "auto", Destination: &o.ReplayMethod},
	)
	verifyFlags := append(append([]cli.Flag{}, accounts...),
		&cli.StringFlag{Name: "from-archive", Usage: "the lifeboat `DIR` of a dead-instance migration", Destination: &o.FromArchive},
		&cli.DurationFlag{Name: "verify-window", Usage: "how long to wait for followers to arrive", Value: 0, Destination: &o.VerifyWindow},
	)
	return &cli.Command{
		Name:  "migrate",
		Usage: "move an account to another server: alias, Move, replay the graph, check who followed",
		Description: "`ferry migrate plan` checks both accounts and shows the steps without changing anything.\n" +
			"`ferry migrate run` exports a lifeboat (graph and archive) first, sets the alias, waits until the old\n" +
			"server can see it, sends the Move, replays follows, blocks, mutes, domain blocks, lists and bookmarks on\n" +
			"the new account, and lists the followers who have not followed yet (not_moved.csv). Every step is\n" +
			"journaled: run the same command again after any interruption and it continues; the Move is never sent twice.\n" +
			"When the old server is gone, `ferry migrate run --from-archive DIR --to NEW` replays a lifeboat instead.",
		Subcommands: []*cli.Command{
			{
				Name:   "plan",
				Usage:  "check both accounts and show what a migration will do; changes nothing",
				Flags:  accounts,
				Action: func(c *cli.Context) error { return runMigratePlan(c.Context, g, o) },
			},
			{
				Name:   "run",
				Usage:  "perform (or continue) the migration",
				Flags:  runFlags,
				Action: func(c *cli.Context) error { return runMigrate(c.Context, g, o) },
			},
			{
				Name:   "status",
				Usage:  "show the migrations and the state of their steps",
				Action: func(c *cli.Context) error { return runMigrateStatus(c.Context, g) },
			},
			{
				Name:   "verify",
				Usage:  "check again who has followed the new account (followers keep arriving for days)",
				Flags:  verifyFlags,
				Action: func(c *cli.Context) error { return runMigrateVerify(c.Context, g, o) },
			},
		},
	}
}

// loadSide loads a stored account and what its server runs.
func loadSide(ctx context.Context, g *globalOptions, st *state.Store, ref string) (*move.Side, state.Account, error) {
	acct, err := account(ctx, st, ref)
	if err != nil {
		return nil, acct, err
	}
	sess, err := g.session(acct)
	if err != nil {
		return nil, acct, err
	}
	mv, ok := sess.(platform.Mover)
	if !ok {
		return nil, acct, noRole(acct, "migrate")
	}
	cctx, cancel := withTimeout(ctx)
	defer cancel()
	side, err := mv.MoveSide(cctx)
	if err != nil {
		return nil, acct, authHint(err, acct)
	}
	return side, acct, nil
}

func (o migrateOptions) dir(g *globalOptions, from, to string) string {
	if o.Dir != "" {
		return o.Dir
	}
	name := strings.NewReplacer("@", "_", ":", "_", "/", "_").Replace(from + "-to-" + to)
	return filepath.Join(g.DataDir, "migrations", name)
}

func runMigratePlan(ctx context.Context, g *globalOptions, o migrateOptions) error {
	if o.From == "" || o.To == "" {
		return usagef("migrate plan: give --from OLD and --to NEW")
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	old, _, err := loadSide(ctx, g, st, o.From)
	if err != nil {
		return err
	}
	nw, _, err := loadSide(ctx, g, st, o.To)
	if err != nil {
		return err
	}
	hc, _, err := g.httpClient()
	if err != nil {
		return err
	}
	pctx, cancel := withTimeout(ctx)
	defer cancel()
	plan, err := move.Preflight(pctx, old, nw, hc)
	if err != nil {
		return err
	}
	if g.JSON {
		if err := printJSON(g.stdout, plan); err != nil {
			return err
		}
	} else {
		printPlan(g, plan, o.dir(g, old.Handle, nw.Handle))
	}
	if plan.Blocked() {
		return fmt.Errorf("migrate %s to %s cannot proceed: %s", old.Handle, nw.Handle, strings.Join(plan.Blockers(), "; "))
	}
	return nil
}

func printPlan(g *globalOptions, p move.Plan, dir string) {
	w := g.stdout
	fmt.Fprintf(w, "Migration from %s to %s\n\nChecks:\n", p.Old, p.New)
	for _, c := range p.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "WARN"
			if c.Blocking {
				mark = "STOP"
			}
		}
		fmt.Fprintf(w, "  [%s] %s\n", mark, c.Detail)
	}
	fmt.Fprintln(w, "\nSteps of `ferry migrate run`:")
	for i, s := range p.Steps {
		fmt.Fprintf(w, "  %d. %s\n", i+1, s)
	}
	fmt.Fprintln(w, "\nWhat a Move does not carry:")
	for _, s := range p.CannotMove {
		fmt.Fprintf(w, "  - %s\n", s)
	}
	fmt.Fprintf(w, "\n%s\nThe lifeboat and reports go to %s.\n", p.Warning, dir)
}

// newRunner loads the migration's accounts from the flags: the new account
// always, and either the old one (--from) or the lifeboat directory
// (--from-archive). The caller closes the returned store.
func newRunner(ctx context.Context, g *globalOptions, o migrateOptions, cmd string) (*move.Runner, *state.Store, error) {
	if o.To == "" || (o.From == "") == (o.FromArchive == "") {
		return nil, nil, usagef("migrate %s: give --to NEW and either --from OLD or --from-archive DIR", cmd)
	}
	hc, _, err := g.httpClient()
	if err != nil {
		return nil, nil, err
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*move.Runner, *state.Store, error) { st.Close(); return nil, nil, err }
	nw, _, err := loadSide(ctx, g, st, o.To)
	if err != nil {
		return fail(err)
	}
	r := &move.Runner{New: nw, Journal: st, Public: hc, Out: g.stderr, Log: g.log, AliasManual: o.AliasManual,
		AliasWait: o.AliasWait, MoveWait: o.MoveWait, VerifyWindow: o.VerifyWindow}
	if o.FromArchive != "" {
		if r.Dir, err = filepath.Abs(o.FromArchive); err != nil {
			return fail(usagef("migrate %s: --from-archive: %v", cmd, err))
		}
		if _, err := os.Stat(filepath.Join(r.Dir, "graph")); err != nil {
			return fail(usagef("migrate %s: %s holds no graph/ directory: give the directory of an earlier migration or export (`ferry export OLD --out DIR/graph`)", cmd, r.Dir))
		}
		return r, st, nil
	}
	if r.Old, _, err = loadSide(ctx, g, st, o.From); err != nil {
		return fail(err)
	}
	if r.Dir, err = filepath.Abs(o.dir(g, r.Old.Handle, nw.Handle)); err != nil {
		return fail(err)
	}
	return r, st, nil
}

func runMigrate(ctx context.Context, g *globalOptions, o migrateOptions) error {
	if o.Publish != "" && o.Publish != "backdate" && o.Publish != "repost" {
		return usagef("migrate run: --publish-archive must be backdate or repost")
	}
	r, st, err := newRunner(ctx, g, o, "run")
	if err != nil {
		return err
	}
	defer st.Close()
	nw, newAcct := r.New, r.New.Handle
	if old := r.Old; old != nil {
		plan, err := move.Preflight(ctx, old, nw, r.Public)
		if err != nil {
			return err
		}
		if plan.Blocked() {
			printPlan(g, plan, r.Dir)
			return fmt.Errorf("migrate %s to %s cannot proceed: %s", old.Handle, nw.Handle, strings.Join(plan.Blockers(), "; "))
		}
		if !plan.AlreadyMoved && !o.Yes {
			if err := confirmMove(g, plan); err != nil {
				return err
			}
		}
		r.Password = passwordSource(g, o.PasswordFile, old.Handle)
		r.Steps.Lifeboat = func(ctx context.Context, dir string) (string, error) {
			if err := runExport(ctx, g, exportOptions{Out: filepath.Join(dir, "graph")}, old.Handle); err != nil {
				return "", fmt.Errorf("lifeboat graph export: %w", err)
			}
			err := runArchive(ctx, g, archiveOptions{Out: filepath.Join(dir, "archive"), MediaWorkers: 4}, old.Handle)
			var pe partialError
			if err != nil && !errors.As(err, &pe) {
				return "", fmt.Errorf("lifeboat archive: %w", err)
			}
			return "graph and archive of " + old.Handle + " saved in " + dir, nil
		}
	}
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return fmt.Errorf("create the migration directory: %w", err)
	}
	r.Steps.Replay = func(ctx context.Context, dir string) (string, error) {
		files, err := replayFiles(filepath.Join(dir, "graph"))
		if err != nil {
			return "", err
		}
		err = runImport(ctx, g, importOptions{Mode: "merge", Method: o.ReplayMethod, FailuresDir: dir, Yes: true}, newAcct, files)
		var pe partialError
		if errors.As(err, &pe) {
			return "replayed, with rows not applied: " + pe.msg, nil
		}
		if err != nil {
			return "", err
		}
		return "graph replayed on " + newAcct, nil
	}
	if o.Publish != "" {
		r.Steps.Publish = func(ctx context.Context, dir string) (string, error) {
			po := archivePublishOptions{To: newAcct, Mode: o.Publish, Boosts: "skip",
				RepostVisibility: "unlisted", Note: publish.DefaultNote, Long: "split"}
			err := runArchivePublish(ctx, g, po, filepath.Join(dir, "archive"))
			var pe partialError
			if errors.As(err, &pe) {
				return "published, with posts refused: " + pe.msg, nil
			}
			if err != nil {
				return "", err
			}
			return "archive published on " + newAcct + " (" + o.Publish + ")", nil
		}
	}
	res, err := r.Run(ctx)
	if err != nil {
		return fmt.Errorf("%w\n  run the same command again to continue where it stopped", err)
	}
	if g.JSON {
		return printJSON(g.stdout, res)
	}
	fmt.Fprintf(g.stdout, "migration to %s finished (job %d); reports in %s\n", nw.Handle, res.JobID, r.Dir)
	if v := res.Verify; v != nil {
		fmt.Fprintf(g.stdout, "  %s\n", v.Summary())
	}
	return nil
}

// replayFiles lists the graph files a replay imports: everything the export
// wrote except followers (they come by the Move, not by import).
func replayFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read the lifeboat: %w", err)
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".csv") || n == "followers.csv" || strings.HasSuffix(n, "_failures.csv") {
			continue
		}
		out = append(out, filepath.Join(dir, n))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the lifeboat %s holds no graph files", dir)
	}
	return out, nil
}

// confirmMove asks before the irreversible step.
func confirmMove(g *globalOptions, p move.Plan) error {
	f, ok := g.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return usagef("migrate run: the Move cannot be undone for a while; run `ferry migrate plan` first, then again with --yes")
	}
	fmt.Fprintf(g.stderr, "%s\nType yes to move %s to %s: ", p.Warning, p.Old, p.New)
	line, _ := bufio.NewReader(f).ReadString('\n')
	if strings.TrimSpace(strings.ToLower(line)) != "yes" {
		return errors.New("migration not started")
	}
	return nil
}

// passwordSource returns where the Move's password comes from: a 0600
// file, FERRY_PASSWORD, or the terminal without echo. It is read when the
// Move is sent, used once, and kept nowhere.
func passwordSource(g *globalOptions, file, handle string) func() (string, error) {
	return func() (string, error) {
		if file != "" {
			return readTokenFile(file)
		}
		if p := os.Getenv("FERRY_PASSWORD"); p != "" {
			return p, nil
		}
		f, ok := g.stdin.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", move.ErrNoPassword
		}
		fmt.Fprintf(g.stderr, "Password of %s (for the Move; not stored): ", handle)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(g.stderr)
		if err != nil {
			return "", fmt.Errorf("read the password: %w", err)
		}
		return string(b), nil
	}
}

func runMigrateStatus(ctx context.Context, g *globalOptions) error {
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	jobs, err := st.Jobs(ctx, move.JobKind)
	if err != nil {
		return err
	}
	type stepState struct {
		Step    string `json:"step"`
		Status  string `json:"status"`
		Outcome string `json:"outcome,omitempty"`
	}
	type jobState struct {
		ID      int64       `json:"id"`
		Key     string      `json:"migration"`
		Status  string      `json:"status"`
		Updated time.Time   `json:"updated"`
		Steps   []stepState `json:"steps"`
	}
	var out []jobState
	for _, j := range jobs {
		items, err := st.Items(ctx, j.ID, state.ItemFilter{})
		if err != nil {
			return err
		}
		js := jobState{ID: j.ID, Key: j.Key, Status: j.Status, Updated: j.UpdatedAt}
		for _, it := range items {
			js.Steps = append(js.Steps, stepState{Step: it.Step, Status: string(it.Status), Outcome: it.RemoteID + it.Error})
		}
		out = append(out, js)
	}
	if g.JSON {
		return printJSON(g.stdout, out)
	}
	if len(out) == 0 {
		_, err := fmt.Fprintln(g.stdout, "no migrations yet; see `ferry migrate plan`")
		return err
	}
	for _, j := range out {
		fmt.Fprintf(g.stdout, "migration %d: %s (%s, %s)\n", j.ID, j.Key, j.Status, j.Updated.Local().Format(time.DateTime))
		t := newTable(g.stdout)
		for _, s := range j.Steps {
			t.row("  "+s.Step, s.Status, s.Outcome)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	return nil
}

func runMigrateVerify(ctx context.Context, g *globalOptions, o migrateOptions) error {
	r, st, err := newRunner(ctx, g, o, "verify")
	if err != nil {
		return err
	}
	defer st.Close()
	if r.VerifyWindow <= 0 {
		r.VerifyWindow = time.Second // a one-off check unless asked to wait
	}
	v, err := r.Verify(ctx)
	if err != nil {
		return err
	}
	if g.JSON {
		return printJSON(g.stdout, v)
	}
	fmt.Fprintln(g.stdout, v.Summary())
	for _, m := range v.NotMoved {
		fmt.Fprintf(g.stdout, "  not yet: %s (%s)\n", m.Account, m.Software)
	}
	return nil
}
