package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/config"
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
// to run (names, or every route of cfg), so that no daemon sharing the
// database runs them at the same time. A route a daemon holds is an error
// naming the route. The leases are renewed while the pass runs, however
// long it takes; the returned context ends when a renewal shows a lease
// lost (a renewal that failed for longer than the lease), so the pass
// stops before another process may run the same routes. done stops the
// renewals and releases the leases.
func leaseMirrorRuns(ctx context.Context, st *state.Store, cfg *config.Config, names []string) (run context.Context, done func(), err error) {
	if len(names) == 0 {
		for _, r := range cfg.Routes {
			names = append(names, r.Route.Name)
		}
	}
	holder := "mirror-" + daemonID()
	var held []string
	release := func() {
		for _, n := range held {
			_ = st.ReleaseLease(context.WithoutCancel(ctx), state.LeaseRun+n, holder)
		}
	}
	for _, n := range names {
		ok, err := st.AcquireLease(ctx, state.LeaseRun+n, holder, time.Now(), mirrorLease)
		if err != nil {
			release()
			return nil, nil, err
		}
		if !ok {
			release()
			return nil, nil, fmt.Errorf("route %s is being run by a ferry daemon right now (see `ferry status`); try again later, or use --dry-run", n)
		}
		held = append(held, n)
	}
	run, cancel := context.WithCancelCause(ctx)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		renewLeases(run, st, holder, len(held), cancel)
	}()
	return run, func() {
		cancel(nil)
		<-stopped
		release()
	}, nil
}

// renewLeases renews holder's n leases every third of mirrorLease until
// ctx ends. When a renewal returns fewer than n (a lease expired, perhaps
// taken over) or renewals have failed for as long as a lease lasts, it
// cancels with the reason.
func renewLeases(ctx context.Context, st *state.Store, holder string, n int, cancel context.CancelCauseFunc) {
	t := time.NewTicker(mirrorLease / 3)
	defer t.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		got, err := st.RenewLeases(ctx, holder, time.Now(), mirrorLease)
		switch {
		case err == nil && len(got) == n:
			lastOK = time.Now()
		case err == nil:
			cancel(fmt.Errorf("ferry mirror lost the lease of %d route(s) to another process; stopped so that no route runs twice", n-len(got)))
			return
		case time.Since(lastOK) >= mirrorLease*2/3:
			cancel(fmt.Errorf("ferry mirror could not renew its route leases (%w); stopped before they expire so that no route runs twice", err))
			return
		}
	}
}
