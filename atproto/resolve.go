package atproto

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// DefaultPLCURL is the public PLC directory, which holds the DID documents of did:plc
// identities (most Bluesky accounts).
const DefaultPLCURL = "https://plc.directory"

// ErrUnresolved: a handle or DID that does not resolve to an account with a PDS.
var ErrUnresolved = errors.New("does not resolve to an AT Protocol account")

// Identity is a resolved account: who it is and where its repository lives.
type Identity struct {
	// DID is the account's permanent identifier.
	DID syntax.DID
	// Handle is the handle, verified both ways (handle → DID and the DID document's
	// alsoKnownAs), or "handle.invalid" when resolved from a DID whose handle does not
	// verify.
	Handle syntax.Handle
	// PDS is the base URL of the account's PDS, checked by CheckPDS.
	PDS string
}

// Resolver resolves handles (DNS TXT _atproto record, then https://HANDLE/.well-known/atproto-did)
// and DIDs (did:plc through the PLC directory, did:web through HTTPS) with indigo's
// identity directory, under ferry's transport rule.
type Resolver struct {
	// PLCURL is the PLC directory; "" means DefaultPLCURL.
	PLCURL string
	// HTTPClient carries the HTTPS lookups; nil means ferry's defaults. Plain http is
	// refused outside loopback either way.
	HTTPClient *http.Client
	// Timeout bounds one Resolve whose context has no deadline; 0 means 30 seconds.
	Timeout time.Duration
}

// Resolve finds the DID, verified handle and PDS of id, a handle ("alice.bsky.social",
// with or without '@') or a DID. An id that does not resolve, or whose DID document names
// no usable PDS, is an error matching ErrUnresolved.
func (r Resolver) Resolve(ctx context.Context, id string) (Identity, error) {
	id = strings.TrimPrefix(strings.TrimSpace(id), "@")
	atid, err := syntax.ParseAtIdentifier(id)
	if err != nil {
		return Identity{}, fmt.Errorf("resolve %q: not a handle or DID: %w", id, err)
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	dir := r.directory()
	dir.TryAuthoritativeDNS = true
	var ident *identity.Identity
	if h, herr := atid.AsHandle(); herr == nil {
		ident, err = dir.LookupHandle(ctx, h)
	} else {
		did, _ := atid.AsDID()
		ident, err = lookupDID(ctx, dir, did)
	}
	if err != nil {
		if ctx.Err() != nil {
			return Identity{}, fmt.Errorf("resolve %s: %w", id, ctx.Err())
		}
		return Identity{}, fmt.Errorf("resolve %s: %w: %w", id, ErrUnresolved, err)
	}
	pds, err := CheckPDS(ident.PDSEndpoint())
	if err != nil {
		return Identity{}, fmt.Errorf("resolve %s: %w: its DID document names no usable PDS: %w", id, ErrUnresolved, err)
	}
	return Identity{DID: ident.DID, Handle: ident.Handle, PDS: pds}, nil
}

// bound gives ctx the resolver's timeout (30 s by default) unless it has a
// deadline already.
func (r Resolver) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return context.WithTimeout(ctx, timeout)
}

// directory is indigo's resolver over r's PLC directory (plc.directory by
// default) and its https-only client.
func (r Resolver) directory() *identity.BaseDirectory {
	plc := r.PLCURL
	if plc == "" {
		plc = DefaultPLCURL
	}
	return &identity.BaseDirectory{PLCURL: strings.TrimSuffix(plc, "/"), HTTPClient: *secureClient(r.HTTPClient), UserAgent: "ferry"}
}

// lookupDID resolves a DID document and verifies the handle it declares. Unlike indigo's
// LookupDID, a handle that cannot be verified for any reason (a reserved top-level domain
// included) leaves the identity usable with the handle "handle.invalid": the DID and the
// PDS are what matter for logging in.
func lookupDID(ctx context.Context, dir *identity.BaseDirectory, did syntax.DID) (*identity.Identity, error) {
	doc, err := dir.ResolveDID(ctx, did)
	if err != nil {
		return nil, err
	}
	ident := identity.ParseIdentity(doc)
	ident.Handle = syntax.HandleInvalid
	if declared, err := ident.DeclaredHandle(); err == nil {
		if got, err := dir.ResolveHandle(ctx, declared); err == nil && got == did {
			ident.Handle = declared
		}
	}
	return &ident, nil
}

// DeclaredHandle returns the handle the DID document of did declares (its
// alsoKnownAs at:// entry), without verifying it the other way: an export
// names the accounts it lists, and the DID, written next to it, stays the
// account's identity. A DID that does not resolve is an error matching
// ErrUnresolved; a document without a handle gives "handle.invalid".
func (r Resolver) DeclaredHandle(ctx context.Context, did string) (string, error) {
	d, err := syntax.ParseDID(did)
	if err != nil {
		return "", fmt.Errorf("resolve %q: not a DID: %w", did, err)
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	dir := r.directory()
	doc, err := dir.ResolveDID(ctx, d)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("resolve %s: %w", did, ctx.Err())
		}
		return "", fmt.Errorf("resolve %s: %w: %w", did, ErrUnresolved, err)
	}
	ident := identity.ParseIdentity(doc)
	h, err := ident.DeclaredHandle()
	if err != nil {
		return syntax.HandleInvalid.String(), nil
	}
	return h.String(), nil
}
