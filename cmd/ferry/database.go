package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/config"
	"github.com/fedi-ferry/ferry/daemon"
	"github.com/fedi-ferry/ferry/state"
)

// openDatabase opens --database (PostgreSQL, with the key of
// --secret-key-file) or else the SQLite file in --data-dir.
func (g *globalOptions) openDatabase(ctx context.Context) (*state.Store, error) {
	if g.Database == "" {
		return state.Open(ctx, g.dbPath())
	}
	if !state.IsPostgresURL(g.Database) {
		return nil, usagef("--database must be a postgres:// or postgresql:// URL (the SQLite file is chosen with --data-dir)")
	}
	var key []byte
	if g.SecretKeyFile != "" {
		var err error
		if key, err = state.ReadSecretKeyFile(g.SecretKeyFile); err != nil {
			return nil, usagef("--secret-key-file: %v", err)
		}
	}
	return state.OpenDatabase(ctx, g.Database, state.Options{SecretKey: key})
}

// daemonID names this daemon among those sharing a PostgreSQL database:
// host, pid and a random part (a pid is reused after a restart, and two
// containers may share a host name and a pid).
func daemonID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

func newSecretKeyCommand(g *globalOptions) *cli.Command {
	var newKeyFile string
	return &cli.Command{
		Name:  "secret-key",
		Usage: "make or rotate the key that encrypts tokens in a PostgreSQL database",
		Subcommands: []*cli.Command{
			{
				Name:      "generate",
				Usage:     "write a new random key to FILE (mode 0600; an existing file is never overwritten)",
				ArgsUsage: "FILE",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usagef("secret-key generate takes the FILE to write")
					}
					path := c.Args().First()
					if err := state.GenerateSecretKey(path); err != nil {
						return err
					}
					if g.JSON {
						return printJSON(g.stdout, map[string]string{"key_file": path})
					}
					_, err := fmt.Fprintf(g.stdout, "wrote a new secret key to %s (keep a copy: the tokens cannot be read without it)\n", path)
					return err
				},
			},
			{
				Name: "rotate",
				Usage: "encrypt every token again with the key in --new-key-file, in one transaction; then restart " +
					"every ferry with --secret-key-file set to the new file",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "new-key-file", Usage: "the new key (from `ferry secret-key generate`)", Required: true, Destination: &newKeyFile},
				},
				Action: func(c *cli.Context) error {
					if c.NArg() > 0 {
						return usagef("secret-key rotate takes no arguments")
					}
					if g.Database == "" {
						return usagef("secret-key rotate needs --database: only a PostgreSQL database keeps encrypted tokens")
					}
					newKey, err := state.ReadSecretKeyFile(newKeyFile)
					if err != nil {
						return usagef("--new-key-file: %v", err)
					}
					st, err := g.openStore(c.Context)
					if err != nil {
						return err
					}
					defer st.Close()
					n, err := st.RotateSecretKey(c.Context, newKey)
					if err != nil {
						return err
					}
					if g.JSON {
						return printJSON(g.stdout, map[string]any{"resealed": n, "key_file": newKeyFile})
					}
					_, err = fmt.Fprintf(g.stdout, "%d secrets now encrypted with %s; restart every ferry with --secret-key-file %s\n",
						n, newKeyFile, newKeyFile)
					return err
				},
			},
		},
	}
}

// mirrorLease is how long `ferry mirror` holds a route's lease on
// PostgreSQL between renewals; it renews every third of it, so a killed
// command leaves its routes to the daemons within mirrorLease.
var mirrorLease = 90 * time.Second

// leaseMirrorRuns takes the run lease of each route `ferry mirror` is about
// to run (names, or every route of cfg) as a daemon's runs are leased
// (daemon.LeaseRuns), so that no daemon sharing the database runs them at
// the same time, for as long as the pass runs. The returned context ends
// when a lease is lost; done releases the leases.
func leaseMirrorRuns(ctx context.Context, st *state.Store, cfg *config.Config, names []string) (run context.Context, done func(), err error) {
	if len(names) == 0 {
		for _, r := range cfg.Routes {
			names = append(names, r.Route.Name)
		}
	}
	return daemon.LeaseRuns(ctx, st, "mirror-"+daemonID(), names, mirrorLease)
}

// hold keeps other ferry processes from doing what (a journaled job: an
// import into an account, a migration, a PDS move, a publish) while this
// one does; name is the work's name in state.Hold. Two runs of one job
// at once could each write a step before the other recorded it.
func hold(ctx context.Context, st *state.Store, name, what string) (release func(), err error) {
	release, err = st.Hold(ctx, name)
	if errors.Is(err, state.ErrBusy) {
		return nil, fmt.Errorf("another ferry is %s right now; let it finish (a run interrupted by a crash or kill frees it at once) and run this again: %w", what, err)
	}
	return release, err
}
