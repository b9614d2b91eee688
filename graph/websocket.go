package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/skiffhq/skiff/tenant"
)

// Subscriptions are served over WebSocket at /graphql with the
// graphql-transport-ws protocol (and the older graphql-ws one, which
// gqlgen also speaks), docs/GRAPHQL.md#subscriptions. A WebSocket request
// takes its own way through the HTTP handler (webSocketEntry): CORS does not
// apply to WebSockets, so the Origin is checked here against the allowed
// origins; the HTTP server's read and write timeouts do not cut it (they
// are deadlines on the connection, which net/http lifts when coder/websocket
// hijacks it: TestSubscriptionsOverWebSocket outlives them); compression and the body cap do not apply (the WebSocket
// has its own message cap); and the per-address cap on requests in flight
// does not count connections that stay open for hours. Each token holds at
// most Config.MaxSubscriptionsPerToken subscriptions at once.

// Defaults for the WebSocket transport.
const (
	// DefaultMaxSubscriptionsPerToken is Config.MaxSubscriptionsPerToken's default.
	DefaultMaxSubscriptionsPerToken = 16
	// wsInitTimeout is how long a client has, once connected, to send
	// connection_init (and so its token).
	wsInitTimeout = 10 * time.Second
	// wsPingEvery is how often the server pings: dead clients are found
	// within two intervals, and proxies see traffic on idle connections.
	wsPingEvery = 25 * time.Second
)

// addWebSocket makes srv answer subscriptions over WebSocket.
func (r *Resolver) addWebSocket(srv *handler.Server, cfg Config) {
	limit := cfg.MaxBodyBytes
	srv.AddTransport(transport.Websocket{
		// The Origin was checked by webSocketEntry against the allowed
		// origins, which coder/websocket's own check (the Host only) cannot know.
		Implementation:        transport.CoderWebsocketImplementation{AcceptOptions: websocket.AcceptOptions{InsecureSkipVerify: true}},
		InitFunc:              r.webSocketInit(cfg.Logger),
		InitTimeout:           wsInitTimeout,
		PingPongInterval:      wsPingEvery,
		KeepAlivePingInterval: wsPingEvery,
		PayloadReadLimit:      &limit,
	})
}

// isWebSocket reports whether req asks to upgrade to a WebSocket.
func isWebSocket(req *http.Request) bool {
	return strings.EqualFold(req.Header.Get("Upgrade"), "websocket")
}

// splitWebSockets sends WebSocket upgrades of /graphql to ws, everything
// else to next.
func splitWebSockets(ws, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/graphql" && isWebSocket(req) {
			ws.ServeHTTP(w, req)
			return
		}
		next.ServeHTTP(w, req)
	})
}

// webSocketEntry checks a WebSocket upgrade's Origin and ties it to closing: when
// closing ends (the server drains), the connection is closed and clients
// reconnect, to another node behind a load balancer.
func webSocketEntry(origins []string, closing context.Context, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !originAllowed(req, origins) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"errors":[{"message":"this origin may not open a WebSocket to the API (--cors-origins)","extensions":{"code":"FORBIDDEN"}}]}`)
			return
		}
		ctx, cancel := context.WithCancel(req.Context())
		defer cancel()
		if closing != nil {
			stop := context.AfterFunc(closing, cancel)
			defer stop()
		}
		next.ServeHTTP(w, req.WithContext(ctx))
	})
}

// originAllowed reports whether a WebSocket from req's Origin is allowed:
// clients other than browsers send none; a browser's page must be on one of
// origins ("*" for any) or on the API's own host (the playground).
func originAllowed(req *http.Request, origins []string) bool {
	origin := req.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, o := range origins {
		if o == "*" || strings.EqualFold(strings.TrimRight(o, "/"), origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, req.Host)
}

// webSocketInit authenticates a WebSocket from its connection_init
// payload's Authorization ("Bearer <token>"), as the Authorization header
// does an HTTP request; a connection whose upgrade request carried the
// header is authenticated already. A connection with neither, or a bad
// token, is closed with 4403 (graphql-transport-ws's Forbidden).
func (r *Resolver) webSocketInit(log *slog.Logger) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		refuse := func(code int, msg string) (context.Context, *transport.InitPayload, error) {
			requestInfoFrom(ctx).addCode("UNAUTHENTICATED")
			return transport.WithWebsocketCloseCode(ctx, code), nil, errors.New(msg)
		}
		if h := payload.Authorization(); h != "" {
			token, ok := strings.CutPrefix(h, "Bearer ")
			if !ok {
				return refuse(4403, "send Authorization as: Bearer <token>")
			}
			p, err := r.Tenant.People.Authenticate(ctx, strings.TrimSpace(token), remoteAddr(ctx))
			switch {
			case tenant.ErrorCode(err) == tenant.EUnauthenticated:
				return refuse(4403, tenant.ErrorMessage(err))
			case err != nil:
				log.Error("internal error", "request_id", RequestIDFrom(ctx), "step", "authenticate websocket", "err", err)
				return refuse(4500, "internal error (request "+RequestIDFrom(ctx)+")")
			}
			ctx = tenant.WithPrincipal(ctx, p)
			requestInfoFrom(ctx).setPrincipal(p)
		}
		if tenant.PrincipalFrom(ctx) == nil {
			return refuse(4403, `log in first: send connection_init with {"Authorization": "Bearer <token>"}`)
		}
		return ctx, nil, nil
	}
}

// subscriptionCap counts each token's subscriptions against a cap.
type subscriptionCap struct {
	max   int
	mu    sync.Mutex
	count map[string]int
}

func (c *subscriptionCap) acquire(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.count[key] >= c.max {
		return false
	}
	c.count[key]++
	return true
}

func (c *subscriptionCap) release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.count[key]--; c.count[key] <= 0 {
		delete(c.count, key)
	}
}

// around refuses a subscription over the token's cap, and gives its slot
// back when the subscription ends (the client stops it, or the connection
// closes: both cancel its context).
func (c *subscriptionCap) around(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	p := tenant.PrincipalFrom(ctx)
	if oc.Operation == nil || oc.Operation.Operation != ast.Subscription || p == nil {
		return next(ctx)
	}
	key := p.TokenID
	if key == "" {
		key = string(p.Kind) + ":" + p.ID
	}
	if !c.acquire(key) {
		requestInfoFrom(ctx).addCode("TOO_MANY_SUBSCRIPTIONS")
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{
			Message:    fmt.Sprintf("too many subscriptions for this login (limit %d); stop one first", c.max),
			Extensions: map[string]any{"code": "TOO_MANY_SUBSCRIPTIONS"},
		}}})
	}
	release := sync.OnceFunc(func() { c.release(key) })
	context.AfterFunc(ctx, release)
	responses := next(ctx)
	return func(ctx context.Context) *graphql.Response {
		resp := responses(ctx)
		if resp == nil {
			release()
		}
		return resp
	}
}

// subscribedAccount is the account a subscription watches: accountID, or
// the viewer's own.
func subscribedAccount(ctx context.Context, accountID *string) (string, error) {
	if accountID != nil {
		return parseID(*accountID, "Account")
	}
	p := tenant.PrincipalFrom(ctx)
	switch {
	case p == nil:
		return "", tenant.Errorf(tenant.EUnauthenticated, "log in first")
	case p.Kind != tenant.KindUser:
		return "", &tenant.Error{Code: tenant.EInvalid, Field: "accountId", Message: "give the account to watch"}
	}
	return p.AccountID, nil
}
