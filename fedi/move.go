package fedi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ErrNoAPI is wrapped by errors for a step the server only offers in its
// web interface (Mastodon's aliases and Move are web forms) or not at all.
var ErrNoAPI = errors.New("the server has no API for this")

// MoveAbilities says which migration steps a server software can do through
// its API. Facts from each software's source (see the project's protocol
// notes): GoToSocial and Akkoma/Pleroma have API endpoints for both; on
// Mastodon both are web forms; Misskey sets aliases with an app token and
// sends the Move with the account's native token, got by signing in.
type MoveAbilities struct {
	AliasAPI bool
	MoveAPI  bool
	// Cooldown describes the server's rule on repeated Moves, in words.
	Cooldown string
}

// Abilities returns what software can do through its API.
func Abilities(software string) MoveAbilities {
	switch software {
	case "gotosocial":
		return MoveAbilities{AliasAPI: true, MoveAPI: true,
			Cooldown: "GoToSocial refuses a Move within 5 minutes of another attempt and within 7 days of a successful Move"}
	case "akkoma", "pleroma":
		return MoveAbilities{AliasAPI: true, MoveAPI: true, Cooldown: "none documented"}
	case "misskey", "sharkey", "firefish", "iceshrimp", "cherrypick", "foundkey", "calckey", "catodon":
		// i/update takes alsoKnownAs from an app's token; i/move is a
		// "secure" endpoint, callable only with the account's native
		// token (endpoints/i/move.ts: meta.secure), which a sign-in with
		// the password answers (platform/misskey).
		return MoveAbilities{AliasAPI: true, MoveAPI: true, Cooldown: "Misskey allows 5 Move calls a day"}
	default:
		return MoveAbilities{Cooldown: "Mastodon allows one Move every 30 days"}
	}
}

// ActorURI returns the ActivityPub actor ID of acct (user@host) by asking
// the account's own server through WebFinger (RFC 7033).
func ActorURI(ctx context.Context, hc *http.Client, acct string) (string, error) {
	acct = strings.TrimPrefix(acct, "@")
	_, host, ok := strings.Cut(acct, "@")
	if !ok || host == "" {
		return "", fmt.Errorf("resolve %q: not a user@host handle", acct)
	}
	base, err := ParseServer(host)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", acct, err)
	}
	c := NewClient(base, "", hc)
	var doc struct {
		Links []struct {
			Rel  string `json:"rel"`
			Type string `json:"type"`
			Href string `json:"href"`
		} `json:"links"`
	}
	q := url.Values{"resource": {"acct:" + acct}}
	if _, err := c.Do(ctx, http.MethodGet, "/.well-known/webfinger", q, nil, &doc); err != nil {
		return "", fmt.Errorf("resolve %s through WebFinger: %w", acct, err)
	}
	for _, l := range doc.Links {
		if l.Rel == "self" && (strings.Contains(l.Type, "activity+json") || strings.Contains(l.Type, "ld+json")) && l.Href != "" {
			return l.Href, nil
		}
	}
	return "", fmt.Errorf("resolve %s through WebFinger: no ActivityPub actor link", acct)
}

// Aliases returns the actor URIs (or, on Akkoma/Pleroma, handles) the
// client's own account lists in alsoKnownAs.
func Aliases(ctx context.Context, c *Client, software string) ([]string, error) {
	switch software {
	case "gotosocial":
		var me struct {
			Source struct {
				AlsoKnownAsURIs []string `json:"also_known_as_uris"`
			} `json:"source"`
		}
		if _, err := c.Do(ctx, http.MethodGet, "/api/v1/accounts/verify_credentials", nil, nil, &me); err != nil {
			return nil, fmt.Errorf("read aliases at %s: %w", c.base.Host, err)
		}
		return me.Source.AlsoKnownAsURIs, nil
	case "akkoma", "pleroma":
		var out struct {
			Aliases []string `json:"aliases"`
		}
		if _, err := c.Do(ctx, http.MethodGet, "/api/pleroma/aliases", nil, nil, &out); err != nil {
			return nil, fmt.Errorf("read aliases at %s: %w", c.base.Host, err)
		}
		return out.Aliases, nil
	}
	return nil, fmt.Errorf("read aliases at %s (%s): %w", c.base.Host, software, ErrNoAPI)
}

// AddAlias adds the old account to the client's account's alsoKnownAs,
// keeping the aliases already there. oldURI is the old actor's ID, oldAcct
// its user@host handle (Akkoma/Pleroma take handles).
func AddAlias(ctx context.Context, c *Client, software, oldURI, oldAcct string) error {
	switch software {
	case "gotosocial":
		cur, err := Aliases(ctx, c, software)
		if err != nil {
			return err
		}
		for _, a := range cur {
			if a == oldURI {
				return nil
			}
		}
		// JSON, not a form: GoToSocial ignores a form-encoded array here.
		body := map[string][]string{"also_known_as_uris": append(cur, oldURI)}
		if _, err := c.Do(ctx, http.MethodPost, "/api/v1/accounts/alias", nil, body, nil); err != nil {
			return fmt.Errorf("add alias %s at %s: %w", oldURI, c.base.Host, err)
		}
		return nil
	case "akkoma", "pleroma":
		if _, err := c.DoForm(ctx, http.MethodPut, "/api/pleroma/aliases", url.Values{"alias": {oldAcct}}, nil); err != nil {
			return fmt.Errorf("add alias %s at %s: %w", oldAcct, c.base.Host, err)
		}
		return nil
	}
	return fmt.Errorf("add alias at %s (%s): %w", c.base.Host, software, ErrNoAPI)
}

// MoveAccount asks the client's server to Move its account to the target.
// The password is the account's password; it is sent once and kept
// nowhere. An *APIError with status 422 usually means the target does not
// (yet, as this server sees it) list the account as an alias.
func MoveAccount(ctx context.Context, c *Client, software, targetURI, targetAcct, password string) error {
	var err error
	switch software {
	case "gotosocial":
		_, err = c.DoForm(ctx, http.MethodPost, "/api/v1/accounts/move",
			url.Values{"password": {password}, "moved_to_uri": {targetURI}}, nil)
	case "akkoma", "pleroma":
		var out struct {
			Error string `json:"error"`
		}
		_, err = c.DoForm(ctx, http.MethodPost, "/api/pleroma/move_account",
			url.Values{"password": {password}, "target_account": {targetAcct}}, &out)
		if err == nil && out.Error != "" {
			err = errors.New(out.Error)
		}
	default:
		return fmt.Errorf("move at %s (%s): %w", c.base.Host, software, ErrNoAPI)
	}
	if err != nil {
		return fmt.Errorf("move %s to %s: %w", c.base.Host, targetAcct, err)
	}
	return nil
}

// Actor is the part of an ActivityPub actor document ferry checks.
type Actor struct {
	ID          string   `json:"id"`
	MovedTo     string   `json:"movedTo"`
	AlsoKnownAs []string `json:"alsoKnownAs"`
}

// UnmarshalJSON accepts alsoKnownAs as a string or an array (both are valid
// JSON-LD).
func (a *Actor) UnmarshalJSON(b []byte) error {
	var raw struct {
		ID          string          `json:"id"`
		MovedTo     string          `json:"movedTo"`
		AlsoKnownAs json.RawMessage `json:"alsoKnownAs"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	a.ID, a.MovedTo, a.AlsoKnownAs = raw.ID, raw.MovedTo, nil
	if len(raw.AlsoKnownAs) == 0 || string(raw.AlsoKnownAs) == "null" {
		return nil
	}
	var one string
	if json.Unmarshal(raw.AlsoKnownAs, &one) == nil {
		a.AlsoKnownAs = []string{one}
		return nil
	}
	return json.Unmarshal(raw.AlsoKnownAs, &a.AlsoKnownAs)
}

// FetchActor reads a public actor document (servers without authorized
// fetch serve it unsigned, Mastodon by default among them).
func FetchActor(ctx context.Context, hc *http.Client, uri string) (Actor, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return Actor{}, fmt.Errorf("fetch actor %s: %w", uri, err)
	}
	req.Header.Set("Accept", `application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"`)
	resp, err := hc.Do(req)
	if err != nil {
		return Actor{}, fmt.Errorf("fetch actor %s: %w", uri, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Actor{}, fmt.Errorf("fetch actor %s: %s", uri, resp.Status)
	}
	var a Actor
	if err := decodeJSON(resp, &a); err != nil {
		return Actor{}, fmt.Errorf("fetch actor %s: %w", uri, err)
	}
	return a, nil
}
