package graph

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/skiffhq/skiff/tenant"
)

// requestInfo is what the layers of one request learn about it for its
// access log line: who made it (authenticate), which operation it was
// (the operation hook) and the error codes it got (the error presenter).
type requestInfo struct {
	mu        sync.Mutex
	principal *tenant.Principal
	operation string
	opType    string
	codes     []string
}

type requestInfoKey struct{}

func requestInfoFrom(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return ri
}

func (ri *requestInfo) setPrincipal(p *tenant.Principal) {
	if ri == nil {
		return
	}
	ri.mu.Lock()
	ri.principal = p
	ri.mu.Unlock()
}

func (ri *requestInfo) setOperation(name, typ string) {
	if ri == nil {
		return
	}
	ri.mu.Lock()
	ri.operation, ri.opType = name, typ
	ri.mu.Unlock()
}

// addCode records an error code once.
func (ri *requestInfo) addCode(code string) {
	if ri == nil {
		return
	}
	ri.mu.Lock()
	if !slices.Contains(ri.codes, code) {
		ri.codes = append(ri.codes, code)
	}
	ri.mu.Unlock()
}

// noteOperation records the operation's name and type for the access log.
func noteOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	name, typ := oc.OperationName, ""
	if oc.Operation != nil {
		typ = string(oc.Operation.Operation)
		if name == "" {
			name = oc.Operation.Name
		}
	}
	requestInfoFrom(ctx).setOperation(name, typ)
	return next(ctx)
}

// accessLog writes one line per request when it ends: at INFO for the API
// (/graphql), at DEBUG for probes and the playground. The line names the
// client address (through the trusted proxies), the account and user (or
// staff member), the operation, the status, the error codes and the
// duration.
func accessLog(log *slog.Logger, addrs clientAddrs, metrics *Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		ri := &requestInfo{}
		ws := req.URL.Path == "/graphql" && isWebSocket(req)
		wsEnded := func(*requestInfo, int) {}
		if ws {
			wsEnded = metrics.webSocketOpened()
		}
		next.ServeHTTP(sw, req.WithContext(context.WithValue(req.Context(), requestInfoKey{}, ri)))
		level := slog.LevelDebug
		ri.mu.Lock()
		defer ri.mu.Unlock()
		switch {
		case ws:
			level = slog.LevelInfo
			wsEnded(ri, sw.status)
		case req.URL.Path == "/graphql":
			level = slog.LevelInfo
			metrics.observe(ri, sw.status, time.Since(start))
		}
		if !log.Enabled(req.Context(), level) {
			return
		}
		attrs := []slog.Attr{
			slog.String("request_id", RequestIDFrom(req.Context())),
			slog.String("client", addrs.of(req).String()),
			slog.String("method", req.Method),
			slog.String("path", req.URL.Path),
			slog.Int("status", sw.status),
			slog.Float64("duration", time.Since(start).Round(time.Microsecond).Seconds()), // seconds
		}
		switch p := ri.principal; {
		case p == nil:
			attrs = append(attrs, slog.String("principal", "anonymous"))
		case p.Kind == tenant.KindStaff:
			attrs = append(attrs, slog.String("principal", "staff"), slog.String("staff", p.ID))
		default:
			attrs = append(attrs, slog.String("principal", "user"), slog.String("account", p.AccountID), slog.String("user", p.ID))
		}
		if ri.opType != "" || ri.operation != "" {
			attrs = append(attrs, slog.String("operation", ri.operation), slog.String("operation_type", ri.opType))
		}
		outcome := "ok"
		if len(ri.codes) > 0 || sw.status >= 400 {
			outcome = "error"
		}
		attrs = append(attrs, slog.String("outcome", outcome))
		if len(ri.codes) > 0 {
			attrs = append(attrs, slog.String("errors", strings.Join(ri.codes, ",")))
		}
		log.LogAttrs(req.Context(), level, "http request", attrs...)
	})
}

// maxRequestIDLen bounds an X-Request-ID a client or proxy sends.
const maxRequestIDLen = 128

// validRequestID reports whether an incoming X-Request-ID may be kept: 1 to
// 128 letters, digits and - _ . : (a UUID, a proxy's hex or base64url ID), so
// it cannot break a log line or a header.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// requestID gives each request an ID, sent back as X-Request-ID and named
// in its log lines: the one the client (or a proxy) sent when it is valid,
// so a request can be followed across systems; a new one otherwise.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id := req.Header.Get("X-Request-ID")
		if !validRequestID(id) {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		w.Header().Set("X-Request-ID", id)
		next.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), requestIDKey{}, id)))
	})
}
