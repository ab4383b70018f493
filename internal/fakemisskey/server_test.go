package fakemisskey

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// post calls the fake's API directly with a raw JSON body.
func post(t *testing.T, s *Server, endpoint, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(s.URL+"/api/"+endpoint, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// The fake is as strict as Misskey: every body is checked against the
// endpoint's paramDef, credentials and permissions come first, and errors
// have Misskey's shape.
func TestStrictness(t *testing.T) {
	s := Start(Config{})
	defer s.Close()
	uid := s.AddUser("alice", "pw")
	tok := s.AddToken(uid, []string{"write:notes"})
	for _, c := range []struct {
		name, endpoint, body string
		status               int
		code                 string
	}{
		{"no token", "notes/create", `{"text":"x"}`, 401, "CREDENTIAL_REQUIRED"},
		{"unknown token", "notes/create", `{"i":"nope","text":"x"}`, 401, "AUTHENTICATION_FAILED"},
		{"missing permission", "i", `{"i":"` + tok + `"}`, 403, "PERMISSION_DENIED"},
		{"unknown property", "notes/create", `{"i":"` + tok + `","text":"x","spoiler":"y"}`, 400, "INVALID_PARAM"},
		{"wrong type", "notes/create", `{"i":"` + tok + `","text":5}`, 400, "INVALID_PARAM"},
		{"bad enum", "notes/create", `{"i":"` + tok + `","text":"x","visibility":"unlisted"}`, 400, "INVALID_PARAM"},
		{"nothing to post", "notes/create", `{"i":"` + tok + `","cw":"only a warning"}`, 400, "INVALID_PARAM"},
		{"cw too long", "notes/create", `{"i":"` + tok + `","text":"x","cw":"` + strings.Repeat("w", 101) + `"}`, 400, "INVALID_PARAM"},
		{"one poll choice", "notes/create", `{"i":"` + tok + `","poll":{"choices":["a"]}}`, 400, "INVALID_PARAM"},
		{"bad id format", "notes/show", `{"noteId":"not-an-id!"}`, 400, "INVALID_PARAM"},
		{"no such note", "notes/show", `{"noteId":"abc123"}`, 400, "NO_SUCH_NOTE"},
		{"no such reply", "notes/create", `{"i":"` + tok + `","text":"x","replyId":"abc123"}`, 400, "NO_SUCH_REPLY_TARGET"},
		{"unknown endpoint", "statuses/create", `{}`, 404, ""},
		{"ok", "notes/create", `{"i":"` + tok + `","text":"fine"}`, 200, ""},
	} {
		status, body := post(t, s, c.endpoint, c.body)
		if status != c.status || errCode(body) != c.code {
			t.Errorf("%s: %d %v, want %d %s", c.name, status, body, c.status, c.code)
		}
		if c.code != "" {
			e := body["error"].(map[string]any)
			if e["id"] == "" || e["message"] == "" || e["kind"] == "" {
				t.Errorf("%s: error without id, message or kind: %v", c.name, e)
			}
		}
	}
	// Bearer works as well as "i".
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/notes/create", strings.NewReader(`{"text":"bearer"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("bearer: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	// Not JSON: Fastify's 415.
	resp, _ = http.Post(s.URL+"/api/meta", "text/plain", strings.NewReader("{}"))
	if resp.StatusCode != 415 {
		t.Errorf("text/plain body: %d", resp.StatusCode)
	}
	resp.Body.Close()
}
