package fakemastodon

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

func errBody(msg string) map[string]string { return map[string]string{"error": msg} }

func (s *Server) byURI(uri string) *status {
	for _, st := range s.statuses {
		if st.URI == uri {
			return st
		}
	}
	return nil
}

// visible reports whether me may read st: public and unlisted statuses to
// everyone, followers-only to followers, anything to its author.
func (s *Server) visible(st *status, me string) bool {
	switch {
	case st.AccountID == me, st.Visibility == "public", st.Visibility == "unlisted":
		return true
	case st.Visibility == "private":
		return s.rel(me, st.AccountID).Following
	}
	return false
}

// statusJSON renders the Status entity
// (https://docs.joinmastodon.org/entities/Status/). With NoEditedAt the
// edited_at field is left out altogether, as Hollo 0.10.0 does.
func (s *Server) statusJSON(st *status) map[string]any {
	a := s.accounts[st.AccountID]
	content := "<p>" + strings.ReplaceAll(html.EscapeString(st.Text), "\n", "<br>") + "</p>"
	media := []any{}
	for _, id := range st.Media {
		if m := s.media[id]; m != nil {
			media = append(media, s.mediaJSON(m))
		}
	}
	m := map[string]any{
		"id": st.ID, "uri": st.URI, "url": strings.Replace(st.URI, "/users/"+a.Username+"/statuses/", "/@"+a.Username+"/", 1),
		"created_at": st.CreatedAt.Format("2006-01-02T15:04:05.000Z"), "account": s.accountJSON(st.AccountID, false),
		"in_reply_to_id": nil, "in_reply_to_account_id": nil, "reblog": nil, "content": content,
		"spoiler_text": st.Spoiler, "sensitive": st.Sensitive, "visibility": st.Visibility, "language": st.Language,
		"media_attachments": media, "mentions": []any{}, "tags": []any{}, "emojis": []any{}, "poll": nil,
		"favourited": false, "bookmarked": false, "replies_count": 0, "reblogs_count": 0, "favourites_count": 0,
	}
	if st.Language == "" {
		m["language"] = nil
	}
	if !s.cfg.Quirks.NoEditedAt {
		m["edited_at"] = nil
		if st.EditedAt != nil {
			m["edited_at"] = st.EditedAt.Format("2006-01-02T15:04:05.000Z")
		}
	}
	if st.InReplyTo != "" {
		if p := s.byURI(st.InReplyTo); p != nil {
			m["in_reply_to_id"] = p.ID
			m["in_reply_to_account_id"] = p.AccountID
		}
	}
	if p := st.Poll; p != nil {
		opts := []any{}
		for _, o := range p.Options {
			opts = append(opts, map[string]any{"title": o, "votes_count": 0})
		}
		m["poll"] = map[string]any{"id": p.ID, "expires_at": p.ExpiresAt.Format(time.RFC3339), "expired": false,
			"multiple": p.Multiple, "votes_count": 0, "voters_count": 0, "options": opts, "emojis": []any{}}
	}
	for _, u := range s.accounts[st.AccountID].bookmarks {
		if u == st.URI {
			m["bookmarked"] = true
		}
	}
	return m
}

// accountStatuses serves GET /api/v1/accounts/:id/statuses
// (https://docs.joinmastodon.org/methods/accounts/#statuses): newest first,
// max_id/since_id/min_id/limit, and a Link header with next (max_id) and
// prev (min_id) unless NoLinkHeader.
func (s *Server) accountStatuses(id string, v url.Values, me string) (int, any, string) {
	limit := 20
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			return 422, errBody("Validation failed: limit"), ""
		}
		limit = min(n, 40)
	}
	var all []*status
	for _, st := range s.statuses {
		if st.AccountID != id || !s.visible(st, me) {
			continue
		}
		if s.cfg.Quirks.HiddenPrivatePosts && (st.Visibility == "private" || st.Visibility == "direct") {
			continue
		}
		if boolParam(v, "exclude_replies", false) && st.InReplyTo != "" {
			continue
		}
		if mx := v.Get("max_id"); mx != "" && !idLess(st.ID, mx) {
			continue
		}
		if sn := v.Get("since_id"); sn != "" && !idLess(sn, st.ID) {
			continue
		}
		if mn := v.Get("min_id"); mn != "" && !idLess(mn, st.ID) {
			continue
		}
		all = append(all, st)
	}
	sort.Slice(all, func(i, j int) bool { return idLess(all[j].ID, all[i].ID) }) // newest first
	if v.Get("min_id") != "" && len(all) > limit {
		all = all[len(all)-limit:] // the page right after min_id
	} else if len(all) > limit {
		all = all[:limit]
	}
	out := []any{}
	for _, st := range all {
		out = append(out, s.statusJSON(st))
	}
	link := ""
	if len(all) > 0 && !s.cfg.Quirks.NoLinkHeader {
		base := s.URL + "/api/v1/accounts/" + id + "/statuses?limit=" + strconv.Itoa(limit)
		link = fmt.Sprintf(`<%s&max_id=%s>; rel="next", <%s&min_id=%s>; rel="prev"`, base, all[len(all)-1].ID, base, all[0].ID)
	}
	return 200, out, link
}

// statusInput validates the parameters of POST and PUT /api/v1/statuses
// (https://docs.joinmastodon.org/methods/statuses/#create) into st; a
// non-empty message is the 422 error.
func (s *Server) statusInput(st *status, v url.Values, me string, create bool) string {
	st.Text = v.Get("status")
	st.Spoiler = v.Get("spoiler_text")
	st.Sensitive = boolParam(v, "sensitive", false)
	if l := v.Get("language"); l != "" || create {
		st.Language = l
	}
	if utf8.RuneCountInString(st.Text)+utf8.RuneCountInString(st.Spoiler) > s.cfg.MaxCharacters {
		return "Validation failed: Text character limit of " + strconv.Itoa(s.cfg.MaxCharacters) + " exceeded"
	}
	ids := listParam(v, "media_ids")
	if len(ids) > s.cfg.MaxMediaAttachments {
		return "Validation failed: too many media attachments"
	}
	for _, id := range ids {
		m := s.media[id]
		if m == nil || m.AccountID != me {
			return "Validation failed: media " + id + " not found"
		}
		if m.Used && !containsStr(st.Media, id) {
			return "Validation failed: media " + id + " is attached to another status"
		}
	}
	if ids != nil || create {
		st.Media = ids
	}
	if opts := listParam(v, "poll[options]"); len(opts) > 0 {
		if len(ids) > 0 {
			return "Validation failed: cannot attach both media and a poll"
		}
		if len(opts) < 2 || len(opts) > s.cfg.PollMaxOptions {
			return fmt.Sprintf("Validation failed: a poll needs 2 to %d options", s.cfg.PollMaxOptions)
		}
		exp, err := strconv.Atoi(v.Get("poll[expires_in]"))
		if err != nil || exp < 300 {
			return "Validation failed: poll expires_in must be at least 300 seconds"
		}
		s.seq++
		st.Poll = &poll{ID: strconv.FormatInt(s.seq, 10), Options: opts, Multiple: boolParam(v, "poll[multiple]", false),
			ExpiresAt: s.now().Add(time.Duration(exp) * time.Second)}
	}
	if strings.TrimSpace(st.Text) == "" && len(st.Media) == 0 && st.Poll == nil {
		return "Validation failed: Text can't be blank"
	}
	return ""
}

func containsStr(xs []string, x string) bool {
	for _, e := range xs {
		if e == x {
			return true
		}
	}
	return false
}

func (s *Server) createStatus(me string, v url.Values) (int, any, string) {
	s.seq++
	now := s.now()
	if s.cfg.Quirks.IDChangesOnEdit {
		now = now.Truncate(time.Second) // snac2 keeps times to the second
	}
	a := s.accounts[me]
	st := &status{AccountID: me, CreatedAt: now, seq: s.seq,
		URI: fmt.Sprintf("%s/users/%s/statuses/%d", s.URL, a.Username, s.seq)}
	st.Visibility = v.Get("visibility")
	switch st.Visibility {
	case "":
		st.Visibility = "public"
	case "public", "unlisted", "private", "direct":
	default:
		return 422, errBody("Validation failed: Visibility is not included in the list"), ""
	}
	if p := v.Get("in_reply_to_id"); p != "" {
		parent := s.statuses[p]
		if parent == nil || !s.visible(parent, me) {
			return 404, errBody("Record not found"), ""
		}
		st.InReplyTo = parent.URI
	}
	if msg := s.statusInput(st, v, me, true); msg != "" {
		return 422, errBody(msg), ""
	}
	for _, id := range st.Media {
		s.media[id].Used = true
	}
	st.ID = s.newStatusID(st.URI, now)
	s.statuses[st.ID] = st
	a.statuses++
	s.broadcast(me, "update", st)
	return 200, s.statusJSON(st), ""
}

// statusRoute serves /api/v1/statuses/:id and its actions.
func (s *Server) statusRoute(method, id string, rest []string, v url.Values, me string) (int, any, string) {
	st := s.statuses[id]
	if st == nil || !s.visible(st, me) {
		return 404, errBody("Record not found"), ""
	}
	if len(rest) == 1 && method == "POST" {
		a := s.accounts[me]
		switch rest[0] {
		case "favourite":
			if !containsStr(a.favourites, st.URI) {
				a.favourites = append(a.favourites, st.URI)
			}
		case "bookmark":
			if !containsStr(a.bookmarks, st.URI) {
				a.bookmarks = append(a.bookmarks, st.URI)
			}
		case "unbookmark":
			var keep []string
			for _, u := range a.bookmarks {
				if u != st.URI {
					keep = append(keep, u)
				}
			}
			a.bookmarks = keep
		default:
			return 0, nil, ""
		}
		return 200, s.statusJSON(st), ""
	}
	if len(rest) != 0 {
		return 0, nil, ""
	}
	switch method {
	case "GET":
		return 200, s.statusJSON(st), ""
	case "PUT":
		if st.AccountID != me {
			return 404, errBody("Record not found"), ""
		}
		ed := *st
		if msg := s.statusInput(&ed, v, me, false); msg != "" {
			return 422, errBody(msg), ""
		}
		for _, mid := range st.Media {
			if !containsStr(ed.Media, mid) {
				s.media[mid].Used = false
			}
		}
		for _, mid := range ed.Media {
			s.media[mid].Used = true
		}
		now := s.now()
		ed.EditedAt = &now
		*st = ed
		if s.cfg.Quirks.IDChangesOnEdit {
			delete(s.statuses, st.ID)
			st.ID = s.newStatusID(st.URI, now)
			s.statuses[st.ID] = st
		}
		s.broadcast(me, "status.update", st)
		return 200, s.statusJSON(st), ""
	case "DELETE":
		if st.AccountID != me {
			return 404, errBody("Record not found"), ""
		}
		out := s.statusJSON(st)
		out["text"] = st.Text
		delete(s.statuses, id)
		s.accounts[st.AccountID].statuses--
		for _, mid := range st.Media {
			delete(s.media, mid)
		}
		s.broadcast(me, "delete", st)
		return 200, out, ""
	}
	return 0, nil, ""
}

func (s *Server) mediaJSON(m *mediaAtt) map[string]any {
	out := map[string]any{"id": m.ID, "type": m.Type, "url": s.URL + "/media/" + m.ID + ".png",
		"preview_url": s.URL + "/media/" + m.ID + "-small.png", "remote_url": nil, "description": m.Description,
		"blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj", "meta": map[string]any{}}
	if m.Description == "" {
		out["description"] = nil
	}
	if x, y, ok := strings.Cut(m.Focus, ","); ok {
		fx, _ := strconv.ParseFloat(x, 64)
		fy, _ := strconv.ParseFloat(y, 64)
		out["meta"] = map[string]any{"focus": map[string]float64{"x": fx, "y": fy}}
	}
	return out
}

// upload serves POST /api/v1/media and /api/v2/media
// (https://docs.joinmastodon.org/methods/media/#v2): a multipart "file",
// checked against the published size limits.
func (s *Server) upload(me string, v url.Values, r *http.Request) (int, any, string) {
	if r.MultipartForm == nil || len(r.MultipartForm.File["file"]) == 0 {
		return 422, errBody("Validation failed: File can't be blank"), ""
	}
	fh := r.MultipartForm.File["file"][0]
	typ, limit := "image", s.cfg.ImageSizeLimit
	ct := fh.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "video/"):
		typ, limit = "video", s.cfg.VideoSizeLimit
	case strings.HasPrefix(ct, "audio/"):
		typ, limit = "audio", s.cfg.VideoSizeLimit
	}
	if fh.Size > limit {
		return 422, errBody("Validation failed: File file size must be less than " + strconv.FormatInt(limit, 10) + " Bytes"), ""
	}
	f, err := fh.Open()
	if err == nil {
		_, _ = io.Copy(io.Discard, f)
		f.Close()
	}
	s.seq++
	m := &mediaAtt{ID: strconv.FormatInt(9000+s.seq, 10), AccountID: me, Type: typ,
		Description: v.Get("description"), Focus: v.Get("focus"), Size: int(fh.Size)}
	s.media[m.ID] = m
	return 200, s.mediaJSON(m), ""
}

func (s *Server) mediaRoute(method, id string, v url.Values, me string) (int, any, string) {
	m := s.media[id]
	if m == nil || m.AccountID != me {
		return 404, errBody("Record not found"), ""
	}
	switch method {
	case "GET":
		return 200, s.mediaJSON(m), ""
	case "PUT":
		if d, ok := v["description"]; ok {
			m.Description = d[0]
		}
		if f := v.Get("focus"); f != "" {
			m.Focus = f
		}
		return 200, s.mediaJSON(m), ""
	}
	return 0, nil, ""
}

// streamConn is one open streaming WebSocket, fed through a buffered
// channel so that the server lock is never held while writing.
type streamConn struct {
	conn    *websocket.Conn
	account string
	out     chan []byte
}

// stream serves /api/v1/streaming?stream=user as a WebSocket
// (https://docs.joinmastodon.org/methods/streaming/), or 404 with
// NoStreaming.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, me string) {
	if s.cfg.Quirks.NoStreaming {
		htmlNotFound(w)
		return
	}
	if r.URL.Query().Get("stream") != "user" {
		apiError(w, http.StatusBadRequest, "Unknown stream type")
		return
	}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &streamConn{conn: conn, account: me, out: make(chan []byte, 256)}
	s.mu.Lock()
	s.streams[c] = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	defer func() {
		s.mu.Lock()
		delete(s.streams, c)
		s.mu.Unlock()
		conn.Close()
	}()
	for {
		select {
		case msg := <-c.out:
			if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				return
			}
		case <-done:
			return
		}
	}
}

// broadcast sends an event about st to its author's streams; the caller
// holds s.mu.
func (s *Server) broadcast(account, event string, st *status) {
	var payload string
	if event == "delete" {
		payload = st.ID
	} else {
		b, _ := json.Marshal(s.statusJSON(st))
		payload = string(b)
	}
	msg, _ := json.Marshal(map[string]any{"stream": []string{"user"}, "event": event, "payload": payload})
	for c := range s.streams {
		if c.account != account {
			continue
		}
		select {
		case c.out <- msg:
		default: // a stalled reader loses events, as on a real server
		}
	}
}
