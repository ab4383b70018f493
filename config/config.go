// Package config reads ferry's config file (ferry.toml): it parses the
// TOML, checks every key and value against what ferry understands, and
// returns typed values (bridge routes, backup jobs) that the packages
// running them use without seeing TOML. Every mistake is reported, each
// with the file, the line of the offending key or value, and the key; see
// examples/ for commented files.
//
// The package touches neither the network nor the database: whether the
// accounts a file names exist is asked of the caller (Config.CheckAccounts).
package config

import (
	"errors"
	"fmt"
	"os"

	"github.com/fedi-ferry/ferry/bridge"
)

// Config is a decoded and validated config file: the routes' settings,
// before accounts and network clients are attached, and the backup jobs.
type Config struct {
	Path    string
	Routes  []RouteSpec
	Backups []BackupSpec
}

// RouteSpec is one [[route]] as configured. Exactly one of Feed, Account
// and Archive is set.
type RouteSpec struct {
	Line     int // where [[route]] starts, for messages
	Route    bridge.Route
	Schedule string // as written, or the default for the source type
	Paused   bool
	Feed     *FeedSource
	Account  *AccountSource
	Archive  *ArchiveSource
	Sinks    []SinkSpec // the sinks as written, in Route.Sinks's order

	refs []accountRef // the accounts the route names, with their places
}

// FeedSource is source = { type = "feed", … }: an RSS, Atom or JSON feed.
type FeedSource struct {
	Type      string
	URL       string // http or https
	UserAgent string // "" = ferry's own
}

// AccountSource is source = { type = "account", … }: the posts of an
// account ferry is logged in to.
type AccountSource struct {
	Type    string
	Account string // a handle or a name from `ferry accounts`
	// Stream, true by default, mirrors new posts within seconds through
	// the streaming API (daemon only); polling continues as a fallback.
	Stream *bool
	// Quotes is bridge.PolicySkip to leave the account's quote posts out;
	// "" or bridge.PolicyLink mirrors them as text ending with a link to
	// the quoted post.
	Quotes string
}

// SinkSpec is what a [[route.sink]] says beyond the bridge's policy.
type SinkSpec struct {
	Account string // the account reference as written
	// LocalOnly publishes the route's posts local-only on the sink's
	// server (Misskey), never federated.
	LocalOnly bool
}

// ArchiveSource is source = { type = "archive", path = "DIR" }: the posts
// of a ferry or Mastodon archive directory.
type ArchiveSource struct {
	Path string // with a leading "~/" expanded
}

// BackupSpec is one [[backup]] job as configured: a scheduled "lifeboat"
// that exports an account's social graph and/or archives its posts and
// media, both incrementally.
type BackupSpec struct {
	Line     int
	Name     string // "backup/<name>" in the schedule and `ferry status`
	Account  string
	Graph    string // directory for the graph export; "" = none
	Archive  string // directory for the archive; "" = none
	Schedule string

	accountAt pos
}

// accountRef is an account reference and where it is written.
type accountRef struct {
	name, key string
	at        pos
}

// Default schedules, when a route or backup names none.
const (
	defaultFeedSchedule    = "15m"
	defaultAccountSchedule = "5m"
	defaultArchiveSchedule = "15m"
	defaultBackupSchedule  = "24h"
)

// Load reads and validates the config file at path. It touches neither
// the database nor the network. A file with mistakes gives an *Errors
// listing all of them; a file that cannot be read gives a plain error.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no config file at %s: write one (see examples/) or pass --config", path)
		}
		return nil, fmt.Errorf("read the config: %w", err)
	}
	return Parse(path, string(src))
}

// Parse decodes and validates src, read from path (used in messages). On
// any mistake it returns an *Errors listing every one, in file order, and
// no Config.
func Parse(path, src string) (*Config, error) {
	errs := &Errors{File: path}
	doc, ok := parseDoc([]byte(src), errs)
	if !ok {
		return nil, errs.err()
	}
	d := &decoder{errs: errs, seen: map[string]pos{}}
	cfg := &Config{Path: path}
	cfg.Routes, cfg.Backups = d.file(doc)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// CheckAccounts asks known about every account the config names (sources,
// sinks, backups; once per distinct name) and reports, as *Errors, every
// place that names one known says does not exist. An error from known
// stops the check and is returned as it is.
func (c *Config) CheckAccounts(known func(ref string) (bool, error)) error {
	errs := &Errors{File: c.Path}
	found := map[string]bool{}
	exists := func(ref string) (bool, error) {
		if ok, asked := found[ref]; asked {
			return ok, nil
		}
		ok, err := known(ref)
		if err != nil {
			return false, err
		}
		found[ref] = ok
		return ok, nil
	}
	const hint = "run `ferry accounts` to list accounts or `ferry login SERVER` to add one"
	for _, rs := range c.Routes {
		for _, ref := range rs.refs {
			ok, err := exists(ref.name)
			if err != nil {
				return err
			}
			if !ok {
				errs.add(ref.at, ref.key, "route %q: no account %q: %s", rs.Route.Name, ref.name, hint)
			}
		}
	}
	for _, b := range c.Backups {
		ok, err := exists(b.Account)
		if err != nil {
			return err
		}
		if !ok {
			errs.add(b.accountAt, "backup.account", "%s: no account %q: %s", b.Name, b.Account, hint)
		}
	}
	return errs.err()
}
