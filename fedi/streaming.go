package fedi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fedi-ferry/ferry/httpsonly"
)

// ErrNoStreaming is wrapped by Stream's error when the server has no
// streaming API at that address (the WebSocket handshake gets a 404, 405 or
// 501), although servers such as snac2 and Hollo advertise one in their
// instance document. Connecting again will not help; poll instead.
var ErrNoStreaming = errors.New("the server has no streaming API")

// StreamEvent is one message of the streaming API. Payload is already
// decoded from the JSON string the server wraps it in: a status for
// "update" and "status.update", a status ID for "delete".
type StreamEvent struct {
	Event   string
	Status  *Status // update, status.update
	ID      string  // delete
	Payload string  // raw payload, for other events
}

// streamMessage is the wire form: payload is a JSON document in a string.
type streamMessage struct {
	Event   string   `json:"event"`
	Payload string   `json:"payload"`
	Stream  []string `json:"stream"`
}

// Stream opens the streaming API's WebSocket for stream ("user") and sends
// each event to handle until ctx ends or the connection fails; it returns
// the error (ctx.Err() on cancellation). streamingBase is the server's
// streaming URL if it names one (Server.StreamingURL), else "" for the
// API host. The token travels in the Authorization header, never in the
// URL, and the connection uses the Client's TLS settings. GoToSocial only
// offers WebSocket streaming; Mastodon offers both, so WebSocket is used.
func (c *Client) Stream(ctx context.Context, stream, streamingBase string, handle func(StreamEvent)) error {
	u := c.Base()
	if streamingBase != "" {
		if su, err := url.Parse(streamingBase); err == nil && su.Host != "" {
			u = su
		}
	}
	if err := httpsonly.Check(u); err != nil {
		return err
	}
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	case "http":
		u.Scheme = "ws"
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v1/streaming"
	u.RawQuery = url.Values{"stream": {stream}}.Encode()

	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, Proxy: http.ProxyFromEnvironment}
	if tc := c.tlsConfig(); tc != nil {
		d.TLSClientConfig = tc
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+c.token)
	h.Set("User-Agent", c.userAgent())
	conn, resp, err := d.DialContext(ctx, u.String(), h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		switch status {
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
			return fmt.Errorf("open the %s stream on %s: HTTP %d: %w", stream, u.Host, status, ErrNoStreaming)
		}
		if status != 0 {
			return fmt.Errorf("open the %s stream on %s: HTTP %d: %w", stream, u.Host, status, err)
		}
		return fmt.Errorf("open the %s stream on %s: %w", stream, u.Host, err)
	}
	defer conn.Close()
	// Closing the connection is the only way to interrupt a blocked read.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	// Servers ping; a connection silent for longer than this is dead.
	const idle = 5 * time.Minute
	conn.SetPingHandler(func(data string) error {
		_ = conn.SetReadDeadline(time.Now().Add(idle))
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
	})
	for {
		_ = conn.SetReadDeadline(time.Now().Add(idle))
		_, data, err := conn.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("the %s stream on %s: %w", stream, u.Host, err)
		}
		var m streamMessage
		if err := json.Unmarshal(data, &m); err != nil || m.Event == "" {
			continue // not an event (a heartbeat, an error note)
		}
		ev := StreamEvent{Event: m.Event, Payload: m.Payload}
		switch m.Event {
		case "update", "status.update":
			var st Status
			if err := json.Unmarshal([]byte(m.Payload), &st); err != nil {
				continue
			}
			ev.Status = &st
		case "delete":
			ev.ID = strings.Trim(m.Payload, `"`)
		}
		handle(ev)
	}
}

// tlsConfig returns the TLS settings of the Client's base transport, so
// that a private CA trusted for API calls is trusted for streaming too.
func (c *Client) tlsConfig() *tls.Config {
	rt := c.http.Transport
	if t, ok := rt.(*Transport); ok {
		rt = t.base
	}
	if ht, ok := rt.(*http.Transport); ok && ht.TLSClientConfig != nil {
		tc := ht.TLSClientConfig.Clone()
		// The HTTP transport may have added "h2"; a WebSocket handshake
		// is HTTP/1.1 only.
		tc.NextProtos = nil
		return tc
	}
	return nil
}

func (c *Client) userAgent() string {
	if t, ok := c.http.Transport.(*Transport); ok && t.userAgent != "" {
		return t.userAgent
	}
	return "ferry"
}
