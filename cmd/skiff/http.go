package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/skiffhq/skiff/graph"
	"github.com/skiffhq/skiff/tenant/domain"
)

// HTTPFlags configure the GraphQL API.
type HTTPFlags struct {
	Addr          string        `name:"http-addr" default:"127.0.0.1:8080" env:"SKIFF_HTTP_ADDR" help:"Address of the GraphQL API."`
	Playground    string        `name:"playground" default:"auto" enum:"auto,on,off" env:"SKIFF_PLAYGROUND" help:"Serve the GraphQL playground at /playground (${enum}; auto: on with the private PostgreSQL, off otherwise)."`
	Introspection string        `name:"introspection" default:"auto" enum:"auto,on,off" env:"SKIFF_INTROSPECTION" help:"Answer GraphQL introspection queries and suggest field names (${enum}; auto: like --playground)."`
	CORSOrigins   []string      `name:"cors-origins" env:"SKIFF_CORS_ORIGINS" help:"Web origins allowed to call the API (comma-separated)."`
	MaxBodyBytes  int64         `name:"max-body-bytes" default:"1048576" env:"SKIFF_MAX_BODY_BYTES" help:"Largest GraphQL request body."`
	MaxComplexity int           `name:"max-complexity" default:"1000" env:"SKIFF_MAX_COMPLEXITY" help:"GraphQL complexity limit per operation."`
	MaxDepth      int           `name:"max-depth" default:"12" env:"SKIFF_MAX_DEPTH" help:"GraphQL selection depth limit."`
	TokenTTL      time.Duration `name:"token-ttl" default:"720h" env:"SKIFF_TOKEN_TTL" help:"How long a login token stays valid."`
}

// httpServer is the running GraphQL API.
type httpServer struct {
	srv        *http.Server
	base       string // http://host:port
	playground bool
	errc       chan error // the server's error if it stops by itself
}

// start serves the GraphQL API. The playground and introspection are on by
// default with the private PostgreSQL (a developer's machine) only.
func (f HTTPFlags) start(log *slog.Logger, d *database, svc *domain.Domain) (*httpServer, error) {
	playground := onOff(f.Playground, d.Embedded)
	api := graph.NewHandler(&graph.Resolver{Tenant: svc}, graph.Config{
		Playground: playground, Introspection: onOff(f.Introspection, playground), MaxBodyBytes: f.MaxBodyBytes,
		MaxComplexity: f.MaxComplexity, MaxDepth: f.MaxDepth, AllowedOrigins: splitList(f.CORSOrigins),
		Logger: log, Ready: func(ctx context.Context) error { return d.DB.X.PingContext(ctx) },
	})
	ln, err := net.Listen("tcp", f.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen for GraphQL: %w", err)
	}
	s := &httpServer{
		srv:  &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute},
		base: "http://" + ln.Addr().String(), playground: playground, errc: make(chan error, 1),
	}
	go func() { s.errc <- s.srv.Serve(ln) }()
	log.Info("GraphQL API listening", "url", s.base+"/graphql")
	return s, nil
}
