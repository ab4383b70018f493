package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/journal"
)

// Journal steps, in the order they are planned and applied. List members
// come after follows because Mastodon only lists accounts one follows.
const (
	stepList         = "list"          // create a missing list; RemoteID = list ID
	stepServerImport = "server_import" // one bulk upload per type
	stepFollow       = "follow"
	stepListMember   = "list_member"
	stepBlock        = "block"
	stepMute         = "mute"
	stepDomainBlock  = "domain_block"
	stepBookmark     = "bookmark"
	// Overwrite removals.
	stepUnfollow         = "unfollow"
	stepUnblock          = "unblock"
	stepUnmute           = "unmute"
	stepDomainUnblock    = "domain_unblock"
	stepUnbookmark       = "unbookmark"
	stepListMemberRemove = "list_member_remove"
)

func isRemoval(step string) bool {
	switch step {
	case stepUnfollow, stepUnblock, stepUnmute, stepDomainUnblock, stepUnbookmark, stepListMemberRemove:
		return true
	}
	return false
}

// deadDomainAfter is how many consecutive connection-level failures to
// resolve accounts on one domain make the planner skip the domain's other
// rows: one dead server must not cost minutes per row.
const deadDomainAfter = 2

// planner builds the plan of an import.
type planner struct {
	o     ImportOptions
	c     API
	me    fedi.Account
	items []journal.Item

	// What the account has now, keyed by lower-cased address (or URI).
	following map[string]fedi.Account
	blocked   map[string]fedi.Account
	muted     map[string]fedi.Account
	domains   map[string]bool // nil when the server has no user domain blocks
	bookmarks map[string]string
	lists     map[string]string          // title → list ID
	members   map[string]map[string]bool // list ID → member addresses

	// missing holds the types whose API the server does not have.
	missing map[Type]bool

	mu       sync.Mutex
	resolved map[string]resolution
	deadFail map[string]int
}

type resolution struct {
	acct fedi.Account
	err  string // why it cannot be used
}

func newPlanner(o ImportOptions) *planner {
	return &planner{o: o, c: apiOf(o.API, o.Client), resolved: map[string]resolution{}, deadFail: map[string]int{}}
}

// rowsOf collects the rows of type t over all files, first occurrence of
// each entry only.
func (p *planner) rowsOf(t Type) []Row {
	seen := map[string]bool{}
	var out []Row
	for _, f := range p.o.Files {
		if f.Type != t {
			continue
		}
		for _, r := range f.Rows {
			k := strings.ToLower(rowEntry(r))
			if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, r)
		}
	}
	return out
}

func rowEntry(r Row) string {
	switch r.Type {
	case DomainBlocks:
		return r.Domain
	case Bookmarks:
		return r.URI
	case Lists:
		return listEntry(r.List, r.Account)
	}
	return r.Account
}

// listEntry joins a list title and an address; the address never contains
// the separator, the title may.
func listEntry(title, acct string) string { return title + ": " + acct }

func cutListEntry(s string) (title, acct string, ok bool) {
	i := strings.LastIndex(s, ": ")
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+2:], true
}

func (p *planner) add(step, key string, status journal.ItemStatus, why string, pl payload) {
	b, _ := json.Marshal(pl)
	p.items = append(p.items, journal.Item{Step: step, Key: key, Payload: string(b), Status: status, Error: why})
}

// bulk reports whether rows of t go through the server's bulk importer.
func (p *planner) bulk(t Type, n int) bool {
	if p.o.Software != "gotosocial" || (t != Following && t != Blocks && t != Mutes) {
		return false
	}
	switch p.o.Method {
	case MethodServer:
		return true
	case MethodAuto:
		// Small imports go through the API, which reports every row and
		// follows moved accounts at their new address; big ones save
		// two requests per row.
		return n >= bulkThreshold
	}
	return false
}

// bulkThreshold is the number of rows of one type from which MethodAuto
// prefers the server's bulk importer.
const bulkThreshold = 200

// plan reads the account's current state, resolves every row and returns
// the plan. It writes nothing anywhere.
func (p *planner) plan(ctx context.Context) (*planner, error) {
	me, err := p.c.VerifyCredentials(ctx)
	if err != nil {
		return nil, err
	}
	p.me = me
	if err := p.readState(ctx); err != nil {
		return nil, err
	}
	follows := p.rowsOf(Following)
	listRows := p.failMissing(Lists, stepListMember, p.rowsOf(Lists))
	blocks := p.failMissing(Blocks, stepBlock, p.rowsOf(Blocks))
	mutes := p.failMissing(Mutes, stepMute, p.rowsOf(Mutes))

	// Resolve every address the API path needs in one concurrent pass.
	var need []string
	if !p.bulk(Following, len(follows)) {
		need = append(need, p.unknown(follows, p.following)...)
	}
	need = append(need, p.unknown(listRows, p.following)...)
	if !p.bulk(Blocks, len(blocks)) {
		need = append(need, p.unknown(blocks, p.blocked)...)
	}
	if !p.bulk(Mutes, len(mutes)) {
		need = append(need, p.unknown(mutes, p.muted)...)
	}
	if err := p.resolveAll(ctx, need); err != nil {
		return nil, err
	}

	p.planLists(listRows)
	if p.bulk(Following, len(follows)) {
		p.planBulk(Following, follows, p.following)
	} else {
		if err := p.planFollows(ctx, follows); err != nil {
			return nil, err
		}
	}
	p.planListMembers(listRows, follows)
	p.planAccounts(Blocks, stepBlock, blocks, p.blocked)
	p.planAccounts(Mutes, stepMute, mutes, p.muted)
	p.planDomains(p.rowsOf(DomainBlocks))
	if err := p.planBookmarks(ctx, p.rowsOf(Bookmarks)); err != nil {
		return nil, err
	}
	for _, r := range p.rowsOf(Followers) {
		p.add(stepFollow, "followers:"+strings.ToLower(r.Account), journal.ItemFailed,
			"followers cannot be imported: they follow the new account when the old one moves (ferry migrate)",
			payload{Type: Followers, Source: r.Pos.String(), Entry: r.Account})
	}
	if p.o.Mode == Overwrite {
		p.planRemovals(follows, listRows, blocks, mutes)
	}
	return p, nil
}

func (p *planner) has(t Type) bool {
	for _, f := range p.o.Files {
		if f.Type == t && len(f.Rows) > 0 {
			return true
		}
	}
	return false
}

// readState pages through what the account has, for the types imported.
func (p *planner) readState(ctx context.Context) error {
	collect := func(m map[string]fedi.Account) func([]fedi.Account) error {
		return func(page []fedi.Account) error {
			for _, a := range page {
				m[p.key(a.Acct)] = a
			}
			return nil
		}
	}
	if p.has(Following) || p.has(Lists) {
		p.following = map[string]fedi.Account{}
		if err := p.c.Following(ctx, p.me.ID, collect(p.following)); err != nil {
			return err
		}
	}
	if p.has(Blocks) {
		p.blocked = map[string]fedi.Account{}
		if err := p.c.Blocks(ctx, collect(p.blocked)); err != nil && !p.missingFeature(Blocks, err) {
			return err
		}
	}
	if p.has(Mutes) {
		p.muted = map[string]fedi.Account{}
		if err := p.c.Mutes(ctx, collect(p.muted)); err != nil && !p.missingFeature(Mutes, err) {
			return err
		}
	}
	if p.has(DomainBlocks) {
		p.domains = map[string]bool{}
		err := p.c.DomainBlocks(ctx, func(page []string) error {
			for _, d := range page {
				p.domains[strings.ToLower(d)] = true
			}
			return nil
		})
		if fedi.IsNotFound(err) {
			p.domains = nil
		} else if err != nil {
			return err
		}
	}
	if p.has(Bookmarks) {
		p.bookmarks = map[string]string{}
		if err := p.c.Bookmarks(ctx, func(page []fedi.StatusRef) error {
			for _, s := range page {
				p.bookmarks[s.URI] = s.ID
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if p.has(Lists) {
		ls, err := p.c.Lists(ctx)
		if err != nil && !p.missingFeature(Lists, err) {
			return err
		}
		p.lists, p.members = map[string]string{}, map[string]map[string]bool{}
		wanted := map[string]bool{}
		for _, r := range p.rowsOf(Lists) {
			wanted[r.List] = true
		}
		for _, l := range ls {
			if !wanted[l.Title] {
				continue
			}
			if _, dup := p.lists[l.Title]; dup {
				continue // two lists with one title: use the first
			}
			p.lists[l.Title] = l.ID
			m := map[string]bool{}
			if err := p.c.ListMembers(ctx, l.ID, func(page []fedi.Account) error {
				for _, a := range page {
					m[p.key(a.Acct)] = true
				}
				return nil
			}); err != nil {
				return err
			}
			p.members[l.ID] = m
		}
	}
	return nil
}

// key is the map key of an address as the server writes it.
func (p *planner) key(acct string) string { return accountKey(acct, p.c.Host()) }

// accountKey is the lower-cased user@domain of an address a server wrote
// ("user" for its own accounts, whose domain is localHost).
func accountKey(acct, localHost string) string {
	return strings.ToLower(accountKeyCase(acct, localHost))
}

// unknown returns the addresses of rows that are not in have.
func (p *planner) unknown(rows []Row, have map[string]fedi.Account) []string {
	var out []string
	for _, r := range rows {
		if _, ok := have[p.key(r.Account)]; !ok {
			out = append(out, r.Account)
		}
	}
	return out
}

// resolveAll resolves the addresses with o.Concurrency requests at a time,
// each address once.
func (p *planner) resolveAll(ctx context.Context, accts []string) error {
	seen := map[string]bool{}
	var uniq []string
	for _, a := range accts {
		if k := strings.ToLower(a); !seen[k] {
			seen[k] = true
			uniq = append(uniq, a)
		}
	}
	m := newMeter(p.o.Progress, "resolving")
	m.grow(len(uniq), 0)
	return forEach(ctx, p.o.Concurrency, uniq, func(ctx context.Context, a string) error {
		if err := p.resolve(ctx, a); err != nil {
			return err
		}
		m.step()
		return nil
	})
}

// resolve looks one address up and records the outcome. Only problems that
// stop the import (token refused, context ended) are returned.
func (p *planner) resolve(ctx context.Context, acct string) error {
	k := strings.ToLower(acct)
	_, domain, _ := strings.Cut(k, "@")
	p.mu.Lock()
	dead := p.deadFail[domain] >= deadDomainAfter
	p.mu.Unlock()
	if dead {
		p.record(k, resolution{err: "the server " + domain + " is unreachable (skipped after repeated failures)"})
		return nil
	}
	a, err := p.c.ResolveAccount(ctx, acct)
	switch {
	case err == nil:
		p.mu.Lock()
		p.deadFail[domain] = 0
		p.mu.Unlock()
		p.record(k, resolution{acct: a})
		p.o.Log.Debug("resolved", "acct", acct, "id", a.ID)
	case fedi.IsUnauthorized(err):
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	case fedi.IsMissingEndpoint(err):
		// Not the account: the server has no search API to find it with.
		p.record(k, resolution{err: noFeaturePrefix + "no account search API (it answers 404 with a web page)"})
	case fedi.IsNotFound(err):
		p.record(k, resolution{err: "account not found (it does not exist, was deleted, or its server did not answer)"})
	default:
		st := fedi.StatusCode(err)
		if st == 0 || st >= 500 {
			p.mu.Lock()
			p.deadFail[domain]++
			p.mu.Unlock()
		}
		p.record(k, resolution{err: "could not resolve the account: " + err.Error()})
	}
	return nil
}

func (p *planner) record(k string, r resolution) {
	p.mu.Lock()
	p.resolved[k] = r
	p.mu.Unlock()
}

// target returns the account to act on for acct: the one it already
// relates to (have), or the resolved one; why says why there is none.
func (p *planner) target(acct string, have map[string]fedi.Account) (a fedi.Account, known bool, why string) {
	if a, ok := have[p.key(acct)]; ok {
		return a, true, ""
	}
	if a, ok := p.following[p.key(acct)]; ok {
		return a, false, ""
	}
	r, ok := p.resolved[strings.ToLower(acct)]
	if !ok {
		return fedi.Account{}, false, "not resolved"
	}
	return r.acct, false, r.err
}

func (p *planner) planFollows(ctx context.Context, rows []Row) error {
	// Rows already followed: compare their settings (one request per 40).
	var ids []string
	for _, r := range rows {
		if a, ok := p.following[p.key(r.Account)]; ok && (r.ShowBoosts != nil || r.Notify != nil || r.Languages != nil) {
			ids = append(ids, a.ID)
		}
	}
	rels := map[string]fedi.Relationship{}
	if len(ids) > 0 {
		rs, err := p.c.Relationships(ctx, ids)
		if err != nil {
			return err
		}
		for _, r := range rs {
			rels[r.ID] = r
		}
	}
	for _, r := range rows {
		pl := payload{Type: Following, Source: r.Pos.String(), Entry: r.Account, Reblogs: r.ShowBoosts, Notify: r.Notify, Languages: r.Languages}
		key := strings.ToLower(r.Account)
		a, known, why := p.target(r.Account, p.following)
		if known {
			pl.TargetID = a.ID
			if rel, ok := rels[a.ID]; ok && settingsDiffer(rel, r) {
				pl.Note = "already followed; updating its settings"
				p.add(stepFollow, key, journal.ItemPending, "", pl)
				continue
			}
			p.add(stepFollow, key, journal.ItemSkipped, "already followed", pl)
			continue
		}
		if why != "" {
			p.add(stepFollow, key, journal.ItemFailed, why, pl)
			continue
		}
		if a.Moved != nil && a.Moved.ID != "" {
			pl.MovedTo = p.key(a.Moved.Acct)
			a = *a.Moved
			if _, ok := p.following[p.key(a.Acct)]; ok {
				pl.TargetID = a.ID
				p.add(stepFollow, key, journal.ItemSkipped, "moved to "+pl.MovedTo+", which is already followed", pl)
				continue
			}
		}
		pl.TargetID = a.ID
		p.add(stepFollow, key, journal.ItemPending, "", pl)
	}
	return nil
}

func settingsDiffer(rel fedi.Relationship, r Row) bool {
	if r.ShowBoosts != nil && *r.ShowBoosts != rel.ShowingReblogs {
		return true
	}
	if r.Notify != nil && *r.Notify != rel.Notifying {
		return true
	}
	if r.Languages != nil {
		a, b := slices.Clone(r.Languages), slices.Clone(rel.Languages)
		slices.Sort(a)
		slices.Sort(b)
		return !slices.Equal(a, b)
	}
	return false
}

// planBulk plans one server-side import of the rows of t the account does
// not have yet.
func (p *planner) planBulk(t Type, rows []Row, have map[string]fedi.Account) {
	var buf bytes.Buffer
	w := NewWriter(&buf, t)
	n := 0
	var sources []string
	for _, r := range rows {
		pl := payload{Type: t, Source: r.Pos.String(), Entry: r.Account, Reblogs: r.ShowBoosts, Notify: r.Notify,
			Languages: r.Languages, HideNotif: r.HideNotifications}
		if a, ok := have[p.key(r.Account)]; ok {
			pl.TargetID = a.ID
			p.add(stepForType(t), strings.ToLower(r.Account), journal.ItemSkipped, "already there", pl)
			continue
		}
		w.Write(r)
		sources = append(sources, r.Pos.String())
		n++
	}
	_ = w.Flush() // a bytes.Buffer does not fail
	if n > 0 {
		p.add(stepServerImport, string(t), journal.ItemPending, "", payload{Type: t, Entry: fmt.Sprintf("%d %s rows", n, t), CSV: buf.String(), Sources: sources})
	}
}

func stepForType(t Type) string {
	switch t {
	case Following:
		return stepFollow
	case Blocks:
		return stepBlock
	case Mutes:
		return stepMute
	}
	return string(t)
}

func (p *planner) planLists(rows []Row) {
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.List] {
			continue
		}
		seen[r.List] = true
		pl := payload{Type: Lists, Entry: r.List, List: r.List, Source: r.Pos.String()}
		if id, ok := p.lists[r.List]; ok {
			it := journal.Item{Step: stepList, Key: r.List, Status: journal.ItemSkipped, Error: "list exists", RemoteID: id}
			b, _ := json.Marshal(pl)
			it.Payload = string(b)
			p.items = append(p.items, it)
			continue
		}
		p.add(stepList, r.List, journal.ItemPending, "", pl)
	}
}

// planListMembers plans list memberships, and a follow first for members
// not followed yet (Mastodon refuses to list accounts one does not follow).
func (p *planner) planListMembers(rows []Row, follows []Row) {
	inFollows := map[string]bool{}
	for _, r := range follows {
		inFollows[strings.ToLower(r.Account)] = true
	}
	planned := map[string]bool{}
	for _, it := range p.items {
		if it.Step == stepFollow {
			planned[it.Key] = true
		}
	}
	for _, r := range rows {
		entry := listEntry(r.List, r.Account)
		pl := payload{Type: Lists, Source: r.Pos.String(), Entry: entry, List: r.List}
		a, known, why := p.target(r.Account, p.following)
		if why != "" {
			p.add(stepListMember, entry, journal.ItemFailed, why, pl)
			continue
		}
		if !known && a.Moved != nil && a.Moved.ID != "" {
			pl.MovedTo = p.key(a.Moved.Acct)
			a = *a.Moved
		}
		pl.TargetID = a.ID
		if id, ok := p.lists[r.List]; ok && p.members[id][p.key(a.Acct)] {
			p.add(stepListMember, entry, journal.ItemSkipped, "already in the list", pl)
			continue
		}
		fk := strings.ToLower(r.Account)
		if _, followed := p.following[p.key(a.Acct)]; !followed && !planned[fk] {
			planned[fk] = true
			p.add(stepFollow, fk, journal.ItemPending, "", payload{Type: Following, Source: r.Pos.String(), Entry: r.Account,
				TargetID: a.ID, MovedTo: pl.MovedTo, Note: "followed for list " + r.List})
		}
		p.add(stepListMember, entry, journal.ItemPending, "", pl)
	}
}

func (p *planner) planAccounts(t Type, step string, rows []Row, have map[string]fedi.Account) {
	if p.bulk(t, len(rows)) {
		p.planBulk(t, rows, have)
		return
	}
	for _, r := range rows {
		pl := payload{Type: t, Source: r.Pos.String(), Entry: r.Account, HideNotif: r.HideNotifications}
		key := strings.ToLower(r.Account)
		a, known, why := p.target(r.Account, have)
		switch {
		case known:
			pl.TargetID = a.ID
			p.add(step, key, journal.ItemSkipped, "already there", pl)
		case why != "":
			p.add(step, key, journal.ItemFailed, why, pl)
		default:
			pl.TargetID = a.ID
			p.add(step, key, journal.ItemPending, "", pl)
		}
	}
}

func (p *planner) planDomains(rows []Row) {
	for _, r := range rows {
		pl := payload{Type: DomainBlocks, Source: r.Pos.String(), Entry: r.Domain, Domain: r.Domain}
		switch {
		case p.domains == nil:
			p.add(stepDomainBlock, r.Domain, journal.ItemFailed, "this server has no user-level domain blocks", pl)
		case p.domains[r.Domain]:
			p.add(stepDomainBlock, r.Domain, journal.ItemSkipped, "already blocked", pl)
		default:
			p.add(stepDomainBlock, r.Domain, journal.ItemPending, "", pl)
		}
	}
}

func (p *planner) planBookmarks(ctx context.Context, rows []Row) error {
	for _, r := range rows {
		pl := payload{Type: Bookmarks, Source: r.Pos.String(), Entry: r.URI, URI: r.URI}
		if id, ok := p.bookmarks[r.URI]; ok {
			pl.TargetID = id
			p.add(stepBookmark, r.URI, journal.ItemSkipped, "already bookmarked", pl)
			continue
		}
		s, err := p.c.ResolveStatus(ctx, r.URI)
		switch {
		case err == nil:
			pl.TargetID = s.ID
			if s.Bookmarked {
				p.add(stepBookmark, r.URI, journal.ItemSkipped, "already bookmarked", pl)
			} else {
				p.add(stepBookmark, r.URI, journal.ItemPending, "", pl)
			}
		case fedi.IsUnauthorized(err) || ctx.Err() != nil:
			return errors.Join(err, ctx.Err())
		case fedi.IsNotFound(err):
			p.add(stepBookmark, r.URI, journal.ItemFailed, "post not found or not visible to this account", pl)
		default:
			p.add(stepBookmark, r.URI, journal.ItemFailed, "could not fetch the post: "+err.Error(), pl)
		}
	}
	return nil
}

// planRemovals plans what overwrite takes away: entries of each imported
// type that the files do not list.
func (p *planner) planRemovals(follows, listRows, blocks, mutes []Row) {
	inFiles := func(rows []Row) map[string]bool {
		m := map[string]bool{}
		for _, r := range rows {
			m[p.key(r.Account)] = true
			if res, ok := p.resolved[strings.ToLower(r.Account)]; ok && res.acct.Moved != nil {
				m[p.key(res.acct.Moved.Acct)] = true
			}
		}
		return m
	}
	remove := func(t Type, step string, have map[string]fedi.Account, keep map[string]bool) {
		for k, a := range have {
			if !keep[k] {
				p.add(step, k, journal.ItemPending, "", payload{Type: t, Entry: k, TargetID: a.ID, Note: "not in the file"})
			}
		}
	}
	if p.has(Following) {
		keep := inFiles(follows)
		for k, v := range inFiles(listRows) {
			keep[k] = v // list members must stay followed
		}
		remove(Following, stepUnfollow, p.following, keep)
	}
	if p.has(Blocks) {
		remove(Blocks, stepUnblock, p.blocked, inFiles(blocks))
	}
	if p.has(Mutes) {
		remove(Mutes, stepUnmute, p.muted, inFiles(mutes))
	}
	if p.has(DomainBlocks) && p.domains != nil {
		keep := map[string]bool{}
		for _, r := range p.rowsOf(DomainBlocks) {
			keep[r.Domain] = true
		}
		for d := range p.domains {
			if !keep[d] {
				p.add(stepDomainUnblock, d, journal.ItemPending, "", payload{Type: DomainBlocks, Entry: d, Domain: d, Note: "not in the file"})
			}
		}
	}
	if p.has(Bookmarks) {
		keep := map[string]bool{}
		for _, r := range p.rowsOf(Bookmarks) {
			keep[r.URI] = true
		}
		for uri, id := range p.bookmarks {
			if !keep[uri] {
				p.add(stepUnbookmark, uri, journal.ItemPending, "", payload{Type: Bookmarks, Entry: uri, URI: uri, TargetID: id, Note: "not in the file"})
			}
		}
	}
	if p.has(Lists) {
		keep := map[string]bool{}
		for _, r := range listRows {
			keep[listEntry(r.List, p.key(r.Account))] = true
		}
		for title, id := range p.lists {
			for m := range p.members[id] {
				if e := listEntry(title, m); !keep[e] {
					a := p.following[m]
					p.add(stepListMemberRemove, e, journal.ItemPending, "", payload{Type: Lists, Entry: e, List: title, TargetID: a.ID, Note: "not in the file"})
				}
			}
		}
	}
	// Removals are planned from maps; sort them so plans are reproducible.
	slices.SortStableFunc(p.items, func(a, b journal.Item) int {
		ra, rb := isRemoval(a.Step), isRemoval(b.Step)
		switch {
		case ra && rb:
			return strings.Compare(a.Step+a.Key, b.Step+b.Key)
		case ra:
			return 1
		case rb:
			return -1
		}
		return 0
	})
}
