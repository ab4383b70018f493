package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/config"
	"github.com/fedi-ferry/ferry/platform"
)

func newConfigCommand(g *globalOptions) *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "work with the routes file (ferry.toml)",
		Subcommands: []*cli.Command{{
			Name:  "check",
			Usage: "validate the config file (every key, with file and line) and the accounts it names; changes nothing",
			Action: func(c *cli.Context) error {
				return runConfigCheck(c.Context, g)
			},
		}},
	}
}

func runConfigCheck(ctx context.Context, g *globalOptions) error {
	cfg, err := config.Load(g.Config)
	if err != nil {
		return err
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := platform.ConfigAccounts(ctx, st, cfg); err != nil {
		return err
	}
	if g.JSON {
		names := []string{}
		for _, r := range cfg.Routes {
			names = append(names, r.Route.Name)
		}
		for _, b := range cfg.Backups {
			names = append(names, b.Name)
		}
		return printJSON(g.stdout, map[string]any{"config": cfg.Path, "ok": true, "routes": names})
	}
	fmt.Fprintf(g.stdout, "%s: ok, %d route(s), %d backup(s)\n", cfg.Path, len(cfg.Routes), len(cfg.Backups))
	for _, r := range cfg.Routes {
		paused := ""
		if r.Paused {
			paused = " (paused)"
		}
		fmt.Fprintf(g.stdout, "  %s: %s → %s, every %s%s\n", r.Route.Name, platform.DescribeSource(r), strings.Join(sinkNames(r), ", "), r.Schedule, paused)
	}
	for _, b := range cfg.Backups {
		var what []string
		if b.Graph != "" {
			what = append(what, "graph → "+b.Graph)
		}
		if b.Archive != "" {
			what = append(what, "archive → "+b.Archive)
		}
		fmt.Fprintf(g.stdout, "  %s: %s: %s, every %s (daemon)\n", b.Name, b.Account, strings.Join(what, ", "), b.Schedule)
	}
	return nil
}

// sinkNames are r's sink accounts as written, "(local-only)" after those
// that publish local-only.
func sinkNames(r config.RouteSpec) []string {
	out := make([]string, len(r.Sinks))
	for i, s := range r.Sinks {
		out[i] = s.Account
		if s.LocalOnly {
			out[i] += " (local-only)"
		}
	}
	return out
}
