package atproto

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/fedi-ferry/ferry/httpsonly"
)

// secureClient returns a copy of base (or of a default client) whose every request and
// redirect obeys httpsonly.Check.
func secureClient(base *http.Client) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	}
	rt := c.Transport
	if rt == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		tr.TLSHandshakeTimeout = 10 * time.Second
		tr.ResponseHeaderTimeout = 60 * time.Second
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		rt = tr
	}
	if _, ok := rt.(checkedTransport); !ok {
		rt = checkedTransport{base: rt}
	}
	c.Transport = rt
	if c.CheckRedirect == nil {
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			return nil
		}
	}
	return &c
}

// checkedTransport refuses requests that httpsonly.Check refuses, redirects included (each hop
// goes through RoundTrip).
type checkedTransport struct{ base http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t checkedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := httpsonly.Check(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(req)
}
