// Package move orchestrates a Move-based account migration: the lifeboat
// export, the alias on the new account, waiting until the old server can see
// it, the ActivityPub Move, the replay of everything a Move does not carry,
// and the check of who followed. Every step is journaled (plan → journal →
// apply), so the command can be run again after any interruption and goes on
// where it stopped, never repeating the Move.
//
// The package knows the servers (through fedi) and the order of the steps.
// Migration performs the lifeboat, replay and publish steps through the
// migrate, sinks/archive and migrate/publish operations, with the clients and
// journal the caller wires, and returns their typed results as one
// MigrationResult; Runner alone takes any Steps.
package move

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/migrate"
	sinkarchive "github.com/fedi-ferry/ferry/sinks/archive"
)

// Side is one end of a migration: a logged-in account and what its server
// runs.
type Side struct {
	Handle string       // user@host, as ferry stores the account
	Client *fedi.Client // the Mastodon API family's sides; nil with API
	// API, when not nil, is the side's server in the Mastodon API's terms
	// (another platform's translation); Graph likewise for its graph.
	API   SideAPI
	Graph migrate.API
	// Archive, when not nil, is the side's posts in the archiver's terms
	// (another platform's translation; nil: Client).
	Archive  sinkarchive.API
	Software fedi.Software
	Account  fedi.Account // from verify_credentials
	URI      string       // the ActivityPub actor ID
}

// Abilities returns what the side's server can do through its API.
func (s *Side) Abilities() fedi.MoveAbilities { return fedi.Abilities(s.Software.Name) }

// Guidance returns how a migration is done on the side's server software.
func (s *Side) Guidance() Guidance { return GuidanceFor(s.Software.Name) }

// unverifiable says what ferry can check after a Move it cannot see.
func unverifiable(g Guidance) string {
	if g.Verifiable {
		return "ferry waits until the old account shows the Move"
	}
	return "ferry cannot see whether it was done (the server never shows the old account as moved)"
}

// Check is one finding of the preflight.
type Check struct {
	Name     string `json:"name"`
	OK       bool   `json:"ok"`
	Blocking bool   `json:"blocking,omitempty"` // the migration cannot proceed
	Detail   string `json:"detail"`
}

// Plan is what `ferry migrate plan` shows: the checks, the steps ferry will
// take, and what a Move cannot carry.
type Plan struct {
	Old        string   `json:"old"`
	New        string   `json:"new"`
	Checks     []Check  `json:"checks"`
	Steps      []string `json:"steps"`
	CannotMove []string `json:"cannot_move"`
	Warning    string   `json:"warning"`
	// AlreadyMoved: the old account already points to the new one (a
	// previous run did the Move); a run resumes with the replay.
	AlreadyMoved bool `json:"already_moved,omitempty"`
}

// Blocked reports whether a check forbids the migration.
func (p Plan) Blocked() bool {
	for _, c := range p.Checks {
		if c.Blocking && !c.OK {
			return true
		}
	}
	return false
}

// Blockers returns the details of the blocking checks that failed.
func (p Plan) Blockers() []string {
	var out []string
	for _, c := range p.Checks {
		if c.Blocking && !c.OK {
			out = append(out, c.Detail)
		}
	}
	return out
}

// Preflight inspects both accounts and describes the migration without
// changing anything. hc fetches public actor documents.
func Preflight(ctx context.Context, old, new *Side, hc *http.Client) (Plan, error) {
	p := Plan{Old: old.Handle, New: new.Handle}
	add := func(c Check) { p.Checks = append(p.Checks, c) }

	add(Check{Name: "accounts", OK: true, Detail: fmt.Sprintf("both tokens work: %s on %s %s, %s on %s %s",
		old.Handle, old.Software.Name, old.Software.Version, new.Handle, new.Software.Name, new.Software.Version)})

	if strings.EqualFold(old.URI, new.URI) {
		add(Check{Name: "distinct", Blocking: true, Detail: "the old and the new account are the same account"})
	}

	switch m := old.Account.Moved; {
	case m == nil:
		add(Check{Name: "old-not-moved", OK: true, Detail: old.Handle + " has not moved"})
	case sameAccount(m, new):
		p.AlreadyMoved = true
		add(Check{Name: "old-not-moved", OK: true, Detail: fmt.Sprintf(
			"%s already moved to %s; a run continues with what is left (replay, verify)", old.Handle, new.Handle)})
	default:
		add(Check{Name: "old-not-moved", Blocking: true, Detail: fmt.Sprintf(
			"%s has already moved to %s; a second Move is refused by every server. Undo the redirect in %s's settings first, if the server allows it",
			old.Handle, m.Acct, old.Handle)})
	}
	if m := new.Account.Moved; m != nil {
		add(Check{Name: "new-not-moved", Blocking: true, Detail: fmt.Sprintf(
			"%s has itself moved to %s; servers refuse a Move to an account that has moved on", new.Handle, m.Acct)})
	} else {
		add(Check{Name: "new-not-moved", OK: true, Detail: new.Handle + " has not moved"})
	}

	aliases, aliasErr := NewAliases(ctx, new, hc)
	switch {
	case aliasErr != nil:
		add(Check{Name: "alias", OK: false, Detail: fmt.Sprintf("could not read %s's aliases: %v", new.Handle, aliasErr)})
	case slices.Contains(aliases, old.URI) || slices.Contains(aliases, old.Handle):
		add(Check{Name: "alias", OK: true, Detail: fmt.Sprintf("%s already lists %s as an alias (alsoKnownAs)", new.Handle, old.Handle)})
	default:
		how := "ferry adds it through the API"
		if !new.Abilities().AliasAPI {
			how = fmt.Sprintf("%s has no API for it: ferry shows what to enter in its settings and waits", new.Software.Name)
		}
		add(Check{Name: "alias", OK: true, Detail: fmt.Sprintf("%s does not list %s as an alias yet; %s", new.Handle, old.Handle, how)})
	}

	og, ng := old.Guidance(), new.Guidance()
	switch {
	case old.Abilities().MoveAPI:
		d := fmt.Sprintf("%s can send the Move through its API; ferry asks for %s's password once and keeps it nowhere", old.Software.Name, old.Handle)
		if og.MoveNote != "" {
			d += ". " + og.MoveNote
		}
		add(Check{Name: "move-api", OK: true, Detail: d})
	case og.Move == SupportGuided:
		add(Check{Name: "move-api", OK: true, Detail: fmt.Sprintf(
			"%s has no API for the Move: ferry shows where to start it in the web interface (%s) and waits until it is done",
			orName(old.Software.Name), PageURL(old.Base(), og.MovePage, old.Account.ID))})
	case og.Move == SupportAdminOnly:
		add(Check{Name: "move-api", OK: false, Detail: fmt.Sprintf(
			"%s has neither an API nor a web page for the Move: only its administrator can send it (%s), and %s",
			orName(old.Software.Name), og.MoveCommand, unverifiable(og))})
	default:
		add(Check{Name: "move-api", Blocking: true, Detail: fmt.Sprintf(
			"%s cannot send a Move at all: followers cannot be moved; export and import the graph instead (ferry export, ferry import)", orName(old.Software.Name))})
	}
	if ng.Alias == SupportNone {
		add(Check{Name: "alias-support", Blocking: true, Detail: fmt.Sprintf(
			"%s cannot list an alias, which every server checks before it accepts a Move", orName(new.Software.Name))})
	} else {
		add(Check{Name: "alias-support", OK: ng.Alias != SupportAdminOnly,
			Detail: ng.describe("alias on "+new.Handle, ng.Alias, ng.AliasPage, ng.AliasCommand, new.Base(), new.Account.ID)})
	}
	add(Check{Name: "move-support", OK: og.Move == SupportAPI || og.Move == SupportGuided,
		Detail: og.describe("Move from "+old.Handle, og.Move, og.MovePage, og.MoveCommand, old.Base(), old.Account.ID)})
	add(Check{Name: "cooldown", OK: true, Detail: og.Cooldown})

	p.Steps = []string{
		"lifeboat: export " + old.Handle + "'s follows, followers, lists, blocks, mutes, domain blocks, bookmarks and post archive",
		"alias: make " + new.Handle + " list " + old.Handle + " as an alias (alsoKnownAs)",
		"wait until " + old.Handle + "'s server can see the alias, so the Move is not refused",
		"move: " + old.Handle + " sends Move to its followers; their servers follow " + new.Handle + " instead",
		"replay on " + new.Handle + ": follows (with their settings), blocks, mutes, domain blocks, lists, bookmarks",
		"verify: " + old.Handle + " points to " + new.Handle + "; list the followers who have not followed " + new.Handle + " yet (not_moved.csv)",
	}
	p.CannotMove = []string{
		"posts, media, favourites and boosts stay on " + old.Handle + "'s server (a Move carries followers only); " +
			"ferry keeps them in the lifeboat archive and can publish them on " + new.Handle + " (--publish-archive)",
		"followers on servers that do not process Move (they appear in not_moved.csv)",
	}
	p.Warning = fmt.Sprintf("The Move cannot be undone for a while: after it, %s is a redirect to %s. %s.",
		old.Handle, new.Handle, og.Cooldown)
	return p, nil
}

// NewAliases returns the aliases the new account lists: through its API
// where there is one, else from its public actor document.
func NewAliases(ctx context.Context, new *Side, hc *http.Client) ([]string, error) {
	if new.Abilities().AliasAPI {
		return new.api().Aliases(ctx)
	}
	a, err := fedi.FetchActor(ctx, hc, new.URI)
	if err != nil {
		return nil, err
	}
	return a.AlsoKnownAs, nil
}

func sameAccount(a *fedi.Account, s *Side) bool {
	if a.URI != "" && a.URI == s.URI {
		return true
	}
	acct := strings.ToLower(a.Acct)
	return acct == strings.ToLower(s.Handle) || (a.URL != "" && a.URL == s.Account.URL)
}

func orName(s string) string {
	if s == "" {
		return "this server"
	}
	return s
}
