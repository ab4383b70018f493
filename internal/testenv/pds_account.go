package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// accountSeq numbers the accounts of this test binary, so handles are unique in a shared
// environment even when tests ask for the same name.
var accountSeq atomic.Int64

// CreateAccount creates an account on the PDS through com.atproto.server.createAccount
// and returns its handle, DID, password and first session. name is the first label of
// the handle; "" picks one. A number and random letters are appended either way, so every
// call creates a new account ("alice" becomes "alice3f9c2a1.test"). The handle's first
// label must stay within the PDS's 18 characters, so name is cut to 8.
func (s *PDS) CreateAccount(ctx context.Context, name string) (*PDSAccount, error) {
	name = strings.ToLower(name)
	if name == "" {
		name = "user"
	}
	if len(name) > 8 {
		name = name[:8]
	}
	label := fmt.Sprintf("%s%d%s", name, accountSeq.Add(1), randomHex(2))
	acct := &PDSAccount{
		Handle:   label + ".test",
		Password: "Ferry-" + randomHex(12),
		PDS:      s,
	}
	in := map[string]string{
		"handle":   acct.Handle,
		"email":    label + "@example.test",
		"password": acct.Password,
	}
	var out struct {
		DID        string `json:"did"`
		Handle     string `json:"handle"`
		AccessJWT  string `json:"accessJwt"`
		RefreshJWT string `json:"refreshJwt"`
	}
	if err := s.post(ctx, "com.atproto.server.createAccount", in, &out); err != nil {
		return nil, fmt.Errorf("testenv: create account %s: %w", acct.Handle, err)
	}
	acct.DID, acct.Handle, acct.AccessJWT, acct.RefreshJWT = out.DID, out.Handle, out.AccessJWT, out.RefreshJWT
	return acct, nil
}

// post calls an XRPC procedure without authentication.
func (s *PDS) post(ctx context.Context, method string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/xrpc/"+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: read answer: %w", method, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", method, resp.StatusCode, snippet(b))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", method, err)
	}
	return nil
}
