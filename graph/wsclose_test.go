package graph_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/skiffhq/skiff/graph"
)

// A graphql-transport-ws connection that breaks the protocol is closed with
// the protocol's own code, which its clients act on (graphql-ws retries a
// 4408 and gives up on a 4400 or 4401), and a reason: gqlgen closed all of
// them with RFC 6455's 1002. The legacy graphql-ws subprotocol has no such
// codes and keeps 1002.
func TestWebSocketProtocolErrorsCloseWithTheProtocolsCodes(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *graph.Config) { c.WebSocketInitTimeout = 300 * time.Millisecond })
	_, owner := e.account("Acme", "owner@acme.example")
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/graphql"
	for _, tc := range []struct {
		name, subprotocol string
		send              func(context.Context, *websocket.Conn) error // nil: send nothing
		code              websocket.StatusCode
		reason            string
	}{
		{"nothing sent", "graphql-transport-ws", nil, 4408, "connection initialisation timeout"},
		{"subscribe before connection_init", "graphql-transport-ws", func(ctx context.Context, c *websocket.Conn) error {
			return wsjson.Write(ctx, c, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": "subscription { sftpSessionEvents { kind } }"}})
		}, 4401, "Unauthorized: send connection_init first"},
		{"not JSON", "graphql-transport-ws", func(ctx context.Context, c *websocket.Conn) error {
			return c.Write(ctx, websocket.MessageText, []byte("hello"))
		}, 4400, "decoding error"},
		{"an unknown message type first", "graphql-transport-ws", func(ctx context.Context, c *websocket.Conn) error {
			return wsjson.Write(ctx, c, map[string]any{"type": "shout"})
		}, 4400, "decoding error"},
		{"an unknown message type once acknowledged", "graphql-transport-ws", func(ctx context.Context, c *websocket.Conn) error {
			if err := wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + owner}}); err != nil {
				return err
			}
			var ack map[string]any
			if err := wsjson.Read(ctx, c, &ack); err != nil || ack["type"] != "connection_ack" {
				t.Fatalf("connection_init: %v %v", ack, err)
			}
			return wsjson.Write(ctx, c, map[string]any{"type": "shout"})
		}, 4400, "invalid message"},
		{"a second connection_init", "graphql-transport-ws", func(ctx context.Context, c *websocket.Conn) error {
			for range 2 {
				if err := wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + owner}}); err != nil {
					return err
				}
			}
			return nil
		}, 4429, "Too many initialisation requests"},
		{"nothing sent, legacy subprotocol", "graphql-ws", nil, 1002, "connection initialisation timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{tc.subprotocol}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if c.Subprotocol() != tc.subprotocol {
				t.Fatalf("subprotocol %q, want %q", c.Subprotocol(), tc.subprotocol)
			}
			if tc.send != nil {
				if err := tc.send(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			var closeErr websocket.CloseError
			for {
				_, _, err = c.Read(ctx)
				if err != nil {
					break
				}
			}
			if !errors.As(err, &closeErr) || closeErr.Code != tc.code || closeErr.Reason != tc.reason {
				t.Fatalf("closed with %v, want %d %q", err, tc.code, tc.reason)
			}
		})
	}
}
