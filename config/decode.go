package config

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/schedule"
)

// sourceArchive is the type of an archive source. (Feeds and accounts
// are named by bridge.KindFeed and bridge.KindAccount.)
const sourceArchive = "archive"

// sourceTypeList names the source types as messages write them.
const sourceTypeList = `"feed", "account" or "archive"`

// decoder checks a parsed file, collecting every mistake.
type decoder struct {
	errs *Errors
	seen map[string]pos // route and backup names, with where they are set
}

// file decodes the whole file.
func (d *decoder) file(doc *node) ([]RouteSpec, []BackupSpec) {
	f := &fields{errs: d.errs, t: doc}
	var routes []RouteSpec
	var backups []BackupSpec
	rts, _ := f.tables("route")
	for i, t := range rts {
		routes = append(routes, d.route(i, t))
	}
	bts, _ := f.tables("backup")
	for i, t := range bts {
		backups = append(backups, d.backup(i, t))
	}
	for _, k := range doc.keys {
		if valid := []string{"route", "backup"}; !slices.Contains(valid, k) {
			d.errs.add(doc.fields[k].key, k, "unknown table or key %q (this file holds [[route]] and [[backup]] tables)%s",
				k, didYouMean(k, valid))
		}
	}
	return routes, backups
}

// unique records name as set at p, reporting a second use.
func (d *decoder) unique(name string, p pos, key, msgPrefix string) {
	if first, ok := d.seen[name]; ok {
		d.errs.add(p, key, "%s: the name is used twice (first on line %d)", msgPrefix, first.line)
		return
	}
	d.seen[name] = p
}

// route decodes the i-th [[route]] t.
func (d *decoder) route(i int, t *node) RouteSpec {
	spec := RouteSpec{Line: t.at.line}
	r := &spec.Route
	f := &fields{errs: d.errs, t: t, path: "route", ctx: fmt.Sprintf("route #%d", i+1)}
	name, nameN, _ := f.str("name")
	r.Name = strings.TrimSpace(name)
	if r.Name == "" {
		if nameN == nil || nameN.kind == kString {
			d.errs.add(place(nameN, t), "route.name", "a route needs a name (name = \"…\")")
		}
	} else {
		f.ctx = fmt.Sprintf("route %q", r.Name)
		d.unique(r.Name, nameN.at, "route.name", f.ctx)
	}
	d.source(f, &spec)

	sched, schedN, _ := f.str("schedule")
	spec.Schedule = strings.TrimSpace(sched)
	if spec.Schedule == "" {
		switch {
		case spec.Account != nil:
			spec.Schedule = defaultAccountSchedule
		case spec.Archive != nil:
			spec.Schedule = defaultArchiveSchedule
		default:
			spec.Schedule = defaultFeedSchedule
		}
	}
	if _, err := schedule.Parse(spec.Schedule); err != nil {
		f.failf(place(schedN, t), "route.schedule", "schedule: %v", err)
	}

	if fr, n, ok := f.str("first_run"); ok {
		switch fr = strings.TrimSpace(fr); {
		case fr == "" || fr == "skip":
		case strings.HasPrefix(fr, "last:"):
			v, err := strconv.Atoi(strings.TrimPrefix(fr, "last:"))
			if err != nil || v < 0 || v > 40 {
				f.failf(n.at, "route.first_run", "first_run %q: use \"skip\" or \"last:N\" with N from 0 to 40", fr)
			} else {
				r.FirstRun = v
			}
		default:
			f.failf(n.at, "route.first_run", "first_run %q: use \"skip\" or \"last:N\"", fr)
		}
	}
	if v, n, ok := f.integer("max_per_hour"); ok {
		if v < 0 {
			f.failf(n.at, "route.max_per_hour", "max_per_hour must not be negative")
		} else {
			r.MaxPerHour = v
		}
	}
	if s, n, ok := f.str("max_age"); ok && s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 {
			f.failf(n.at, "route.max_age", "max_age %q: use a duration such as \"72h\"", s)
		} else {
			r.MaxAge = v
		}
	}
	if v, _ := f.boolean("catch_up"); v != nil {
		r.CatchUp = *v
	}
	if v, _ := f.boolean("paused"); v != nil {
		spec.Paused = *v
	}
	for _, k := range []string{"replies", "boosts"} {
		v, n, ok := f.str(k)
		if ok && v != "" && v != bridge.PolicySkip && v != bridge.PolicyLink {
			f.failf(n.at, "route."+k, "%s = %q: use \"skip\" or \"link\"", k, v)
			continue
		}
		if k == "replies" {
			r.Replies = v
		} else {
			r.Boosts = v
		}
	}
	if s, n, ok := f.str("template"); ok && s != "" {
		tmpl, err := bridge.ParseTemplate(r.Name, s)
		if err != nil {
			f.failf(n.at, "route.template", "%v", err)
		} else {
			r.Template = tmpl
		}
	}
	if ft, ok := f.table("filter"); ok {
		r.Filter = d.filter(&fields{errs: d.errs, t: ft, path: "route.filter", ctx: f.ctx, rel: "filter."})
	}
	sinks, ok := f.tables("sink")
	if len(sinks) == 0 && ok {
		f.failf(t.at, "route", "add at least one [[route.sink]] with an account")
	}
	for j, st := range sinks {
		d.sink(f.ctx, j, st, &spec)
	}
	f.unknown("name", "source", "schedule", "first_run", "max_per_hour", "max_age", "catch_up", "paused",
		"replies", "boosts", "template", "filter", "sink")
	return spec
}

// place is where n is written, or where fallback starts when n is absent.
func place(n, fallback *node) pos {
	if n == nil {
		return fallback.at
	}
	return n.at
}

// source decodes the route's source into spec.
func (d *decoder) source(rf *fields, spec *RouteSpec) {
	r := &spec.Route
	st, ok := rf.table("source")
	if !ok {
		if st == nil {
			rf.failf(rf.t.at, "route.source", "source needs a type: %s", sourceTypeList)
		}
		return
	}
	f := &fields{errs: d.errs, t: st, path: "route.source", ctx: rf.ctx, rel: "source."}
	typ, typN, ok := f.str("type")
	switch typ {
	case bridge.KindFeed:
		url, urlN, ok := f.str("url")
		ua, _, _ := f.str("user_agent")
		if (ok || urlN == nil) && !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
			f.failf(place(urlN, st), "route.source.url", "source.url %q: want an http or https URL", url)
		}
		spec.Feed, r.Kind = &FeedSource{Type: typ, URL: url, UserAgent: ua}, bridge.KindFeed
		f.unknown("type", "url", "user_agent")
	case bridge.KindAccount:
		acct, acctN, _ := f.str("account")
		acct = strings.TrimSpace(acct)
		stream, _ := f.boolean("stream")
		if acct == "" {
			f.failf(place(acctN, st), "route.source.account", "source.account: name the account (a handle or name from `ferry accounts`)")
		} else {
			spec.refs = append(spec.refs, accountRef{name: acct, key: "route.source.account", at: acctN.at})
		}
		quotes, quotesN, _ := f.str("quotes")
		if quotes != "" && quotes != bridge.PolicySkip && quotes != bridge.PolicyLink {
			f.failf(quotesN.at, "route.source.quotes", "source.quotes = %q: use \"skip\" or \"link\"", quotes)
		}
		spec.Account, r.Kind = &AccountSource{Type: typ, Account: acct, Stream: stream, Quotes: quotes}, bridge.KindAccount
		f.unknown("type", "account", "stream", "quotes")
	case sourceArchive:
		dir, dirN, _ := f.str("path")
		dir, err := expandHome(dir)
		switch {
		case err != nil:
			f.failf(dirN.at, "route.source.path", "source.path: %v", err)
		case dir == "":
			f.failf(place(dirN, st), "route.source.path", "source.path: name the archive directory (path = \"DIR\", as written by `ferry archive`)")
		}
		// An archive holds statuses with IDs, which is how account routes
		// recognise posts.
		spec.Archive, r.Kind = &ArchiveSource{Path: dir}, bridge.KindAccount
		f.unknown("type", "path")
	case "":
		if ok || typN == nil {
			f.failf(place(typN, st), "route.source.type", "source needs a type: %s", sourceTypeList)
		}
	default:
		f.failf(typN.at, "route.source.type", "source type %q: use %s%s", typ, sourceTypeList,
			didYouMean(typ, []string{bridge.KindFeed, bridge.KindAccount, sourceArchive}))
	}
}

// filter decodes [route.filter].
func (d *decoder) filter(f *fields) bridge.Filter {
	var flt bridge.Filter
	for _, k := range []string{"include", "exclude"} {
		s, n, ok := f.str(k)
		if !ok || s == "" {
			continue
		}
		re, err := regexp.Compile(s)
		if err != nil {
			f.failf(n.at, f.key(k), "filter: %s: %v", k, err)
			continue
		}
		if k == "include" {
			flt.Include = re
		} else {
			flt.Exclude = re
		}
	}
	flt.Tags, _ = f.strs("tags")
	flt.ExcludeTag, _ = f.strs("exclude_tags")
	flt.Language, _ = f.strs("language")
	flt.HasMedia, _ = f.boolean("has_media")
	vis, nodes := f.strs("visibility")
	for i, v := range vis {
		if !post.Visibility(v).Valid() {
			f.failf(nodes[i].at, f.key("visibility"), "filter: visibility %q: use public, unlisted, private or direct", v)
			continue
		}
		flt.Visibility = append(flt.Visibility, post.Visibility(v))
	}
	f.unknown("include", "exclude", "tags", "exclude_tags", "visibility", "language", "has_media")
	return flt
}

// sink decodes the j-th [[route.sink]] t of the route spec, about which
// messages say route.
func (d *decoder) sink(route string, j int, t *node, spec *RouteSpec) {
	f := &fields{errs: d.errs, t: t, path: "route.sink", ctx: fmt.Sprintf("%s, sink #%d", route, j+1)}
	acct, acctN, ok := f.str("account")
	acct = strings.TrimSpace(acct)
	if acct == "" && (ok || acctN == nil) {
		d.errs.add(place(acctN, t), "route.sink.account", "%s: a [[route.sink]] needs an account", route)
	}
	if acct != "" {
		f.ctx = fmt.Sprintf("%s, sink %s", route, acct)
	}
	// Each setting is checked on its own, by the bridge's rules, so that
	// each mistake is reported on its own line.
	var pol bridge.Policy
	bad := false
	check := func(n *node, k string, p bridge.Policy) {
		if err := p.Validate(); n != nil && err != nil {
			f.failf(n.at, f.key(k), "%v", err)
			bad = true
		}
	}
	for _, s := range []struct {
		key string
		dst *string
		one func(string) bridge.Policy
	}{
		{"thread", &pol.Thread, func(v string) bridge.Policy { return bridge.Policy{Thread: v} }},
		{"cw", &pol.CW, func(v string) bridge.Policy { return bridge.Policy{CW: v} }},
		{"mentions", &pol.Mentions, func(v string) bridge.Policy { return bridge.Policy{Mentions: v} }},
		{"length", &pol.Length, func(v string) bridge.Policy { return bridge.Policy{Length: v} }},
		{"media", &pol.Media, func(v string) bridge.Policy { return bridge.Policy{Media: v} }},
		{"edits", &pol.Edits, func(v string) bridge.Policy { return bridge.Policy{Edits: v} }},
	} {
		v, n, _ := f.str(s.key)
		*s.dst = v
		check(n, s.key, s.one(v))
	}
	if pol.Mentions == "neutralize" {
		pol.Mentions = bridge.PolicyNeutral
	}
	dv, dvN, _ := f.str("default_visibility")
	pol.DefaultVisibility = post.Visibility(dv)
	check(dvN, "default_visibility", bridge.Policy{DefaultVisibility: pol.DefaultVisibility})
	mc, mcN, _ := f.integer("max_chars")
	pol.MaxChars = mc
	check(mcN, "max_chars", bridge.Policy{MaxChars: mc})
	if s, n, ok := f.str("repost_within"); ok && s != "" {
		v, err := time.ParseDuration(s)
		switch {
		case err != nil || v <= 0:
			f.failf(n.at, f.key("repost_within"), "repost_within %q: use a duration such as \"1h\"", s)
			bad = true
		case pol.Edits != bridge.PolicyRepost:
			f.failf(n.at, f.key("repost_within"), "repost_within only applies with edits = %q", bridge.PolicyRepost)
			bad = true
		default:
			pol.RepostWithin = v
		}
	}
	if vt, ok := f.table("visibility"); ok {
		vf := &fields{errs: d.errs, t: vt, path: "route.sink.visibility", ctx: f.ctx, rel: "visibility."}
		pol.Visibility = map[post.Visibility]post.Visibility{}
		for _, from := range vt.keys {
			to, n, ok := vf.str(from)
			if !ok {
				bad = true
				continue
			}
			m := map[post.Visibility]post.Visibility{post.Visibility(from): post.Visibility(to)}
			check(n, "visibility", bridge.Policy{Visibility: m})
			pol.Visibility[post.Visibility(from)] = post.Visibility(to)
		}
	}
	// The bridge may also have rules across settings.
	if err := pol.Validate(); err != nil && !bad {
		f.failf(t.at, "route.sink", "%v", err)
	}
	local, _ := f.boolean("local_only")
	f.unknown("account", "visibility", "default_visibility", "thread", "cw", "mentions", "length", "max_chars", "media",
		"edits", "repost_within", "local_only")
	if acct == "" {
		return
	}
	spec.Sinks = append(spec.Sinks, SinkSpec{Account: acct, LocalOnly: local != nil && *local})
	spec.refs = append(spec.refs, accountRef{name: acct, key: "route.sink.account", at: acctN.at})
	spec.Route.Sinks = append(spec.Route.Sinks, bridge.Target{Account: acct, Policy: pol})
}

// backup decodes the i-th [[backup]] t.
func (d *decoder) backup(i int, t *node) BackupSpec {
	f := &fields{errs: d.errs, t: t, path: "backup", ctx: fmt.Sprintf("backup #%d", i+1)}
	acct, acctN, ok := f.str("account")
	sched, schedN, _ := f.str("schedule")
	b := BackupSpec{Line: t.at.line, Account: strings.TrimSpace(acct), Schedule: strings.TrimSpace(sched)}
	name, nameN, _ := f.str("name")
	if name = strings.TrimSpace(name); name == "" {
		name = b.Account
	}
	if name != "" {
		b.Name = "backup/" + name
		f.ctx = b.Name
		d.unique(b.Name, place(nameN, t), "backup.name", b.Name)
	}
	if b.Account == "" {
		if ok || acctN == nil {
			d.errs.add(place(acctN, t), "backup.account", "a [[backup]] needs an account")
		}
	} else {
		b.accountAt = acctN.at
	}
	mistyped := false
	for _, k := range []string{"graph", "archive"} {
		dir, n, ok := f.str(k)
		mistyped = mistyped || (n != nil && !ok)
		dir, err := expandHome(dir)
		if err != nil {
			f.failf(n.at, "backup."+k, "%s: %v", k, err)
		}
		if k == "graph" {
			b.Graph = dir
		} else {
			b.Archive = dir
		}
	}
	if b.Graph == "" && b.Archive == "" && !mistyped {
		f.failf(t.at, "backup", "say where to keep it: graph = \"DIR\" (ferry export) and/or archive = \"DIR\" (ferry archive)")
	}
	if b.Schedule == "" {
		b.Schedule = defaultBackupSchedule
	}
	if _, err := schedule.Parse(b.Schedule); err != nil {
		f.failf(place(schedN, t), "backup.schedule", "schedule: %v", err)
	}
	f.unknown("name", "account", "graph", "archive", "schedule")
	return b
}

// expandHome expands a leading "~/" in a directory.
func expandHome(p string) (string, error) {
	p = strings.TrimSpace(p)
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("expand ~: %w", err)
		}
		return home + p[1:], nil
	}
	return p, nil
}
