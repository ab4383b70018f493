package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/schedule"
	"github.com/fedi-ferry/ferry/state"
)

// The config file (ferry.toml) declares routes. It is decoded here, in
// cmd/ferry, and turned into typed values (bridge.Route); the packages that
// run them never see TOML. Every mistake is reported with the file, the
// line and the key, before anything runs. See examples/ for commented
// files.

// fileConfig is the whole file.
type fileConfig struct {
	Route  []routeConfig  `toml:"route"`
	Backup []backupConfig `toml:"backup"`
}

// backupConfig is one [[backup]]: a scheduled "lifeboat" job that runs
// `ferry export` (the social graph) and/or `ferry archive` (posts and
// media) for an account, both incremental.
type backupConfig struct {
	Name     string `toml:"name"`
	Account  string `toml:"account"`
	Graph    string `toml:"graph"`   // directory for `ferry export`
	Archive  string `toml:"archive"` // directory for `ferry archive`
	Schedule string `toml:"schedule"`
}

// routeConfig is one [[route]].
type routeConfig struct {
	Name       string         `toml:"name"`
	Source     toml.Primitive `toml:"source"`
	Sink       []sinkConfig   `toml:"sink"`
	Filter     filterConfig   `toml:"filter"`
	Template   string         `toml:"template"`
	Schedule   string         `toml:"schedule"`
	FirstRun   string         `toml:"first_run"`
	MaxPerHour int            `toml:"max_per_hour"`
	MaxAge     string         `toml:"max_age"`
	CatchUp    bool           `toml:"catch_up"`
	Paused     bool           `toml:"paused"`
	Replies    string         `toml:"replies"`
	Boosts     string         `toml:"boosts"`
}

// sinkConfig is one [[route.sink]].
type sinkConfig struct {
	Account           string            `toml:"account"`
	Visibility        map[string]string `toml:"visibility"`
	DefaultVisibility string            `toml:"default_visibility"`
	Thread            string            `toml:"thread"`
	CW                string            `toml:"cw"`
	Mentions          string            `toml:"mentions"`
	Length            string            `toml:"length"`
	MaxChars          int               `toml:"max_chars"`
	Media             string            `toml:"media"`
}

// filterConfig is [route.filter].
type filterConfig struct {
	Include     string   `toml:"include"`
	Exclude     string   `toml:"exclude"`
	Tags        []string `toml:"tags"`
	ExcludeTags []string `toml:"exclude_tags"`
	Visibility  []string `toml:"visibility"`
	Language    []string `toml:"language"`
	HasMedia    *bool    `toml:"has_media"`
}

// sourceHeader is the part of a source table every type has.
type sourceHeader struct {
	Type string `toml:"type"`
}

// feedSourceConfig is source = {type = "feed", …}.
type feedSourceConfig struct {
	Type      string `toml:"type"`
	URL       string `toml:"url"`
	UserAgent string `toml:"user_agent"`
}

// accountSourceConfig is source = {type = "account", …}.
type accountSourceConfig struct {
	Type    string `toml:"type"`
	Account string `toml:"account"`
	// Stream, true by default, mirrors new posts within seconds through
	// the streaming API (daemon only); polling continues as a fallback.
	Stream *bool `toml:"stream"`
}

// Config is a decoded and validated config file: the routes' settings,
// before accounts and network clients are attached, and the backup jobs.
type Config struct {
	Path    string
	Routes  []RouteSpec
	Backups []BackupSpec
}

// BackupSpec is one [[backup]] job as configured.
type BackupSpec struct {
	Line     int
	Name     string // "backup/<name>" in the schedule and `ferry status`
	Account  string
	Graph    string // "" = no graph export
	Archive  string // "" = no archive
	Schedule string
}

// defaultBackupSchedule is how often a backup runs when it says nothing.
const defaultBackupSchedule = "24h"

// RouteSpec is one route as configured.
type RouteSpec struct {
	Line     int // where [[route]] starts, for messages
	Route    bridge.Route
	Schedule string // as written, or the default
	Paused   bool
	Feed     *feedSourceConfig
	Account  *accountSourceConfig
	SinkAcct []string // sink account references as written
}

// configError is a mistake in the config file, reported with its place.
type configError struct {
	path string
	line int
	msg  string
}

func (e *configError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.path, e.line, e.msg)
	}
	return fmt.Sprintf("%s: %s", e.path, e.msg)
}

// Default schedules per source kind.
const (
	defaultFeedSchedule    = "15m"
	defaultAccountSchedule = "5m"
)

// loadConfig reads and validates the config file at path. It does not
// touch the database or the network.
func loadConfig(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no config file at %s: write one (see examples/) or pass --config", path)
		}
		return nil, fmt.Errorf("read the config: %w", err)
	}
	return parseConfig(path, string(src))
}

// parseConfig decodes and validates src, read from path.
func parseConfig(path, src string) (*Config, error) {
	lines := strings.Split(src, "\n")
	var fc fileConfig
	md, err := toml.Decode(src, &fc)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &configError{path: path, line: pe.Position.Line, msg: pe.Message}
		}
		return nil, &configError{path: path, msg: err.Error()}
	}
	cfg := &Config{Path: path}
	routeLines := sectionLines(lines, "[[route]]")
	seen := map[string]bool{}
	for i, rc := range fc.Route {
		line := 0
		if i < len(routeLines) {
			line = routeLines[i]
		}
		fail := func(format string, a ...any) error {
			return &configError{path: path, line: line, msg: fmt.Sprintf(format, a...)}
		}
		spec, err := decodeRoute(md, rc, fail)
		if err != nil {
			return nil, err
		}
		spec.Line = line
		if seen[spec.Route.Name] {
			return nil, fail("route %q: the name is used twice", spec.Route.Name)
		}
		seen[spec.Route.Name] = true
		cfg.Routes = append(cfg.Routes, spec)
	}
	backupLines := sectionLines(lines, "[[backup]]")
	for i, bc := range fc.Backup {
		line := 0
		if i < len(backupLines) {
			line = backupLines[i]
		}
		b, err := decodeBackup(bc)
		if err != nil {
			return nil, &configError{path: path, line: line, msg: err.Error()}
		}
		b.Line = line
		if seen[b.Name] {
			return nil, &configError{path: path, line: line, msg: fmt.Sprintf("%s: the name is used twice", b.Name)}
		}
		seen[b.Name] = true
		cfg.Backups = append(cfg.Backups, b)
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		msg := fmt.Sprintf("unknown key %q", k.String())
		if len(k) == 1 {
			msg = fmt.Sprintf("unknown table or key %q (this file holds [[route]] tables)", k.String())
		}
		return nil, &configError{path: path, line: keyLine(lines, k), msg: msg}
	}
	return cfg, nil
}

// decodeRoute validates one route's settings and decodes its source with
// the source type's own options.
func decodeRoute(md toml.MetaData, rc routeConfig, fail func(string, ...any) error) (RouteSpec, error) {
	var spec RouteSpec
	r := &spec.Route
	r.Name = strings.TrimSpace(rc.Name)
	if r.Name == "" {
		return spec, fail("a route needs a name (name = \"…\")")
	}
	var hdr sourceHeader
	if err := md.PrimitiveDecode(rc.Source, &hdr); err != nil {
		return spec, fail("route %q: source: %v", r.Name, err)
	}
	switch hdr.Type {
	case "feed":
		var fs feedSourceConfig
		if err := md.PrimitiveDecode(rc.Source, &fs); err != nil {
			return spec, fail("route %q: source: %v", r.Name, err)
		}
		if !strings.HasPrefix(fs.URL, "http://") && !strings.HasPrefix(fs.URL, "https://") {
			return spec, fail("route %q: source.url %q: want an http or https URL", r.Name, fs.URL)
		}
		spec.Feed, r.Kind = &fs, bridge.KindFeed
	case "account":
		var as accountSourceConfig
		if err := md.PrimitiveDecode(rc.Source, &as); err != nil {
			return spec, fail("route %q: source: %v", r.Name, err)
		}
		if as.Account == "" {
			return spec, fail("route %q: source.account: name the account (a handle or name from `ferry accounts`)", r.Name)
		}
		spec.Account, r.Kind = &as, bridge.KindAccount
	case "":
		return spec, fail("route %q: source needs a type: \"feed\" or \"account\"", r.Name)
	default:
		return spec, fail("route %q: source type %q: use \"feed\" or \"account\"", r.Name, hdr.Type)
	}

	spec.Schedule = strings.TrimSpace(rc.Schedule)
	if spec.Schedule == "" {
		spec.Schedule = defaultFeedSchedule
		if r.Kind == bridge.KindAccount {
			spec.Schedule = defaultAccountSchedule
		}
	}
	if _, err := schedule.Parse(spec.Schedule); err != nil {
		return spec, fail("route %q: schedule: %v", r.Name, err)
	}
	switch fr := strings.TrimSpace(rc.FirstRun); {
	case fr == "" || fr == "skip":
	case strings.HasPrefix(fr, "last:"):
		n, err := strconv.Atoi(strings.TrimPrefix(fr, "last:"))
		if err != nil || n < 0 || n > 40 {
			return spec, fail("route %q: first_run %q: use \"skip\" or \"last:N\" with N from 0 to 40", r.Name, fr)
		}
		r.FirstRun = n
	default:
		return spec, fail("route %q: first_run %q: use \"skip\" or \"last:N\"", r.Name, fr)
	}
	if rc.MaxPerHour < 0 {
		return spec, fail("route %q: max_per_hour must not be negative", r.Name)
	}
	r.MaxPerHour = rc.MaxPerHour
	if rc.MaxAge != "" {
		d, err := time.ParseDuration(rc.MaxAge)
		if err != nil || d <= 0 {
			return spec, fail("route %q: max_age %q: use a duration such as \"72h\"", r.Name, rc.MaxAge)
		}
		r.MaxAge = d
	}
	r.CatchUp, spec.Paused, r.Replies, r.Boosts = rc.CatchUp, rc.Paused, rc.Replies, rc.Boosts
	if rc.Template != "" {
		t, err := bridge.ParseTemplate(r.Name, rc.Template)
		if err != nil {
			return spec, fail("route %q: %v", r.Name, err)
		}
		r.Template = t
	}
	f, err := decodeFilter(rc.Filter)
	if err != nil {
		return spec, fail("route %q: filter: %v", r.Name, err)
	}
	r.Filter = f
	if len(rc.Sink) == 0 {
		return spec, fail("route %q: add at least one [[route.sink]] with an account", r.Name)
	}
	for _, sc := range rc.Sink {
		if sc.Account == "" {
			return spec, fail("route %q: a [[route.sink]] needs an account", r.Name)
		}
		pol := bridge.Policy{
			DefaultVisibility: post.Visibility(sc.DefaultVisibility),
			Thread:            sc.Thread, CW: sc.CW, Mentions: sc.Mentions, Length: sc.Length,
			MaxChars: sc.MaxChars, Media: sc.Media,
		}
		if pol.Mentions == "neutralize" {
			pol.Mentions = bridge.PolicyNeutral
		}
		if len(sc.Visibility) > 0 {
			pol.Visibility = map[post.Visibility]post.Visibility{}
			for from, to := range sc.Visibility {
				pol.Visibility[post.Visibility(from)] = post.Visibility(to)
			}
		}
		if err := pol.Validate(); err != nil {
			return spec, fail("route %q, sink %s: %v", r.Name, sc.Account, err)
		}
		spec.SinkAcct = append(spec.SinkAcct, sc.Account)
		r.Sinks = append(r.Sinks, bridge.Target{Account: sc.Account, Policy: pol})
	}
	for _, v := range []struct{ name, val string }{{"replies", r.Replies}, {"boosts", r.Boosts}} {
		if v.val != "" && v.val != bridge.PolicySkip && v.val != bridge.PolicyLink {
			return spec, fail("route %q: %s = %q: use \"skip\" or \"link\"", r.Name, v.name, v.val)
		}
	}
	return spec, nil
}

func decodeBackup(bc backupConfig) (BackupSpec, error) {
	b := BackupSpec{Account: strings.TrimSpace(bc.Account), Schedule: strings.TrimSpace(bc.Schedule)}
	if b.Account == "" {
		return b, fmt.Errorf("a [[backup]] needs an account")
	}
	name := strings.TrimSpace(bc.Name)
	if name == "" {
		name = b.Account
	}
	b.Name = "backup/" + name
	var err error
	if b.Graph, err = expandHome(bc.Graph); err != nil {
		return b, fmt.Errorf("%s: graph: %w", b.Name, err)
	}
	if b.Archive, err = expandHome(bc.Archive); err != nil {
		return b, fmt.Errorf("%s: archive: %w", b.Name, err)
	}
	if b.Graph == "" && b.Archive == "" {
		return b, fmt.Errorf("%s: say where to keep it: graph = \"DIR\" (ferry export) and/or archive = \"DIR\" (ferry archive)", b.Name)
	}
	if b.Schedule == "" {
		b.Schedule = defaultBackupSchedule
	}
	if _, err := schedule.Parse(b.Schedule); err != nil {
		return b, fmt.Errorf("%s: schedule: %w", b.Name, err)
	}
	return b, nil
}

// expandHome expands a leading "~/" in a directory.
func expandHome(p string) (string, error) {
	p = strings.TrimSpace(p)
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return home + p[1:], nil
	}
	return p, nil
}

func decodeFilter(fc filterConfig) (bridge.Filter, error) {
	var f bridge.Filter
	var err error
	if fc.Include != "" {
		if f.Include, err = regexp.Compile(fc.Include); err != nil {
			return f, fmt.Errorf("include: %w", err)
		}
	}
	if fc.Exclude != "" {
		if f.Exclude, err = regexp.Compile(fc.Exclude); err != nil {
			return f, fmt.Errorf("exclude: %w", err)
		}
	}
	f.Tags, f.ExcludeTag, f.Language, f.HasMedia = fc.Tags, fc.ExcludeTags, fc.Language, fc.HasMedia
	for _, v := range fc.Visibility {
		if !post.Visibility(v).Valid() {
			return f, fmt.Errorf("visibility %q: use public, unlisted, private or direct", v)
		}
		f.Visibility = append(f.Visibility, post.Visibility(v))
	}
	return f, nil
}

// sectionLines returns the 1-based lines where header (e.g. "[[route]]")
// starts a table.
func sectionLines(lines []string, header string) []int {
	var out []int
	for i, l := range lines {
		if strings.TrimSpace(strings.SplitN(l, "#", 2)[0]) == header {
			out = append(out, i+1)
		}
	}
	return out
}

// keyLine finds the line that defines the last part of key: a table
// header naming it, or "name =" at the start of a line or inside an inline
// table. 0 when not found.
func keyLine(lines []string, k toml.Key) int {
	last := regexp.QuoteMeta(k[len(k)-1])
	header := regexp.MustCompile(`^\s*\[\[?\s*` + regexp.QuoteMeta(k.String()) + `\s*\]\]?`)
	assign := regexp.MustCompile(`(^|[{,])\s*"?` + last + `"?\s*=`)
	for i, l := range lines {
		if header.MatchString(l) {
			return i + 1
		}
	}
	for i, l := range lines {
		if assign.MatchString(strings.SplitN(l, "#", 2)[0]) {
			return i + 1
		}
	}
	return 0
}

// checkAccounts verifies that every account the config names is one ferry
// knows, and returns their stored records by reference.
func checkAccounts(ctx context.Context, st *state.Store, cfg *Config) (map[string]state.Account, error) {
	out := map[string]state.Account{}
	for _, rs := range cfg.Routes {
		refs := append([]string(nil), rs.SinkAcct...)
		if rs.Account != nil {
			refs = append(refs, rs.Account.Account)
		}
		for _, ref := range refs {
			if _, ok := out[ref]; ok {
				continue
			}
			a, err := st.Account(ctx, ref)
			if errors.Is(err, state.ErrNotFound) {
				return nil, &configError{path: cfg.Path, line: rs.Line, msg: fmt.Sprintf(
					"route %q: no account %q: run `ferry accounts` to list accounts or `ferry login SERVER` to add one", rs.Route.Name, ref)}
			}
			if err != nil {
				return nil, fmt.Errorf("load account %q: %w", ref, err)
			}
			out[ref] = a
		}
	}
	for _, b := range cfg.Backups {
		if _, ok := out[b.Account]; ok {
			continue
		}
		a, err := st.Account(ctx, b.Account)
		if errors.Is(err, state.ErrNotFound) {
			return nil, &configError{path: cfg.Path, line: b.Line, msg: fmt.Sprintf(
				"%s: no account %q: run `ferry accounts` to list accounts or `ferry login SERVER` to add one", b.Name, b.Account)}
		}
		if err != nil {
			return nil, fmt.Errorf("load account %q: %w", b.Account, err)
		}
		out[b.Account] = a
	}
	return out, nil
}

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
	cfg, err := loadConfig(g.Config)
	if err != nil {
		return err
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := checkAccounts(ctx, st, cfg); err != nil {
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
		src := ""
		if r.Feed != nil {
			src = "feed " + r.Feed.URL
		} else {
			src = "account " + r.Account.Account
		}
		paused := ""
		if r.Paused {
			paused = " (paused)"
		}
		fmt.Fprintf(g.stdout, "  %s: %s → %s, every %s%s\n", r.Route.Name, src, strings.Join(r.SinkAcct, ", "), r.Schedule, paused)
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
