package atproto

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
)

// ServerInfo is what a PDS says about itself without a session.
type ServerInfo struct {
	// PDS is the server's base URL, as CheckPDS returns it.
	PDS string
	// DID is the server's service DID.
	DID string
	// UserDomains are the handle suffixes the server offers (".bsky.social").
	UserDomains []string
	// Version is the server software's version from /xrpc/_health, "" when it
	// does not say.
	Version string
}

// Describe asks the server at pdsURL to describe itself
// (com.atproto.server.describeServer, and /xrpc/_health for its version). A
// server that answers but is not a PDS (no XRPC answer, or one without a
// DID) is an error matching ErrNotPDS; a server that cannot be reached is
// another error.
func Describe(ctx context.Context, pdsURL string, opts Options) (ServerInfo, error) {
	host, err := CheckPDS(pdsURL)
	if err != nil {
		return ServerInfo{}, err
	}
	c := newClient(host, opts)
	out, err := c.DescribeServer(ctx)
	if err != nil {
		// A server that cannot be reached says nothing about what it runs;
		// one that answers anything but a PDS's answer is not a PDS.
		var ne net.Error
		if errors.As(err, &ne) || ctx.Err() != nil || errors.Is(err, ErrInsecureURL) {
			return ServerInfo{}, err
		}
		return ServerInfo{}, fmt.Errorf("%s: %w: %w", host, ErrNotPDS, err)
	}
	if out.Did == "" {
		return ServerInfo{}, fmt.Errorf("%s: %w: describeServer names no DID", host, ErrNotPDS)
	}
	info := ServerInfo{PDS: host, DID: out.Did, UserDomains: out.AvailableUserDomains}
	info.Version = c.healthVersion(ctx)
	return info, nil
}

// ErrNotPDS: a server that answers, but not as an AT Protocol PDS.
var ErrNotPDS = errors.New("not an AT Protocol PDS")

// healthVersion reads the "version" of /xrpc/_health, the reference PDS's
// health check; "" when the server has none.
func (c *Client) healthVersion(ctx context.Context) string {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.host+"/xrpc/_health", nil)
	if err != nil {
		return ""
	}
	req.Header.Set("User-Agent", c.agent)
	resp, err := c.http.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var h struct {
		Version string `json:"version"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&h) != nil {
		return ""
	}
	return h.Version
}
