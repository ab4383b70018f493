package fakemisskey

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// What a real Misskey answered (2025.4.x, MisskeyIO fork, checked on
// loopback), where the fake used to differ.
func TestAnswersAsCheckedAgainstMisskey(t *testing.T) {
	s := Start(Config{RateLimits: map[string]RateLimit{"mute/create": {Max: 1, Duration: time.Hour}}})
	defer s.Close()
	me := s.AddUser("me", "pw")
	other := s.AddUser("other", "pw")
	tok := s.AddToken(me, nil)
	app := s.AddToken(me, []string{"read:account"})
	call := func(endpoint, body string) (int, map[string]any, http.Header) {
		t.Helper()
		resp, err := http.Post(s.URL+"/api/"+endpoint, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &out)
		return resp.StatusCode, out, resp.Header
	}
	i := `"i":"` + tok + `"`

	// users/relation: notify inside "following", null when not following.
	call("following/create", `{`+i+`,"userId":"`+other+`"}`)
	resp, err := http.Post(s.URL+"/api/users/relation", "application/json", strings.NewReader(`{`+i+`,"userId":["`+other+`","`+me+`"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var rel []map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&rel)
	resp.Body.Close()
	f, _ := rel[0]["following"].(map[string]any)
	if len(rel) != 2 || f == nil || f["notify"] != "none" || rel[1]["following"] != nil {
		t.Errorf("users/relation: %v", rel)
	}
	for _, r := range rel {
		if _, ok := r["notify"]; ok {
			t.Errorf("users/relation with a top-level notify: %v", r)
		}
	}

	// An hourly limit: 429 with Retry-After and info.total.
	if st, _, _ := call("mute/create", `{`+i+`,"userId":"`+other+`"}`); st != 204 {
		t.Fatalf("first mute: %d", st)
	}
	st, body, h := call("mute/create", `{`+i+`,"userId":"`+me+`"}`)
	info, _ := body["error"].(map[string]any)["info"].(map[string]any)
	if st != 429 || errCode(body) != "RATE_LIMIT_EXCEEDED" || h.Get("Retry-After") == "" || info["total"] != float64(1) {
		t.Errorf("over the limit: %d %v %q", st, body, h.Get("Retry-After"))
	}
	// notes/delete: at least a second apart.
	_, n1, _ := call("notes/create", `{`+i+`,"text":"a"}`)
	_, n2, _ := call("notes/create", `{`+i+`,"text":"b"}`)
	id := func(m map[string]any) string { return m["createdNote"].(map[string]any)["id"].(string) }
	call("notes/delete", `{`+i+`,"noteId":"`+id(n1)+`"}`)
	if st, _, h := call("notes/delete", `{`+i+`,"noteId":"`+id(n2)+`"}`); st != 429 || h.Get("Retry-After") != "1" {
		t.Errorf("a second delete at once: %d, Retry-After %q", st, h.Get("Retry-After"))
	}

	// Secure endpoints refuse an app's token with 403.
	if st, body, _ := call("i/move", `{"i":"`+app+`","moveToAccount":"@x"}`); st != 403 || errCode(body) != "ACCESS_DENIED" {
		t.Errorf("i/move with an app token: %d %v", st, body)
	}
	// blocking/create answers the blockee.
	if st, body, _ := call("blocking/create", `{`+i+`,"userId":"`+other+`"}`); st != 200 || body["id"] != other {
		t.Errorf("blocking/create: %d %v", st, body)
	}
	// renote-mute has its own error ids.
	call("renote-mute/create", `{`+i+`,"userId":"`+other+`"}`)
	if _, body, _ := call("renote-mute/create", `{`+i+`,"userId":"`+other+`"}`); body["error"].(map[string]any)["id"] != "ccfecbe4-1f1c-4fc2-8a3d-c3ffee61cb7b" {
		t.Errorf("renote-mute ALREADY_MUTING: %v", body)
	}
	// GET meta is allowed; GET of another endpoint is 405 with no body.
	if r, err := http.Get(s.URL + "/api/meta"); err != nil || r.StatusCode != 200 {
		t.Errorf("GET /api/meta: %v %v", r.Status, err)
	} else {
		r.Body.Close()
	}
	if r, err := http.Get(s.URL + "/api/i"); err != nil || r.StatusCode != 405 {
		t.Errorf("GET /api/i: %v %v", r.Status, err)
	} else {
		r.Body.Close()
	}
	// Length in code points: 3000 emoji are taken, 3001 "x" refused.
	if st, body, _ := call("notes/create", `{`+i+`,"text":"`+strings.Repeat("🦊", 3000)+`"}`); st != 200 {
		t.Errorf("3000 emoji: %d %v", st, body)
	}
	st, body, _ = call("notes/create", `{`+i+`,"text":"`+strings.Repeat("x", 3001)+`"}`)
	if p, _ := body["error"].(map[string]any)["info"].(map[string]any)["param"].(string); st != 400 || p != "#/then/properties/text/maxLength" {
		t.Errorf("3001 characters: %d %v", st, body)
	}
	// users/notes of an unknown user is an empty list.
	if st, _, _ := call("users/notes", `{"userId":"zzzzzzzzzzzz"}`); st != 200 {
		t.Errorf("users/notes of an unknown user: %d", st)
	}
	// notesCount counts deleted notes too.
	_, body, _ = call("i", `{`+i+`}`)
	if body["notesCount"] != float64(3) {
		t.Errorf("notesCount after 3 notes, 1 deleted: %v", body["notesCount"])
	}
}

// A streaming frame that is not JSON is ignored; the connection stays.
func TestStreamIgnoresNonJSONFrames(t *testing.T) {
	s := Start(Config{})
	defer s.Close()
	tok := s.AddToken(s.AddUser("me", "pw"), nil)
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.URL, "http")+"/streaming?i="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.WriteMessage(websocket.TextMessage, []byte("ping"))
	_ = conn.WriteJSON(map[string]any{"type": "connect", "body": map[string]string{"channel": "homeTimeline", "id": "h"}})
	time.Sleep(100 * time.Millisecond)
	resp, err := http.Post(s.URL+"/api/notes/create", "application/json", strings.NewReader(`{"i":"`+tok+`","text":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	var m map[string]any
	if err := conn.ReadJSON(&m); err != nil || m["type"] != "channel" {
		t.Fatalf("after a non-JSON frame: %v %v", m, err)
	}
}
