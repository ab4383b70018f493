package misskey

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// APIError is a Misskey API failure: the HTTP status and, when Misskey
// itself answered, its error code ("NO_SUCH_NOTE", "INVALID_PARAM",
// "RATE_LIMIT_EXCEEDED" …), id, kind and info.
type APIError struct {
	Endpoint string
	Status   int
	Code     string
	Message  string
	ID       string
	Kind     string // "client", "server" or "permission"
	Info     json.RawMessage
	// Wait is a 429's announced wait (Retry-After), 0 when unknown.
	Wait time.Duration
}

// RetryAfter returns the wait a 429 announced, 0 when unknown; callers
// that schedule retries (the bridge) read it through this method.
func (e *APIError) RetryAfter() time.Duration { return e.Wait }

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("misskey %s: %d", e.Endpoint, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	s += ": " + msg
	if len(e.Info) > 0 && e.Code == "INVALID_PARAM" {
		var i struct{ Param, Reason string }
		if json.Unmarshal(e.Info, &i) == nil && i.Param != "" {
			s += fmt.Sprintf(" (%s: %s)", i.Param, i.Reason)
		}
	}
	return s
}

// Permanent reports whether the same call will fail again: a refusal of
// the request itself (4xx but 408 and 429).
func (e *APIError) Permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// Transient reports whether the call may pass later: a rate limit, a
// timeout, a server failure.
func (e *APIError) Transient() bool { return !e.Permanent() }

// IsCode reports whether err is Misskey's error with this code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// IsUnauthorized reports whether err means the server does not accept
// the token: unknown or revoked (AUTHENTICATION_FAILED, answered 401 by
// Misskey 2023.12 and later, 403 before), missing (CREDENTIAL_REQUIRED),
// or without the permission the endpoint needs (PERMISSION_DENIED).
func IsUnauthorized(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.Code {
	case "AUTHENTICATION_FAILED", "CREDENTIAL_REQUIRED", "PERMISSION_DENIED":
		return true
	}
	return ae.Code == "" && ae.Status == http.StatusUnauthorized
}

// Unauthorized reports whether the server refused the token (see
// IsUnauthorized); callers that know no platform read it.
func (e *APIError) Unauthorized() bool { return IsUnauthorized(e) }

// IsRateLimited reports whether err is a 429 the client did not wait out.
func IsRateLimited(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests
}

// AmbiguousError is the failure of a write whose outcome is unknown: the
// request left and the answer was lost (a reset, a timeout, a 502/503/504).
// The caller looks for what the write did before writing again.
type AmbiguousError struct {
	Endpoint string
	Err      error
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("misskey %s: the answer was lost, the write may or may not have happened: %v", e.Endpoint, e.Err)
}
func (e *AmbiguousError) Unwrap() error   { return e.Err }
func (e *AmbiguousError) Ambiguous() bool { return true }
func (e *AmbiguousError) Transient() bool { return true }

// NetworkError is a read that did not reach the server or lost its answer.
type NetworkError struct {
	Endpoint string
	Err      error
}

func (e *NetworkError) Error() string   { return fmt.Sprintf("misskey %s: %v", e.Endpoint, e.Err) }
func (e *NetworkError) Unwrap() error   { return e.Err }
func (e *NetworkError) Transient() bool { return true }

// ErrNotAPI is wrapped by NotAPIError.
var ErrNotAPI = errors.New("the server does not answer Misskey's API")

// NotAPIError is an answer that is not JSON where Misskey's API answers
// JSON: a server that says it runs Misskey but serves its web page (or a
// proxy's) at /api/.
type NotAPIError struct {
	URL         string
	Status      int
	ContentType string
}

func (e *NotAPIError) Error() string {
	ct := e.ContentType
	if ct == "" {
		ct = "no content type"
	}
	return fmt.Sprintf("%s answered %d with %s, not JSON: %v (is a proxy sending /api/ to the web client?)", e.URL, e.Status, ct, ErrNotAPI)
}
func (e *NotAPIError) Unwrap() error   { return ErrNotAPI }
func (e *NotAPIError) Permanent() bool { return true }
