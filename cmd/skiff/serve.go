package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/skiffhq/skiff/graph"
	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/tenant"
)

// ServeCmd runs Skiff.
type ServeCmd struct {
	DatabaseFlags

	HTTPAddr      string        `name:"http-addr" default:"127.0.0.1:8080" env:"SKIFF_HTTP_ADDR" help:"Address of the GraphQL API."`
	Playground    string        `default:"auto" enum:"auto,on,off" env:"SKIFF_PLAYGROUND" help:"Serve the GraphQL playground at /playground (${enum}; auto: on with the private PostgreSQL, off otherwise)."`
	Introspection string        `default:"auto" enum:"auto,on,off" env:"SKIFF_INTROSPECTION" help:"Answer GraphQL introspection queries and suggest field names (${enum}; auto: like --playground)."`
	CORSOrigins   []string      `name:"cors-origins" env:"SKIFF_CORS_ORIGINS" help:"Web origins allowed to call the API (comma-separated)."`
	MaxBodyBytes  int64         `name:"max-body-bytes" default:"1048576" env:"SKIFF_MAX_BODY_BYTES" help:"Largest GraphQL request body."`
	MaxComplexity int           `name:"max-complexity" default:"1000" env:"SKIFF_MAX_COMPLEXITY" help:"GraphQL complexity limit per operation."`
	MaxDepth      int           `name:"max-depth" default:"12" env:"SKIFF_MAX_DEPTH" help:"GraphQL selection depth limit."`
	TokenTTL      time.Duration `name:"token-ttl" default:"720h" env:"SKIFF_TOKEN_TTL" help:"How long a login token stays valid."`
	Demo          bool          `default:"true" negatable:"" env:"SKIFF_DEMO" help:"On first start with the private PostgreSQL, create a demo account and a staff login."`
	ShutdownGrace time.Duration `name:"shutdown-grace" default:"20s" env:"SKIFF_SHUTDOWN_GRACE" help:"How long SIGTERM waits for requests and transfers to finish."`

	SFTPFlags `embed:""`

	// ready, when set (by tests), is told where the servers listen once they do.
	ready func(httpURL string, sftpAddrs []string)
}

// Run serves until ctx is cancelled (SIGINT/SIGTERM), then shuts down gracefully.
func (c *ServeCmd) Run(ctx context.Context, log *slog.Logger) error {
	d, err := c.open(ctx, log)
	if err != nil {
		return err
	}
	defer d.Close()
	svc := tenant.NewService(d.DB)
	svc.TokenTTL = c.TokenTTL
	// One enforcer answers every permission question, GraphQL's and SFTP's;
	// it hears other nodes' changes through PostgreSQL notifications.
	enforcer, err := policy.New(d.DB.X.DB, policy.Options{Logger: log})
	if err != nil {
		return err
	}
	svc.Policy = enforcer
	go func() {
		if err := enforcer.Listen(ctx, d.URL); err != nil && ctx.Err() == nil {
			log.Error("policy change notifications stopped; permissions are re-read every second instead", "err", err)
		}
	}()
	dev := d.Embedded
	playground := onOff(c.Playground, dev)
	introspection := onOff(c.Introspection, playground)

	app, err := c.startSFTP(ctx, log, d, svc)
	if err != nil {
		return err
	}
	defer app.close()

	var demo *demoLogins
	if d.Embedded && c.Demo {
		if demo, err = ensureDemo(ctx, svc, c.DataDir); err != nil {
			return fmt.Errorf("demo account: %w", err)
		}
	}

	api := graph.NewHandler(&graph.Resolver{Tenant: svc}, graph.Config{
		Playground: playground, Introspection: introspection, MaxBodyBytes: c.MaxBodyBytes,
		MaxComplexity: c.MaxComplexity, MaxDepth: c.MaxDepth, AllowedOrigins: splitList(c.CORSOrigins),
		Logger: log, Ready: func(ctx context.Context) error { return d.DB.X.PingContext(ctx) },
	})
	ln, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen for GraphQL: %w", err)
	}
	hs := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()

	base := "http://" + ln.Addr().String()
	log.Info("GraphQL API listening", "url", base+"/graphql")
	printWelcome(base, playground, app, demo)
	if c.ready != nil {
		c.ready(base, app.addrs())
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("GraphQL server: %w", err)
	case <-d.Died:
		return errors.New("the private PostgreSQL server stopped unexpectedly; see its log in the data folder (postgres/server.log)")
	}
	log.Info("shutting down", "grace", c.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownGrace)
	defer cancel()
	app.shutdown(sctx)
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("GraphQL shutdown", "err", err)
	}
	return nil
}

// onOff reads an auto/on/off flag.
func onOff(v string, auto bool) bool {
	switch v {
	case "on":
		return true
	case "off":
		return false
	}
	return auto
}

func splitList(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// demoLogins are the demo account's credentials, kept in the data folder so
// every start can print them again.
type demoLogins struct {
	OwnerEmail, OwnerPassword string
	StaffEmail, StaffPassword string
}

const demoFile = "demo-logins.txt"

// ensureDemo creates the demo account and a staff login on the first start
// (an empty database) and returns their logins; later starts read them back.
func ensureDemo(ctx context.Context, svc *tenant.Service, dataDir string) (*demoLogins, error) {
	path := filepath.Join(dataDir, demoFile)
	if dl, err := readDemoLogins(path); err == nil {
		return dl, nil
	}
	var n int
	if err := svc.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlxTx) error {
		return tx.GetContext(ctx, &n, `SELECT count(*) FROM accounts`)
	}); err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, nil // a database with data but no demo file: not ours to seed
	}
	dl := &demoLogins{OwnerEmail: "owner@demo.example", OwnerPassword: randomPassword(),
		StaffEmail: "support@skiff.example", StaffPassword: randomPassword()}
	sys := tenant.SystemContext(ctx)
	if _, err := svc.CreateStaff(sys, dl.StaffEmail, "Skiff Support", dl.StaffPassword); err != nil {
		return nil, err
	}
	a, owner, err := svc.CreateAccount(sys, tenant.CreateAccountInput{
		Name: "Demo Company", OwnerEmail: dl.OwnerEmail, OwnerName: "Demo Owner", OwnerPassword: dl.OwnerPassword,
	})
	if err != nil {
		return nil, err
	}
	if err := startDemoTrial(ctx, svc, a, owner); err != nil {
		return nil, err
	}
	content := fmt.Sprintf("owner %s %s\nstaff %s %s\n", dl.OwnerEmail, dl.OwnerPassword, dl.StaffEmail, dl.StaffPassword)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return nil, err
	}
	return dl, nil
}

// readDemoLogins reads the demo logins a first start wrote into path.
func readDemoLogins(path string) (*demoLogins, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var dl demoLogins
	if _, err := fmt.Sscanf(string(b), "owner %s %s\nstaff %s %s\n", &dl.OwnerEmail, &dl.OwnerPassword, &dl.StaffEmail, &dl.StaffPassword); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &dl, nil
}

func randomPassword() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func printWelcome(base string, playground bool, app *sftpApp, demo *demoLogins) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nSkiff is running.\n")
	fmt.Fprintf(&b, "  GraphQL:    %s/graphql\n", base)
	if playground {
		fmt.Fprintf(&b, "  Playground: %s/playground\n", base)
	}
	for _, a := range app.addrs() {
		fmt.Fprintf(&b, "  SFTP:       %s\n", a)
	}
	if demo != nil {
		fmt.Fprintf(&b, "\nDemo account owner: %s  password: %s\n", demo.OwnerEmail, demo.OwnerPassword)
		fmt.Fprintf(&b, "Support staff:      %s  password: %s\n", demo.StaffEmail, demo.StaffPassword)
		fmt.Fprintf(&b, "\nLog in:\n  curl -s %s/graphql -H 'Content-Type: application/json' \\\n", base)
		fmt.Fprintf(&b, "    -d '{\"query\":\"mutation { login(input: {email: \\\"%s\\\", password: \\\"%s\\\"}) { token userErrors { message } } }\"}'\n", demo.OwnerEmail, demo.OwnerPassword)
	}
	fmt.Fprintln(os.Stdout, b.String())
}
