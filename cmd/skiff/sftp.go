package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/notify"
	"github.com/skiffhq/skiff/sftp"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/tenant"
)

type sqlxTx = sqlx.Tx

// SFTPFlags configure the SFTP listener, file storage and mail.
type SFTPFlags struct {
	SFTPAddr          []string      `name:"sftp-addr" default:"127.0.0.1:2022" env:"SKIFF_SFTP_ADDR" help:"Addresses the SFTP server listens on (comma-separated; one per dedicated IP, or 0.0.0.0:22)."`
	SFTPHost          string        `name:"sftp-host" env:"SKIFF_SFTP_HOST" help:"Public host name users connect to, shown in credentials and emails (default: the first --sftp-addr's host)."`
	SFTPPort          int           `name:"sftp-port" env:"SKIFF_SFTP_PORT" help:"Public SFTP port shown to users (default: the first --sftp-addr's port)."`
	ProxyTrusted      []string      `name:"proxy-trusted" env:"SKIFF_PROXY_TRUSTED" help:"Networks of load balancers allowed to send a PROXY protocol header (CIDR, comma-separated)."`
	ProxyRequired     bool          `name:"proxy-required" env:"SKIFF_PROXY_REQUIRED" help:"Refuse connections from trusted networks that send no PROXY header."`
	SFTPCiphers       []string      `name:"sftp-ciphers" env:"SKIFF_SFTP_CIPHERS" help:"Ciphers to offer, in order (default: AES-GCM, then AES-CTR; chacha20-poly1305@openssh.com is offered only when listed here)."`
	SFTPStrictMACs    bool          `name:"sftp-strict-macs" env:"SKIFF_SFTP_STRICT_MACS" help:"Offer only encrypt-then-MAC MACs (turns away curl and other clients on libssh2 older than 1.11)."`
	SFTPIdleTimeout   time.Duration `name:"sftp-idle-timeout" default:"15m" env:"SKIFF_SFTP_IDLE_TIMEOUT" help:"Close SFTP connections idle this long."`
	SFTPMaxConns      int           `name:"sftp-max-connections" default:"10000" env:"SKIFF_SFTP_MAX_CONNECTIONS" help:"Most SFTP connections at once."`
	SFTPMaxConnsPerIP int           `name:"sftp-max-connections-per-address" default:"50" env:"SKIFF_SFTP_MAX_CONNECTIONS_PER_ADDRESS" help:"Most SFTP connections from one client address."`
	SFTPHandshake     time.Duration `name:"sftp-handshake-timeout" default:"30s" env:"SKIFF_SFTP_HANDSHAKE_TIMEOUT" help:"Time a client has from connecting to being logged in (PROXY header, key exchange, authentication)."`
	SFTPMaxAuthTries  int           `name:"sftp-max-auth-tries" default:"6" env:"SKIFF_SFTP_MAX_AUTH_TRIES" help:"Failed authentication attempts allowed on one SFTP connection (1-100)."`
	SFTPMaxSessions   int           `name:"sftp-max-sessions-per-connection" default:"10" env:"SKIFF_SFTP_MAX_SESSIONS_PER_CONNECTION" help:"Session channels one SFTP connection may have open at once (1-1000)."`
	StorageDir        string        `name:"storage-dir" env:"SKIFF_STORAGE_DIR" type:"path" help:"Where users' files live (default: <data-dir>/files)."`
	TrialLicences     int           `name:"trial-licences" default:"5" env:"SKIFF_TRIAL_LICENCES" help:"SFTP licences during a trial."`

	DedicatedIPPool     []string      `name:"dedicated-ip-pool" env:"SKIFF_DEDICATED_IP_POOL" help:"Addresses this deployment owns for accounts' dedicated IPs (IPs or CIDRs, comma-separated). SFTP connections to them must reach Skiff: listen on them (or 0.0.0.0), or receive them through a PROXY load balancer."`
	DedicatedIPCooldown time.Duration `name:"dedicated-ip-cooldown" default:"720h" env:"SKIFF_DEDICATED_IP_COOLDOWN" help:"How long a released dedicated IP waits before another account can have it (the account that released it may take it back at once)."`

	CPUProfile string `name:"cpu-profile" hidden:"" env:"SKIFF_CPU_PROFILE" type:"path" help:"Write a CPU profile of the process to this file from start-up until it stops (for benchmarks)."`

	SMTPURL        string        `name:"smtp-url" env:"SKIFF_SMTP_URL" help:"SMTP server for email (smtp://user:pass@host:587?from=...&starttls=required, or smtps://). Empty: write .eml files into <data-dir>/mail."`
	EmailRetention time.Duration `name:"email-retention" default:"2160h" env:"SKIFF_EMAIL_RETENTION" help:"How long sent and failed emails stay in the outbox (and in account.notifications) before the worker deletes them; 0 keeps them."`
	PublicURL      string        `name:"public-url" default:"http://localhost:3000" env:"SKIFF_PUBLIC_URL" help:"The web client's address, the base of links in emails."`
}

// sftpApp is the SFTP server and the background workers that serve runs.
type sftpApp struct {
	server *sftp.Server
	store  *storage.Local
	cancel context.CancelFunc
	done   chan struct{}
	log    *slog.Logger

	stopProfile func() // ends --cpu-profile; nil without it
}

// sftpLimits checks the limit flags. Zero and negative values are refused
// where the server would read them as "the default" or "no limit": an
// operator who types 0 auth tries means none, not six, and never unlimited.
func (c *ServeCmd) sftpLimits() (sftp.Limits, error) {
	switch {
	case c.SFTPHandshake <= 0:
		return sftp.Limits{}, fmt.Errorf("--sftp-handshake-timeout: %s is not a duration above zero", c.SFTPHandshake)
	case c.SFTPMaxAuthTries < 1 || c.SFTPMaxAuthTries > 100:
		return sftp.Limits{}, fmt.Errorf("--sftp-max-auth-tries: %d is not between 1 and 100", c.SFTPMaxAuthTries)
	case c.SFTPMaxSessions < 1 || c.SFTPMaxSessions > 1000:
		return sftp.Limits{}, fmt.Errorf("--sftp-max-sessions-per-connection: %d is not between 1 and 1000", c.SFTPMaxSessions)
	}
	return sftp.Limits{
		HandshakeTimeout:         c.SFTPHandshake,
		IdleTimeout:              c.SFTPIdleTimeout,
		MaxAuthTries:             c.SFTPMaxAuthTries,
		MaxConnections:           c.SFTPMaxConns,
		MaxConnectionsPerAddress: c.SFTPMaxConnsPerIP,
		MaxSessionsPerConnection: c.SFTPMaxSessions,
	}, nil
}

// startSFTP starts the SFTP listener, the mail worker and the module reminders.
func (c *ServeCmd) startSFTP(ctx context.Context, log *slog.Logger, d *database, svc *tenant.Service) (*sftpApp, error) {
	addrs := splitList(c.SFTPAddr)
	if len(addrs) == 0 {
		return nil, errors.New("--sftp-addr: give at least one address")
	}
	if _, _, err := publicEndpoint(addrs[0], c.SFTPHost, c.SFTPPort); err != nil {
		return nil, err
	}
	limits, err := c.sftpLimits()
	if err != nil {
		return nil, err
	}
	trusted, err := parsePrefixes("--proxy-trusted", splitList(c.ProxyTrusted))
	if err != nil {
		return nil, err
	}
	dedicated, err := c.dedicatedIPs()
	if err != nil {
		return nil, err
	}
	if c.EmailRetention < 0 {
		return nil, fmt.Errorf("--email-retention: %s is negative (0 keeps emails forever)", c.EmailRetention)
	}
	storageDir := c.StorageDir
	if storageDir == "" {
		storageDir = filepath.Join(c.DataDir, "files")
	}
	store, err := storage.NewLocal(storageDir)
	if err != nil {
		return nil, fmt.Errorf("file storage: %w", err)
	}
	dir := tenant.NewDirectory(d.DB)
	if err := dir.EnsureHostKeys(ctx); err != nil {
		store.Close()
		return nil, fmt.Errorf("host keys: %w", err)
	}
	// Routing by dedicated IP reads the directory's copy of the dedicated
	// IPs in use, which Listen (below) keeps current; changes made through
	// this node apply at once.
	if err := dir.LoadDedicatedIPs(ctx); err != nil {
		store.Close()
		return nil, fmt.Errorf("dedicated IPs: %w", err)
	}
	dedicated.Changed = dir.DedicatedIPsChanged
	// Sessions list their project folders through the service, so they ask
	// the same policy enforcer as GraphQL (svc.Policy, set by Run).
	backend := &sftp.TenantBackend{Directory: dir, Storage: store, Shares: svc.SFTPShares, Logger: log}
	srv, err := sftp.NewServer(sftp.Config{
		ListenAddresses:    addrs,
		Directory:          backend,
		HostKeys:           backend,
		Sessions:           backend,
		Logger:             log,
		TrustedProxies:     trusted,
		RequireProxyHeader: c.ProxyRequired,
		Ciphers:            splitList(c.SFTPCiphers),
		MACs:               strictMACs(c.SFTPStrictMACs),
		Limits:             limits,
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	// A release, or the address going to another account, on any node ends
	// the sessions logged in through it on this one.
	dir.OnDedicatedIPsChange(func() { srv.DedicatedIPsChanged() })
	if err := srv.Listen(ctx); err != nil {
		store.Close()
		return nil, fmt.Errorf("listen for SFTP: %w", err)
	}
	// The public endpoint defaults to where we really listen (port 0 picks one).
	host, port, err := publicEndpoint(srv.Addrs()[0].String(), c.SFTPHost, c.SFTPPort)
	if err != nil {
		srv.Shutdown(ctx)
		store.Close()
		return nil, err
	}
	svc.SFTP.Host, svc.SFTP.Port, svc.SFTP.TrialLicences = host, port, c.TrialLicences
	svc.Sessions = sftp.SessionEnder{Server: srv}
	svc.DedicatedIPs = dedicated
	logDedicatedIPs(log, dedicated.Pool, srv.Addrs(), len(trusted) > 0)

	mailDir := filepath.Join(c.DataDir, "mail")
	sender, err := notify.NewSender(c.SMTPURL, mailDir)
	if err != nil {
		srv.Shutdown(ctx)
		store.Close()
		return nil, fmt.Errorf("mail: %w", err)
	}
	renderer, err := notify.NewRenderer(c.PublicURL, "Skiff")
	if err != nil {
		srv.Shutdown(ctx)
		store.Close()
		return nil, err
	}
	if c.SMTPURL == "" {
		log.Info("mail is written as .eml files", "dir", mailDir)
	}
	worker := notify.NewWorker(d.DB, renderer, sender)
	worker.Log = log
	worker.Retention = c.EmailRetention

	stopProfile, err := startCPUProfile(c.CPUProfile)
	if err != nil {
		srv.Shutdown(ctx)
		store.Close()
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	app := &sftpApp{server: srv, store: store, cancel: cancel, done: make(chan struct{}), log: log, stopProfile: stopProfile}
	go func() {
		defer close(app.done)
		errc := make(chan error, 4)
		go func() { errc <- srv.ListenAndServe(wctx) }()
		go func() { errc <- worker.Run(wctx) }()
		go func() { errc <- remindTrials(wctx, svc, log) }()
		go func() {
			if err := dir.Listen(wctx, d.URL, log); err != nil && wctx.Err() == nil {
				log.Error("dedicated IP change notifications stopped; the dedicated IPs are re-read every second instead", "err", err)
			}
			errc <- nil
		}()
		for range 4 {
			if err := <-errc; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, sftp.ErrServerClosed) {
				log.Error("background service stopped", "err", err)
			}
		}
	}()
	return app, nil
}

// remindTrials sends "trial ending" emails and purges expired one-time
// tokens; hourly is plenty for a 3-day notice.
func remindTrials(ctx context.Context, svc *tenant.Service, log *slog.Logger) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := svc.SendTrialEndingReminders(tenant.SystemContext(ctx)); err != nil {
			log.Warn("trial reminders", "err", err)
		} else if n > 0 {
			log.Info("trial reminders queued", "count", n)
		}
		if _, err := svc.PurgeExpiredTokens(tenant.SystemContext(ctx)); err != nil {
			log.Warn("purge expired tokens", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (a *sftpApp) addrs() []string {
	var out []string
	for _, ad := range a.server.Addrs() {
		out = append(out, ad.String())
	}
	return out
}

// shutdown lets transfers finish until ctx ends, then stops the workers.
func (a *sftpApp) shutdown(ctx context.Context) {
	if err := a.server.Shutdown(ctx); err != nil {
		a.log.Warn("SFTP shutdown", "err", err)
	}
	a.cancel()
	select {
	case <-a.done:
	case <-ctx.Done():
	}
}

func (a *sftpApp) close() {
	a.cancel()
	a.store.Close()
	if a.stopProfile != nil {
		a.stopProfile()
	}
}

// startCPUProfile starts writing a CPU profile to path, if set, and returns
// what ends it.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func strictMACs(on bool) []string {
	if on {
		return sftp.StrictMACs
	}
	return nil
}

// publicEndpoint is what users are told to connect to.
func publicEndpoint(listen, host string, port int) (string, int, error) {
	h, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("--sftp-addr %q: %w", listen, err)
	}
	if host == "" {
		host = h
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
	}
	if port == 0 {
		if port, err = strconv.Atoi(p); err != nil {
			return "", 0, fmt.Errorf("--sftp-addr %q: bad port", listen)
		}
	}
	return host, port, nil
}

// parsePrefixes reads the addresses and CIDRs given to flag.
func parsePrefixes(flag string, vs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range vs {
		if !strings.Contains(v, "/") {
			a, err := netip.ParseAddr(v)
			if err != nil {
				return nil, fmt.Errorf("%s %q: not an address or CIDR", flag, v)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, fmt.Errorf("%s %q: not an address or CIDR", flag, v)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// dedicatedIPs reads the dedicated IP pool and its cool-down.
func (c *ServeCmd) dedicatedIPs() (tenant.DedicatedIPConfig, error) {
	prefixes, err := parsePrefixes("--dedicated-ip-pool", splitList(c.DedicatedIPPool))
	if err != nil {
		return tenant.DedicatedIPConfig{}, err
	}
	pool, err := tenant.NewDedicatedIPPool(prefixes)
	if err != nil {
		return tenant.DedicatedIPConfig{}, fmt.Errorf("--dedicated-ip-pool: %w", err)
	}
	if c.DedicatedIPCooldown < 0 {
		return tenant.DedicatedIPConfig{}, errors.New("--dedicated-ip-cooldown: must not be negative")
	}
	return tenant.DedicatedIPConfig{Pool: pool, Cooldown: c.DedicatedIPCooldown}, nil
}

// logDedicatedIPs says how big the pool is and warns about addresses no
// connection can reach: Skiff listens neither on them nor on a wildcard
// address, and no load balancer may forward them with a PROXY header. Such
// an address can still be provisioned, but its account's users would find
// nothing there.
func logDedicatedIPs(log *slog.Logger, pool *tenant.DedicatedIPPool, listening []net.Addr, proxied bool) {
	if pool.Len() == 0 {
		return
	}
	log.Info("dedicated IP pool", "addresses", pool.Len())
	if proxied {
		return
	}
	served := map[netip.Addr]bool{}
	for _, a := range listening {
		ip := addrIP(a)
		if ip.IsUnspecified() {
			return
		}
		served[ip] = true
	}
	var missing []netip.Addr
	for _, a := range pool.Addrs() {
		if !served[a] {
			missing = append(missing, a)
		}
	}
	if len(missing) > 0 {
		log.Warn("the SFTP server does not listen on some dedicated IPs of the pool; add them to --sftp-addr, listen on 0.0.0.0, or set --proxy-trusted",
			"count", len(missing), "first", missing[0])
	}
}

// addrIP is the IP of a listener's TCP address, IPv4-mapped ones unmapped.
func addrIP(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// startDemoTrial puts the demo account in TRIAL so the tour works at once.
func startDemoTrial(ctx context.Context, svc *tenant.Service, a *tenant.Account, owner *tenant.User) error {
	octx := tenant.WithPrincipal(ctx, &tenant.Principal{Kind: tenant.KindUser, ID: owner.ID, AccountID: a.ID, Role: tenant.RoleOwner, Name: owner.Name, Email: owner.Email})
	_, err := svc.StartSFTPTrial(octx)
	return err
}
