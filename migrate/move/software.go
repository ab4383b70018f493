package move

import (
	"fmt"
	"net/url"
	"strings"
)

// Support says how one migration step (the alias on the new account, the
// Move from the old one) can be done on a server software.
type Support string

// The ways a step can be done.
const (
	// SupportAPI: ferry does it through the server's client API.
	SupportAPI Support = "api"
	// SupportGuided: the person does it on a web page ferry names, and
	// ferry sees the result through the API.
	SupportGuided Support = "guided"
	// SupportAdminOnly: only the server's administrator can do it (a
	// command line on the server); ferry can name the command but may not
	// be able to see the result.
	SupportAdminOnly Support = "admin-only"
	// SupportNone: the software cannot do it at all.
	SupportNone Support = "impossible"
)

// Guidance is what ferry knows about account migration on one server
// software: how the alias and the Move are done, where, whether the Move
// shows afterwards (the old account's `moved`), and the rule on repeated
// Moves. Each entry cites the software's own documentation.
type Guidance struct {
	Software string  `json:"software"`
	Alias    Support `json:"alias"`
	Move     Support `json:"move"`
	// AliasPage and MovePage are paths on the server for guided steps;
	// "{id}" stands for the account's ID.
	AliasPage string `json:"alias_page,omitempty"`
	MovePage  string `json:"move_page,omitempty"`
	// AliasCommand and MoveCommand are the administrator's commands for
	// admin-only steps.
	AliasCommand string `json:"alias_command,omitempty"`
	MoveCommand  string `json:"move_command,omitempty"`
	// Verifiable: the old account shows `moved` through the API once the
	// Move is done, so ferry can wait for it.
	Verifiable bool `json:"verifiable"`
	// Cooldown is the software's rule on repeated Moves, in words.
	Cooldown string `json:"cooldown"`
	// MoveNote is what the person should know of a Move through the API
	// (what ferry asks for, what the server does), in words; "" if
	// nothing.
	MoveNote string `json:"move_note,omitempty"`
}

// GuidanceFor returns the migration guidance for a server software (its
// nodeinfo name, lower case).
func GuidanceFor(software string) Guidance {
	g := Guidance{Software: software, Verifiable: true}
	switch software {
	case "mastodon":
		// https://docs.joinmastodon.org/user/moving/ — aliases at
		// /settings/aliases, the Move at /settings/migration; "you will
		// not be able to move again for 30 days" (the cooldown period).
		g.Alias, g.AliasPage = SupportGuided, "/settings/aliases"
		g.Move, g.MovePage = SupportGuided, "/settings/migration"
		g.Cooldown = "Mastodon allows one Move every 30 days"
	case "gotosocial":
		// https://docs.gotosocial.org/en/latest/user_guide/migration/ —
		// POST /api/v1/accounts/alias and /api/v1/accounts/move; a Move is
		// refused within 5 minutes of an attempt and 7 days of a success.
		g.Alias, g.Move = SupportAPI, SupportAPI
		g.Cooldown = "GoToSocial refuses a Move within 5 minutes of another attempt and within 7 days of a successful Move"
	case "akkoma", "pleroma":
		// https://docs.akkoma.dev/stable/development/API/pleroma_api/ —
		// PUT /api/pleroma/aliases and POST /api/pleroma/move_account.
		g.Alias, g.Move = SupportAPI, SupportAPI
		g.Cooldown = "Akkoma and Pleroma document no limit on repeated Moves"
	case "misskey", "sharkey", "firefish", "iceshrimp", "cherrypick", "foundkey", "calckey", "catodon":
		// https://misskey-hub.net/en/docs/for-users/features/account-migration/
		// — aliases through i/update (alsoKnownAs); the Move through
		// i/move, a "secure" endpoint (endpoints/i/move.ts) that takes only
		// the account's native token, which ferry gets by signing in with
		// the password (and the one-time code) as the web client does
		// (SigninApiService.ts). Where the server wants a captcha at
		// sign-in, only the web client's settings (Settings → Account
		// migration) can send it, so the page stays named for that case.
		g.Alias = SupportAPI
		g.Move, g.MovePage = SupportAPI, "/settings/migration"
		g.Cooldown = "Misskey allows 5 Move calls a day; the old account cannot be used afterwards"
		g.MoveNote = "ferry signs in with it (and the one-time code when two-factor authentication is on), as the web " +
			"client does, so the account gets a \"login\" notification (and an email, if it has an address); the " +
			"sign-in's token serves the Move only. Where the server asks for a captcha at sign-in, ferry shows where " +
			"to send the Move in the web client instead"
	case "hollo":
		// https://docs.hollo.social/ (Account migration): both the alias
		// and the Move are on the account's page of the dashboard,
		// /accounts/<id>/migrate; Hollo has no API for either.
		g.Alias, g.AliasPage = SupportGuided, "/accounts/{id}/migrate"
		g.Move, g.MovePage = SupportGuided, "/accounts/{id}/migrate"
		g.Cooldown = "Hollo documents no limit on repeated Moves"
	case "snac", "snac2":
		// https://codeberg.org/grunfink/snac2 (snac(8), "alias" and
		// "migrate"): only the administrator's command line sets the alias
		// and sends the Move, and the account never shows `moved` through
		// the API afterwards.
		g.Alias, g.Move = SupportAdminOnly, SupportAdminOnly
		g.AliasCommand = "snac alias <basedir> <user> <old account>"
		g.MoveCommand = "snac migrate <basedir> <user>"
		g.Verifiable = false
		g.Cooldown = "snac2 documents no limit on repeated Moves"
	case "lemmy", "peertube", "writefreely", "plume", "bookwyrm", "friendica":
		// None of these sends or accepts an account Move (their
		// ActivityPub documentation lists no Move activity for accounts).
		g.Alias, g.Move = SupportNone, SupportNone
		g.Verifiable = false
		g.Cooldown = "no Move at all"
	default:
		// Unknown software: Mastodon's pages are the most common, but may
		// not exist; say so instead of claiming Mastodon's rules.
		g.Alias, g.AliasPage = SupportGuided, "/settings/aliases"
		g.Move, g.MovePage = SupportGuided, "/settings/migration"
		g.Cooldown = "the rule on repeated Moves of " + orName(software) + " is not known to ferry (Mastodon's is one every 30 days)"
	}
	return g
}

// PageURL returns the guided page at base for path ("" when there is
// none), with the account's ID in place of "{id}".
func PageURL(base *url.URL, path, accountID string) string {
	if path == "" || base == nil {
		return ""
	}
	return base.JoinPath(strings.ReplaceAll(path, "{id}", url.PathEscape(accountID))).String()
}

// describe says in one line how a step can be done, for the plan.
func (g Guidance) describe(step string, s Support, page, command string, base *url.URL, accountID string) string {
	name := orName(g.Software)
	switch s {
	case SupportAPI:
		return fmt.Sprintf("%s: ferry does it through %s's API", step, name)
	case SupportGuided:
		return fmt.Sprintf("%s: %s has no API for it; you do it at %s and ferry waits until it shows", step, name, PageURL(base, page, accountID))
	case SupportAdminOnly:
		return fmt.Sprintf("%s: only %s's administrator can do it, on the server's command line (%s)", step, name, command)
	default:
		return fmt.Sprintf("%s: impossible, %s has no account Move", step, name)
	}
}
