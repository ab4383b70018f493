package platform

import (
	"fmt"

	"github.com/fedi-ferry/ferry/state"
)

// NoRole is the error for an account whose platform lacks a role a
// command needs; what says what the command wanted to do ("publish
// posts").
func NoRole(acct state.Account, what string) error {
	return fmt.Errorf("account %s: ferry cannot %s on %s accounts", acct.Handle, what, acct.Platform)
}

// AuthHint adds what to do to an error that says the server no longer
// accepts the account's token (IsUnauthorized); other errors come back as
// they are.
func AuthHint(err error, acct state.Account) error {
	if IsUnauthorized(err) {
		return fmt.Errorf("%w\n  the server no longer accepts ferry's token for %s (revoked, expired or missing a permission); run `ferry login %s` again",
			err, acct.Handle, acct.Server)
	}
	return err
}

// UsageOf returns what s's connection has done, or nothing for platforms
// that do not count (not Metered).
func UsageOf(s Session) Usage {
	if m, ok := s.(Metered); ok {
		return m.Usage()
	}
	return Usage{}
}
