package fakemisskey

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
)

// miauthPage is GET /miauth/:session?name=&callback=&permission=: the page
// where the signed-in person allows the app (MiAuth, see the package doc).
// The fake records the session; the person's "Allow" is Approve.
func (s *Server) miauthPage(w http.ResponseWriter, r *http.Request) {
	sess := strings.TrimPrefix(r.URL.Path, "/miauth/")
	if sess == "" || strings.Contains(sess, "/") {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	var perms []string
	for _, p := range strings.Split(q.Get("permission"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			perms = append(perms, p)
		}
	}
	s.mu.Lock()
	if _, ok := s.sessions[sess]; !ok {
		s.sessions[sess] = &miauthSession{Name: q.Get("name"), Callback: q.Get("callback"), Permissions: perms}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!DOCTYPE html><html><body><p>%s wants: %s</p><button>Allow</button></body></html>",
		html.EscapeString(q.Get("name")), html.EscapeString(strings.Join(perms, ", ")))
}

// Approve plays the person pressing "Allow" on the MiAuth page of session
// as the user username: a token with the session's permissions is issued.
// It returns the address the browser is sent to (the callback with
// ?session=), "" when the app gave no callback, or an error when nobody
// opened the page.
func (s *Server) Approve(session, username string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.sessions[session]
	if ms == nil {
		return "", fmt.Errorf("no MiAuth session %q was opened", session)
	}
	var uid string
	for _, u := range s.users {
		if u.Username == username && u.Host == "" {
			uid = u.ID
		}
	}
	if uid == "" {
		return "", fmt.Errorf("no user %q", username)
	}
	ms.Token = randomToken()
	s.tokens[ms.Token] = &token{UserID: uid, Permissions: append([]string{}, ms.Permissions...)}
	if ms.Callback == "" {
		return "", nil
	}
	u, err := url.Parse(ms.Callback)
	if err != nil {
		return "", err
	}
	v := u.Query()
	v.Set("session", session)
	u.RawQuery = v.Encode()
	return u.String(), nil
}

// miauthCheck is POST /api/miauth/:session/check: {"ok":false} until the
// person allowed, then once {"ok":true,"token","user"}.
func (s *Server) miauthCheck(w http.ResponseWriter, r *http.Request, session string) {
	if r.Method != http.MethodPost {
		writeError(w, apiError{405, "Method not allowed.", "METHOD_NOT_ALLOWED", "", "client", nil})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["miauth/check"]++
	ms := s.sessions[session]
	if ms == nil || ms.Token == "" || ms.Checked {
		writeJSON(w, 200, map[string]any{"ok": false})
		return
	}
	ms.Checked = true
	t := s.tokens[ms.Token]
	writeJSON(w, 200, map[string]any{"ok": true, "token": ms.Token, "user": s.packUser(s.users[t.UserID])})
}
