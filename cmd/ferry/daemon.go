package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/config"
	"github.com/fedi-ferry/ferry/daemon"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/state"
	"github.com/fedi-ferry/ferry/state/bridgestore"
)

// daemonOptions are the flags of `ferry daemon`.
type daemonOptions struct {
	Tick    time.Duration
	Workers int
	Grace   time.Duration
	Timeout time.Duration
}

func newDaemonCommand(g *globalOptions) *cli.Command {
	o := &daemonOptions{}
	return &cli.Command{
		Name:  "daemon",
		Usage: "run the routes of the config file on their schedules, streaming account sources",
		Description: "The daemon keeps each route's schedule, failure count and last error in the database\n" +
			"(see `ferry status`). Account sources are also streamed, so a new post is mirrored within\n" +
			"seconds; polling continues as the fallback. SIGHUP reloads the config; SIGTERM lets the\n" +
			"runs in progress finish (up to --grace) and exits. One daemon per database.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "tick", Usage: "how often to look for due routes", Value: 10 * time.Second, Destination: &o.Tick},
			&cli.IntFlag{Name: "workers", Usage: "routes run at the same time", Value: 4, Destination: &o.Workers},
			&cli.DurationFlag{Name: "grace", Usage: "how long SIGTERM waits for runs in progress", Value: time.Minute, Destination: &o.Grace},
			&cli.DurationFlag{Name: "run-timeout", Usage: "the longest one run of a route may take", Value: 10 * time.Minute, Destination: &o.Timeout},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("daemon takes no arguments")
			}
			if o.Tick < 100*time.Millisecond || o.Workers < 1 {
				return usagef("--tick must be at least 100ms and --workers at least 1")
			}
			return runDaemon(c.Context, g, o)
		},
	}
}

func runDaemon(ctx context.Context, g *globalOptions, o *daemonOptions) error {
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	release, err := st.LockDaemon()
	if err != nil {
		return err
	}
	defer release()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{})
	go func() {
		for range hup {
			g.log.Info("SIGHUP: reloading the config", "config", g.Config)
			select {
			case reload <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()

	g.log.Info("daemon starting", "pid", os.Getpid())
	return daemon.Run(ctx, daemon.Options{
		Store:   st,
		Engine:  bridge.New(bridgestore.New(st), bridge.Options{Logger: g.log}),
		Load:    func(ctx context.Context) (daemon.Config, error) { return daemonConfig(ctx, g, st) },
		Reload:  reload,
		Tick:    o.Tick,
		Workers: o.Workers,
		Grace:   o.Grace,
		Timeout: o.Timeout,
		Logger:  g.log,
	})
}

// daemonConfig reads the config file and builds its routes and backups.
func daemonConfig(ctx context.Context, g *globalOptions, st *state.Store) (daemon.Config, error) {
	cfg, err := config.Load(g.Config)
	if err != nil {
		return daemon.Config{}, err
	}
	accts, err := platform.ConfigAccounts(ctx, st, cfg)
	if err != nil {
		return daemon.Config{}, err
	}
	reg, err := g.registry()
	if err != nil {
		return daemon.Config{}, err
	}
	routes := reg.Routes(accts, false)
	dc, err := daemon.FromConfig(cfg, routes.Route, func(ctx context.Context, b config.BackupSpec) error {
		_, err := runBackupJob(ctx, g, st, b)
		return err
	})
	dc.AfterRun = func(ctx context.Context) { routes.RecordBudgets(ctx, st) }
	return dc, err
}
