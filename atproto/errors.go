package atproto

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/bluesky-social/indigo/xrpc"

	"github.com/fedi-ferry/ferry/httpsonly"
)

// Errors that callers test with errors.Is. They are matched by *Error (an answer of the
// PDS) and by errors this package makes itself.
var (
	// ErrAuth: the PDS did not accept the credentials — a wrong identifier or password,
	// or a session whose tokens can no longer be refreshed (log in again).
	ErrAuth = errors.New("not authorized")
	// ErrNotFound: the record, blob or account does not exist.
	ErrNotFound = errors.New("not found")
	// ErrBlobTooLarge: the PDS refused a blob over its upload limit.
	ErrBlobTooLarge = errors.New("blob too large for the server")
	// ErrInsecureURL: a plain-http URL that is not on loopback (httpsonly's rule).
	ErrInsecureURL = httpsonly.ErrInsecureURL
)

// Error is an XRPC error answer of a PDS: its HTTP status and the error name and message
// the server gave, with the operation that received it.
type Error struct {
	// Op is the XRPC method, like "com.atproto.repo.createRecord".
	Op string
	// Status is the HTTP status code.
	Status int
	// Name is the XRPC error name, like "AuthenticationRequired" or "RecordNotFound"
	// (empty when the answer carried no error body).
	Name string
	// Message is the server's human-readable explanation.
	Message string
}

// Error returns "OP: NAME: MESSAGE (HTTP STATUS)".
func (e *Error) Error() string {
	s := e.Op + ": "
	if e.Name != "" {
		s += e.Name
		if e.Message != "" {
			s += ": "
		}
	}
	s += e.Message
	return fmt.Sprintf("%s (HTTP %d)", s, e.Status)
}

// Is matches ErrAuth, ErrNotFound and ErrBlobTooLarge by status and error name.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrAuth:
		return e.Status == http.StatusUnauthorized || isTokenError(e.Name) ||
			e.Name == "AuthenticationRequired" || e.Name == "AccountTakedown"
	case ErrNotFound:
		return e.Status == http.StatusNotFound || e.Name == "RecordNotFound" ||
			e.Name == "BlobNotFound" || e.Name == "RepoNotFound"
	case ErrBlobTooLarge:
		return e.Status == http.StatusRequestEntityTooLarge || e.Name == "BlobTooLarge" ||
			e.Name == "PayloadTooLarge"
	}
	return false
}

// isTokenError reports the error names a PDS gives for an access token it no longer
// accepts, which a refresh can cure.
func isTokenError(name string) bool { return name == "ExpiredToken" || name == "InvalidToken" }

// wrap turns an error of an XRPC call into *Error when the server answered, and otherwise
// names the operation and keeps the cause for errors.Is (context deadlines, network errors).
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var xe *xrpc.Error
	if errors.As(err, &xe) {
		e := &Error{Op: op, Status: xe.StatusCode}
		var body *xrpc.XRPCError
		if errors.As(xe.Wrapped, &body) {
			e.Name, e.Message = body.ErrStr, body.Message
		}
		return e
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Wrap names the operation op on an error of an indigo api call made with a Client
// (comatproto.…(ctx, client, …)) and turns the server's answer into *Error, so callers
// outside this package get the same errors as from the Client's own methods.
func Wrap(op string, err error) error { return wrap(op, err) }
