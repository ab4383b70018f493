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

	msgs      chan Message
	pongs     chan string
	done      chan struct{}
	err       error // why the reader stopped; read after done is closed
	quit      chan struct{}
	closeOnce sync.Once
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
	st := &Stream{conn: conn, host: u.Host, msgs: make(chan Message, 64), pongs: make(chan string, 8), done: make(chan struct{}), quit: make(chan struct{})}
	conn.SetPongHandler(func(data string) error {
		_ = conn.SetReadDeadline(time.Now().Add(idle))
		select {
		case st.pongs <- data:
		default:
		}
		return nil
	})
	go st.read()
	return st, nil
}

// read is the connection's one reader: it hands messages to Next and
// pongs to Sync, so a Sync can wait while messages keep arriving.
func (s *Stream) read() {
	defer close(s.done)
	for {
		_ = s.conn.SetReadDeadline(time.Now().Add(idle))
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			s.err = fmt.Errorf("the stream on %s: %w", s.host, err)
			return
		}
		var m Message
		if json.Unmarshal(data, &m) != nil || m.Type == "" {
			continue
		}
		select {
		case s.msgs <- m:
		case <-s.quit:
			return
		}
	}
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
	select {
	case m := <-s.msgs:
		return m, nil
	case <-ctx.Done():
		s.conn.Close()
		return Message{}, ctx.Err()
	case <-s.done:
		// Messages read before the end still count.
		select {
		case m := <-s.msgs:
			return m, nil
		default:
		}
		return Message{}, s.err
	}
}

// Sync returns once the server has read everything sent before it: a ping
// goes after the earlier messages and the server answers it (pong) only
// after reading them, as WebSocket servers read a connection in order.
// After a SubNote, it means the subscription is in place. A server that
// does not answer within a few seconds is not an error: Sync just returns.
func (s *Stream) Sync(ctx context.Context) error {
	token := fmt.Sprintf("sync-%d", time.Now().UnixNano())
	s.mu.Lock()
	err := s.conn.WriteControl(websocket.PingMessage, []byte(token), time.Now().Add(10*time.Second))
	s.mu.Unlock()
	if err != nil {
		return err
	}
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case p := <-s.pongs:
			if p == token {
				return nil
			}
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return s.err
		}
	}
}

// Ping keeps the connection alive through proxies that close idle ones.
func (s *Stream) Ping() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second))
}

// Close closes the connection and ends its reader.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() { close(s.quit) })
	return s.conn.Close()
}
