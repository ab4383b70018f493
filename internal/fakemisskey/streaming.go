package fakemisskey

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// streamConn is one open streaming WebSocket (StreamingApiServerService.ts
// and server/api/stream/Connection.ts): the channels it connected, by
// connection id, and the notes it subscribed to. Messages go out through
// a buffered channel so the server lock is never held while writing.
type streamConn struct {
	conn     *websocket.Conn
	userID   string
	channels map[string]string // connection id -> channel name
	subs     map[string]bool   // note ids (subNote)
	out      chan []byte
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// streaming serves /streaming?i=<token> (or with a Bearer token). A
// missing or unknown token is refused with 401 before the upgrade, as
// Misskey does. Handled client messages: connect {channel, id},
// disconnect {id}, subNote {id}, unsubNote {id}; the channels are "main"
// and "homeTimeline" (the user's own notes and those of the accounts the
// user follows arrive on the latter as
// {"type":"channel","body":{"id","type":"note","body":Note}}); a
// subscribed note's deletion is {"type":"noteUpdated","body":{"id",
// "type":"deleted","body":{"deletedAt"}}}, and on Sharkey its edit
// "updated" with the new text and cw.
func (s *Server) streaming(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("i")
	if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		tok = b
	}
	s.mu.Lock()
	t := s.tokens[tok]
	s.mu.Unlock()
	if t == nil {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &streamConn{conn: conn, userID: t.UserID, channels: map[string]string{}, subs: map[string]bool{}, out: make(chan []byte, 256)}
	s.mu.Lock()
	s.streams[c] = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var m struct {
				Type string `json:"type"`
				Body struct {
					Channel string `json:"channel"`
					ID      string `json:"id"`
				} `json:"body"`
			}
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if json.Unmarshal(data, &m) != nil {
				// A frame that is not JSON ("ping") is ignored, the
				// connection kept: checked against Misskey 2025.4.x
				// (MisskeyIO fork) on loopback.
				continue
			}
			s.mu.Lock()
			switch m.Type {
			case "connect":
				if m.Body.Channel == "main" || m.Body.Channel == "homeTimeline" {
					c.channels[m.Body.ID] = m.Body.Channel
				}
			case "disconnect":
				delete(c.channels, m.Body.ID)
			case "subNote":
				c.subs[m.Body.ID] = true
			case "unsubNote":
				delete(c.subs, m.Body.ID)
			}
			s.mu.Unlock()
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
		case <-done:
			return
		case msg := <-c.out:
			_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				return
			}
		}
	}
}

func (c *streamConn) push(v any) {
	b, _ := json.Marshal(v)
	select {
	case c.out <- b:
	default: // a stalled reader loses messages, as on a real server
	}
}

// publishNote tells the author's streams of a new note (with s.mu held).
//
// homeTimeline carries the notes of the accounts the user follows as well
// as the user's own (checked against Misskey 2025.4.x, MisskeyIO fork, on
// loopback), so a reader of it must pick its own notes out.
func (s *Server) publishNote(n *note) {
	for c := range s.streams {
		if c.userID != n.UserID && (s.edge("following", c.userID, n.UserID) == nil || !s.visibleTo(n, nil) && n.Visibility != "followers") {
			continue
		}
		for id, ch := range c.channels {
			if ch == "homeTimeline" {
				c.push(map[string]any{"type": "channel", "body": map[string]any{"id": id, "type": "note", "body": s.packNote(n, 1)}})
			}
		}
	}
}

// publishUpdate tells the streams subscribed to the note of a change
// (with s.mu held).
func (s *Server) publishUpdate(noteID, typ string, body map[string]any) {
	for c := range s.streams {
		if c.subs[noteID] {
			c.push(map[string]any{"type": "noteUpdated", "body": map[string]any{"id": noteID, "type": typ, "body": body}})
		}
	}
}

// CloseStreams ends every open streaming connection, as a restart does.
func (s *Server) CloseStreams() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.streams {
		c.conn.Close()
	}
}
