package fedi

import (
	"fmt"
	"time"
)

// QuotaError reports that a server's per-endpoint quota (Misskey: 20
// mutes an hour, 100 follows an hour …) is used up until Reset, further
// away than a caller should wait within one run. Callers that work
// through a list (an import) stop at it, leave the rest for a later run
// and tell the person when to run again; a request that met it did
// nothing on the server.
type QuotaError struct {
	Endpoint string        // the API call limited, e.g. "mute/create"
	Limit    int           // calls allowed per Per; 0 when unknown
	Per      time.Duration // the quota's window; 0 when unknown
	Reset    time.Time     // when the server said to try again
	Err      error         // the server's answer (a 429 *APIError)
}

// Unwrap returns the server's answer.
func (e *QuotaError) Unwrap() error { return e.Err }

func (e *QuotaError) Error() string {
	s := "the server rate-limits " + e.Endpoint
	if e.Limit > 0 && e.Per > 0 {
		per := "per " + e.Per.String()
		switch e.Per {
		case time.Hour:
			per = "per hour"
		case 24 * time.Hour:
			per = "per day"
		}
		s = fmt.Sprintf("the server limits %s to %d %s", e.Endpoint, e.Limit, per)
	}
	return s + "; try again after " + e.Reset.Local().Format("15:04")
}

// RetryAfter returns how long until Reset, for callers that schedule
// retries by it (the bridge).
func (e *QuotaError) RetryAfter() time.Duration { return max(time.Until(e.Reset), 0) }

// Transient reports true: the quota refills.
func (e *QuotaError) Transient() bool { return true }
