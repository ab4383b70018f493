package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/platform/platforms"
	"github.com/fedi-ferry/ferry/state"
)

// Exit codes, documented in README.md ("Exit codes").
const (
	exitOK      = 0
	exitError   = 1 // the command failed
	exitUsage   = 2 // wrong flags or arguments
	exitPartial = 3 // done, but some items failed (see the report)
	exitAuth    = 4 // a token is missing, revoked or lacks a scope: log in again
)

// requestTimeout bounds one API call; commands that wait for a person or a
// long job set their own deadlines around many such calls.
const requestTimeout = 60 * time.Second

// globalOptions are the process-wide settings from the root flags. They are
// built once in Before and passed to every command explicitly.
type globalOptions struct {
	DataDir   string
	Config    string
	LogLevel  string
	LogFormat string
	JSON      bool
	CAFile    string
	// Database is a PostgreSQL URL ("" = the SQLite file in DataDir);
	// SecretKeyFile holds the key that seals tokens there (database.go).
	Database      string
	SecretKeyFile string

	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger

	reg *platform.Registry // built on first use by registry
}

// run builds the app and runs it with args, returning the process exit code.
// Tests call it in-process with their own streams.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globalOptions{stdin: stdin, stdout: stdout, stderr: stderr}
	app := newApp(g)
	ownHelp(app)
	err := app.RunContext(ctx, interspersed(app, args))
	if err == nil {
		return exitOK
	}
	var ue usageError
	var pe partialError
	var ae authError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitUsage
	case errors.As(err, &pe):
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitPartial
	case errors.As(err, &ae) || platform.IsUnauthorized(err):
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitAuth
	default:
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitError
	}
}

// usageError marks mistakes in how the command was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// authError marks a token the server no longer accepts.
type authError struct{ msg string }

func (e authError) Error() string { return e.msg }

// partialError marks a command that finished but could not apply everything.
type partialError struct{ msg string }

func (e partialError) Error() string { return e.msg }

func newApp(g *globalOptions) *cli.App {
	return &cli.App{
		Name:  "ferry",
		Usage: "carry your fediverse presence across servers",
		Description: "ferry logs in to your fediverse accounts (Mastodon, GoToSocial, Akkoma, Pleroma) and\n" +
			"keeps your posts and contacts safe when you move or your server closes.",
		Version:              version,
		HideVersion:          true, // `ferry version` says more
		EnableBashCompletion: true,
		Suggest:              true,
		Reader:               g.stdin,
		Writer:               g.stdout,
		ErrWriter:            g.stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Usage: "where ferry keeps its database", EnvVars: []string{"FERRY_DATA_DIR"},
				Value: defaultDir("XDG_DATA_HOME", ".local/share"), Destination: &g.DataDir},
			&cli.StringFlag{Name: "config", Usage: "the routes and jobs file", EnvVars: []string{"FERRY_CONFIG"},
				Value: filepath.Join(defaultDir("XDG_CONFIG_HOME", ".config"), "ferry.toml"), Destination: &g.Config},
			&cli.StringFlag{Name: "log-level", Usage: "debug, info, warn or error", EnvVars: []string{"FERRY_LOG_LEVEL"},
				Value: "info", Destination: &g.LogLevel},
			&cli.StringFlag{Name: "log-format", Usage: "text or json", EnvVars: []string{"FERRY_LOG_FORMAT"},
				Value: "text", Destination: &g.LogFormat},
			&cli.BoolFlag{Name: "json", Usage: "print results as JSON for scripts", EnvVars: []string{"FERRY_JSON"},
				Destination: &g.JSON},
			&cli.StringFlag{Name: "database", Usage: "a PostgreSQL `URL` (postgres://…) to keep ferry's state in, shared by any number " +
				"of daemons; default: the SQLite file ferry.db in --data-dir", EnvVars: []string{"FERRY_DATABASE"}, Destination: &g.Database},
			&cli.StringFlag{Name: "secret-key-file", Usage: "the key (mode 0600) that encrypts tokens in a PostgreSQL database; " +
				"make one with `ferry secret-key generate`", EnvVars: []string{"FERRY_SECRET_KEY_FILE"}, Destination: &g.SecretKeyFile},
			&cli.StringFlag{Name: "ca-file", Usage: "extra PEM certificates to trust (servers behind a private CA; tests)",
				EnvVars: []string{"FERRY_CA_FILE"}, Destination: &g.CAFile},
		},
		Before: func(c *cli.Context) error { return g.setup() },
		Commands: []*cli.Command{
			newLoginCommand(g),
			newAccountsCommand(g),
			newMirrorCommand(g), newDaemonCommand(g), newStatusCommand(g), newConfigCommand(g),
			newArchiveCommand(g),
			newExportCommand(g), newImportCommand(g),
			newMigrateCommand(g),
			newVersionCommand(g), newSecretKeyCommand(g),
			newCompletionCommand(g),
		},
		// Errors are printed once, by run, with the exit code they deserve.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err.Error()}
		},
	}
}

// defaultDir returns $<env>/ferry, or ~/<fallback>/ferry as the XDG base
// directory specification prescribes when the variable is unset.
func defaultDir(env, fallback string) string {
	if d := os.Getenv(env); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "ferry")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".", "ferry")
	}
	return filepath.Join(home, fallback, "ferry")
}

// setup validates the global flags and builds the logger.
func (g *globalOptions) setup() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.LogLevel)); err != nil {
		return usagef("--log-level %q: use debug, info, warn or error", g.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(g.LogFormat) {
	case "text":
		g.log = slog.New(slog.NewTextHandler(g.stderr, opts))
	case "json":
		g.log = slog.New(slog.NewJSONHandler(g.stderr, opts))
	default:
		return usagef("--log-format %q: use text or json", g.LogFormat)
	}
	return nil
}

// dbPath is the SQLite file inside the data directory.
func (g *globalOptions) dbPath() string { return filepath.Join(g.DataDir, "ferry.db") }

// openStore opens the database; the caller closes it.
func (g *globalOptions) openStore(ctx context.Context) (*state.Store, error) {
	st, err := g.openDatabase(ctx)
	if err != nil {
		return nil, fmt.Errorf("open the database: %w", err)
	}
	return st, nil
}

// registry returns the platforms ferry speaks, built once per command
// from the global flags.
func (g *globalOptions) registry() (*platform.Registry, error) {
	if g.reg != nil {
		return g.reg, nil
	}
	roots, err := fedi.LoadRoots(g.CAFile)
	if err != nil {
		return nil, err
	}
	reg, err := platforms.Registry(platform.Env{Roots: roots, UserAgent: userAgent(), Logger: g.log, Tokens: storeTokens{g}})
	if err != nil {
		return nil, err
	}
	g.reg = reg
	return reg, nil
}

// session opens a stored account on its platform, with its own paced
// connection.
func (g *globalOptions) session(acct state.Account) (platform.Session, error) {
	reg, err := g.registry()
	if err != nil {
		return nil, err
	}
	return reg.Open(acct)
}

// openAccount opens the database and the stored account ref, with a
// session for it: how most commands start. The caller closes the returned
// store.
func (g *globalOptions) openAccount(ctx context.Context, ref string) (*state.Store, state.Account, platform.Session, error) {
	st, err := g.openStore(ctx)
	if err != nil {
		return nil, state.Account{}, nil, err
	}
	acct, err := platform.LookupAccount(ctx, st, ref)
	if err != nil {
		st.Close()
		return nil, state.Account{}, nil, err
	}
	sess, err := g.session(acct)
	if err != nil {
		st.Close()
		return nil, state.Account{}, nil, err
	}
	return st, acct, sess, nil
}

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, requestTimeout)
}

// ownHelp gives the app and each of its commands their own help flag and
// help command, copies of urfave/cli's. Left alone, cli appends its
// package-level HelpFlag and help command to every app and command and
// writes to them while parsing, so two apps running at once in one
// process (the tests run `ferry daemon` and `ferry status` side by side)
// race. HideHelp keeps cli from appending its own; the help a person sees
// is the same.
func ownHelp(app *cli.App) {
	scratch := &cli.App{}
	scratch.Setup() // appends cli's help command, which is only read here
	helpCmd := *scratch.Command("help")
	helpFlag := *cli.HelpFlag.(*cli.BoolFlag)
	newFlag := func() cli.Flag { f := helpFlag; return &f }
	newCmd := func() *cli.Command { c := helpCmd; c.HideHelp = true; return &c }
	app.HideHelp = true
	app.Flags = append(app.Flags, newFlag())
	app.Commands = append(app.Commands, newCmd())
	var walk func(cmds []*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Name == "help" {
				continue
			}
			c.HideHelp = true
			c.Flags = append(c.Flags, newFlag())
			c.OnUsageError = commandUsageError
			if len(c.Subcommands) > 0 {
				walk(c.Subcommands)
				c.Subcommands = append(c.Subcommands, newCmd())
			}
		}
	}
	walk(app.Commands)
}

// commandUsageError prints what cli prints for a command's flag mistake
// when it adds its own help: the mistake, a suggestion and the command's
// help.
func commandUsageError(c *cli.Context, err error, _ bool) error {
	w := c.App.Writer
	fmt.Fprintf(w, "%s %s\n\n", "Incorrect Usage:", err.Error())
	if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok && cli.SuggestFlag != nil {
		if s := cli.SuggestFlag(c.Command.Flags, name, false); s != "" {
			fmt.Fprintf(w, cli.SuggestDidYouMeanTemplate+"\n\n", s)
		}
	}
	_ = cli.ShowCommandHelp(c.Lineage()[1], c.Command.Name)
	return err
}

// interspersed moves a command's flags in front of its positional arguments,
// so `ferry login https://example.social --name main` works as people expect.
// (urfave/cli v2 stops parsing flags at the first positional argument.)
// Everything after "--" stays positional.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	flags := app.Flags
	cmds := app.Commands
	i := 1
	// Walk the command path: global flags, then command names.
	for i < len(args) {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			out = append(out, a)
			if takesValue(flags, a) && i+1 < len(args) {
				out = append(out, args[i+1])
				i++
			}
			i++
			continue
		}
		var next *cli.Command
		for _, c := range cmds {
			if c.HasName(a) {
				next = c
			}
		}
		if next == nil {
			break
		}
		out = append(out, a)
		flags, cmds = next.Flags, next.Subcommands
		i++
	}
	var fl, pos []string
	leaf := cmds == nil // the path ends at a command without subcommands
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i:]...)
			i = len(args)
		case a == "--generate-bash-completion":
			pos = append(pos, a) // must stay last
		case strings.HasPrefix(a, "-") && a != "-":
			fl = append(fl, a)
			if takesValue(flags, a) && i+1 < len(args) {
				fl = append(fl, args[i+1])
				i++
			}
		case leaf && len(pos) == 0 && (a == "help" || a == "h"):
			fl = append(fl, "--help") // as cli's help subcommand of every command did
		default:
			pos = append(pos, a)
		}
	}
	return append(append(out, fl...), pos...)
}

// takesValue reports whether arg ("--name" or "-n", without "=value") names
// a flag that consumes the next argument.
func takesValue(flags []cli.Flag, arg string) bool {
	if strings.Contains(arg, "=") {
		return false
	}
	name := strings.TrimLeft(arg, "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}
