package graph

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
)

// transportWSCodes accepts WebSockets with impl and, on graphql-transport-ws
// connections, closes with that protocol's codes where gqlgen closes with
// RFC 6455's 1002 (protocol error), or with 1000, for a client's mistake:
// 4408 when the client did not send connection_init in time, 4401 when it
// subscribed before, 4429 for a second connection_init, 4400 for a message
// that is not JSON or of no type the protocol has. Clients built on the
// protocol (graphql-ws, Apollo's GraphQLWsLink) decide by these codes
// whether to retry. The legacy graphql-ws subprotocol has no such codes and
// keeps gqlgen's.
type transportWSCodes struct {
	impl transport.WebsocketImplementation
}

func (w transportWSCodes) Accept(rw http.ResponseWriter, req *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	c, err := w.impl.Accept(rw, req, opts)
	if err != nil || c.Subprotocol() != "graphql-transport-ws" {
		return c, err
	}
	return &transportWSConn{WebsocketConn: c}, nil
}

// transportWSConn is one graphql-transport-ws connection. It notes the type
// of each message the client sends, which gqlgen's close does not say.
type transportWSConn struct {
	transport.WebsocketConn

	mu    sync.Mutex
	reads int    // messages read
	last  string // the last one's type; "" when it was not JSON
}

// The message types a graphql-transport-ws client may send.
var transportWSClientTypes = map[string]bool{
	"connection_init": true, "ping": true, "pong": true, "subscribe": true, "complete": true,
}

const wsReasonInitTimeout = "connection initialisation timeout" // gqlgen's

func (c *transportWSConn) NextReader() (int, io.Reader, error) {
	kind, r, err := c.WebsocketConn.NextReader()
	if err != nil {
		return kind, r, err
	}
	b, err := io.ReadAll(r) // within the transport's read limit
	if err != nil {
		return kind, nil, err
	}
	var m struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(b, &m) != nil {
		m.Type = ""
	}
	c.mu.Lock()
	c.reads++
	c.last = m.Type
	c.mu.Unlock()
	return kind, bytes.NewReader(b), nil
}

func (c *transportWSConn) WriteClose(code int, reason string) error {
	c.mu.Lock()
	reads, last := c.reads, c.last
	c.mu.Unlock()
	switch {
	case code == transport.WebsocketCloseProtocolError && reason == wsReasonInitTimeout:
		code = 4408
	case code == transport.WebsocketCloseProtocolError && last == "connection_init" && reads > 1:
		code, reason = 4429, "Too many initialisation requests"
	case code == transport.WebsocketCloseProtocolError && last == "subscribe" && reads == 1:
		code, reason = 4401, "Unauthorized: send connection_init first"
	case code == transport.WebsocketCloseProtocolError:
		code = 4400
	case code == transport.WebsocketCloseNormalClosure && reads > 0 && !transportWSClientTypes[last]:
		// gqlgen ends the connection after a message it cannot parse
		// without saying why.
		code, reason = 4400, "invalid message"
	}
	return c.WebsocketConn.WriteClose(code, reason)
}

// SetReadLimit and SetReadDeadline pass on what the transport uses when the
// connection has it (PayloadReadLimit, the ping's pong deadline).
func (c *transportWSConn) SetReadLimit(n int64) {
	if l, ok := c.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(n)
	}
}

func (c *transportWSConn) SetReadDeadline(t time.Time) error {
	if d, ok := c.WebsocketConn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}
