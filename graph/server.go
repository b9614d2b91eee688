package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/skiffhq/skiff/graph/generated"
	"github.com/skiffhq/skiff/tenant"
)

// Config is the HTTP API's production posture.
type Config struct {
	Playground       bool  // serve the GraphQL playground at /playground
	Introspection    bool  // answer introspection queries (and field suggestions)
	MaxBodyBytes     int64 // request-body cap; 1 MiB by default
	MaxComplexity    int   // per-operation complexity (paged fields × first); 10,000 by default
	MaxDepth         int   // selection depth limit; 12 by default
	MaxTokens        int   // parser token limit; 10,000 by default
	MaxSelections    int   // selections in one selection set; 100 by default
	MaxFields        int   // fields in an operation, fragments expanded; 2,000 by default
	MaxResponseBytes int   // largest response data; 8 MiB by default
	// MaxInFlightPerAddr caps the requests one client address has in
	// flight at once; 32 by default.
	MaxInFlightPerAddr int
	// DatabaseConnections is the size of the database pool the API shares
	// with SFTP and the workers (--database-max-connections), which
	// dbShares divides; tenant.DefaultMaxConnections when zero.
	DatabaseConnections int
	AllowedOrigins      []string // CORS origins allowed to call the API ("*" for any)
	// CORSHeaders are the request headers allowed from those origins;
	// DefaultCORSHeaders when empty.
	CORSHeaders []string
	// APQCacheBytes bounds the query text kept for automatic persisted
	// queries; 4 MiB by default.
	APQCacheBytes int
	// TrustedProxies are the networks of reverse proxies whose
	// X-Forwarded-For (or Forwarded) names the client; from anywhere else
	// the client is the TCP peer. See clientAddrs.
	TrustedProxies []netip.Prefix
	Logger         *slog.Logger
	// MaxSubscriptionsPerToken caps the subscriptions one login token
	// holds at once, over all its WebSocket connections;
	// DefaultMaxSubscriptionsPerToken when zero.
	MaxSubscriptionsPerToken int
	// SubscriptionRecheck is how often the subscriptions of a token check
	// that it still authenticates and that the viewer may still see what
	// they watch (subscriptionGuard); DefaultSubscriptionRecheck when zero.
	SubscriptionRecheck time.Duration
	// RequestTimeout is how long a request over HTTP (a GraphQL operation,
	// an activity export) may run: then its context ends, which stops its
	// database statements and frees its connections. serve sets it to
	// --http-write-timeout, past which the answer could not be written
	// anyway. WebSockets are not bounded by it. Zero: no bound.
	RequestTimeout time.Duration
	// WebSocketInitTimeout is how long a WebSocket client has, once
	// connected, to send connection_init (and so its token);
	// DefaultWebSocketInitTimeout when zero.
	WebSocketInitTimeout time.Duration
	// Closing, when it ends, closes every WebSocket connection (the
	// server drains); nil never does.
	Closing context.Context
	// Ready reports whether the service can take traffic (the database answers).
	Ready func(ctx context.Context) error
	// Metrics counts requests and their latency; nil counts nothing.
	Metrics *Metrics
}

func (c *Config) defaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxComplexity == 0 {
		c.MaxComplexity = 10000
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = 10000
	}
	if c.MaxSelections == 0 {
		c.MaxSelections = 100
	}
	if c.MaxFields == 0 {
		c.MaxFields = 2000
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = 8 << 20
	}
	if c.MaxInFlightPerAddr == 0 {
		c.MaxInFlightPerAddr = 32
	}
	if c.APQCacheBytes == 0 {
		c.APQCacheBytes = 4 << 20
	}
	if c.MaxDepth == 0 {
		c.MaxDepth = 12
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxSubscriptionsPerToken == 0 {
		c.MaxSubscriptionsPerToken = DefaultMaxSubscriptionsPerToken
	}
	if c.SubscriptionRecheck == 0 {
		c.SubscriptionRecheck = DefaultSubscriptionRecheck
	}
	if c.WebSocketInitTimeout == 0 {
		c.WebSocketInitTimeout = DefaultWebSocketInitTimeout
	}
}

// use adds ext to srv's extensions. The fast paths of graph/generated
// (fastpath.go) marshal leaf fields without gqlgen's field middleware, so an
// extension that intercepts fields would miss them: it is refused, and
// Skiff sets no AroundFields.
func use(srv *handler.Server, ext graphql.HandlerExtension) {
	if _, ok := ext.(graphql.FieldInterceptor); ok {
		panic(fmt.Sprintf("graph: %T intercepts fields, which graph/generated's fast paths skip", ext))
	}
	srv.Use(ext)
}

// NewHandler returns the HTTP API: /graphql, /playground (when enabled),
// /export/activity.csv (export.go), /healthz and /readyz.
func NewHandler(r *Resolver, cfg Config) http.Handler {
	cfg.defaults()
	srv := handler.New(generated.NewExecutableSchema(generated.Config{Resolvers: r}))
	cache := lru.New[*ast.QueryDocument](1000)
	srv.SetQueryCache(cache)
	srv.SetParserTokenLimit(cfg.MaxTokens)
	use(srv, sizeLimit{tokens: cfg.MaxTokens, perSet: cfg.MaxSelections, fields: cfg.MaxFields, validated: cache})
	// After sizeLimit: a persisted query's text was size-checked when it was
	// stored, and the cost limit checks every operation after validation.
	shares := newDBShares(cfg.DatabaseConnections)
	r.addWebSocket(srv, cfg, shares)
	addTransports(srv, cfg.APQCacheBytes)
	if cfg.Introspection {
		use(srv, extension.Introspection{})
	} else {
		srv.SetDisableSuggestion(true)
		use(srv, noIntrospection{})
	}
	use(srv, costLimit{depth: cfg.MaxDepth, complexity: cfg.MaxComplexity})
	srv.AroundResponses(responseLimit(cfg.MaxResponseBytes))
	srv.AroundOperations(noteOperation)
	srv.AroundOperations(shares.operations) // before readOnlyQueries: its transaction holds them
	srv.AroundOperations(r.readOnlyQueries)
	srv.AroundOperations((&subscriptionGuard{max: cfg.MaxSubscriptionsPerToken, every: cfg.SubscriptionRecheck, log: cfg.Logger,
		auth: func(ctx context.Context, token string) (*tenant.Principal, error) {
			return r.Tenant.People.Authenticate(ctx, token, remoteAddr(ctx))
		}, tokens: map[string]*tokenSubs{}}).around)
	srv.AroundRootFields(enrolOnlyGate)
	srv.AroundRootFields(r.mutationLoaders)
	log := cfg.Logger
	srv.SetErrorPresenter(func(ctx context.Context, err error) *gqlerror.Error {
		return presentError(ctx, log, err)
	})
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		return fmt.Errorf("panic in resolver: %v", p)
	})

	mux := http.NewServeMux()
	addrs := clientAddrs{trusted: cfg.TrustedProxies}
	mux.Handle("/graphql", withDeadline(cfg.RequestTimeout, perAddrLimit(addrs, cfg.MaxInFlightPerAddr, withUserAgent(r.authenticate(log, addrs, shares, r.withLoaders(httpStatuses(srv)))))))
	mux.Handle("GET "+ActivityExportPath, withDeadline(cfg.RequestTimeout, perAddrLimit(addrs, cfg.MaxInFlightPerAddr, r.authenticate(log, addrs, shares, shares.handler(r.exportActivity(log))))))
	if cfg.Playground {
		pg := playgroundHandler()
		mux.Handle("GET /playground", pg)
		mux.Handle("GET /playground/", pg)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		if cfg.Ready != nil {
			ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
			defer cancel()
			if err := cfg.Ready(ctx); err != nil {
				log.Warn("not ready", "err", err)
				http.Error(w, "not ready\n", http.StatusServiceUnavailable)
				return
			}
		}
		w.Write([]byte("ready\n"))
	})
	ws := webSocketEntry(cfg.AllowedOrigins, cfg.Closing, r.authenticate(log, addrs, shares, r.withLoaders(srv)))
	return requestID(accessLog(log, addrs, cfg.Metrics, splitWebSockets(ws, corsPolicy(cfg.AllowedOrigins, cfg.CORSHeaders,
		compress(DefaultCompressMinSize, limitBody(cfg.MaxBodyBytes, mux))))))
}

// withDeadline ends a request's context d after it began (zero: never).
func withDeadline(d time.Duration, next http.Handler) http.Handler {
	if d <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), d)
		defer cancel()
		next.ServeHTTP(w, req.WithContext(ctx))
	})
}

// authenticate turns a bearer token into the request's principal. A request
// without a token is anonymous (login still works); a bad token, or a user's
// token from outside their IP allowlists, is refused.
func (r *Resolver) authenticate(log *slog.Logger, addrs clientAddrs, shares *dbShares, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		remote := addrs.of(req)
		ctx := withRemoteAddr(req.Context(), remote)
		if h := req.Header.Get("Authorization"); h != "" {
			token, ok := strings.CutPrefix(h, "Bearer ")
			if !ok {
				requestInfoFrom(ctx).addCode("UNAUTHENTICATED")
				writeAuthError(w, "use the Authorization header as: Bearer <token>")
				return
			}
			p, err := r.Tenant.People.Authenticate(shares.forAuth(ctx), strings.TrimSpace(token), remote)
			if err != nil {
				if tenant.ErrorCode(err) == tenant.EUnauthenticated {
					requestInfoFrom(ctx).addCode("UNAUTHENTICATED")
					writeAuthError(w, tenant.ErrorMessage(err))
					return
				}
				writeInternalError(ctx, w, log, "authenticate", err)
				return
			}
			ctx = withBearer(tenant.WithPrincipal(ctx, p), strings.TrimSpace(token))
			requestInfoFrom(ctx).setPrincipal(p)
		}
		next.ServeHTTP(w, req.WithContext(ctx))
	})
}

// enrolOnlyFields are what a token may call while two-factor is required
// of its principal and not yet on (tenant.Principal.EnrolOnly).
var enrolOnlyFields = map[string]bool{
	"startTotpEnrolment": true, "confirmTotpEnrolment": true, "logout": true, "viewer": true, "__typename": true,
}

// enrolFirst is the FORBIDDEN error's message for what an enrol-only token
// may not do.
const enrolFirst = "two-factor authentication is required for this login: enrol first (startTotpEnrolment, confirmTotpEnrolment)"

// enrolOnlyGate refuses every other root field of a query or mutation to an
// enrol-only token, and a viewer that asks for more than who the viewer is
// (onlyWhoYouAre). gqlgen runs no root-field middleware for subscriptions:
// subscriptionGuard refuses and ends an enrol-only token's.
func enrolOnlyGate(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	p := tenant.PrincipalFrom(ctx)
	if p == nil || !p.EnrolOnly {
		return next(ctx)
	}
	f := graphql.GetRootFieldContext(ctx).Field
	if enrolOnlyFields[f.Name] && (f.Name != "viewer" || onlyWhoYouAre(f.SelectionSet, true)) {
		return next(ctx)
	}
	graphql.AddError(ctx, tenant.Errorf(tenant.EForbidden, enrolFirst))
	return graphql.Null
}

// onlyWhoYouAre reports whether a viewer's selection (top) asks only for
// __typename and the leaf fields of user, staff and apiSessions: who the
// viewer is, not the account, its users or anything else reached from there,
// which an enrol-only token must not read until the enrolment is confirmed.
func onlyWhoYouAre(sel ast.SelectionSet, top bool) bool {
	for _, s := range sel {
		var ok bool
		switch s := s.(type) {
		case *ast.Field:
			switch {
			case !top:
				ok = len(s.SelectionSet) == 0
			case s.Name == "__typename":
				ok = true
			case s.Name == "user", s.Name == "staff", s.Name == "apiSessions":
				ok = onlyWhoYouAre(s.SelectionSet, false)
			}
		case *ast.InlineFragment:
			ok = onlyWhoYouAre(s.SelectionSet, top)
		case *ast.FragmentSpread:
			ok = s.Definition != nil && onlyWhoYouAre(s.Definition.SelectionSet, top)
		}
		if !ok {
			return false
		}
	}
	return true
}

// readOnlyQueries runs the reads of a user's query operation in one
// read-only transaction in their account (tenant.DB.ReadOnly), begun at the
// first read and ended with the response. Mutations keep a transaction per
// change; staff and anonymous requests a transaction per read.
func (r *Resolver) readOnlyQueries(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	p := tenant.PrincipalFrom(ctx)
	if oc.Operation == nil || oc.Operation.Operation != ast.Query || p == nil || p.Kind != tenant.KindUser {
		return next(ctx)
	}
	ctx, end := r.Tenant.DB.ReadOnly(ctx, p.AccountID)
	responses := next(ctx)
	return func(ctx context.Context) *graphql.Response {
		resp := responses(ctx)
		if resp == nil || resp.HasNext == nil || !*resp.HasNext {
			end()
		}
		return resp
	}
}

func writeAuthError(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("WWW-Authenticate", `Bearer realm="skiff"`)
	w.WriteHeader(http.StatusUnauthorized)
	fmt.Fprintf(w, `{"errors":[{"message":%q,"extensions":{"code":"UNAUTHENTICATED"}}]}`, msg)
}

// writeInternalError answers 500 to a request that failed before GraphQL
// ran (the token could not be checked: the database is down), with a
// GraphQL error naming the request ID, and logs the cause under that ID.
func writeInternalError(ctx context.Context, w http.ResponseWriter, log *slog.Logger, step string, err error) {
	rid := RequestIDFrom(ctx)
	code := logInternal(ctx, log, err, "step", step)
	requestInfoFrom(ctx).addCode(code)
	status, msg := http.StatusInternalServerError, "internal error (request "+rid+")"
	switch code {
	case codeCanceled:
		status = statusClientClosed // for the access log and the metrics: no one reads it
	case codeTimeout:
		status, msg = http.StatusServiceUnavailable, timedOut
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"message":%q,"extensions":{"code":%q,"requestId":%q}}]}`, msg, code, rid)
}

// timedOut is the message of a request stopped at Config.RequestTimeout.
const timedOut = "request timed out: it ran longer than the server allows"

// codeCanceled is the error code of a request whose client went away
// before its answer: logged and counted, never read by that client.
// statusClientClosed is such a request's HTTP status, nginx's "client
// closed request", so that it counts as no server error.
const (
	codeCanceled       = "CANCELED"
	statusClientClosed = 499
)

// codeTimeout is the error code of a request stopped at Config.RequestTimeout.
const codeTimeout = "TIMEOUT"

// logInternal logs a failure that the answer calls internal, under the
// request ID with attrs, and returns the code to count: INTERNAL, logged as
// an error; TIMEOUT, logged as a warning, when the failure is the request's
// own end at Config.RequestTimeout; or CANCELED, logged at info level, when
// it is the request's own end because its client left (clientLeft).
func logInternal(ctx context.Context, log *slog.Logger, err error, attrs ...any) string {
	attrs = append([]any{"request_id", RequestIDFrom(ctx)}, attrs...)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && tenant.Canceled(err) {
		log.Warn("request stopped: it ran past its time (--http-write-timeout)", attrs...)
		return codeTimeout
	}
	if clientLeft(ctx, err) {
		log.Info("request ended before its answer: the client left", attrs...)
		return codeCanceled
	}
	log.Error("internal error", append(attrs, "err", err)...)
	return string(tenant.EInternal)
}

// clientLeft reports whether err is the request's own end: its context was
// canceled because the client went away (or the server cut the request at
// the end of a shutdown's grace), which is no fault to look into.
func clientLeft(ctx context.Context, err error) bool {
	return ctx.Err() != nil && tenant.Canceled(err)
}

// presentError maps application errors to extensions.code in one place.
// Internal errors are logged with the request ID and masked.
func presentError(ctx context.Context, log *slog.Logger, err error) *gqlerror.Error {
	gerr := graphql.DefaultErrorPresenter(ctx, err)
	var te *tenant.Error
	if !errors.As(err, &te) {
		var ge *gqlerror.Error
		if errors.As(err, &ge) && ge.Err == nil {
			// A validation or parse error from gqlgen: safe to show.
			code, _ := gerr.Extensions["code"].(string)
			if gerr.Message == "operation  not found" { // gqlgen's, for a document of several operations and no name
				gerr.Message = "the document holds several operations: name the one to run in operationName"
			}
			if code == "" {
				// Not the document: gqlgen's transports and persisted
				// queries name none for the request's own faults. gqlgen's
				// message for a body that does not decode ends with the
				// whole body and Go's type names: not sent back.
				code = badRequest
				if strings.HasPrefix(gerr.Message, "json request body could not be decoded") {
					gerr.Message = "the request body is not one GraphQL request in JSON ({\"query\", \"variables\", \"operationName\", \"extensions\"}; batches are not supported)"
				}
				if gerr.Extensions == nil {
					gerr.Extensions = map[string]any{}
				}
				gerr.Extensions["code"] = code
			}
			requestInfoFrom(ctx).addCode(code)
			return gerr
		}
		if field, ok := argumentPath(ctx, ge); ok {
			// A scalar argument that does not parse (a Time, a Bytes):
			// the client's mistake, in the scalar's words.
			te = &tenant.Error{Code: tenant.EInvalid, Field: field, Message: field + ": " + ge.Message}
		} else {
			te = &tenant.Error{Code: tenant.EInternal, Err: err}
		}
	}
	if gerr.Extensions == nil {
		gerr.Extensions = map[string]any{}
	}
	code := string(te.Code)
	switch te.Code {
	case tenant.EInternal:
		rid := RequestIDFrom(ctx)
		switch code = logInternal(ctx, log, err, "path", gerr.Path.String()); code {
		case codeCanceled:
			gerr.Message = "request canceled"
		case codeTimeout:
			gerr.Message = timedOut
		}
		if code != string(tenant.EInternal) {
			break
		}
		gerr.Message = "internal error (request " + rid + ")"
		gerr.Extensions["requestId"] = rid
	case tenant.EInvalid, tenant.EConflict, tenant.ELimit:
		// Outside a payload (e.g. a bad page size in a query): a bad request.
		gerr.Message = te.Message
		code = "BAD_USER_INPUT"
		if te.Field != "" {
			gerr.Extensions["field"] = te.Field
		}
	default:
		gerr.Message = te.Message
	}
	gerr.Extensions["code"] = code
	requestInfoFrom(ctx).addCode(code)
	return gerr
}

// argumentPath reports whether ge (not one of Skiff's errors) came from
// coercing a field's arguments, and names the argument ("filter.since"):
// its path goes past the field whose context ctx is into the argument. An
// error of the field itself (its resolver, a panic) has the field's path.
func argumentPath(ctx context.Context, ge *gqlerror.Error) (string, bool) {
	if ge == nil {
		return "", false
	}
	n := 0
	if fc := graphql.GetFieldContext(ctx); fc != nil {
		n = len(fc.Path())
	}
	if len(ge.Path) <= n {
		return "", false
	}
	parts := make([]string, 0, len(ge.Path)-n)
	for _, el := range ge.Path[n:] {
		parts = append(parts, fmt.Sprint(el))
	}
	return strings.Join(parts, "."), true
}

func selectionDepth(set ast.SelectionSet, frags ast.FragmentDefinitionList, seen int) int {
	if seen > 64 { // fragment cycles are rejected by validation; stay safe anyway
		return seen
	}
	deepest := 0
	for _, s := range set {
		var d int
		switch s := s.(type) {
		case *ast.Field:
			d = 1 + selectionDepth(s.SelectionSet, frags, seen+1)
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, frags, seen+1)
		case *ast.FragmentSpread:
			if f := frags.ForName(s.Name); f != nil {
				d = selectionDepth(f.SelectionSet, frags, seen+1)
			}
		}
		deepest = max(deepest, d)
	}
	return deepest
}

// noIntrospection refuses introspection queries up front with a clear error
// (gqlgen would otherwise fail them as an unexplained resolver error).
type noIntrospection struct{}

func (noIntrospection) ExtensionName() string                   { return "NoIntrospection" }
func (noIntrospection) Validate(graphql.ExecutableSchema) error { return nil }

func (noIntrospection) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation != nil && introspects(oc.Operation.SelectionSet, oc.Doc.Fragments, 0) {
		err := gqlerror.Errorf("introspection is disabled on this server")
		err.Extensions = map[string]any{"code": "INTROSPECTION_DISABLED"}
		return err
	}
	return nil
}

func introspects(set ast.SelectionSet, frags ast.FragmentDefinitionList, depth int) bool {
	if depth > 64 {
		return false
	}
	for _, s := range set {
		switch s := s.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" || introspects(s.SelectionSet, frags, depth+1) {
				return true
			}
		case *ast.InlineFragment:
			if introspects(s.SelectionSet, frags, depth+1) {
				return true
			}
		case *ast.FragmentSpread:
			if f := frags.ForName(s.Name); f != nil && introspects(f.SelectionSet, frags, depth+1) {
				return true
			}
		}
	}
	return false
}

type requestIDKey struct{}

// RequestIDFrom returns the request's ID (also sent as X-Request-ID).
func RequestIDFrom(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey{}).(string)
	return s
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController and WebSocket upgrades reach the
// connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// perAddrLimit answers 429 to a client address that already has max
// requests in flight; other addresses are not affected.
func perAddrLimit(addrs clientAddrs, max int, next http.Handler) http.Handler {
	var mu sync.Mutex
	inFlight := map[netip.Addr]int{}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		a := addrs.of(req)
		mu.Lock()
		over := inFlight[a] >= max
		if !over {
			inFlight[a]++
		}
		mu.Unlock()
		if over {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprintf(w, `{"errors":[{"message":"too many requests in flight from your address (limit %d); retry when one has finished","extensions":{"code":"TOO_MANY_REQUESTS"}}]}`, max)
			return
		}
		defer func() {
			mu.Lock()
			if inFlight[a]--; inFlight[a] <= 0 {
				delete(inFlight, a)
			}
			mu.Unlock()
		}()
		next.ServeHTTP(w, req)
	})
}

func limitBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.ContentLength > n {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			fmt.Fprintf(w, `{"errors":[{"message":"request body too large (limit %d bytes)","extensions":{"code":"REQUEST_TOO_LARGE"}}]}`, n)
			return
		}
		req.Body = http.MaxBytesReader(w, req.Body, n)
		next.ServeHTTP(w, req)
	})
}
