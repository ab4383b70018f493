package fedi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
)

// The one rule for sending a write again
//
// A write (any method but GET, HEAD and OPTIONS) whose outcome is unknown —
// the connection died after the request went out, the answer was cut off,
// a gateway answered 502/503/504, a deadline passed while waiting — may have
// been applied by the server. ferry sends such a write again only when
// repeating it cannot make a second copy:
//
//   - PUT and DELETE, and the account and list actions marked with
//     WithRetrySafe (following, blocking, muting an account twice leaves
//     one relationship), whatever the server;
//   - a request carrying an idempotency key (WithIdempotencyKey) to a server
//     known to honour such keys: Mastodon, as learnt from its nodeinfo
//     (NodeInfo tells the Transport). GoToSocial, Akkoma, Pleroma and
//     servers not yet detected ignore the header, so it is not even sent
//     to them: net/http's Transport itself resends a request carrying
//     Idempotency-Key when a reused connection dies before the answer.
//
// Every other write whose outcome is unknown fails with an error for which
// IsAmbiguous is true; the caller records it in its journal and, before any
// new attempt, looks on the server for what the first one did (a
// sinks.Finder, the relationship, the list). It is never repeated blind.
//
// A 429 is not ambiguous: servers refuse over-limit requests before the
// request reaches the code that acts on it (Mastodon's Rack::Attack and
// per-family RateLimiter, GoToSocial's rate-limit middleware), so the
// Transport resends any request after the wait a 429 names.

// ErrAmbiguous is wrapped by every error of a write whose outcome is
// unknown: the server may or may not have applied it.
var ErrAmbiguous = errors.New("the server may have applied the write; its answer was lost")

// AmbiguousError is the error of a write whose outcome is unknown. It wraps
// both ErrAmbiguous and the underlying failure.
type AmbiguousError struct {
	Method string
	URL    string // without query string
	Err    error
}

// Error names the failure; Err, or the caller's wrapping, already names
// the request.
func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%v (%v)", e.Err, ErrAmbiguous)
}

// Ambiguous reports that the outcome of the write is unknown, so that
// sinks.IsAmbiguous recognises it without knowing the platform.
func (e *AmbiguousError) Ambiguous() bool { return true }

// Unwrap returns ErrAmbiguous and the underlying failure, so errors.Is and
// errors.As see both.
func (e *AmbiguousError) Unwrap() []error { return []error{ErrAmbiguous, e.Err} }

// IsAmbiguous reports whether err is (or wraps) the failure of a write whose
// outcome is unknown. The caller must reconcile with the server before
// sending it again.
func IsAmbiguous(err error) bool { return errors.Is(err, ErrAmbiguous) }

// IsTransient reports whether err may go away if the call is made again
// later: an ambiguous write, a rate limit, a server error (5xx), a timeout
// (408) or a network failure. A transient write must still be reconciled
// before it is repeated when IsAmbiguous(err).
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if IsAmbiguous(err) || IsRateLimited(err) {
		return true
	}
	switch s := StatusCode(err); {
	case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests, s >= 500:
		return true
	case s != 0:
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, context.DeadlineExceeded)
}

// isWrite reports whether a request with method changes something.
func isWrite(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// HonoursIdempotencyKeys reports whether servers running sw keep the
// Idempotency-Key header of a create and answer a repeat with the first
// result (Mastodon keeps keys for an hour). GoToSocial, Akkoma and Pleroma
// ignore the header: two POSTs with one key make two posts.
func (sw Software) HonoursIdempotencyKeys() bool { return sw.Name == "mastodon" }

// keyPolicy is what a Transport knows about its server's idempotency keys.
// It starts as "not honoured" (nothing detected yet) and is set once
// NodeInfo has read the server's software.
type keyPolicy struct{ honoured atomic.Bool }

// learnSoftware records what the Transport's server runs.
func (t *Transport) learnSoftware(sw Software) { t.keys.honoured.Store(sw.HonoursIdempotencyKeys()) }

// HonoursIdempotencyKeys reports whether the Transport's server is known to
// honour idempotency keys (see Software.HonoursIdempotencyKeys); false until
// NodeInfo has detected it through a Client using this Transport.
func (t *Transport) HonoursIdempotencyKeys() bool { return t.keys.honoured.Load() }

// mayResend is the rule above for one request: whether it may be sent
// again after a failure that leaves its outcome unknown.
func (t *Transport) mayResend(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false // the body cannot be replayed
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	if idempotencyKey(req.Context()) != "" && t.HonoursIdempotencyKeys() {
		return true
	}
	safe, _ := req.Context().Value(retrySafeKey{}).(bool)
	return safe
}

// mayResendAfter429 reports whether req may be sent again after a 429: the
// server refused it before acting on it, so any request whose body can be
// replayed may.
func mayResendAfter429(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// sentTracker notes, through httptrace, whether a request was written in
// full to a connection: a failure before that leaves the server untouched,
// one after it leaves the outcome unknown.
type sentTracker struct{ wrote atomic.Bool }

func (s *sentTracker) trace(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				s.wrote.Store(true)
			}
		},
	})
}

// stripKeyHeaders removes idempotency headers a caller set by hand for a
// server that ignores them: they would only make net/http replay the write.
func stripKeyHeaders(req *http.Request) *http.Request {
	if req.Header.Get("Idempotency-Key") == "" && req.Header.Get("X-Idempotency-Key") == "" {
		return req
	}
	r := req.Clone(req.Context())
	r.Header.Del("Idempotency-Key")
	r.Header.Del("X-Idempotency-Key")
	return r
}
