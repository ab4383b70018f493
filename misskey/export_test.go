package misskey

import "time"

// SetSignInGap shortens the spacing of sign-in attempts for this
// package's tests, returning the previous value.
func SetSignInGap(d time.Duration) time.Duration {
	old := signinGap
	signinGap = d
	return old
}
