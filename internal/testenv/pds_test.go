package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestE2EPDSTwoServersShareOnePLC(t *testing.T) {
	RequirePDS(t)
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	env, err := StartPDS(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("started 2 PDSes and a PLC directory in %s", env.StartTime.Round(time.Millisecond))
	dir := env.Dir

	for i, s := range env.PDSes {
		if s.DID != fmt.Sprintf("did:web:localhost%%3A%d", s.Port) || s.URL != fmt.Sprintf("http://localhost:%d", s.Port) {
			t.Errorf("PDS %d = %s %s on port %d", i, s.URL, s.DID, s.Port)
		}
		// Loopback only: nothing answers on another address of this machine.
		if ip := outboundIP(); ip != "" {
			if c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, fmt.Sprint(s.Port)), time.Second); err == nil {
				c.Close()
				t.Errorf("PDS %d answers on %s", i, ip)
			}
		}
	}

	a, err := env.PDSes[0].CreateAccount(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.PDSes[1].CreateAccount(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if a.Handle == b.Handle || !strings.HasSuffix(a.Handle, ".test") || !strings.HasPrefix(a.DID, "did:plc:") {
		t.Errorf("accounts %s (%s) and %s (%s)", a.Handle, a.DID, b.Handle, b.DID)
	}
	// Both DIDs are in the one PLC directory, each naming its own PDS.
	for _, acct := range []*PDSAccount{a, b} {
		var doc struct {
			AlsoKnownAs []string `json:"alsoKnownAs"`
			Service     []struct {
				ID              string `json:"id"`
				ServiceEndpoint string `json:"serviceEndpoint"`
			} `json:"service"`
		}
		if err := getJSON(ctx, env.PLCURL+"/"+acct.DID, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Service) != 1 || doc.Service[0].ServiceEndpoint != acct.PDS.URL || doc.AlsoKnownAs[0] != "at://"+acct.Handle {
			t.Errorf("PLC document of %s = %+v, want PDS %s", acct.Handle, doc, acct.PDS.URL)
		}
	}

	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Close left %s: %v", dir, err)
	}
	if err := getJSON(ctx, env.PDSes[0].URL+"/xrpc/_health", &struct{}{}); err == nil {
		t.Error("the PDS still answers after Close")
	}
}

// outboundIP returns a non-loopback address of this machine, or "" if there is none.
func outboundIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return ""
}

func getJSON(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
