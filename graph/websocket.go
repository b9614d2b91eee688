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

	"github.com/skiffhq/skiff/internal/runecut"
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
	// DefaultSubscriptionRecheck is Config.SubscriptionRecheck's default:
	// a subscription ends at most this long after its token stops
	// working or its viewer loses the right to it.
	DefaultSubscriptionRecheck = 10 * time.Second
	// DefaultWebSocketInitTimeout is Config.WebSocketInitTimeout's default.
	DefaultWebSocketInitTimeout = 10 * time.Second
	// wsPingEvery is how often the server pings: dead clients are found
	// within two intervals, and proxies see traffic on idle connections.
	wsPingEvery = 25 * time.Second
)

// addWebSocket makes srv answer subscriptions over WebSocket.
func (r *Resolver) addWebSocket(srv *handler.Server, cfg Config, shares *dbShares) {
	limit := cfg.MaxBodyBytes
	srv.AddTransport(transport.Websocket{
		// The Origin was checked by webSocketEntry against the allowed
		// origins, which coder/websocket's own check (the Host only) cannot know.
		Implementation:        transportWSCodes{transport.CoderWebsocketImplementation{AcceptOptions: websocket.AcceptOptions{InsecureSkipVerify: true}}},
		InitFunc:              r.webSocketInit(cfg.Logger, shares),
		InitTimeout:           cfg.WebSocketInitTimeout,
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
		ctx, cancel := context.WithCancel(context.WithValue(req.Context(), overWebSocketKey{}, true))
		defer cancel()
		if closing != nil {
			stop := context.AfterFunc(closing, cancel)
			defer stop()
		}
		next.ServeHTTP(w, req.WithContext(ctx))
	})
}

// overWebSocketKey marks the context of a WebSocket connection: only there
// are subscriptions served (subscriptionGuard.around).
type overWebSocketKey struct{}

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
func (r *Resolver) webSocketInit(log *slog.Logger, shares *dbShares) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		refuse := func(closeCode int, code, msg string) (context.Context, *transport.InitPayload, error) {
			requestInfoFrom(ctx).addCode(code)
			// graphql-transport-ws has no message before a close: the
			// close frame's reason is what its clients show.
			ctx := transport.AppendCloseReason(transport.WithWebsocketCloseCode(ctx, closeCode), closeReason(msg))
			return ctx, nil, errors.New(msg)
		}
		if h := payload.Authorization(); h != "" {
			token, ok := strings.CutPrefix(h, "Bearer ")
			if !ok {
				return refuse(4403, "UNAUTHENTICATED", "send Authorization as: Bearer <token>")
			}
			p, err := r.Tenant.People.Authenticate(shares.forAuth(ctx), strings.TrimSpace(token), remoteAddr(ctx))
			switch {
			case tenant.ErrorCode(err) == tenant.EUnauthenticated:
				return refuse(4403, "UNAUTHENTICATED", tenant.ErrorMessage(err))
			case err != nil:
				code := logInternal(ctx, log, err, "step", "authenticate websocket")
				return refuse(4500, code, "internal error (request "+RequestIDFrom(ctx)+")")
			}
			ctx = withBearer(tenant.WithPrincipal(ctx, p), strings.TrimSpace(token))
			requestInfoFrom(ctx).setPrincipal(p)
		}
		if tenant.PrincipalFrom(ctx) == nil {
			return refuse(4403, "UNAUTHENTICATED", `log in first: send connection_init with {"Authorization": "Bearer <token>"}`)
		}
		return ctx, nil, nil
	}
}

// closeReason is msg as a WebSocket close frame holds it: at most 123
// bytes, cut at a character's start.
func closeReason(msg string) string { return runecut.Prefix(msg, 123) }

// subscriptionGuard holds every subscription to its token's limits: a cap
// on how many a token holds at once, and the token's and the viewer's right
// to go on. Subscriptions of a token are rechecked together every
// Config.SubscriptionRecheck (one authentication for all of them): when the
// token no longer authenticates (logged out, its API session revoked, its
// refresh token reused, expired, its user deleted, from outside an IP
// allowlist now), each ends with an UNAUTHENTICATED error; when the viewer
// may no longer see what a subscription watches (their role changed), that
// one ends with the FORBIDDEN or NOT_FOUND error subscribing would get now;
// when the token became enrol-only (two-factor now required of its login and
// not on), each ends with FORBIDDEN, and an enrol-only token subscribes to
// nothing. Either way the client gets a graphql-transport-ws "error"
// message for it, and subscribes again after logging in. A subscription also starts
// with a fresh authentication of the connection's token, so one opened on
// a connection whose token has ended since is refused, and resolvers see
// the viewer's role as it is now.
type subscriptionGuard struct {
	max   int
	every time.Duration
	// auth authenticates a token again, as at connection_init.
	auth func(ctx context.Context, token string) (*tenant.Principal, error)
	log  *slog.Logger

	mu     sync.Mutex
	next   int
	tokens map[string]*tokenSubs
}

// tokenSubs are one token's subscriptions on this node.
type tokenSubs struct {
	subs map[int]*guarded
	stop context.CancelFunc // the token's recheck loop
}

// guarded is one subscription: how to end it, and its recheck.
type guarded struct {
	ctx     context.Context
	end     context.CancelCauseFunc
	recheck *recheckHolder
}

// ended is why the guard ended a subscription.
type ended struct{ err *gqlerror.Error }

func (e *ended) Error() string { return e.err.Message }

// recheckHolder carries the check a subscription's resolver registers
// (onRecheck) from the resolver to the guard.
type recheckHolder struct {
	mu    sync.Mutex
	check func(ctx context.Context) error
}

type recheckKey struct{}

// onRecheck registers check as the subscription's recheck: the guard calls
// it with the viewer's principal as it is now, and ends the subscription
// with its error. Subscription resolvers call it with the same rule that
// let them subscribe.
func onRecheck(ctx context.Context, check func(ctx context.Context) error) {
	if h, _ := ctx.Value(recheckKey{}).(*recheckHolder); h != nil {
		h.mu.Lock()
		h.check = check
		h.mu.Unlock()
	}
}

func (h *recheckHolder) run(ctx context.Context) error {
	h.mu.Lock()
	check := h.check
	h.mu.Unlock()
	if check == nil {
		return nil
	}
	return check(ctx)
}

type bearerKey struct{}

// withBearer keeps the token a request or connection authenticated with,
// for the guard's rechecks.
func withBearer(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, bearerKey{}, token)
}

func bearerFrom(ctx context.Context) string {
	t, _ := ctx.Value(bearerKey{}).(string)
	return t
}

// around refuses a subscription over the token's cap or of a token that no
// longer authenticates, guards the others (see subscriptionGuard), and
// gives its slot back when the subscription ends (the client stops it, the
// connection closes, or the guard ends it).
func (g *subscriptionGuard) around(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	p := tenant.PrincipalFrom(ctx)
	if oc.Operation == nil || oc.Operation.Operation != ast.Subscription {
		return next(ctx)
	}
	refuse := func(code, msg string) graphql.ResponseHandler {
		requestInfoFrom(ctx).addCode(code)
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{Message: msg, Extensions: map[string]any{"code": code}}}})
	}
	if p == nil {
		return next(ctx)
	}
	token := bearerFrom(ctx)
	if token != "" {
		fresh, err := g.auth(ctx, token)
		switch {
		case tenant.ErrorCode(err) == tenant.EUnauthenticated || errors.Is(err, tenant.ErrAddressNotAllowed):
			return refuse("UNAUTHENTICATED", loginEnded)
		case err != nil:
			return refuse(logInternal(ctx, g.log, err, "step", "authenticate subscription"), "internal error (request "+RequestIDFrom(ctx)+")")
		}
		p = fresh
		ctx = tenant.WithPrincipal(ctx, p)
	}
	if p.EnrolOnly {
		return refuse("FORBIDDEN", enrolFirst)
	}
	key := p.TokenID
	if key == "" {
		key = string(p.Kind) + ":" + p.ID
	}
	sctx, end := context.WithCancelCause(ctx)
	holder := &recheckHolder{}
	sctx = context.WithValue(sctx, recheckKey{}, holder)
	id, ok := g.acquire(key, token, &guarded{ctx: sctx, end: end, recheck: holder})
	if !ok {
		end(nil)
		return refuse("TOO_MANY_SUBSCRIPTIONS", fmt.Sprintf("too many subscriptions for this login (limit %d); stop one first", g.max))
	}
	release := sync.OnceFunc(func() { g.release(key, id) })
	context.AfterFunc(sctx, release)
	responses := next(sctx)
	return func(ctx context.Context) *graphql.Response {
		resp := responses(sctx)
		if resp == nil {
			var why *ended
			if errors.As(context.Cause(sctx), &why) {
				transport.AddSubscriptionError(ctx, why.err)
			}
			end(nil)
			release()
		}
		return resp
	}
}

// loginEnded is the error of a subscription whose token stopped working.
const loginEnded = "the login has ended (logged out, revoked or expired); log in again and subscribe again"

// acquire counts sub against key's cap and, for a token, starts the
// token's recheck loop with its first subscription.
func (g *subscriptionGuard) acquire(key, token string, sub *guarded) (int, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ts := g.tokens[key]
	if ts != nil && len(ts.subs) >= g.max {
		return 0, false
	}
	if ts == nil {
		ts = &tokenSubs{subs: map[int]*guarded{}, stop: func() {}}
		if token != "" && g.every > 0 {
			// The loop's context carries the connection's values (the
			// client address for allowlists), not its end.
			ctx, stop := context.WithCancel(context.WithoutCancel(sub.ctx))
			ts.stop = stop
			go g.recheckLoop(ctx, key, token)
		}
		g.tokens[key] = ts
	}
	g.next++
	ts.subs[g.next] = sub
	return g.next, true
}

func (g *subscriptionGuard) release(key string, id int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ts := g.tokens[key]
	if ts == nil {
		return
	}
	delete(ts.subs, id)
	if len(ts.subs) == 0 {
		ts.stop()
		delete(g.tokens, key)
	}
}

// subsOf returns key's subscriptions now.
func (g *subscriptionGuard) subsOf(key string) []*guarded {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []*guarded
	if ts := g.tokens[key]; ts != nil {
		for _, s := range ts.subs {
			out = append(out, s)
		}
	}
	return out
}

// recheckLoop authenticates token every g.every while it has
// subscriptions, and ends those it no longer allows.
func (g *subscriptionGuard) recheckLoop(ctx context.Context, key, token string) {
	tick := time.NewTicker(g.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p, err := g.auth(ctx, token)
		switch {
		case tenant.ErrorCode(err) == tenant.EUnauthenticated || errors.Is(err, tenant.ErrAddressNotAllowed):
			g.endAll(key, "UNAUTHENTICATED", loginEnded)
			continue
		case err != nil:
			// The database is unreachable: keep the subscriptions (they
			// hear nothing meanwhile) and check again next time.
			if ctx.Err() == nil {
				g.log.Warn("subscriptions: cannot recheck a token; checking again later", "err", err)
			}
			continue
		case p.EnrolOnly:
			// Two-factor became required of the login (requireTotpForAdmins).
			g.endAll(key, "FORBIDDEN", enrolFirst)
			continue
		}
		for _, s := range g.subsOf(key) {
			if err := s.recheck.run(tenant.WithPrincipal(s.ctx, p)); err != nil {
				s.end(&ended{presentError(s.ctx, g.log, err)})
			}
		}
	}
}

// endAll ends every subscription of key with the error code and message.
func (g *subscriptionGuard) endAll(key, code, message string) {
	why := &ended{&gqlerror.Error{Message: message, Extensions: map[string]any{"code": code}}}
	for _, s := range g.subsOf(key) {
		requestInfoFrom(s.ctx).addCode(code)
		s.end(why)
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
