// Package bridgy maps account names between Bluesky and the fediverse the
// way Bridgy Fed (https://fed.brid.gy) names the accounts it bridges. It is
// pure string work: whether an account is bridged at all is learned only by
// resolving the mapped name, which the importers do.
//
// The rules, from Bridgy Fed's documentation (https://fed.brid.gy/docs,
// "How do I find a bridged Bluesky account?" and "How do I find a bridged
// fediverse account?") and its code (ids.py, translate_handle):
//
//   - A Bluesky account with the handle H appears on the fediverse as
//     @H@bsky.brid.gy: @alice.bsky.social is @alice.bsky.social@bsky.brid.gy.
//     Custom-domain handles keep their domain (@example.com@bsky.brid.gy).
//   - A fediverse account @user@instance appears on Bluesky as
//     user.instance.ap.brid.gy: @bob@example.social is
//     bob.example.social.ap.brid.gy.
//   - AT Protocol handles allow only letters, digits and hyphens in a label
//     (https://atproto.com/specs/handle), so Bridgy Fed writes a fediverse
//     username's underscores and tildes as hyphens (bridgy-fed issue #982);
//     x_y and x-y on one instance would collide, which Bridgy Fed accepts.
//   - A username that begins or ends with _, - or ~ cannot become a handle
//     label at all (bridgy-fed issue #1005, open): such accounts are not
//     bridged under a default handle.
//   - An instance with a port (example.social:8443) cannot be part of a
//     handle, so its accounts have no default bridged handle either.
//   - A bridged account may have set a custom-domain handle instead of the
//     default one (bridgy-fed issues #826, #1150); the default name may then
//     no longer resolve. ferry reports that as "not bridged" with the name
//     it tried, which is all it can know.
//   - The reverse maps follow: H@bsky.brid.gy is the Bluesky handle H, and
//     user.instance.ap.brid.gy is the fediverse address user@instance (a
//     hyphen may have been an underscore; ferry tries the name as written).
package bridgy

import (
	"errors"
	"fmt"
	"strings"
)

// Bridgy Fed's domains.
const (
	// BskyDomain is the fediverse domain of bridged Bluesky accounts.
	BskyDomain = "bsky.brid.gy"
	// APSuffix ends the Bluesky handles of bridged fediverse accounts.
	APSuffix = ".ap.brid.gy"
)

// ErrUnmappable is wrapped by the mapping functions for a name Bridgy Fed
// cannot bridge under a default name.
var ErrUnmappable = errors.New("Bridgy Fed has no default bridged name for it")

// FediverseAddress returns the fediverse address (user@host, without a
// leading @) under which Bridgy Fed bridges the Bluesky account with the
// given handle. A handle that is itself a bridged fediverse account
// (bob.example.social.ap.brid.gy) maps back to that account (bob@example.social).
func FediverseAddress(handle string) (string, error) {
	h := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(handle), "@"), "."))
	if h == "" || !strings.Contains(h, ".") || strings.ContainsAny(h, "@:/ ") {
		return "", fmt.Errorf("%q is not a Bluesky handle: %w", handle, ErrUnmappable)
	}
	if h == "handle.invalid" {
		return "", fmt.Errorf("the account's handle does not verify (handle.invalid): %w", ErrUnmappable)
	}
	if strings.HasSuffix(h, APSuffix) {
		rest := strings.TrimSuffix(h, APSuffix)
		user, host, ok := strings.Cut(rest, ".")
		if !ok || user == "" || !strings.Contains(host, ".") {
			return "", fmt.Errorf("%q is not a bridged fediverse handle: %w", handle, ErrUnmappable)
		}
		return user + "@" + host, nil
	}
	return h + "@" + BskyDomain, nil
}

// BlueskyHandle returns the Bluesky handle under which Bridgy Fed bridges
// the fediverse account addr (@user@host or user@host). An address on
// bsky.brid.gy is a bridged Bluesky account and maps back to its handle.
func BlueskyHandle(addr string) (string, error) {
	a := strings.TrimPrefix(strings.TrimSpace(addr), "@")
	user, host, ok := strings.Cut(a, "@")
	if !ok || user == "" || host == "" || strings.Contains(host, "@") {
		return "", fmt.Errorf("%q is not a fediverse address (user@host): %w", addr, ErrUnmappable)
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == BskyDomain {
		return strings.ToLower(user), nil
	}
	if strings.Contains(host, ":") {
		return "", fmt.Errorf("%s: a server with a port (%s) cannot be part of a Bluesky handle: %w", addr, host, ErrUnmappable)
	}
	if strings.ContainsAny(user[:1], "_-~") || strings.ContainsAny(user[len(user)-1:], "_-~") {
		return "", fmt.Errorf("%s: a user name that begins or ends with _, - or ~ cannot be a Bluesky handle label (bridgy-fed issue #1005): %w", addr, ErrUnmappable)
	}
	label := strings.ToLower(strings.NewReplacer("_", "-", "~", "-").Replace(user))
	for _, r := range label {
		if r != '-' && (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return "", fmt.Errorf("%s: the user name has a character a Bluesky handle cannot hold (%q): %w", addr, r, ErrUnmappable)
		}
	}
	for _, l := range strings.Split(host, ".") {
		if l == "" || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return "", fmt.Errorf("%s: %q is not a domain: %w", addr, host, ErrUnmappable)
		}
	}
	h := label + "." + host + APSuffix
	if len(h) > 253 {
		return "", fmt.Errorf("%s: the bridged handle would be longer than 253 characters: %w", addr, ErrUnmappable)
	}
	return h, nil
}

// IsBridgedBluesky reports whether addr (user@host) is a Bluesky account
// as Bridgy Fed shows it on the fediverse.
func IsBridgedBluesky(addr string) bool {
	_, host, ok := strings.Cut(strings.TrimPrefix(addr, "@"), "@")
	return ok && strings.EqualFold(strings.TrimSuffix(host, "."), BskyDomain)
}

// IsBridgedFediverse reports whether handle is a fediverse account as
// Bridgy Fed shows it on Bluesky.
func IsBridgedFediverse(handle string) bool {
	return strings.HasSuffix(strings.ToLower(strings.TrimSuffix(handle, ".")), APSuffix)
}

// NotBridged is the reason an importer gives for a mapped name that did
// not resolve.
func NotBridged(original, mapped, why string) string {
	return fmt.Sprintf("not bridged: %s would be %s through Bridgy Fed, which did not resolve (the account has not turned the bridge on, uses a custom bridged name, or Bridgy Fed is unreachable): %s",
		original, mapped, why)
}
