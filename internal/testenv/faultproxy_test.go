package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// outcomes sends n GETs of path through p and describes each outcome
// ("200", "429", "error" …).
func outcomes(t *testing.T, p *FaultProxy, token, path string, n int) []string {
	t.Helper()
	// A new connection per request: net/http would resend a GET whose
	// reused connection died, hiding the fault.
	tr := p.client.Transport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	hc := &http.Client{Transport: tr}
	out := make([]string, n)
	for i := range out {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.BaseURL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			out[i] = "error"
		} else {
			_, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			out[i] = fmt.Sprint(resp.StatusCode)
			if err != nil {
				out[i] += " cut"
			}
		}
		cancel()
	}
	return out
}

func TestFaultProxySeededAndCounted(t *testing.T) {
	env := Shared(t, 1)
	in := env.Instances[0]
	u, err := in.CreateUser(t.Context(), "", true)
	if err != nil {
		t.Fatal(err)
	}
	o := FaultOptions{Seed: 7, Lost: 0.2, Reset: 0.1, RateLimit: 0.1, BadGateway: 0.1, Truncated: 0.1, Slow: 0.05,
		SlowDelay: 10 * time.Millisecond}
	p := in.FaultProxy(t, o)
	first := outcomes(t, p, u.Token, "/api/v1/accounts/verify_credentials", 40)
	p.SetFaults(o)
	second := outcomes(t, p, u.Token, "/api/v1/accounts/verify_credentials", 40)
	if strings.Join(first, ",") != strings.Join(second, ",") {
		t.Errorf("the same seed gave other faults:\n%v\n%v", first, second)
	}
	c := p.Counts()["GET /api/v1/accounts/verify_credentials"]
	injected := 0
	for _, n := range c.Injected {
		injected += n
	}
	notForwarded := c.Injected[FaultReset] + c.Injected[FaultRateLimit] + c.Injected[FaultBadGateway]
	if c.Requests != 80 || c.Forwarded != 80-notForwarded || injected == 0 || c.Injected[FaultLost] == 0 {
		t.Errorf("counts %+v", c)
	}
	ok := 0
	for _, s := range first {
		if s == "200" {
			ok++
		}
	}
	if ok == 0 || ok == len(first) {
		t.Errorf("outcomes %v: want a mix of answers and faults", first)
	}
}

func TestFaultProxyKeepsPagingBehindIt(t *testing.T) {
	env := Shared(t, 1)
	in := env.Instances[0]
	u, err := in.CreateUser(t.Context(), "", true)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := u.API(t.Context(), http.MethodPost, "/api/v1/statuses", url.Values{"status": {fmt.Sprint("page ", i)}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	p := in.FaultProxy(t, FaultOptions{})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, p.BaseURL+"/api/v1/accounts/"+u.ID+"/statuses?limit=1", nil)
	req.Header.Set("Authorization", "Bearer "+u.Token)
	resp, err := env.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	link := resp.Header.Get("Link")
	if !strings.Contains(link, p.BaseURL+"/") || strings.Contains(link, in.BaseURL) {
		t.Errorf("Link %q does not point behind the proxy (%s)", link, p.BaseURL)
	}
	// Two identical posts with no read between them are a blind resend.
	for range 2 {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, p.BaseURL+"/api/v1/statuses", strings.NewReader("status=twice"))
		req.Header.Set("Authorization", "Bearer "+u.Token)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := env.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if got := p.BlindResends(); len(got) != 1 || got[0] != "POST /api/v1/statuses" {
		t.Errorf("BlindResends = %q, want one POST /api/v1/statuses", got)
	}
}

// A proxy in front of a plain-http base URL forwards to it, and a lost
// answer is lost after the server acted.
func TestFaultProxyToBaseURL(t *testing.T) {
	var writes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			writes.Add(1)
		}
		w.Header().Set("Location", "http://"+r.Host+"/next")
		fmt.Fprintf(w, "%s %s", r.Method, r.URL.Path)
	}))
	defer srv.Close()
	p, err := NewFaultProxyTo(srv.URL, FaultOptions{Lost: 1, Methods: []string{http.MethodPost}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !strings.HasPrefix(p.BaseURL, "http://localhost:") {
		t.Fatalf("BaseURL = %q", p.BaseURL)
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get(p.BaseURL + "/xrpc/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "GET /xrpc/x" {
		t.Errorf("GET through the proxy: %q", body)
	}
	if _, err := hc.Post(p.BaseURL+"/xrpc/y", "text/plain", strings.NewReader("z")); err == nil {
		t.Error("the lost answer arrived")
	}
	if writes.Load() != 1 || p.Injected()[FaultLost] != 1 {
		t.Errorf("server saw %d writes, proxy injected %v", writes.Load(), p.Injected())
	}
	if _, err := NewFaultProxyTo("localhost:1", FaultOptions{}); err == nil {
		t.Error("a target without a scheme was taken")
	}
}
