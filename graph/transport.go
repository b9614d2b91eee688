package graph

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/klauspost/compress/gzhttp"
	"github.com/rs/cors"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// The HTTP transport speaks GraphQL over HTTP as Apollo Client, urql and
// Relay expect it (docs/GRAPHQL.md#transport):
//
//   - POST with a JSON body, and GET with the query in the URL (queries only:
//     a mutation over GET is answered 405);
//   - automatic persisted queries (extensions.persistedQuery.sha256Hash),
//     answering PERSISTED_QUERY_NOT_FOUND so clients send the query text;
//   - application/graphql-response+json when the client accepts it (request
//     errors are then 400), application/json otherwise (always 200 for a
//     GraphQL response, as the GraphQL-over-HTTP spec asks);
//   - compressed responses (zstd or gzip) above DefaultCompressMinSize;
//   - CORS from the configured origins, with configurable request headers.

// The limits refuse a request before it runs, as a parse or validation error
// does: a request error, with no data. gqlgen sends those as 400 to clients
// that accept application/graphql-response+json (the spec's "MUST reply with
// a 4xx" when there is no data) and as 422 otherwise, which httpStatuses
// turns into the spec's 200 for application/json.
func init() {
	for _, code := range []string{"QUERY_TOO_LARGE", "QUERY_TOO_DEEP", "COMPLEXITY_LIMIT_EXCEEDED", "INTROSPECTION_DISABLED",
		badRequest, codeSubscriptionNeedsWebSocket} {
		errcode.RegisterErrorType(code, errcode.KindProtocol)
	}
}

// DefaultCORSHeaders are the request headers browsers may send from another
// origin: what Apollo Client, urql and Relay send, and a client's request ID.
var DefaultCORSHeaders = []string{
	"Authorization", "Content-Type", "Accept",
	"apollographql-client-name", "apollographql-client-version", "X-Request-ID",
}

// DefaultCompressMinSize is the smallest response that is compressed.
const DefaultCompressMinSize = 1024

// addTransports makes srv answer POST and GET, with persisted queries
// looked up in a cache of apqBytes bytes of query text.
func addTransports(srv *handler.Server, apqBytes int) {
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	use(srv, persistedQueries{extension.AutomaticPersistedQuery{Cache: newAPQCache(apqBytes)}})
	use(srv, subscriptionsOverHTTP{})
}

// persistedQueries is gqlgen's automatic persisted queries, with its
// request errors (an unsupported version, a hash that is not the text's)
// coded BAD_REQUEST, a request error: 400 to a client that accepts
// application/graphql-response+json, where gqlgen answered 200 for want of
// a code. PERSISTED_QUERY_NOT_FOUND keeps its code and 200: clients send
// the text on seeing it.
type persistedQueries struct {
	extension.AutomaticPersistedQuery
}

func (p persistedQueries) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	err := p.AutomaticPersistedQuery.MutateOperationParameters(ctx, raw)
	if err != nil && err.Extensions["code"] == nil {
		errcode.Set(err, badRequest)
	}
	return err
}

// subscriptionsOverHTTP refuses a subscription sent over HTTP before it
// runs, as a request error (SUBSCRIPTION_NEEDS_WEBSOCKET): over HTTP gqlgen
// would wait for the first event to answer.
type subscriptionsOverHTTP struct{}

func (subscriptionsOverHTTP) ExtensionName() string                   { return "SubscriptionsOverHTTP" }
func (subscriptionsOverHTTP) Validate(graphql.ExecutableSchema) error { return nil }

func (subscriptionsOverHTTP) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if over, _ := ctx.Value(overWebSocketKey{}).(bool); over || oc.Operation.Operation != ast.Subscription {
		return nil
	}
	err := gqlerror.Errorf("subscriptions are served over WebSocket at /graphql (graphql-transport-ws), not over HTTP")
	errcode.Set(err, codeSubscriptionNeedsWebSocket)
	return err
}

const codeSubscriptionNeedsWebSocket = "SUBSCRIPTION_NEEDS_WEBSOCKET"

// apqCache holds persisted queries by hash, least recently used out first,
// bounded by the bytes of query text it holds (a count alone would let a
// client pin count × the body limit of memory).
type apqCache struct {
	mu       sync.Mutex
	lru      *simplelru.LRU[string, string]
	size     int
	maxBytes int
}

func newAPQCache(maxBytes int) *apqCache {
	c := &apqCache{maxBytes: maxBytes}
	c.lru, _ = simplelru.NewLRU[string, string](1<<20, func(_, q string) { c.size -= len(q) })
	return c
}

func (c *apqCache) Get(_ context.Context, hash string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Get(hash)
}

// Add stores query under hash (which the caller has verified), evicting
// the least recently used queries while over the byte bound.
func (c *apqCache) Add(_ context.Context, hash, query string) {
	if len(query) > c.maxBytes {
		return // never fits: the client keeps sending the text
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru.Contains(hash) {
		return
	}
	c.lru.Add(hash, query)
	c.size += len(query)
	for c.size > c.maxBytes {
		c.lru.RemoveOldest()
	}
}

// httpStatuses corrects two of gqlgen's status codes to the GraphQL-over-HTTP
// spec: a GraphQL response sent as application/json is 200 even with request
// (parse or validation) errors, where gqlgen answers 422 and Apollo Client
// would report a network error; and a mutation over GET is 405 Method Not
// Allowed, where gqlgen answers 406.
func httpStatuses(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if status, msg := unsupported(req); status != 0 {
			// gqlgen's answer would be a 400 "transport not supported"
			// without a code.
			requestInfoFrom(req.Context()).addCode(badRequest)
			if status == http.StatusMethodNotAllowed {
				w.Header().Set("Allow", "GET, POST")
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"errors":[{"message":%q,"extensions":{"code":%q}}]}`, msg, badRequest)
			return
		}
		next.ServeHTTP(&statusFixer{ResponseWriter: w, get: req.Method == http.MethodGet, info: requestInfoFrom(req.Context())}, req)
	})
}

// badRequest is the code of an error in the HTTP request itself, rather
// than in the GraphQL document it carries: a body that is not JSON (or is a
// batch), another content type or method, a persisted query's hash that
// does not match its text.
const badRequest = "BAD_REQUEST"

// unsupported tells what is wrong with a request that no transport of the
// API takes (graph.addTransports: GET, and POST of JSON).
func unsupported(req *http.Request) (status int, msg string) {
	switch {
	case req.Method != http.MethodGet && req.Method != http.MethodPost:
		return http.StatusMethodNotAllowed, "use GET (queries) or POST"
	case req.Method == http.MethodPost && !isJSON(req.Header.Get("Content-Type")):
		return http.StatusUnsupportedMediaType, "send the request as Content-Type: application/json"
	case req.Header.Get("Upgrade") != "":
		return http.StatusBadRequest, "only WebSocket upgrades are served, for subscriptions"
	}
	return 0, ""
}

type statusFixer struct {
	http.ResponseWriter
	get  bool
	info *requestInfo // the access log's and the metrics' record
	// replaced: the answer is written already; gqlgen's body is dropped.
	replaced bool
}

func (w *statusFixer) WriteHeader(code int) {
	switch {
	case code == http.StatusUnprocessableEntity && isJSON(w.Header().Get("Content-Type")):
		code = http.StatusOK
	case code == http.StatusNotAcceptable && w.get:
		// A mutation over GET: gqlgen's error has no code.
		w.Header().Set("Allow", "GET, POST")
		w.Header().Set("Content-Type", "application/json")
		w.ResponseWriter.WriteHeader(http.StatusMethodNotAllowed)
		fmt.Fprintf(w.ResponseWriter, `{"errors":[{"message":%q,"extensions":{"code":%q}}]}`,
			"only queries may be sent with GET: send mutations with POST", badRequest)
		w.info.addCode(badRequest)
		w.replaced = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusFixer) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusFixer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func isJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// compress compresses responses of at least minSize bytes with zstd or gzip,
// as the client accepts (klauspost/compress/gzhttp).
func compress(minSize int, next http.Handler) http.Handler {
	wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(minSize))
	if err != nil {
		panic(err) // only for invalid options, which are constants here
	}
	return wrap(next)
}

// corsPolicy lets browsers on origins call the API with headers; "*" in
// origins allows any origin. X-Request-ID is readable by the page.
func corsPolicy(origins, headers []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next // no cross-origin access (rs/cors would allow any origin)
	}
	if len(headers) == 0 {
		headers = DefaultCORSHeaders
	}
	return cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost},
		AllowedHeaders: headers,
		ExposedHeaders: []string{"X-Request-ID"},
		MaxAge:         600,
	}).Handler(next)
}
