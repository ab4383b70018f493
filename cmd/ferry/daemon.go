package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/config"
	"github.com/fedi-ferry/ferry/daemon"
	"github.com/fedi-ferry/ferry/daemon/observe"
	"github.com/fedi-ferry/ferry/httpsonly"
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
	// Listen is the address of the health check, metrics and status
	// page ("" = none); ListenPublic allows one that is not loopback.
	Listen       string
	ListenPublic bool
	// Lease is how long a route's lease lasts unless renewed (PostgreSQL).
	Lease time.Duration
}

func newDaemonCommand(g *globalOptions) *cli.Command {
	o := &daemonOptions{}
	return &cli.Command{
		Name:  "daemon",
		Usage: "run the routes of the config file on their schedules, streaming account sources",
		Description: "The daemon keeps each route's schedule, failure count and last error in the database\n" +
			"(see `ferry status`). Account sources are also streamed, so a new post is mirrored within\n" +
			"seconds; polling continues as the fallback. SIGHUP reloads the config; SIGTERM lets the\n" +
			"runs in progress finish (up to --grace) and exits. One daemon per SQLite database; on PostgreSQL\n" +
			"(--database) any number share the routes, each run by one daemon at a time under a lease.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "tick", Usage: "how often to look for due routes", Value: 10 * time.Second, Destination: &o.Tick},
			&cli.IntFlag{Name: "workers", Usage: "routes run at the same time", Value: 4, Destination: &o.Workers},
			&cli.DurationFlag{Name: "grace", Usage: "how long SIGTERM waits for runs in progress", Value: time.Minute, Destination: &o.Grace},
			&cli.DurationFlag{Name: "run-timeout", Usage: "the longest one run of a route may take", Value: 10 * time.Minute, Destination: &o.Timeout},
			&cli.StringFlag{Name: "listen", Usage: "serve /healthz, /metrics (Prometheus) and a status page at `HOST:PORT` " +
				"(a loopback address such as 127.0.0.1:9464; port 0 picks a free one, logged at start)", Destination: &o.Listen},
			&cli.DurationFlag{Name: "lease", Usage: "with --database (PostgreSQL): how long a daemon's hold on a route lasts unless " +
				"renewed, so how soon another daemon takes over the routes of one that died", Value: daemon.DefaultLeaseTTL, Destination: &o.Lease},
			&cli.BoolFlag{Name: "listen-public", Usage: "allow --listen on an address other than loopback: the pages have no " +
				"authentication and show route and account names, counts and errors, so put them behind a proxy that has", Destination: &o.ListenPublic},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("daemon takes no arguments")
			}
			if o.Tick < 100*time.Millisecond || o.Workers < 1 {
				return usagef("--tick must be at least 100ms and --workers at least 1")
			}
			if o.Lease < 3*time.Second {
				return usagef("--lease must be at least 3s")
			}
			if o.Listen != "" && !o.ListenPublic && !isLoopback(o.Listen) {
				return usagef("--listen %s is not a loopback address: the pages have no authentication; "+
					"add --listen-public to serve them there anyway", o.Listen)
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

	var metrics *observe.Metrics
	bo := bridge.Options{Logger: g.log}
	var observer daemon.Observer
	if o.Listen != "" {
		var stop func()
		metrics, stop, err = serveObserve(ctx, g, st, o)
		if err != nil {
			return err
		}
		defer stop()
		bo.Applied, observer = metrics.Applied, metrics
	}

	holder := ""
	if st.Shared() {
		// No global lock on PostgreSQL: the routes are divided by leases.
		holder = daemonID()
	}
	g.log.Info("daemon starting", "pid", os.Getpid(), "id", holder)
	return daemon.Run(ctx, daemon.Options{
		Holder:   holder,
		LeaseTTL: o.Lease,
		Store:    st,
		Engine:   bridge.New(bridgestore.New(st), bo),
		Load:     func(ctx context.Context) (daemon.Config, error) { return daemonConfig(ctx, g, st, metrics) },
		Reload:   reload,
		Tick:     o.Tick,
		Workers:  o.Workers,
		Grace:    o.Grace,
		Timeout:  o.Timeout,
		Logger:   g.log,
		Observer: observer,
	})
}

// isLoopback reports whether the listen address addr (host:port) names a
// loopback interface only; an empty host means all interfaces.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && host != "" && httpsonly.IsLoopback(host)
}

// serveObserve starts serving the health check, metrics and status page
// on o.Listen; stop shuts the server down (after the daemon drained, so
// the pages stay up while runs finish).
func serveObserve(ctx context.Context, g *globalOptions, st *state.Store, o *daemonOptions) (m *observe.Metrics, stop func(), err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if m, err = observe.NewMetrics(reg, st, nil); err != nil {
		return nil, nil, err
	}
	routes := func(ctx context.Context, now time.Time) ([]daemon.RouteStatus, error) {
		cfg, _ := config.Load(g.Config) // as `ferry status`: a broken file shows routes as not configured
		return daemon.Status(ctx, bridgestore.New(st), cfg, now)
	}
	h, err := observe.Handler(observe.Options{Store: st, Routes: routes, Metrics: m, Gatherer: reg, Logger: g.log,
		// A few ticks, plus the longest a claim may wait for the lock.
		Stale: 3*o.Tick + time.Minute})
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("--listen: %w", err)
	}
	// "localhost" is trusted by name; make sure it resolved to loopback.
	if tcp, ok := ln.Addr().(*net.TCPAddr); !o.ListenPublic && (!ok || !tcp.IP.IsLoopback()) {
		ln.Close()
		return nil, nil, usagef("--listen %s bound %s, which is not loopback; add --listen-public to serve there anyway", o.Listen, ln.Addr())
	}
	g.log.Info("serving the health check, metrics and status page", "addr", ln.Addr().String(),
		"healthz", "http://"+ln.Addr().String()+"/healthz")
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := observe.Serve(sctx, ln, h); err != nil {
			g.log.Error("the health check and metrics server stopped", "err", err)
		}
	}()
	return m, func() { cancel(); <-done }, nil
}

// daemonConfig reads the config file and builds its routes and backups.
// m, when not nil, receives the accounts' rate-limit budgets after each run.
func daemonConfig(ctx context.Context, g *globalOptions, st *state.Store, m *observe.Metrics) (daemon.Config, error) {
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
	if m != nil {
		dc.AfterRun = func(ctx context.Context) {
			routes.RecordBudgets(ctx, st)
			observeBudgets(ctx, st, accts, m)
		}
	}
	return dc, err
}

// observeBudgets hands m the rate-limit budgets RecordBudgets just stored
// for the accounts of the routes.
func observeBudgets(ctx context.Context, st *state.Store, accts map[string]state.Account, m *observe.Metrics) {
	list := make([]state.Account, 0, len(accts))
	for _, a := range accts {
		list = append(list, a)
	}
	for _, ab := range platform.Budgets(ctx, st, list) {
		m.SetBudgets(ab.Account, ab.Budgets, ab.RateLimited)
	}
}
