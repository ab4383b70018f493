package fedi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/fedi-ferry/ferry/httpsonly"
)

// Timeouts for the connection phases. A whole call is bounded by the
// caller's context; these stop a dead server from holding a connection slot.
const (
	dialTimeout           = 10 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	responseHeaderTimeout = 60 * time.Second
)

// ErrInsecureURL is returned for a plain-http URL that is not on loopback
// (httpsonly's rule).
var ErrInsecureURL = httpsonly.ErrInsecureURL

// NewBaseTransport returns an *http.Transport with ferry's timeouts. roots,
// when not nil, replaces the system certificate pool (see LoadRoots).
func NewBaseTransport(roots *x509.CertPool) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = tlsHandshakeTimeout
	tr.ResponseHeaderTimeout = responseHeaderTimeout
	tr.MaxIdleConnsPerHost = 8
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	return tr
}

// LoadRoots returns the system certificate pool plus the PEM certificates in
// caFile. An empty caFile returns nil, meaning "the system pool". ferry's
// end-to-end tests use this to trust their self-signed loopback servers; a
// person can use it for a server behind a private CA.
func LoadRoots(caFile string) (*x509.CertPool, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("read CA file %s: no PEM certificate found", caFile)
	}
	return pool, nil
}

// HTTPOptions configure NewHTTPClient.
type HTTPOptions struct {
	Roots     *x509.CertPool // nil = system pool
	Transport TransportOptions
}

// NewHTTPClient returns a client whose requests go through a new paced
// Transport, and that Transport so callers can read its statistics. The
// client has no overall timeout (streaming and large downloads outlive any
// fixed one); every call must carry a context deadline.
func NewHTTPClient(o HTTPOptions) (*http.Client, *Transport) {
	to := o.Transport
	if to.Base == nil {
		to.Base = NewBaseTransport(o.Roots)
	}
	t := NewTransport(to)
	return &http.Client{
		Transport: t,
		// Redirects stay on https (or loopback): httpsonly.Check runs again for
		// every hop inside Transport.RoundTrip.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			return nil
		},
	}, t
}

// ParseServer turns what a person types for a server into the server's
// base URL: httpsonly.ParseServer, the one rule for every client.
func ParseServer(raw string) (*url.URL, error) { return httpsonly.ParseServer(raw) }
