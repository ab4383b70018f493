package fakemastodon

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// clock is a settable time for same-second tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func start(t *testing.T, q Quirks) (*Server, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := Start(Config{Now: c.now, Quirks: q})
	t.Cleanup(s.Close)
	return s, c
}

type answer struct {
	code int
	hdr  http.Header
	body []byte
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %q: %v", a.body, err)
	}
}

func call(t *testing.T, s *Server, token, method, path string, body any) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

type st struct {
	ID       string  `json:"id"`
	URI      string  `json:"uri"`
	Content  string  `json:"content"`
	EditedAt *string `json:"edited_at"`
}

func post(t *testing.T, s *Server, tok string, body map[string]any) st {
	t.Helper()
	a := call(t, s, tok, "POST", "/api/v1/statuses", body)
	if a.code != 200 {
		t.Fatalf("post: %d %s", a.code, a.body)
	}
	var out st
	a.decode(t, &out)
	return out
}

func TestStrictness(t *testing.T) {
	s, _ := start(t, Quirks{})
	_, tok := s.AddAccount("alice")
	if a := call(t, s, "", "GET", "/api/v1/accounts/verify_credentials", nil); a.code != 401 {
		t.Errorf("no token: %d", a.code)
	}
	a := call(t, s, tok, "GET", "/api/v1/statuses/12345", nil)
	var e struct{ Error string }
	if a.code != 404 || json.Unmarshal(a.body, &e) != nil || e.Error == "" {
		t.Errorf("unknown id: %d %s", a.code, a.body)
	}
	if a := call(t, s, tok, "POST", "/api/v1/statuses", map[string]any{"status": ""}); a.code != 422 {
		t.Errorf("empty status: %d", a.code)
	}
	if a := call(t, s, tok, "POST", "/api/v1/statuses", map[string]any{"status": strings.Repeat("x", 501)}); a.code != 422 {
		t.Errorf("too long: %d", a.code)
	}
	if a := call(t, s, tok, "POST", "/api/v1/statuses", map[string]any{"status": "x",
		"poll": map[string]any{"options": []string{"a", "b", "c", "d", "e"}, "expires_in": 3600}}); a.code != 422 {
		t.Errorf("5 poll options with a limit of 4: %d", a.code)
	}
	var inst struct {
		Configuration struct {
			Polls struct {
				MaxOptions int `json:"max_options"`
			} `json:"polls"`
		} `json:"configuration"`
	}
	call(t, s, "", "GET", "/api/v2/instance", nil).decode(t, &inst)
	if inst.Configuration.Polls.MaxOptions != 4 {
		t.Errorf("instance polls.max_options %d", inst.Configuration.Polls.MaxOptions)
	}
}

// pages reads an account's statuses 2 at a time, following the Link header
// when there is one, else max_id; it returns the ids and whether a Link
// header came.
func pages(t *testing.T, s *Server, tok, acct string) (ids []string, linked bool) {
	path := "/api/v1/accounts/" + acct + "/statuses?limit=2"
	for range 20 {
		a := call(t, s, tok, "GET", path, nil)
		var page []st
		a.decode(t, &page)
		if len(page) == 0 {
			return ids, linked
		}
		for _, p := range page {
			ids = append(ids, p.ID)
		}
		if l := a.hdr.Get("Link"); l != "" {
			linked = true
		}
		path = "/api/v1/accounts/" + acct + "/statuses?limit=2&max_id=" + page[len(page)-1].ID
	}
	t.Fatal("paging does not end")
	return nil, false
}

func TestNoLinkHeader(t *testing.T) {
	for _, q := range []bool{false, true} {
		s, c := start(t, Quirks{NoLinkHeader: q})
		id, tok := s.AddAccount("alice")
		for i := range 5 {
			post(t, s, tok, map[string]any{"status": "p" + string(rune('0'+i))})
			c.add(time.Second)
		}
		ids, linked := pages(t, s, tok, id)
		if len(ids) != 5 || linked == q {
			t.Errorf("quirk %v: %d statuses, Link header %v", q, len(ids), linked)
		}
	}
}

func TestIDChangesOnEdit(t *testing.T) {
	s, c := start(t, Quirks{IDChangesOnEdit: true})
	_, tok := s.AddAccount("alice")
	a := post(t, s, tok, map[string]any{"status": "one"})
	c.add(2 * time.Second)
	var ed st
	e := call(t, s, tok, "PUT", "/api/v1/statuses/"+a.ID, map[string]any{"status": "two"})
	e.decode(t, &ed)
	if e.code != 200 || ed.ID == a.ID || ed.URI != a.URI {
		t.Fatalf("edit: %d, id %s -> %s, uri %s -> %s", e.code, a.ID, ed.ID, a.URI, ed.URI)
	}
	if call(t, s, tok, "GET", "/api/v1/statuses/"+a.ID, nil).code != 404 {
		t.Error("the pre-edit id still answers")
	}
	// Within one second ids sort by hash: among 20 posts some pair is out
	// of creation order.
	var prev string
	disorder := false
	for i := range 20 {
		p := post(t, s, tok, map[string]any{"status": "same second " + string(rune('a'+i))})
		disorder = disorder || prev != "" && idLess(p.ID, prev)
		prev = p.ID
	}
	if !disorder {
		t.Error("ids made in one second sort by creation")
	}
}

func TestNoEditedAt(t *testing.T) {
	for _, q := range []bool{false, true} {
		s, _ := start(t, Quirks{NoEditedAt: q})
		_, tok := s.AddAccount("alice")
		p := post(t, s, tok, map[string]any{"status": "one"})
		a := call(t, s, tok, "PUT", "/api/v1/statuses/"+p.ID, map[string]any{"status": "two"})
		var m map[string]any
		a.decode(t, &m)
		_, has := m["edited_at"]
		if has == q || !q && m["edited_at"] == nil {
			t.Errorf("quirk %v: edited_at %v (present %v)", q, m["edited_at"], has)
		}
	}
}

func TestNoStreaming(t *testing.T) {
	for _, q := range []bool{false, true} {
		s, _ := start(t, Quirks{NoStreaming: q})
		_, tok := s.AddAccount("alice")
		u := "ws" + strings.TrimPrefix(s.URL, "http") + "/api/v1/streaming?stream=user"
		conn, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {"Bearer " + tok}})
		if q {
			if err == nil || resp == nil || resp.StatusCode != 404 {
				t.Errorf("NoStreaming: handshake %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		p := post(t, s, tok, map[string]any{"status": "streamed"})
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var m struct{ Event, Payload string }
		if err := conn.ReadJSON(&m); err != nil || m.Event != "update" || !strings.Contains(m.Payload, p.ID) {
			t.Errorf("stream: %v %+v", err, m)
		}
		conn.Close()
	}
}

func TestStubBlocksMutes(t *testing.T) {
	for _, q := range []bool{false, true} {
		s, _ := start(t, Quirks{StubBlocksMutes: q})
		_, tok := s.AddAccount("alice")
		bob, _ := s.AddAccount("bob")
		carol, _ := s.AddAccount("carol")
		call(t, s, tok, "POST", "/api/v1/accounts/"+bob+"/block", nil)
		call(t, s, tok, "POST", "/api/v1/accounts/"+carol+"/mute", nil)
		var rels []struct{ Blocking, Muting bool }
		call(t, s, tok, "GET", "/api/v1/accounts/relationships?id[]="+bob+"&id[]="+carol, nil).decode(t, &rels)
		if len(rels) != 2 || !rels[0].Blocking || !rels[1].Muting {
			t.Errorf("relationships %+v", rels)
		}
		for _, p := range []string{"/api/v1/blocks", "/api/v1/mutes"} {
			var l []any
			call(t, s, tok, "GET", p, nil).decode(t, &l)
			if (len(l) == 0) != q {
				t.Errorf("quirk %v: %s has %d accounts", q, p, len(l))
			}
		}
	}
}

func TestListIDsBySecond(t *testing.T) {
	for _, q := range []bool{false, true} {
		s, _ := start(t, Quirks{ListIDsBySecond: q})
		_, tok := s.AddAccount("alice")
		call(t, s, tok, "POST", "/api/v1/lists", map[string]any{"title": "one"})
		call(t, s, tok, "POST", "/api/v1/lists", map[string]any{"title": "two"})
		var ls []struct{ ID, Title string }
		call(t, s, tok, "GET", "/api/v1/lists", nil).decode(t, &ls)
		if want := map[bool]int{false: 2, true: 1}[q]; len(ls) != want || q && ls[0].Title != "two" {
			t.Errorf("quirk %v: lists %+v", q, ls)
		}
	}
}

func TestMissingEndpoints(t *testing.T) {
	s, _ := start(t, Quirks{MissingEndpoints: []string{"/api/v1/mutes", "/api/v1/lists/"}})
	_, tok := s.AddAccount("alice")
	for _, p := range []string{"/api/v1/mutes", "/api/v1/lists/1/accounts"} {
		a := call(t, s, tok, "GET", p, nil)
		if a.code != 404 || !strings.HasPrefix(a.hdr.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s", p, a.code, a.hdr.Get("Content-Type"))
		}
	}
	if a := call(t, s, tok, "GET", "/api/v1/lists", nil); a.code != 200 {
		t.Errorf("/api/v1/lists: %d", a.code)
	}
}

func TestFollowSettingsIgnored(t *testing.T) {
	for _, q := range []bool{false, true} {
		s, _ := start(t, Quirks{FollowSettingsIgnored: q})
		_, tok := s.AddAccount("alice")
		bob, _ := s.AddAccount("bob")
		var rel struct {
			Following, Notifying bool
			Languages            []string
		}
		a := call(t, s, tok, "POST", "/api/v1/accounts/"+bob+"/follow", map[string]any{"notify": true, "languages": []string{"de"}})
		a.decode(t, &rel)
		if a.code != 200 || !rel.Following || rel.Notifying == q || (len(rel.Languages) == 1) == q {
			t.Errorf("quirk %v: %d %+v", q, a.code, rel)
		}
	}
}

func TestHiddenPrivatePosts(t *testing.T) {
	for _, q := range []bool{false, true} {
		s, _ := start(t, Quirks{HiddenPrivatePosts: q})
		id, tok := s.AddAccount("alice")
		post(t, s, tok, map[string]any{"status": "public"})
		priv := post(t, s, tok, map[string]any{"status": "private", "visibility": "private"})
		var l []st
		call(t, s, tok, "GET", "/api/v1/accounts/"+id+"/statuses", nil).decode(t, &l)
		var me struct {
			StatusesCount int `json:"statuses_count"`
		}
		call(t, s, tok, "GET", "/api/v1/accounts/verify_credentials", nil).decode(t, &me)
		if want := map[bool]int{false: 2, true: 1}[q]; len(l) != want || me.StatusesCount != 2 {
			t.Errorf("quirk %v: %d listed, statuses_count %d", q, len(l), me.StatusesCount)
		}
		if call(t, s, tok, "GET", "/api/v1/statuses/"+priv.ID, nil).code != 200 {
			t.Errorf("quirk %v: the private post is not readable by id", q)
		}
	}
}

func TestPagingParams(t *testing.T) {
	s, c := start(t, Quirks{})
	id, tok := s.AddAccount("alice")
	var ids []string
	for i := range 5 {
		ids = append(ids, post(t, s, tok, map[string]any{"status": "p" + string(rune('0'+i))}).ID)
		c.add(time.Millisecond)
	}
	var l []st
	call(t, s, tok, "GET", "/api/v1/accounts/"+id+"/statuses?limit=2&min_id="+url.QueryEscape(ids[0]), nil).decode(t, &l)
	if len(l) != 2 || l[0].ID != ids[2] || l[1].ID != ids[1] {
		t.Errorf("min_id page: %+v, want %s %s", l, ids[2], ids[1])
	}
	call(t, s, tok, "GET", "/api/v1/accounts/"+id+"/statuses?limit=2&since_id="+ids[0], nil).decode(t, &l)
	if len(l) != 2 || l[0].ID != ids[4] {
		t.Errorf("since_id page: %+v", l)
	}
}
