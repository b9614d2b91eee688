package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/skiffhq/skiff/graph"
	"github.com/skiffhq/skiff/sftp"
	"github.com/skiffhq/skiff/tenant/domain"
)

// HTTPFlags configure the GraphQL API.
type HTTPFlags struct {
	Addr           string        `name:"http-addr" default:"127.0.0.1:8080" env:"SKIFF_HTTP_ADDR" help:"Address of the GraphQL API."`
	Playground     string        `name:"playground" default:"auto" enum:"auto,on,off" env:"SKIFF_PLAYGROUND" help:"Serve the GraphQL playground at /playground (${enum}; auto: on with the private PostgreSQL, off otherwise)."`
	Introspection  string        `name:"introspection" default:"auto" enum:"auto,on,off" env:"SKIFF_INTROSPECTION" help:"Answer GraphQL introspection queries and suggest field names (${enum}; auto: like --playground)."`
	CORSOrigins    []string      `name:"cors-origins" env:"SKIFF_CORS_ORIGINS" help:"Web origins allowed to call the API (comma-separated)."`
	CORSHeaders    []string      `name:"cors-headers" default:"Authorization,Content-Type,Accept,apollographql-client-name,apollographql-client-version,X-Request-ID" env:"SKIFF_CORS_HEADERS" help:"Request headers browsers on --cors-origins may send (comma-separated)."`
	MaxBodyBytes   int64         `name:"max-body-bytes" default:"1048576" env:"SKIFF_MAX_BODY_BYTES" help:"Largest GraphQL request body."`
	MaxComplexity  int           `name:"max-complexity" default:"10000" env:"SKIFF_MAX_COMPLEXITY" help:"GraphQL complexity limit per operation: each field costs 1 plus its selection, and a paged field's selection counts once per item of its first (50 without one), an unpaged list's (folder members, live SFTP sessions, SSH keys) once per item it holds."`
	MaxDepth       int           `name:"max-depth" default:"12" env:"SKIFF_MAX_DEPTH" help:"GraphQL selection depth limit."`
	MaxTokens      int           `name:"max-tokens" default:"10000" env:"SKIFF_MAX_TOKENS" help:"GraphQL parser token limit per request, checked before validation."`
	MaxSelections  int           `name:"max-selections" default:"100" env:"SKIFF_MAX_SELECTIONS" help:"Most fields, aliases and fragments in one GraphQL selection set, checked before validation."`
	MaxFields      int           `name:"max-fields" default:"2000" env:"SKIFF_MAX_FIELDS" help:"Most fields in one GraphQL operation with its fragments expanded, checked before validation."`
	MaxResponse    int           `name:"max-response-bytes" default:"8388608" env:"SKIFF_MAX_RESPONSE_BYTES" help:"Largest GraphQL response; a larger one is replaced by an error."`
	ReadHeader     time.Duration `name:"http-read-header-timeout" default:"10s" env:"SKIFF_HTTP_READ_HEADER_TIMEOUT" help:"Time a client has to send a request's headers."`
	Read           time.Duration `name:"http-read-timeout" default:"30s" env:"SKIFF_HTTP_READ_TIMEOUT" help:"Time a client has to send a whole request, body included; slower requests are cut off."`
	Write          time.Duration `name:"http-write-timeout" default:"60s" env:"SKIFF_HTTP_WRITE_TIMEOUT" help:"Time from the end of a request's headers to the end of its response; a GraphQL request or activity export still running then is stopped (its database statements canceled)."`
	Idle           time.Duration `name:"http-idle-timeout" default:"2m" env:"SKIFF_HTTP_IDLE_TIMEOUT" help:"How long an idle keep-alive connection stays open."`
	MaxConns       int           `name:"http-max-connections" default:"1000" env:"SKIFF_HTTP_MAX_CONNECTIONS" help:"Most open HTTP connections; more are answered 503 and closed."`
	MaxConnsPerIP  int           `name:"http-max-connections-per-address" default:"100" env:"SKIFF_HTTP_MAX_CONNECTIONS_PER_ADDRESS" help:"Most open HTTP connections (WebSockets included) from one TCP peer address (IPv6: one /64); more are answered 429 and closed, and do not count against --http-max-connections. Peers in --http-trusted-proxies are not capped. 0: no cap."`
	MaxPerAddr     int           `name:"http-max-requests-per-address" default:"16" env:"SKIFF_HTTP_MAX_REQUESTS_PER_ADDRESS" help:"Most GraphQL requests in flight from one client address; more are answered 429. Their database connections are bounded by the API's share of the pool (three quarters of --database-max-connections; one account half of that; one request 4), not by this."`
	TrustedProxies []string      `name:"http-trusted-proxies" env:"SKIFF_HTTP_TRUSTED_PROXIES" help:"Networks of reverse proxies whose X-Forwarded-For (or Forwarded) header names the client (CIDR, comma-separated); from other peers the client is the TCP peer. IP allowlists, login throttling and --http-max-requests-per-address use the client address."`
	MaxSubs        int           `name:"max-subscriptions-per-token" default:"16" env:"SKIFF_MAX_SUBSCRIPTIONS_PER_TOKEN" help:"Most GraphQL subscriptions (over WebSocket) one login token holds at once; one more is refused with TOO_MANY_SUBSCRIPTIONS."`
	TokenTTL       time.Duration `name:"token-ttl" default:"720h" env:"SKIFF_TOKEN_TTL" help:"How long a login token stays valid; for sessions with refresh tokens, how long one lasts unless refreshed."`
	AccessTTL      time.Duration `name:"access-token-ttl" default:"15m" env:"SKIFF_ACCESS_TOKEN_TTL" help:"How long an access token of a session with refresh tokens (login tokenKind ACCESS_AND_REFRESH) stays valid."`
}

// httpServer is the running GraphQL API.
type httpServer struct {
	srv        *http.Server
	base       string // http://host:port
	playground bool
	errc       chan error // the server's error if it stops by itself
	// closeWebSockets closes every WebSocket (subscriptions) at once: a
	// drain does not wait for connections that stay open for hours.
	closeWebSockets context.CancelFunc
}

// start serves the GraphQL API. The playground and introspection are on by
// default with the private PostgreSQL (a developer's machine) only.
// gate wraps the API (lifecycle.gate); storageReady is /readyz's check of
// the storage, besides the database's.
func (f HTTPFlags) start(log *slog.Logger, d *database, svc *domain.Domain, gate func(http.Handler) http.Handler, storageReady func() error, metrics *graph.Metrics) (*httpServer, error) {
	playground := onOff(f.Playground, d.Embedded)
	trusted, err := parsePrefixes("--http-trusted-proxies", splitList(f.TrustedProxies))
	if err != nil {
		return nil, err
	}
	if f.MaxSubs < 1 {
		return nil, flagError("--max-subscriptions-per-token", "%d is not a count of at least 1", f.MaxSubs)
	}
	closing, closeWebSockets := context.WithCancel(context.Background())
	api := graph.NewHandler(&graph.Resolver{Tenant: svc}, graph.Config{
		MaxSubscriptionsPerToken: f.MaxSubs, Closing: closing,
		Playground: playground, Introspection: onOff(f.Introspection, playground), MaxBodyBytes: f.MaxBodyBytes,
		MaxComplexity: f.MaxComplexity, MaxDepth: f.MaxDepth, AllowedOrigins: splitList(f.CORSOrigins),
		CORSHeaders: splitList(f.CORSHeaders),
		MaxTokens:   f.MaxTokens, MaxSelections: f.MaxSelections, MaxFields: f.MaxFields,
		MaxResponseBytes: f.MaxResponse, MaxInFlightPerAddr: f.MaxPerAddr, TrustedProxies: trusted,
		DatabaseConnections: d.DB.X.Stats().MaxOpenConnections, RequestTimeout: f.Write,
		Metrics: metrics, Logger: log, Ready: func(ctx context.Context) error {
			if err := storageReady(); err != nil {
				return err
			}
			return d.DB.X.PingContext(ctx)
		},
	})
	ln, err := net.Listen("tcp", f.Addr)
	if err != nil {
		closeWebSockets()
		return nil, listenError("--http-addr", f.Addr, err)
	}
	s := &httpServer{
		srv:  f.server(gate(api)),
		base: "http://" + ln.Addr().String(), playground: playground, errc: make(chan error, 1),
		closeWebSockets: closeWebSockets,
	}
	// net/http's own complaints (TLS handshakes, panics) in the log's format.
	s.srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	go func() { s.errc <- s.srv.Serve(limitConns(ln, f.MaxConns, f.MaxConnsPerIP, trusted)) }()
	log.Info("GraphQL API listening", "url", s.base+"/graphql")
	return s, nil
}

// server is the HTTP server with the flags' timeouts: a client that sends
// its headers or body too slowly is cut off.
func (f HTTPFlags) server(h http.Handler) *http.Server {
	return &http.Server{
		Handler: h, ReadHeaderTimeout: f.ReadHeader, ReadTimeout: f.Read,
		WriteTimeout: f.Write, IdleTimeout: f.Idle, MaxHeaderBytes: 64 << 10,
	}
}

// limitConns caps the listener's open connections at max, and those from
// one peer address at perAddr (0: no cap for either). A connection over a
// cap is answered (503 for the server's cap, 429 for its address's) and
// closed, so the accept loop never stalls; one refused for its address
// takes no slot of the server's cap. Peers in trusted (reverse proxies,
// which carry many clients' connections) are not capped per address.
func limitConns(ln net.Listener, max, perAddr int, trusted []netip.Prefix) net.Listener {
	if max <= 0 && perAddr <= 0 {
		return ln
	}
	l := &connLimiter{Listener: ln, perAddrMax: perAddr, trusted: trusted, perAddr: map[netip.Addr]int{}}
	if max > 0 {
		l.slots = make(chan struct{}, max)
	}
	return l
}

type connLimiter struct {
	net.Listener
	slots      chan struct{} // nil: no cap on the server's connections
	perAddrMax int           // 0: no cap per address
	trusted    []netip.Prefix

	mu      sync.Mutex
	perAddr map[netip.Addr]int // open connections by connAddressKey
}

const connCapMessage = "server busy: too many open connections\n"

var connCapReply = fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n"+
	"Retry-After: 1\r\nContent-Length: %d\r\n\r\n%s", len(connCapMessage), connCapMessage)

// addrCapReply answers a connection over the per-address cap, with a
// GraphQL-style error body as the per-address request cap's 429.
func addrCapReply(limit int) string {
	body := fmt.Sprintf(`{"errors":[{"message":"too many open connections from your address (limit %d); close one first","extensions":{"code":"TOO_MANY_CONNECTIONS"}}]}`, limit)
	return fmt.Sprintf("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\n"+
		"Retry-After: 1\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// connAddressKey is what the per-address cap counts: the IPv4 address, or
// the IPv6 /64 (as SFTP's cap counts), since one host usually holds a whole
// /64. ok is false for a peer not to cap: a trusted proxy, or an address
// that cannot be read.
func (l *connLimiter) connAddressKey(c net.Conn) (k netip.Addr, ok bool) {
	if l.perAddrMax <= 0 {
		return netip.Addr{}, false
	}
	tcp, isTCP := c.RemoteAddr().(*net.TCPAddr)
	if !isTCP {
		return netip.Addr{}, false
	}
	a := tcp.AddrPort().Addr().Unmap().WithZone("")
	if !a.IsValid() || slices.ContainsFunc(l.trusted, func(p netip.Prefix) bool { return p.Contains(a) }) {
		return netip.Addr{}, false
	}
	return sftp.AddressKey(a), true
}

// admit takes a slot for c, or returns the reply refusing it.
func (l *connLimiter) admit(c net.Conn) (release func(), refusal string) {
	k, perAddr := l.connAddressKey(c)
	l.mu.Lock()
	defer l.mu.Unlock()
	if perAddr && l.perAddr[k] >= l.perAddrMax {
		return nil, addrCapReply(l.perAddrMax)
	}
	if l.slots != nil {
		select {
		case l.slots <- struct{}{}:
		default:
			return nil, connCapReply
		}
	}
	if perAddr {
		l.perAddr[k]++
	}
	return func() {
		if perAddr {
			l.mu.Lock()
			if l.perAddr[k]--; l.perAddr[k] <= 0 {
				delete(l.perAddr, k)
			}
			l.mu.Unlock()
		}
		if l.slots != nil {
			<-l.slots
		}
	}, ""
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, refusal := l.admit(c)
		if release != nil {
			return &limitedConn{Conn: c, release: release}, nil
		}
		go func() {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte(refusal))
			_ = c.Close()
		}()
	}
}

// limitedConn gives its slots back when closed, however it is closed: by
// the HTTP server, or by a WebSocket's handler that hijacked it (Hijack
// hands out this very net.Conn).
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
