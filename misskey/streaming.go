package misskey

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fedi-ferry/ferry/httpsonly"
)

// ErrNoStreaming is wrapped by Stream's error when the server has no
// streaming endpoint (the handshake gets a 404, 405 or 501).
var ErrNoStreaming = errors.New("the server has no streaming API")

// Stream is one connection to Misskey's streaming API
// (https://misskey-hub.net/en/docs/for-developers/api/streaming/): one
// WebSocket at /streaming on which channels are connected ("main",
// "homeTimeline" …) and notes subscribed to (subNote) for their updates.
// Safe for concurrent use; Next must be called from one goroutine.
type Stream struct {
	conn *websocket.Conn
	host string
	mu   sync.Mutex // serialises writes
}

// Message is one message of the stream: "channel" (Body: ChannelMessage)
// or "noteUpdated" (Body: NoteUpdate).
type Message struct {
	Type string          `json:"type"`
	Body json.RawMessage `json:"body"`
}

// ChannelMessage is an event of a connected channel: its connection ID,
// the event's type ("note" on timelines) and body (a Note).
type ChannelMessage struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Body json.RawMessage `json:"body"`
}

// NoteUpdate is a change of a subscribed note: Type "deleted" (Misskey),
// "updated" (Sharkey's edits), "reacted", "pollVoted" ….
type NoteUpdate struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// Stream opens the streaming WebSocket of the client's account. The token
// travels as the "i" query parameter, the one way every Misskey version
// accepts; it is never part of an error or log line here.
func (c *Client) Stream(ctx context.Context) (*Stream, error) {
	u := c.Base()
	if err := httpsonly.Check(u); err != nil {
		return nil, err
	}
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path = "/streaming"
	u.RawQuery = url.Values{"i": {c.token}}.Encode()
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, Proxy: http.ProxyFromEnvironment, TLSClientConfig: c.tlsConfig()}
	h := http.Header{}
	h.Set("User-Agent", c.ua)
	conn, resp, err := d.DialContext(ctx, u.String(), h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			switch resp.StatusCode {
			case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
				return nil, fmt.Errorf("open the stream on %s: HTTP %d: %w", u.Host, resp.StatusCode, ErrNoStreaming)
			case http.StatusUnauthorized, http.StatusForbidden:
				return nil, &APIError{Endpoint: "streaming", Status: resp.StatusCode, Code: "AUTHENTICATION_FAILED",
					Message: "the server refused the token for streaming"}
			}
			return nil, fmt.Errorf("open the stream on %s: HTTP %d", u.Host, resp.StatusCode)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL carries the token
		}
		return nil, fmt.Errorf("open the stream on %s: %w", u.Host, err)
	}
	return &Stream{conn: conn, host: u.Host}, nil
}

// tlsConfig returns the TLS settings of the client's transport, so that a
// CA trusted for API calls is trusted for streaming too.
func (c *Client) tlsConfig() *tls.Config {
	rt := c.hc.Transport
	if ch, ok := rt.(checked); ok {
		rt = ch.base
	}
	if ht, ok := rt.(*http.Transport); ok && ht.TLSClientConfig != nil {
		tc := ht.TLSClientConfig.Clone()
		tc.NextProtos = nil // a WebSocket handshake is HTTP/1.1
		return tc
	}
	return nil
}

func (s *Stream) send(v any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return s.conn.WriteJSON(v)
}

// Connect connects channel ("homeTimeline", "main" …) under id, which
// the channel's messages carry.
func (s *Stream) Connect(channel, id string) error {
	return s.send(map[string]any{"type": "connect", "body": map[string]any{"channel": channel, "id": id, "params": map[string]any{}}})
}

// SubNote subscribes to the note's updates (noteUpdated messages).
func (s *Stream) SubNote(id string) error {
	return s.send(map[string]any{"type": "subNote", "body": map[string]string{"id": id}})
}

// idle is how long a connection may stay silent before it counts as dead;
// a ping is sent at half of it.
const idle = 3 * time.Minute

// Next returns the next message, or the error that ended the stream
// (ctx.Err() once ctx ends).
func (s *Stream) Next(ctx context.Context) (Message, error) {
	stop := context.AfterFunc(ctx, func() { s.conn.Close() })
	defer stop()
	for {
		_ = s.conn.SetReadDeadline(time.Now().Add(idle))
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return Message{}, ctx.Err()
			}
			return Message{}, fmt.Errorf("the stream on %s: %w", s.host, err)
		}
		var m Message
		if json.Unmarshal(data, &m) != nil || m.Type == "" {
			continue
		}
		return m, nil
	}
}

// Ping keeps the connection alive through proxies that close idle ones.
func (s *Stream) Ping() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second))
}

// Close closes the connection.
func (s *Stream) Close() error { return s.conn.Close() }
