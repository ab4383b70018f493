package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/post"
)

// TestExamplesLoad loads every examples/*.toml through the real loader, so
// the examples never rot.
func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.toml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		cfg, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(cfg.Routes) == 0 {
			t.Errorf("%s: no routes", f)
		}
		for _, r := range cfg.Routes {
			if r.Line == 0 || len(r.Sinks) == 0 {
				t.Errorf("%s: route %s: line %d, sinks %v", f, r.Route.Name, r.Line, r.Sinks)
			}
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "ferry.toml"))
	if err == nil || !strings.Contains(err.Error(), "no config file at") {
		t.Fatalf("error = %v", err)
	}
}

const good = `
[[route]]
name = "blog"
source = { type = "feed", url = "https://blog.example/feed.xml" }

[[route.sink]]
account = "me@social.example"
`

// withRouteKey adds line after the route's name (line 3), so that it is
// line 4.
func withRouteKey(line string) string {
	return strings.Replace(good, `name = "blog"`, "name = \"blog\"\n"+line, 1)
}

// TestParseErrors checks each rule on its own: the whole message, on the
// line of the key or value that is wrong.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // the whole error
	}{
		{"unknown sink key", good + "colour = \"red\"\n", `ferry.toml:8: unknown key "route.sink.colour"`},
		{"unknown source key", strings.Replace(good, `type = "feed",`, `type = "feed", ttl = 5,`, 1), `ferry.toml:4: unknown key "route.source.ttl"`},
		{"unknown top-level", good + "\n[server]\nport = 1\n", `ferry.toml:9: unknown table or key "server" (this file holds [[route]] and [[backup]] tables)`},
		{"top-level typo", good + "\n[[backups]]\naccount = \"x\"\n", `ferry.toml:9: unknown table or key "backups" (this file holds [[route]] and [[backup]] tables); did you mean "backup"?`},
		{"backup without dirs", good + "\n[[backup]]\naccount = \"x\"\n", `ferry.toml:9: backup/x: say where to keep it: graph = "DIR" (ferry export) and/or archive = "DIR" (ferry archive)`},
		{"backup without account", good + "\n[[backup]]\ngraph = \"/tmp/g\"\n", `ferry.toml:9: a [[backup]] needs an account`},
		{"backup unknown key", good + "\n[[backup]]\naccount = \"x\"\ngraph = \"/tmp/g\"\nkeep = 3\n", `ferry.toml:12: unknown key "backup.keep"`},
		{"backup schedule", good + "\n[[backup]]\naccount = \"x\"\ngraph = \"/tmp/g\"\nschedule = \"daily\"\n",
			`ferry.toml:12: backup/x: schedule: "daily": neither an interval ("15m") nor a cron expression ("*/15 * * * *"): expected exactly 5 fields, found 1: [daily]`},
		{"backup name twice", good + "\n[[backup]]\naccount = \"x\"\ngraph = \"/g\"\n[[backup]]\nname = \"x\"\naccount = \"y\"\narchive = \"/a\"\n",
			`ferry.toml:13: backup/x: the name is used twice (first on line 9)`},
		{"no name", strings.Replace(good, `name = "blog"`, `name = " "`, 1), `ferry.toml:3: a route needs a name (name = "…")`},
		{"bad first_run", withRouteKey(`first_run = "all"`), `ferry.toml:4: route "blog": first_run "all": use "skip" or "last:N"`},
		{"first_run out of range", withRouteKey(`first_run = "last:41"`), `ferry.toml:4: route "blog": first_run "last:41": use "skip" or "last:N" with N from 0 to 40`},
		{"bad schedule", withRouteKey(`schedule = "often"`), `ferry.toml:4: route "blog": schedule: "often": neither an interval ("15m") nor a cron expression ("*/15 * * * *"): expected exactly 5 fields, found 1: [often]`},
		{"too frequent", withRouteKey(`schedule = "1s"`), `ferry.toml:4: route "blog": schedule: "1s": at least 10s between runs`},
		{"negative max_per_hour", withRouteKey(`max_per_hour = -1`), `ferry.toml:4: route "blog": max_per_hour must not be negative`},
		{"bad max_age", withRouteKey(`max_age = "3 days"`), `ferry.toml:4: route "blog": max_age "3 days": use a duration such as "72h"`},
		{"bad replies", withRouteKey(`replies = "keep"`), `ferry.toml:4: route "blog": replies = "keep": use "skip" or "link"`},
		{"bad boosts", withRouteKey(`boosts = "all"`), `ferry.toml:4: route "blog": boosts = "all": use "skip" or "link"`},
		{"bad quotes", strings.Replace(good, `type = "feed", url = "https://blog.example/feed.xml"`, `type = "account", account = "me@old.example", quotes = "inline"`, 1),
			`ferry.toml:4: route "blog": source.quotes = "inline": use "skip" or "link"`},
		{"local_only not a boolean", good + "local_only = \"yes\"\n", `ferry.toml:8: route "blog", sink me@social.example: local_only: want a boolean, not a string`},
		{"bad source type", strings.Replace(good, `"feed"`, `"gopher"`, 1), `ferry.toml:4: route "blog": source type "gopher": use "feed", "account" or "archive"`},
		{"no source", strings.Replace(good, "source = { type = \"feed\", url = \"https://blog.example/feed.xml\" }\n", "", 1),
			`ferry.toml:2: route "blog": source needs a type: "feed", "account" or "archive"`},
		{"source without type", strings.Replace(good, `type = "feed", `, "", 1), `ferry.toml:4: route "blog": source needs a type: "feed", "account" or "archive"`},
		{"source not a table", strings.Replace(good, `{ type = "feed", url = "https://blog.example/feed.xml" }`, `"https://blog.example/feed.xml"`, 1),
			`ferry.toml:4: route "blog": source: want a table, not a string`},
		{"feed url", strings.Replace(good, `https://blog.example`, `ftp://blog.example`, 1), `ferry.toml:4: route "blog": source.url "ftp://blog.example/feed.xml": want an http or https URL`},
		{"account source without account", strings.Replace(good, `type = "feed", url = "https://blog.example/feed.xml"`, `type = "account"`, 1),
			"ferry.toml:4: route \"blog\": source.account: name the account (a handle or name from `ferry accounts`)"},
		{"archive source without path", strings.Replace(good, `type = "feed", url = "https://blog.example/feed.xml"`, `type = "archive", path = ""`, 1),
			"ferry.toml:4: route \"blog\": source.path: name the archive directory (path = \"DIR\", as written by `ferry archive`)"},
		{"archive source with url", strings.Replace(good, `type = "feed", url`, `type = "archive", path = "/a", url`, 1),
			`ferry.toml:4: unknown key "route.source.url"`},
		{"no sink", good[:strings.Index(good, "[[route.sink]]")], `ferry.toml:2: route "blog": add at least one [[route.sink]] with an account`},
		{"sink without account", good + "[[route.sink]]\ncw = \"skip\"\n", `ferry.toml:8: route "blog": a [[route.sink]] needs an account`},
		{"bad policy", good + "length = \"shorten\"\n", `ferry.toml:8: route "blog", sink me@social.example: length = "shorten": use split, truncate, cw`},
		{"bad visibility map", good + "visibility = { public = \"loud\" }\n", `ferry.toml:8: route "blog", sink me@social.example: visibility public = loud: use public, unlisted, private or direct`},
		{"bad default visibility", good + "default_visibility = \"everyone\"\n", `ferry.toml:8: route "blog", sink me@social.example: default visibility "everyone": use public, unlisted, private or direct`},
		{"negative max_chars", good + "max_chars = -5\n", `ferry.toml:8: route "blog", sink me@social.example: max_chars -5: must not be negative`},
		{"bad regex", good + "[route.filter]\ninclude = \"(\"\n", "ferry.toml:9: route \"blog\": filter: include: error parsing regexp: missing closing ): `(`"},
		{"bad filter visibility", good + "[route.filter]\nvisibility = [\"public\", \"secret\"]\n", `ferry.toml:9: route "blog": filter: visibility "secret": use public, unlisted, private or direct`},
		{"bad template", withRouteKey(`template = "{{.Titel}}"`), `ferry.toml:4: route "blog": template`},
		{"syntax", good + "x = = 1\n", `ferry.toml:8: unexpected character U+003D '=' at start of value`},
		{"duplicate", good + good, `ferry.toml:10: route "blog": the name is used twice (first on line 3)`},
		{"wrong type", withRouteKey(`max_per_hour = "ten"`), `ferry.toml:4: route "blog": max_per_hour: want an integer, not a string`},
		{"wrong element type", good + "[route.filter]\ntags = [\"go\", 7]\n", `ferry.toml:9: route "blog": filter.tags[1]: want a string, not an integer`},
		{"key set twice", withRouteKey(`name = "blog2"`), `ferry.toml:4: route.name is set twice (first on line 3)`},
		{"table twice", good + "[route.filter]\ntags = [\"a\"]\n[route.filter]\nlanguage = [\"en\"]\n", `ferry.toml:10: [route.filter]: route.filter is already defined on line 8`},
		{"route not an array", "[route]\nname = \"x\"\n", `ferry.toml:1: route: want [[route]] tables, not a table`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("ferry.toml", tt.src)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error =\n%v\nwant\n%s", err, tt.want)
			}
			if !strings.HasSuffix(tt.want, "template") && err.Error() != tt.want {
				t.Fatalf("error =\n%v\nwant only\n%s", err, tt.want)
			}
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.Mistakes) != 1 {
				t.Fatalf("error %T %v: want one mistake in an *Errors", err, err)
			}
		})
	}
	if _, err := Parse("ferry.toml", good); err != nil {
		t.Fatal(err)
	}
}

// TestEveryMistakeListed checks that one parse reports every mistake of a
// file, in file order, each with its line, column and key.
func TestEveryMistakeListed(t *testing.T) {
	src := `[[route]]
name = "blog"
schedul = "15m"
source = { type = "feed", url = 3 }
max_age = "forever"

[route.filter]
visibility = ["public", "loud"]

[[route.sink]]
account = "me@social.example"
length = "shorten"
cw = "hide"

[[route]]
name = "blog"
source = { type = "gopher" }

[[backup]]
account = "me@social.example"
schedule = "1s"
`
	_, err := Parse("ferry.toml", src)
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %T %v: want *Errors", err, err)
	}
	type mistake struct {
		line, col int
		key, msg  string
	}
	want := []mistake{
		{3, 1, "route.schedul", `unknown key "route.schedul"; did you mean "schedule"?`},
		{4, 33, "route.source.url", `route "blog": source.url: want a string, not an integer`},
		{5, 11, "route.max_age", `route "blog": max_age "forever": use a duration such as "72h"`},
		{8, 25, "route.filter.visibility", `route "blog": filter: visibility "loud": use public, unlisted, private or direct`},
		{12, 10, "route.sink.length", `route "blog", sink me@social.example: length = "shorten": use split, truncate, cw`},
		{13, 6, "route.sink.cw", `route "blog", sink me@social.example: cw = "hide": use keep, prefix, skip`},
		// The route without sinks is reported on its [[route]] line.
		{15, 3, "route", `route "blog": add at least one [[route.sink]] with an account`},
		{16, 8, "route.name", `route "blog": the name is used twice (first on line 2)`},
		{17, 19, "route.source.type", `route "blog": source type "gopher": use "feed", "account" or "archive"`},
		{19, 3, "backup", `backup/me@social.example: say where to keep it: graph = "DIR" (ferry export) and/or archive = "DIR" (ferry archive)`},
		{21, 12, "backup.schedule", `backup/me@social.example: schedule: "1s": at least 10s between runs`},
	}
	var got []mistake
	for _, m := range errs.Mistakes {
		if m.File != "ferry.toml" {
			t.Errorf("mistake %v: file %q", m, m.File)
		}
		got = append(got, mistake{m.Line, m.Column, m.Key, m.Msg})
	}
	if !slices.Equal(got, want) {
		t.Errorf("mistakes:\n%v\nwant\n%v", got, want)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("Error() has %d lines, want %d:\n%s", len(lines), len(want), err)
	}
	for i, l := range lines {
		if p := "ferry.toml:" + strconv.Itoa(want[i].line) + ": " + want[i].msg; l != p {
			t.Errorf("line %d = %q, want %q", i, l, p)
		}
	}
	var one *Error
	if !errors.As(err, &one) || one.Key != "route.schedul" {
		t.Errorf("errors.As(*Error) = %v", one)
	}
}

// TestValuePlaces checks the exact place of a bad value inside an inline
// table and inside a [[route.sink]] further down the file.
func TestValuePlaces(t *testing.T) {
	src := "# ferry.toml\n\n[[route]]\nname = \"blog\"\nsource = { type = \"feed\", url = 3 }\n\n" +
		"[[route.sink]]\naccount = \"a@x.example\"\n\n[[route.sink]]\naccount = \"b@y.example\"\n  # the limit\n  max_chars = \"lots\"\n"
	_, err := Parse("/etc/ferry.toml", src)
	var errs *Errors
	if !errors.As(err, &errs) || len(errs.Mistakes) != 2 {
		t.Fatalf("error %v: want two mistakes", err)
	}
	url, mc := errs.Mistakes[0], errs.Mistakes[1]
	if url.Line != 5 || url.Column != 33 || url.Key != "route.source.url" || url.File != "/etc/ferry.toml" {
		t.Errorf("url mistake at %s:%d:%d on %q", url.File, url.Line, url.Column, url.Key)
	}
	if mc.Line != 13 || mc.Column != 15 || mc.Key != "route.sink.max_chars" ||
		mc.Msg != `route "blog", sink b@y.example: max_chars: want an integer, not a string` {
		t.Errorf("max_chars mistake: %+v", mc)
	}
}

func TestSuggestions(t *testing.T) {
	tests := []struct{ src, want string }{
		{withRouteKey(`schedul = "15m"`), `ferry.toml:4: unknown key "route.schedul"; did you mean "schedule"?`},
		{withRouteKey(`frist_run = "skip"`), `ferry.toml:4: unknown key "route.frist_run"; did you mean "first_run"?`},
		{good + "acount = \"x\"\n", `ferry.toml:8: unknown key "route.sink.acount"; did you mean "account"?`},
		{good + "[route.filter]\nexlcude_tags = [\"x\"]\n", `ferry.toml:9: unknown key "route.filter.exlcude_tags"; did you mean "exclude_tags"?`},
		{strings.Replace(good, `url =`, `ulr =`, 1), "ferry.toml:4: route \"blog\": source.url \"\": want an http or https URL\n" +
			`ferry.toml:4: unknown key "route.source.ulr"; did you mean "url"?`},
		{strings.Replace(good, `"feed"`, `"Feeds"`, 1), `ferry.toml:4: route "blog": source type "Feeds": use "feed", "account" or "archive"; did you mean "feed"?`},
		// Too far from any key to guess.
		{withRouteKey(`colour = "red"`), `ferry.toml:4: unknown key "route.colour"`},
		{strings.Replace(good, `type = "feed",`, `type = "feed", ttl = 5,`, 1), `ferry.toml:4: unknown key "route.source.ttl"`},
	}
	for _, tt := range tests {
		_, err := Parse("ferry.toml", tt.src)
		if err == nil || err.Error() != tt.want {
			t.Errorf("error =\n%v\nwant\n%s", err, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"", "abc", 3}, {"schedul", "schedule", 1}, {"acount", "account", 1},
		{"frist", "first", 1}, {"kitten", "sitting", 3}, {"ca", "abc", 3}, {"über", "uber", 1},
	} {
		if d := editDistance(tt.a, tt.b); d != tt.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, d, tt.d)
		}
	}
}

func TestParse(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory:", err)
	}
	src := `
[[route]]
name = "blog"
source = { type = "feed", url = "https://blog.example/feed.xml", user_agent = "blogbot" }
first_run = "last:3"
max_per_hour = 10
max_age = "72h"
catch_up = true
template = "{{.Title}} {{.Link}}"

[route.filter]
exclude = "(?i)sponsored"
tags = ["go"]
visibility = ["public", "unlisted"]
has_media = false

[[route.sink]]
account = "me@social.example"
visibility = { public = "unlisted" }
mentions = "neutralize"
max_chars = 300

[[route.sink]]
account = "me@other.example"

[[route]]
name = "mirror"
source.type = "account"
source.account = "me@old.example"
source.stream = false
source.quotes = "skip"
paused = true
replies = "link"
sink = [{ account = "me@new.example", length = "split", local_only = true }]

[[route]]
name = "history"
source = { type = "archive", path = "~/lifeboat/archive" }
[[route.sink]]
account = "me@new.example"

[[backup]]
account = "me@old.example"
graph = "~/lifeboat/graph"
`
	cfg, err := Parse("ferry.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 3 || len(cfg.Backups) != 1 || cfg.Path != "ferry.toml" {
		t.Fatalf("config %+v", cfg)
	}
	blog, mirror, history := cfg.Routes[0], cfg.Routes[1], cfg.Routes[2]
	if blog.Line != 2 || blog.Route.Name != "blog" || blog.Route.Kind != bridge.KindFeed || blog.Schedule != "15m" ||
		blog.Feed == nil || blog.Feed.URL != "https://blog.example/feed.xml" || blog.Feed.UserAgent != "blogbot" ||
		blog.Account != nil || blog.Archive != nil {
		t.Errorf("blog: %+v", blog)
	}
	r := blog.Route
	if r.FirstRun != 3 || r.MaxPerHour != 10 || r.MaxAge != 72*time.Hour || !r.CatchUp || r.Template == nil {
		t.Errorf("blog route: %+v", r)
	}
	if r.Filter.Exclude == nil || !r.Filter.Exclude.MatchString("SPONSORED") || r.Filter.Include != nil ||
		!slices.Equal(r.Filter.Tags, []string{"go"}) || len(r.Filter.Visibility) != 2 || r.Filter.HasMedia == nil || *r.Filter.HasMedia {
		t.Errorf("blog filter: %+v", r.Filter)
	}
	if !slices.Equal(blog.Sinks, []SinkSpec{{Account: "me@social.example"}, {Account: "me@other.example"}}) || len(r.Sinks) != 2 {
		t.Fatalf("blog sinks: %v %+v", blog.Sinks, r.Sinks)
	}
	if p := r.Sinks[0].Policy; p.Mentions != bridge.PolicyNeutral || p.MaxChars != 300 || p.Visibility[post.Public] != post.Unlisted {
		t.Errorf("blog sink policy: %+v", p)
	}
	if mirror.Route.Kind != bridge.KindAccount || mirror.Schedule != "5m" || !mirror.Paused || mirror.Route.Replies != bridge.PolicyLink ||
		mirror.Account == nil || mirror.Account.Account != "me@old.example" || mirror.Account.Stream == nil || *mirror.Account.Stream ||
		mirror.Account.Quotes != bridge.PolicySkip ||
		!slices.Equal(mirror.Sinks, []SinkSpec{{Account: "me@new.example", LocalOnly: true}}) || mirror.Route.Sinks[0].Policy.Length != bridge.PolicySplit {
		t.Errorf("mirror: %+v", mirror)
	}
	if history.Archive == nil || history.Archive.Path != filepath.Join(home, "lifeboat", "archive") || history.Feed != nil || history.Account != nil ||
		history.Schedule != "15m" {
		t.Errorf("history: %+v %+v", history, history.Archive)
	}
	b := cfg.Backups[0]
	if b.Name != "backup/me@old.example" || b.Account != "me@old.example" || b.Graph != filepath.Join(home, "lifeboat", "graph") ||
		b.Archive != "" || b.Schedule != "24h" || b.Line != 42 {
		t.Errorf("backup: %+v", b)
	}
}

// TestCheckAccounts checks that every place naming an unknown account is
// reported, and that each account is asked about once.
func TestCheckAccounts(t *testing.T) {
	src := good + `
[[route]]
name = "mirror"
source = { type = "account", account = "ghost@old.example" }
[[route.sink]]
account = "me@social.example"
[[route.sink]]
account = "ghost@old.example"

[[backup]]
account = "ghost@old.example"
graph = "/g"
`
	cfg, err := Parse("ferry.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	asked := map[string]int{}
	err = cfg.CheckAccounts(func(ref string) (bool, error) {
		asked[ref]++
		return ref == "me@social.example", nil
	})
	want := "ferry.toml:11: route \"mirror\": no account \"ghost@old.example\": run `ferry accounts` to list accounts or `ferry login SERVER` to add one\n" +
		"ferry.toml:15: route \"mirror\": no account \"ghost@old.example\": run `ferry accounts` to list accounts or `ferry login SERVER` to add one\n" +
		"ferry.toml:18: backup/ghost@old.example: no account \"ghost@old.example\": run `ferry accounts` to list accounts or `ferry login SERVER` to add one"
	if err == nil || err.Error() != want {
		t.Errorf("error =\n%v\nwant\n%s", err, want)
	}
	if len(asked) != 2 || asked["me@social.example"] != 1 || asked["ghost@old.example"] != 1 {
		t.Errorf("asked %v", asked)
	}
	boom := errors.New("database is locked")
	if err := cfg.CheckAccounts(func(string) (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Errorf("error = %v, want %v", err, boom)
	}
	if err := cfg.CheckAccounts(func(string) (bool, error) { return true, nil }); err != nil {
		t.Errorf("all known: %v", err)
	}
}

// TestNeverPanics feeds truncated and mangled files: each gives a config
// or an *Errors, never a panic.
func TestNeverPanics(t *testing.T) {
	src := good + "[route.filter]\ntags = [\"a\", [1, 2], { x = 1 }]\nvisibility = { a.b = 1 }\n" +
		"[[backup]]\naccount = 1979-05-27T07:32:00Z\ngraph = 0x1F\narchive = 1e3\nschedule = inf\n"
	for i := range len(src) {
		for _, s := range []string{src[:i], src[:i] + "]" + src[i:], src[:i] + "\"" + src[i:]} {
			_, err := Parse("ferry.toml", s)
			var errs *Errors
			if err != nil && !errors.As(err, &errs) {
				t.Fatalf("%q: error %T %v", s, err, err)
			}
		}
	}
}

// FuzzParse checks that no file makes Parse panic, and that a failure is
// always an *Errors whose every mistake has a place.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "examples", "*.toml"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(good + "[route.filter]\ntags = [\"a\", [1]]\n[[backup]]\naccount = 1\n")
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := Parse("ferry.toml", src)
		if err == nil {
			if cfg == nil {
				t.Fatal("no config and no error")
			}
			return
		}
		var errs *Errors
		if !errors.As(err, &errs) || len(errs.Mistakes) == 0 {
			t.Fatalf("error %T %v", err, err)
		}
		for _, m := range errs.Mistakes {
			if m.Line < 1 {
				t.Fatalf("mistake without a line: %v", m)
			}
		}
	})
}
