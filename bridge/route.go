// Package bridge is ferry's mirroring engine: it carries posts from a
// source (an account, a feed) to one or more sink accounts along a Route,
// applying filters, a template and per-sink policies, and it keeps a
// durable map from every origin post to its copies so that nothing is ever
// posted twice, edits and deletes follow the original, threads stay
// threads, and two-way routes never loop.
//
// Every write follows plan → journal → apply: the engine first journals
// the steps a page of posts needs (Store.Plan), then applies them one by
// one, counting each attempt durably (Store.Begin) and recording its
// outcome together with the copy it made (Store.Finish). A step found
// begun but unfinished after a crash is reconciled with the sink's Finder
// before it is tried again.
package bridge

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/sources"
)

// Source kinds, which choose the default template and how items are
// identified.
const (
	KindFeed    = "feed"    // items identified by GUID, link and content hash
	KindAccount = "account" // posts identified by their status ID
)

// Route carries posts from one source to its sinks.
type Route struct {
	Name   string
	Kind   string // KindFeed or KindAccount
	Source sources.Source
	// SourceAccount is the source account's handle (KindAccount): its
	// posts that are copies made by any route are never mirrored back.
	SourceAccount string
	Sinks         []Target
	Filter        Filter
	// Template renders a post's text; nil means DefaultTemplate(Kind).
	Template *template.Template
	// FirstRun is how many of the newest existing posts the first run
	// mirrors; the others are recorded as seen. 0 = none.
	FirstRun int
	// MaxAge, when not 0, leaves out posts older than this.
	MaxAge time.Duration
	// MaxPerHour caps the copies the route makes per hour (runaway guard);
	// 0 = DefaultMaxPerHour.
	MaxPerHour int
	// CatchUp makes a paused route, when resumed, mirror what it missed
	// instead of recording it as seen.
	CatchUp bool
	// Replies and Boosts say what to do with the source account's replies
	// to others and boosts: PolicySkip (default) or PolicyLink (post a
	// link to the original).
	Replies string
	Boosts  string
}

// DefaultMaxPerHour is the runaway cap when a route sets none.
const DefaultMaxPerHour = 30

// Target is one sink of a route and the policies applied for it.
type Target struct {
	Account string // the sink account's handle, as recorded in copies
	Sink    sinks.Sink
	Policy  Policy
}

// Policy values.
const (
	PolicySkip      = "skip"
	PolicyLink      = "link"
	PolicyKeep      = "keep"
	PolicyPrefix    = "prefix"
	PolicyNeutral   = "neutralise"
	PolicySplit     = "split"
	PolicyTruncate  = "truncate"
	PolicyCW        = "cw"
	PolicyUpload    = "upload"
	PolicyFirstOnly = "first-public" // thread: first post as mapped, the rest unlisted
	PolicyIgnore    = "ignore"       // edits: the copy keeps its text
	PolicyRepost    = "repost"       // edits: delete the young copy and publish the new version
)

// DefaultRepostWithin is how young a copy must be for Policy.Edits =
// PolicyRepost to replace it when Policy.RepostWithin is not set.
const DefaultRepostWithin = time.Hour

// Policy is how posts are adapted for one sink. Zero values are the
// defaults documented per field.
type Policy struct {
	// Visibility maps an origin visibility to the sink's; unmapped ones
	// are kept. Feeds have no visibility: DefaultVisibility (default
	// public) applies before the map.
	Visibility        map[post.Visibility]post.Visibility
	DefaultVisibility post.Visibility
	// Thread is PolicyKeep (default: every post keeps its visibility) or
	// PolicyFirstOnly (the first post of a thread as mapped, its
	// continuations, including split parts, unlisted).
	Thread string
	// CW is PolicyKeep (default), PolicyPrefix (the warning becomes the
	// first line, "CW: …") or PolicySkip (posts with a warning are left out).
	CW string
	// Mentions is PolicyNeutral (default: @user@host is written so that no
	// server pings anyone), PolicyLink (replaced by the profile URL) or
	// PolicySkip (posts that mention anyone are left out).
	Mentions string
	// Length is PolicySplit (default: a self-thread), PolicyTruncate (cut
	// with a link to the original) or PolicyCW (split, every part folded
	// under a content warning so the thread stays compact in timelines).
	Length string
	// MaxChars overrides the sink server's character limit when lower
	// (0 = the server's). Useful to keep posts short, and in tests.
	MaxChars int
	// Media is PolicyUpload (default: re-upload with alt text and focus,
	// within the sink's count and type limits, the rest linked),
	// PolicyLink (link every attachment) or PolicySkip.
	Media string
	// Edits is what an edit of the origin post does to a sink that cannot
	// edit in place (no sinks.Editor, such as Bluesky): PolicyIgnore
	// (default: the copy keeps its text) or PolicyRepost (a copy younger
	// than RepostWithin is deleted and the new version published in its
	// place; older copies keep their text). Sinks that can edit always
	// edit in place, whatever Edits says.
	Edits string
	// RepostWithin bounds PolicyRepost by the age of the copy, counted from
	// when the first copy of the post was made, so that repeated edits
	// cannot keep a post disappearing and reappearing for ever; 0 means
	// DefaultRepostWithin.
	RepostWithin time.Duration
}

// Filter selects the posts a route mirrors. Every set condition must hold.
type Filter struct {
	Include    *regexp.Regexp    // text must match
	Exclude    *regexp.Regexp    // text must not match
	Tags       []string          // at least one of these hashtags (no #, any case)
	ExcludeTag []string          // none of these hashtags
	Visibility []post.Visibility // one of these visibilities
	Language   []string          // one of these languages (posts without one pass)
	HasMedia   *bool             // with (true) or without (false) attachments
}

// Match reports whether p passes the filter, and if not, why.
func (f Filter) Match(p post.Post) (bool, string) {
	text := p.Title + "\n" + p.Text
	if f.Include != nil && !f.Include.MatchString(text) {
		return false, "does not match include"
	}
	if f.Exclude != nil && f.Exclude.MatchString(text) {
		return false, "matches exclude"
	}
	has := func(tag string) bool {
		for _, t := range p.Tags {
			if strings.EqualFold(strings.TrimPrefix(t, "#"), strings.TrimPrefix(tag, "#")) {
				return true
			}
		}
		return false
	}
	if len(f.Tags) > 0 && !slices.ContainsFunc(f.Tags, has) {
		return false, "has none of the tags"
	}
	if slices.ContainsFunc(f.ExcludeTag, has) {
		return false, "has an excluded tag"
	}
	if len(f.Visibility) > 0 && p.Visibility != "" && !slices.Contains(f.Visibility, p.Visibility) {
		return false, "visibility " + string(p.Visibility)
	}
	if len(f.Language) > 0 && p.Language != "" && !slices.ContainsFunc(f.Language, func(l string) bool {
		return strings.EqualFold(l, p.Language) || strings.HasPrefix(strings.ToLower(p.Language), strings.ToLower(l)+"-")
	}) {
		return false, "language " + p.Language
	}
	if f.HasMedia != nil && *f.HasMedia != (len(p.Media) > 0) {
		return false, "media"
	}
	return true, ""
}

// Validate checks the route for mistakes a config file can make.
func (r *Route) Validate() error {
	if r.Name == "" {
		return fmt.Errorf("a route needs a name")
	}
	if r.Source == nil {
		return fmt.Errorf("route %s: no source", r.Name)
	}
	if len(r.Sinks) == 0 {
		return fmt.Errorf("route %s: no sink", r.Name)
	}
	for _, t := range r.Sinks {
		if t.Sink == nil || t.Account == "" {
			return fmt.Errorf("route %s: a sink without an account", r.Name)
		}
		if err := t.Policy.Validate(); err != nil {
			return fmt.Errorf("route %s, sink %s: %w", r.Name, t.Account, err)
		}
	}
	for _, v := range []struct{ name, val string }{{"replies", r.Replies}, {"boosts", r.Boosts}} {
		if v.val != "" && v.val != PolicySkip && v.val != PolicyLink {
			return fmt.Errorf("route %s: %s = %q: use skip or link", r.Name, v.name, v.val)
		}
	}
	return nil
}

// Validate checks the policy's values.
func (p Policy) Validate() error {
	check := func(name, v string, ok ...string) error {
		if v == "" || slices.Contains(ok, v) {
			return nil
		}
		return fmt.Errorf("%s = %q: use %s", name, v, strings.Join(ok, ", "))
	}
	for _, err := range []error{
		check("thread", p.Thread, PolicyKeep, PolicyFirstOnly),
		check("cw", p.CW, PolicyKeep, PolicyPrefix, PolicySkip),
		check("mentions", p.Mentions, PolicyNeutral, "neutralize", PolicyLink, PolicySkip),
		check("length", p.Length, PolicySplit, PolicyTruncate, PolicyCW),
		check("media", p.Media, PolicyUpload, PolicyLink, PolicySkip),
		check("edits", p.Edits, PolicyIgnore, PolicyRepost),
	} {
		if err != nil {
			return err
		}
	}
	for from, to := range p.Visibility {
		if !from.Valid() || !to.Valid() {
			return fmt.Errorf("visibility %s = %s: use public, unlisted, private or direct", from, to)
		}
	}
	if p.DefaultVisibility != "" && !p.DefaultVisibility.Valid() {
		return fmt.Errorf("default visibility %q: use public, unlisted, private or direct", p.DefaultVisibility)
	}
	if p.MaxChars < 0 {
		return fmt.Errorf("max_chars %d: must not be negative", p.MaxChars)
	}
	if p.RepostWithin < 0 {
		return fmt.Errorf("repost_within %s: must not be negative", p.RepostWithin)
	}
	if p.RepostWithin > 0 && p.Edits != PolicyRepost {
		return fmt.Errorf("repost_within %s: only with edits = %q", p.RepostWithin, PolicyRepost)
	}
	return nil
}
