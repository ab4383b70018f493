package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/fedi-ferry/ferry/migrate"
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
	OTPFile      string
	AliasManual  bool
	AliasWait    time.Duration
	MoveWait     time.Duration
	VerifyWindow time.Duration
	ReplayMethod string
	pds          pdsMoveOptions // --to https://NEW-PDS: a Bluesky account's move
}

func newMigrateCommand(g *globalOptions) *cli.Command {
	var o migrateOptions
	accounts := []cli.Flag{
		&cli.StringFlag{Name: "from", Usage: "the old `ACCOUNT` (logged in with ferry login)", Destination: &o.From},
		&cli.StringFlag{Name: "to", Usage: "the new `ACCOUNT` (logged in with ferry login), or a Bluesky account's new PDS (https://…)", Destination: &o.To},
		&cli.StringFlag{Name: "dir", Usage: "the migration's directory (lifeboat, reports); default: <data-dir>/migrations/OLD-to-NEW", Destination: &o.Dir},
	}
	runFlags := append(append([]cli.Flag{}, accounts...),
		&cli.StringFlag{Name: "from-archive", Usage: "the old server is gone: replay the lifeboat in `DIR` (from an earlier export) instead of moving", Destination: &o.FromArchive},
		&cli.StringFlag{Name: "publish-archive", Usage: "also publish the archived posts on the new account: backdate or repost", Destination: &o.Publish},
		&cli.BoolFlag{Name: "yes", Usage: "do not ask for confirmation before the Move", Destination: &o.Yes},
		&cli.StringFlag{Name: "password-file", Usage: "read the old account's password (for the Move) from `FILE` (mode 0600); also FERRY_PASSWORD; else asked on the terminal", Destination: &o.PasswordFile},
		&cli.StringFlag{Name: "otp-file", Usage: "read the old account's one-time two-factor code (for a Misskey Move, when asked) from `FILE` (mode 0600); also " + otpEnv + "; else asked on the terminal, or the first line of standard input", Destination: &o.OTPFile},
		&cli.BoolFlag{Name: "alias-manual", Usage: "do not set the alias through the API: show what to set and wait", Destination: &o.AliasManual},
		&cli.DurationFlag{Name: "alias-wait", Usage: "how long to wait for the alias to become visible", Value: time.Hour, Destination: &o.AliasWait},
		&cli.DurationFlag{Name: "move-wait", Usage: "how long to wait for the Move to take effect", Value: time.Hour, Destination: &o.MoveWait},
		&cli.DurationFlag{Name: "verify-window", Usage: "how long to wait for followers to arrive before reporting who has not", Value: 2 * time.Minute, Destination: &o.VerifyWindow},
		&cli.StringFlag{Name: "replay-method", Usage: "how the graph is replayed: auto, api or server (see ferry import)", Value: "auto", Destination: &o.ReplayMethod},
	)
	runFlags = append(runFlags, pdsMoveFlags(&o.pds, true)...)
	verifyFlags := append(append([]cli.Flag{}, accounts...),
		&cli.StringFlag{Name: "from-archive", Usage: "the lifeboat `DIR` of a dead-instance migration", Destination: &o.FromArchive},
		&cli.DurationFlag{Name: "verify-window", Usage: "how long to wait for followers to arrive", Value: 0, Destination: &o.VerifyWindow},
		&cli.StringFlag{Name: "password-file", Usage: "Bluesky move: the new account's password in `FILE` (mode 0600); also FERRY_PASSWORD", Destination: &o.PasswordFile},
	)
	planFlags := append(append([]cli.Flag{}, accounts...), pdsMoveFlags(&o.pds, false)...)
	return &cli.Command{
		Name:  "migrate",
		Usage: "move an account to another server: alias, Move, replay the graph, check who followed",
		Description: "`ferry migrate plan` checks both accounts and shows the steps without changing anything.\n" +
			"`ferry migrate run` exports a lifeboat (graph and archive) first, sets the alias, waits until the old\n" +
			"server can see it, sends the Move, replays follows, blocks, mutes, domain blocks, lists and bookmarks on\n" +
			"the new account, and lists the followers who have not followed yet (not_moved.csv). Every step is\n" +
			"journaled: run the same command again after any interruption and it continues; the Move is never sent twice.\n" +
			"When the old server is gone, `ferry migrate run --from-archive DIR --to NEW` replays a lifeboat instead.\n\n" +
			"A Bluesky account moves to another PDS with its DID: `ferry migrate run --from ACCOUNT --to https://NEW-PDS`\n" +
			"(service auth, repository, blobs, preferences, the PLC operation signed with the code the old PDS emails,\n" +
			"activation, deactivation of the old copy; every step journaled).",
		Subcommands: []*cli.Command{
			{
				Name:   "plan",
				Usage:  "check both accounts and show what a migration will do; changes nothing",
				Flags:  planFlags,
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

func runMigratePlan(ctx context.Context, g *globalOptions, o migrateOptions) error {
	if o.From == "" || o.To == "" {
		return usagef("migrate plan: give --from OLD and --to NEW")
	}
	if isPDSURL(o.To) {
		return runPDSMovePlan(ctx, g, o)
	}
	m, err := newRunner(ctx, g, o, "plan")
	if err != nil {
		return err
	}
	defer m.st.Close()
	old, nw := m.r.Old, m.r.New
	pctx, cancel := withTimeout(ctx)
	defer cancel()
	plan, err := move.Preflight(pctx, old, nw, m.r.Public)
	if err != nil {
		return err
	}
	if g.JSON {
		if err := printJSON(g.stdout, plan); err != nil {
			return err
		}
	} else {
		printPlan(g, plan, cmp.Or(o.Dir, move.DefaultDir(g.DataDir, old.Handle, nw.Handle)))
	}
	if plan.Blocked() {
		return fmt.Errorf("migrate %s to %s cannot proceed: %s", old.Handle, nw.Handle, strings.Join(plan.Blockers(), "; "))
	}
	return nil
}

// checkMark is a preflight check's mark in a plan: ok, a warning, or a
// blocker that stops `ferry migrate run`.
func checkMark(ok, blocking bool) string {
	switch {
	case ok:
		return "ok  "
	case blocking:
		return "STOP"
	}
	return "WARN"
}

func printPlan(g *globalOptions, p move.Plan, dir string) {
	w := g.stdout
	fmt.Fprintf(w, "Migration from %s to %s\n\nChecks:\n", p.Old, p.New)
	for _, c := range p.Checks {
		fmt.Fprintf(w, "  [%s] %s\n", checkMark(c.OK, c.Blocking), c.Detail)
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

// migration is what the migrate commands load from their flags: the
// runner, the stored accounts and the open database (the caller closes it).
type migration struct {
	r        *move.Runner
	st       *state.Store
	old, new platform.Session // old is nil with --from-archive
}

// newRunner loads the migration's accounts from the flags: the new account
// always, and either the old one (--from) or the lifeboat directory
// (--from-archive). The caller closes the returned store.
func newRunner(ctx context.Context, g *globalOptions, o migrateOptions, cmd string) (migration, error) {
	if o.To == "" || (o.From == "") == (o.FromArchive == "") {
		return migration{}, usagef("migrate %s: give --to NEW and either --from OLD or --from-archive DIR", cmd)
	}
	reg, err := g.registry()
	if err != nil {
		return migration{}, err
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return migration{}, err
	}
	om, err := reg.OpenMigration(ctx, st, platform.MigrationAccounts{From: o.From, FromArchive: o.FromArchive, To: o.To,
		Dir: o.Dir, DataDir: g.DataDir})
	var le *platform.LifeboatError
	if errors.As(err, &le) {
		err = usagef("migrate %s: %v: give the directory of an earlier migration or export (`ferry export OLD --out DIR/graph`)", cmd, le)
	}
	if err != nil {
		st.Close()
		return migration{}, err
	}
	r := om.Runner
	r.Out, r.Log, r.AliasManual = g.stderr, g.log, o.AliasManual
	r.AliasWait, r.MoveWait, r.VerifyWindow = o.AliasWait, o.MoveWait, o.VerifyWindow
	return migration{r: r, st: st, old: om.Old, new: om.New}, nil
}

func runMigrate(ctx context.Context, g *globalOptions, o migrateOptions) error {
	if o.Publish != "" && o.Publish != "backdate" && o.Publish != "repost" {
		return usagef("migrate run: --publish-archive must be backdate or repost")
	}
	if isPDSURL(o.To) {
		return runPDSMove(ctx, g, o)
	}
	m, err := newRunner(ctx, g, o, "run")
	if err != nil {
		return err
	}
	defer m.st.Close()
	r := m.r
	release, err := hold(ctx, m.st, "migrate/"+r.New.Handle, "migrating to "+r.New.Handle)
	if err != nil {
		return err
	}
	defer release()
	prog := newProgress(g.stderr)
	r.Out = prog // the steps' lines end a drawn progress bar first
	if old := r.Old; old != nil {
		plan, err := move.Preflight(ctx, old, r.New, r.Public)
		if err != nil {
			return err
		}
		if plan.Blocked() {
			if g.JSON {
				if err := printJSON(g.stdout, plan); err != nil {
					return err
				}
			} else {
				printPlan(g, plan, r.Dir)
			}
			return fmt.Errorf("migrate %s to %s cannot proceed: %s", old.Handle, r.New.Handle, strings.Join(plan.Blockers(), "; "))
		}
		if !plan.AlreadyMoved && !o.Yes {
			if err := confirmMove(g, plan); err != nil {
				return err
			}
		}
		r.Password = passwordSource(g, o.PasswordFile, old.Handle)
		r.Code = codeSource(g, o.OTPFile, old.Handle)
	}
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return fmt.Errorf("create the migration directory: %w", err)
	}
	mo := platform.MigrationOptions{Runner: r, Old: m.old, New: m.new, Journal: m.st,
		Method: migrate.Method(o.ReplayMethod), Progress: prog.update, Log: g.log}
	if o.Publish != "" {
		po, err := archivePublishOptions{To: m.new.Account().Handle, Mode: o.Publish, Boosts: "skip",
			RepostVisibility: "unlisted", Note: publish.DefaultNote, Long: "split"}.build()
		if err != nil {
			return err
		}
		mo.Publish = &po
	}
	mig, err := platform.Migration(ctx, mo)
	if err != nil {
		return err
	}
	res, err := mig.Run(ctx)
	prog.end()
	if g.JSON {
		if perr := printJSON(g.stdout, res); perr != nil {
			return errors.Join(err, perr)
		}
	} else {
		var oldHandle string
		var oldRequests int64
		if m.old != nil {
			oldHandle, oldRequests = m.old.Account().Handle, platform.UsageOf(m.old).Requests
		}
		printMigration(g.stdout, res, oldHandle, m.new.Account().Handle, oldRequests, err == nil)
	}
	if err != nil {
		return fmt.Errorf("%w\n  run the same command again to continue where it stopped", migrateError(err))
	}
	return nil
}

// migrateError gives a failed step's error the exit status the command
// that does the step alone would give.
func migrateError(err error) error {
	if errors.As(err, new(*migrate.InputError)) || errors.Is(err, publish.ErrNoOutbox) ||
		errors.As(err, new(*publish.NoBackdateError)) {
		return usageError{err.Error()}
	}
	return err
}

// printMigration prints the reports of the steps this run performed, as
// the commands that do each step alone print them, then the outcome.
func printMigration(w io.Writer, res move.MigrationResult, oldHandle, newHandle string, oldRequests int64, finished bool) {
	if lb := res.Lifeboat; lb != nil {
		_ = printExportResult(w, lb.Graph)
		printArchiveResult(w, oldHandle, lb.Archive, oldRequests)
	}
	if rp := res.Replay; rp != nil {
		printImportReport(w, rp.Report, rp.FailureFiles)
	}
	if pb := res.Publish; pb != nil {
		printPublishResult(w, newHandle, *pb)
	}
	if !finished {
		return
	}
	fmt.Fprintf(w, "migration to %s finished (job %d); reports in %s\n", newHandle, res.JobID, res.Dir)
	if v := res.Verify; v != nil {
		fmt.Fprintf(w, "  %s\n", v.Summary())
	}
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
		pw, err := readPassword(g, file, fmt.Sprintf("Password of %s (for the Move; not stored): ", handle))
		if errors.Is(err, errNoTerminal) {
			return "", move.ErrNoPassword
		}
		return pw, err
	}
}

// otpEnv holds a one-time code for scripts, as FERRY_PASSWORD the password.
const otpEnv = "FERRY_OTP"

// codeSource returns where the Move's one-time code of two-factor
// authentication comes from (Misskey asks for it when it signs in): a
// 0600 file, FERRY_OTP, the terminal, or the first line of standard input.
// It is read only when the server asks, used once, and kept nowhere.
func codeSource(g *globalOptions, file, handle string) func() (string, error) {
	return func() (string, error) {
		code, err := readCode(g, file, otpEnv, fmt.Sprintf("One-time code of %s's two-factor authentication (for the Move): ", handle),
			"reading the one-time code of "+handle+" from standard input")
		if errors.Is(err, errNoCode) {
			return "", usagef("migrate: %s has two-factor authentication: give its one-time code with --otp-file FILE or %s, or run on a terminal", handle, otpEnv)
		}
		return code, err
	}
}

// errNoCode is readCode's answer when no code was given.
var errNoCode = errors.New("no code given")

// readCode reads a one-time code: from file (with --token-file's 0600
// rule), else the environment variable env (when not ""), else the
// terminal after prompt, else the first line of standard input (after
// saying so with pipeNote). An empty answer is errNoCode.
func readCode(g *globalOptions, file, env, prompt, pipeNote string) (string, error) {
	if file != "" {
		return readTokenFile(file)
	}
	if env != "" {
		if code := strings.TrimSpace(os.Getenv(env)); code != "" {
			return code, nil
		}
	}
	if f, ok := g.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(g.stderr, prompt)
	} else {
		fmt.Fprintln(g.stderr, pipeNote)
	}
	line, _ := bufio.NewReader(g.stdin).ReadString('\n')
	if line = strings.TrimSpace(line); line == "" {
		return "", errNoCode
	}
	return line, nil
}

func runMigrateStatus(ctx context.Context, g *globalOptions) error {
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	out, err := move.Status(ctx, st)
	if err != nil {
		return err
	}
	pds, err := pdsMoveStatus(ctx, st)
	if err != nil {
		return err
	}
	out = append(out, pds...)
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
	if isPDSURL(o.To) {
		return runPDSMoveVerify(ctx, g, o)
	}
	m, err := newRunner(ctx, g, o, "verify")
	if err != nil {
		return err
	}
	defer m.st.Close()
	r := m.r
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
