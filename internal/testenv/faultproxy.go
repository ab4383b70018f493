package testenv

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fault is one kind of failure a FaultProxy injects.
type Fault string

// The faults, as they look to the client.
const (
	// FaultNone forwards the request and its answer untouched.
	FaultNone Fault = ""
	// FaultLost forwards the request, lets the server answer, then drops
	// the client's connection without passing the answer on: the write
	// happened, the client cannot know.
	FaultLost Fault = "lost"
	// FaultReset resets the client's connection before forwarding.
	FaultReset Fault = "reset"
	// FaultRateLimit answers 429 without forwarding; one in three with
	// Retry-After, one in three with X-RateLimit-* headers, one in three
	// bare (FaultOptions.BareRateLimit changes the share of bare ones).
	FaultRateLimit Fault = "429"
	// FaultBadGateway answers 502 with Retry-After without forwarding.
	FaultBadGateway Fault = "502"
	// FaultUnavailable answers 503 with Retry-After without forwarding.
	FaultUnavailable Fault = "503"
	// FaultSlow forwards, then holds the answer for FaultOptions.SlowDelay
	// before passing it on.
	FaultSlow Fault = "slow"
	// FaultTruncated forwards, then passes on the status, the headers and
	// half of the body, and closes the connection.
	FaultTruncated Fault = "truncated"
)

// FaultOptions choose the faults a FaultProxy injects. Probabilities are
// per request, checked in the order of the fields; their sum should stay
// at or below 1.
type FaultOptions struct {
	// Seed makes the sequence of faults reproducible (for the same
	// sequence of requests).
	Seed uint64
	// Probabilities of each fault.
	Lost, Reset, RateLimit, BadGateway, Unavailable, Slow, Truncated float64
	// BareRateLimit is the share of 429s sent without Retry-After or
	// X-RateLimit-* headers; 0 means one in three, a negative value none.
	BareRateLimit float64
	// SlowDelay is how long FaultSlow holds an answer; 0 means 2 s.
	SlowDelay time.Duration
	// Methods limits faults to these methods; empty means every method.
	Methods []string
	// Paths limits faults to paths matching this expression; nil means
	// every path.
	Paths *regexp.Regexp
	// MaxFaults stops injecting after this many faults; 0 means no limit.
	MaxFaults int
}

// FaultCount is what a FaultProxy did with the requests of one pattern
// (method and path with IDs replaced by ":id").
type FaultCount struct {
	Requests  int           // requests received
	Forwarded int           // requests passed to the server
	Injected  map[Fault]int // faults injected
}

// FaultProxy sits between a client and one server — an Instance, speaking
// https with the Env's certificate on its own loopback port
// (NewFaultProxy), or any base URL, speaking plain http on loopback
// (NewFaultProxyTo) — and injects faults into chosen requests. It passes on
// whole answers only: no websocket upgrades. It rewrites the server's address to its own in Link and
// Location headers, so paging stays behind it, and its own to the
// server's in query strings (WebFinger resources, searches for handles at
// the proxy's address), and counts every request.
// It is safe for concurrent use.
type FaultProxy struct {
	// BaseURL is "https://localhost:PORT" (or http:// for NewFaultProxyTo);
	// Host is "localhost:PORT".
	BaseURL, Host string

	// upBase is the server's base URL, upScheme and upHost its parts.
	upBase, upScheme, upHost string
	client                   *http.Client
	srv                      *http.Server
	ln                       net.Listener

	mu      sync.Mutex
	opts    FaultOptions
	rng     *rand.Rand
	since   int // faults injected since SetFaults, for MaxFaults
	counts  map[string]*FaultCount
	applied map[string]int // write fingerprint → times the server answered it 2xx
	reads   map[string]int // client (token) → reads forwarded so far
	lastAt  map[string]int // write fingerprint → reads of its client when last applied
	blind   []string       // writes the server applied again with no read in between
	log     []string       // one line per injected fault, for failure messages
}

// NewFaultProxy starts a proxy in front of in with the faults of o.
func NewFaultProxy(in *Instance, o FaultOptions) (*FaultProxy, error) {
	cert, err := tls.LoadX509KeyPair(in.certFile, in.keyFile)
	if err != nil {
		return nil, fmt.Errorf("testenv: fault proxy: load certificate: %w", err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		// HTTP/1.1 only: dropping one connection must lose one answer, as
		// behind most reverse proxies, not a multiplexed stream.
		NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		return nil, fmt.Errorf("testenv: fault proxy: listen: %w", err)
	}
	return startFaultProxy(ln, "https", in.BaseURL, in.Host, in.env.HTTPClient().Transport, o), nil
}

// NewFaultProxyTo starts a proxy in front of the server at target (a base
// URL such as a PDS's "http://localhost:PORT") with the faults of o. The
// proxy speaks plain http on its own loopback port, whatever target speaks.
func NewFaultProxyTo(target string, o FaultOptions) (*FaultProxy, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("testenv: fault proxy: target %q is not an http(s) base URL", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testenv: fault proxy: listen: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	return startFaultProxy(ln, "http", u.Scheme+"://"+u.Host, u.Host, tr, o), nil
}

// startFaultProxy serves a proxy on ln (speaking scheme) in front of the
// server at upBase.
func startFaultProxy(ln net.Listener, scheme, upBase, upHost string, tr http.RoundTripper, o FaultOptions) *FaultProxy {
	port := ln.Addr().(*net.TCPAddr).Port
	u, _ := url.Parse(upBase)
	p := &FaultProxy{
		BaseURL:  fmt.Sprintf("%s://localhost:%d", scheme, port),
		Host:     fmt.Sprintf("localhost:%d", port),
		upBase:   upBase,
		upScheme: u.Scheme,
		upHost:   upHost,
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		ln: ln,
	}
	p.SetFaults(o)
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p
}

// FaultProxy starts a FaultProxy in front of in for t, stopped when t ends.
func (in *Instance) FaultProxy(t testing.TB, o FaultOptions) *FaultProxy {
	t.Helper()
	p, err := NewFaultProxy(in, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// SetFaults replaces the faults (and reseeds), and keeps the counts.
func (p *FaultProxy) SetFaults(o FaultOptions) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if o.SlowDelay <= 0 {
		o.SlowDelay = 2 * time.Second
	}
	p.opts = o
	p.since = 0
	p.rng = rand.New(rand.NewPCG(o.Seed, 0x66657272))
	if p.counts == nil {
		p.counts = map[string]*FaultCount{}
		p.applied = map[string]int{}
		p.reads = map[string]int{}
		p.lastAt = map[string]int{}
	}
}

// Close stops the proxy.
func (p *FaultProxy) Close() error { return p.srv.Close() }

// Counts returns the counts so far by pattern ("POST /api/v1/statuses").
func (p *FaultProxy) Counts() map[string]FaultCount {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]FaultCount, len(p.counts))
	for k, c := range p.counts {
		cc := *c
		cc.Injected = make(map[Fault]int, len(c.Injected))
		for f, n := range c.Injected {
			cc.Injected[f] = n
		}
		out[k] = cc
	}
	return out
}

// Injected returns how many faults of each kind were injected in all.
func (p *FaultProxy) Injected() map[Fault]int {
	out := map[Fault]int{}
	for _, c := range p.Counts() {
		for f, n := range c.Injected {
			out[f] += n
		}
	}
	return out
}

// Requests returns how many requests the proxy received in all.
func (p *FaultProxy) Requests() int {
	n := 0
	for _, c := range p.Counts() {
		n += c.Requests
	}
	return n
}

// BlindResends lists the writes the server applied (answered 2xx) a second
// time without the same client having read anything from the server in
// between: a write repeated without checking what the first one did. Each
// entry is "METHOD PATTERN" of one such repeat.
func (p *FaultProxy) BlindResends() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.blind...)
}

// Summary is one line per pattern, for test logs.
func (p *FaultProxy) Summary() string {
	counts := p.Counts()
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		c := counts[k]
		fmt.Fprintf(&b, "%-50s requests=%d forwarded=%d", k, c.Requests, c.Forwarded)
		fs := make([]string, 0, len(c.Injected))
		for f, n := range c.Injected {
			fs = append(fs, fmt.Sprintf("%s=%d", f, n))
		}
		sort.Strings(fs)
		if len(fs) > 0 {
			b.WriteString(" " + strings.Join(fs, " "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

var idSegment = regexp.MustCompile(`^([0-9A-HJKMNP-TV-Z]{26}|[0-9]+)$`)

// pattern names a request for counting: its method and path with IDs
// replaced by ":id".
func pattern(r *http.Request) string {
	segs := strings.Split(r.URL.Path, "/")
	for i, s := range segs {
		if idSegment.MatchString(s) {
			segs[i] = ":id"
		}
	}
	return r.Method + " " + strings.Join(segs, "/")
}

// choose draws the fault for one request.
func (p *FaultProxy) choose(r *http.Request) (Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o := p.opts
	if len(o.Methods) > 0 && !containsFold(o.Methods, r.Method) || o.Paths != nil && !o.Paths.MatchString(r.URL.Path) ||
		o.MaxFaults > 0 && p.since >= o.MaxFaults {
		return FaultNone, false
	}
	x := p.rng.Float64()
	bare := p.rng.Float64()
	bareShare := o.BareRateLimit
	if bareShare == 0 {
		bareShare = 1.0 / 3
	}
	for _, f := range []struct {
		p float64
		f Fault
	}{{o.Lost, FaultLost}, {o.Reset, FaultReset}, {o.RateLimit, FaultRateLimit}, {o.BadGateway, FaultBadGateway},
		{o.Unavailable, FaultUnavailable}, {o.Slow, FaultSlow}, {o.Truncated, FaultTruncated}} {
		if x < f.p {
			p.since++
			return f.f, bare < bareShare
		}
		x -= f.p
	}
	return FaultNone, false
}

func containsFold(xs []string, s string) bool {
	for _, x := range xs {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func (p *FaultProxy) count(pat string, f Fault, forwarded bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts[pat]
	if c == nil {
		c = &FaultCount{Injected: map[Fault]int{}}
		p.counts[pat] = c
	}
	if f != FaultNone {
		c.Injected[f]++
		p.log = append(p.log, pat+" "+string(f))
	}
	if forwarded {
		c.Forwarded++
	}
}

// ServeHTTP implements http.Handler.
func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pat := pattern(r)
	p.mu.Lock()
	if p.counts[pat] == nil {
		p.counts[pat] = &FaultCount{Injected: map[Fault]int{}}
	}
	p.counts[pat].Requests++
	p.mu.Unlock()

	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away
	}
	fault, bare := p.choose(r)
	switch fault {
	case FaultReset:
		p.count(pat, fault, false)
		drop(w)
		return
	case FaultRateLimit:
		p.count(pat, fault, false)
		switch {
		case bare:
		case p.rngBool():
			w.Header().Set("Retry-After", "1")
		default:
			w.Header().Set("X-RateLimit-Limit", "300")
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano))
		}
		writeJSONError(w, http.StatusTooManyRequests, "Too Many Requests")
		return
	case FaultBadGateway, FaultUnavailable:
		p.count(pat, fault, false)
		w.Header().Set("Retry-After", "1")
		code := http.StatusBadGateway
		if fault == FaultUnavailable {
			code = http.StatusServiceUnavailable
		}
		writeJSONError(w, code, http.StatusText(code))
		return
	}

	resp, data, err := p.forward(r, body)
	if err != nil {
		p.count(pat, fault, false)
		writeJSONError(w, http.StatusBadGateway, "fault proxy: "+err.Error())
		return
	}
	p.count(pat, fault, true)
	p.note(r, body, resp.StatusCode)
	switch fault {
	case FaultLost:
		drop(w)
		return
	case FaultSlow:
		p.mu.Lock()
		d := p.opts.SlowDelay
		p.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			if k == "Link" || k == "Location" {
				v = strings.ReplaceAll(v, p.upBase, p.BaseURL)
			}
			w.Header().Add(k, v)
		}
	}
	if fault == FaultTruncated && len(data) > 1 {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(data[:len(data)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler) // closes the connection mid-body
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(data)
}

func (p *FaultProxy) rngBool() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.IntN(2) == 0
}

// forward sends the request to the server and reads the whole answer.
func (p *FaultProxy) forward(r *http.Request, body []byte) (*http.Response, []byte, error) {
	u := *r.URL
	u.Scheme, u.Host = p.upScheme, p.upHost
	// To the client, the proxy's address is the server's: a handle at it
	// (a WebFinger resource, a search) means the server's own host.
	u.RawQuery = strings.NewReplacer(p.Host, p.upHost, url.QueryEscape(p.Host), url.QueryEscape(p.upHost)).Replace(u.RawQuery)
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range r.Header {
		if k == "Connection" || k == "Keep-Alive" || k == "Te" || k == "Trailer" || k == "Upgrade" {
			continue
		}
		req.Header[k] = vs
	}
	// Requests arrive with the proxy's host; the server must see its own.
	req.Host = p.upHost
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	resp.Header.Del("Content-Length")
	return resp, data, nil
}

// note records a forwarded request for BlindResends.
func (p *FaultProxy) note(r *http.Request, body []byte, status int) {
	client := r.Header.Get("Authorization")
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		p.reads[client]++
		return
	}
	if status < 200 || status > 299 {
		return
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", client, r.Method, r.URL.Path, r.URL.RawQuery)
	h.Write(body)
	fp := hex.EncodeToString(h.Sum(nil))
	if p.applied[fp] > 0 && p.lastAt[fp] == p.reads[client] {
		p.blind = append(p.blind, pattern(r))
	}
	p.applied[fp]++
	p.lastAt[fp] = p.reads[client]
}

// InjectedLog lists the faults injected so far, one "PATTERN FAULT" each.
func (p *FaultProxy) InjectedLog() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

// drop closes the client's connection abruptly (RST), without an answer.
func drop(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // the server closes the connection
	}
	nc := conn
	if tc, ok := conn.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if tcp, ok := nc.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":%q}`, msg)
}
