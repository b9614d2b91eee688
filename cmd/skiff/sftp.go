package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/skiffhq/skiff/internal/pglisten"
	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/sftp"
	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/sftplogin"
	"github.com/skiffhq/skiff/tenant/sftpsessions"
)

// SFTPFlags configure the SFTP listener, its limits and the SFTP module.
type SFTPFlags struct {
	Addrs         []string      `name:"sftp-addr" default:"127.0.0.1:2022" env:"SKIFF_SFTP_ADDR" help:"Addresses the SFTP server listens on (comma-separated; one per dedicated IP, or 0.0.0.0:22)."`
	Host          string        `name:"sftp-host" env:"SKIFF_SFTP_HOST" help:"Public host name users connect to, shown in credentials and emails (default: the first --sftp-addr's host)."`
	Port          int           `name:"sftp-port" env:"SKIFF_SFTP_PORT" help:"Public SFTP port shown to users (default: the first --sftp-addr's port)."`
	ProxyTrusted  []string      `name:"proxy-trusted" env:"SKIFF_PROXY_TRUSTED" help:"Networks of load balancers allowed to send a PROXY protocol header (CIDR, comma-separated)."`
	ProxyRequired bool          `name:"proxy-required" env:"SKIFF_PROXY_REQUIRED" help:"Refuse connections from trusted networks that send no PROXY header."`
	Ciphers       []string      `name:"sftp-ciphers" env:"SKIFF_SFTP_CIPHERS" help:"Ciphers to offer, in order (default: AES-GCM, then AES-CTR; chacha20-poly1305@openssh.com is offered only when listed here)."`
	StrictMACs    bool          `name:"sftp-strict-macs" env:"SKIFF_SFTP_STRICT_MACS" help:"Offer only encrypt-then-MAC MACs (turns away curl and other clients on libssh2 older than 1.11)."`
	IdleTimeout   time.Duration `name:"sftp-idle-timeout" default:"15m" env:"SKIFF_SFTP_IDLE_TIMEOUT" help:"Close SFTP connections idle this long."`
	MaxConns      int           `name:"sftp-max-connections" default:"10000" env:"SKIFF_SFTP_MAX_CONNECTIONS" help:"Most SFTP connections at once."`
	MaxConnsPerIP int           `name:"sftp-max-connections-per-address" default:"50" env:"SKIFF_SFTP_MAX_CONNECTIONS_PER_ADDRESS" help:"Most SFTP connections from one client address."`
	Handshake     time.Duration `name:"sftp-handshake-timeout" default:"30s" env:"SKIFF_SFTP_HANDSHAKE_TIMEOUT" help:"Time a client has from connecting to being logged in (PROXY header, key exchange, authentication)."`
	MaxAuthTries  int           `name:"sftp-max-auth-tries" default:"6" env:"SKIFF_SFTP_MAX_AUTH_TRIES" help:"Failed authentication attempts allowed on one SFTP connection (1-100)."`
	MaxSessions   int           `name:"sftp-max-sessions-per-connection" default:"10" env:"SKIFF_SFTP_MAX_SESSIONS_PER_CONNECTION" help:"Session channels one SFTP connection may have open at once (1-1000)."`
	DBTimeout     time.Duration `name:"sftp-db-timeout" default:"5s" env:"SKIFF_SFTP_DB_TIMEOUT" help:"Deadline of each database call on the SFTP path (logins, the per-operation access check, host keys, shared folders, key use); a password login may also wait out its throttling pause."`
	DBGrace       time.Duration `name:"sftp-db-grace" default:"60s" env:"SKIFF_SFTP_DB_GRACE" help:"How long open SFTP sessions keep their last known rights while the database does not answer; past it they end. Revocations apply as soon as it answers again."`
	SharesTTL     time.Duration `name:"sftp-shares-ttl" default:"1s" hidden:"" env:"SKIFF_SFTP_SHARES_TTL" help:"How long an open SFTP session trusts its copy of the user's shared folders when no notification says they changed (tests make it long, to show the notifications at work)."`
	TrialLicences int           `name:"trial-licences" default:"5" env:"SKIFF_TRIAL_LICENCES" help:"SFTP licences during a trial."`
	SessionsEvery time.Duration `name:"sftp-sessions-refresh" default:"2s" env:"SKIFF_SFTP_SESSIONS_REFRESH" help:"How often this node refreshes its live SFTP sessions' bytes and operation in the database (logins and logouts are published at once)."`
	SessionsTTL   time.Duration `name:"sftp-sessions-ttl" default:"10s" env:"SKIFF_SFTP_SESSIONS_TTL" help:"How long a node's live SFTP sessions stay listed after its last refresh: a node that stops drops out of account.sftpSessions after this. At least twice --sftp-sessions-refresh."`

	Resources SFTPResourceFlags `embed:""`
}

// SFTPResourceFlags cap what SFTP clients hold: logged-in connections,
// channels, open handles (each a file descriptor) and the memory of the
// replies queued for them. Every cap is a count of at least one: zero and
// negative values are refused at start-up rather than read as "none" or
// "unlimited".
type SFTPResourceFlags struct {
	ConnsPerUser       int   `name:"sftp-max-connections-per-user" default:"64" env:"SKIFF_SFTP_MAX_CONNECTIONS_PER_USER" help:"Logged-in SFTP connections (sessions) of one user; one more login is refused with a message."`
	ConnsPerAccount    int   `name:"sftp-max-connections-per-account" default:"1000" env:"SKIFF_SFTP_MAX_CONNECTIONS_PER_ACCOUNT" help:"Logged-in SFTP connections (sessions) of all the users of one account."`
	ChannelsPerUser    int   `name:"sftp-max-channels-per-user" default:"100" env:"SKIFF_SFTP_MAX_CHANNELS_PER_USER" help:"Session channels one user has open over all their connections; one more is refused."`
	ChannelsPerAccount int   `name:"sftp-max-channels-per-account" default:"1000" env:"SKIFF_SFTP_MAX_CHANNELS_PER_ACCOUNT" help:"Session channels the users of one account have open."`
	Channels           int   `name:"sftp-max-channels" default:"20000" env:"SKIFF_SFTP_MAX_CHANNELS" help:"Session channels open on the server."`
	HandlesPerConn     int   `name:"sftp-max-handles-per-connection" default:"1024" env:"SKIFF_SFTP_MAX_HANDLES_PER_CONNECTION" help:"Open files and directory listings on one SFTP connection; one more open fails with \"too many open files\"."`
	HandlesPerUser     int   `name:"sftp-max-handles-per-user" default:"2048" env:"SKIFF_SFTP_MAX_HANDLES_PER_USER" help:"Open files and directory listings of one user over all their connections."`
	HandlesPerAccount  int   `name:"sftp-max-handles-per-account" default:"8192" env:"SKIFF_SFTP_MAX_HANDLES_PER_ACCOUNT" help:"Open files and directory listings of all the users of one account."`
	Handles            int   `name:"sftp-max-handles" default:"0" env:"SKIFF_SFTP_MAX_HANDLES" help:"Open files and directory listings on the server; 0 (default): the open file limit less --fd-reserve. A larger value is refused."`
	FDReserve          int   `name:"fd-reserve" default:"0" env:"SKIFF_FD_RESERVE" help:"File descriptors kept from SFTP for the listeners, PostgreSQL and the API; 0 (default): --http-max-connections + --database-max-connections + 130 (listeners, notification connections, logs, mail)."`
	ReplyMemory        int64 `name:"sftp-reply-memory" default:"268435456" env:"SKIFF_SFTP_REPLY_MEMORY" help:"Bytes of SFTP replies queued for clients, whole server (at least 1 MiB); a connection over its share or the budget stops being read until its replies drain."`
	ReplyMemoryPerConn int64 `name:"sftp-reply-memory-per-connection" default:"8388608" env:"SKIFF_SFTP_REPLY_MEMORY_PER_CONNECTION" help:"Bytes of SFTP replies one connection may have queued (at least 512 KiB, at most --sftp-reply-memory)."`
}

// Smallest reply budgets: two of the largest replies per connection (one is
// always allowed, so less would bound nothing), and a process budget of a
// few connections.
const (
	minReplyMemoryPerConn = 512 << 10
	minReplyMemory        = 1 << 20
)

// check refuses counts below one and reply budgets too small to mean
// anything, naming the flag.
func (f SFTPResourceFlags) check() error {
	for _, c := range []struct {
		flag string
		v    int
	}{
		{"--sftp-max-connections-per-user", f.ConnsPerUser},
		{"--sftp-max-connections-per-account", f.ConnsPerAccount},
		{"--sftp-max-channels-per-user", f.ChannelsPerUser},
		{"--sftp-max-channels-per-account", f.ChannelsPerAccount},
		{"--sftp-max-channels", f.Channels},
		{"--sftp-max-handles-per-connection", f.HandlesPerConn},
		{"--sftp-max-handles-per-user", f.HandlesPerUser},
		{"--sftp-max-handles-per-account", f.HandlesPerAccount},
	} {
		if c.v < 1 {
			return flagError(c.flag, "%d is not a count of at least 1", c.v)
		}
	}
	switch {
	case f.Handles < 0:
		return flagError("--sftp-max-handles", "%d is negative (0 derives it from the open file limit)", f.Handles)
	case f.FDReserve < 0:
		return flagError("--fd-reserve", "%d is negative (0 derives it from the HTTP and database connection caps)", f.FDReserve)
	case f.ReplyMemory < minReplyMemory:
		return flagError("--sftp-reply-memory", "%d bytes is below the smallest budget, %d (1 MiB)", f.ReplyMemory, minReplyMemory)
	case f.ReplyMemoryPerConn < minReplyMemoryPerConn || f.ReplyMemoryPerConn > f.ReplyMemory:
		return flagError("--sftp-reply-memory-per-connection", "%d bytes is not between %d (512 KiB) and --sftp-reply-memory (%d)",
			f.ReplyMemoryPerConn, minReplyMemoryPerConn, f.ReplyMemory)
	}
	return nil
}

// handleCap is the server-wide cap on open handles: --sftp-max-handles, or
// what the open file limit leaves once the reserve is set aside. It refuses
// a cap the limit cannot honour.
func (f SFTPResourceFlags) handleCap(fileLimit uint64, reserve int) (int, error) {
	avail := int64(min(fileLimit, 1<<40)) - int64(reserve)
	switch {
	case f.Handles > 0 && int64(f.Handles) > avail:
		return 0, flagError("--sftp-max-handles", "%d is more than the open file limit (%d) leaves after --fd-reserve (%d): %d",
			f.Handles, fileLimit, reserve, max(avail, 0))
	case f.Handles > 0:
		return f.Handles, nil
	case avail < 1:
		return 0, fmt.Errorf("the open file limit (%d; raise it with ulimit -Hn or LimitNOFILE) leaves no descriptor for SFTP open files after --fd-reserve (%d)",
			fileLimit, reserve)
	}
	return int(min(avail, 1<<30)), nil
}

// handleCaps are the open handle caps, with the server-wide one.
func (f SFTPResourceFlags) handleCaps(process int) vfs.Caps {
	return vfs.Caps{PerConnection: f.HandlesPerConn, PerUser: f.HandlesPerUser, PerAccount: f.HandlesPerAccount, PerProcess: process}
}

// DedicatedIPFlags configure the addresses support can give accounts.
type DedicatedIPFlags struct {
	Pool     []string      `name:"dedicated-ip-pool" env:"SKIFF_DEDICATED_IP_POOL" help:"Addresses this deployment owns for accounts' dedicated IPs (IPs or CIDRs, comma-separated). SFTP connections to them must reach Skiff: listen on them (or 0.0.0.0), or receive them through a PROXY load balancer."`
	Cooldown time.Duration `name:"dedicated-ip-cooldown" default:"720h" env:"SKIFF_DEDICATED_IP_COOLDOWN" help:"How long a released dedicated IP waits before another account can have it (the account that released it may take it back at once)."`
}

// limits checks the limit flags. Zero and negative values are refused
// where the server would read them as "the default" or "no limit": an
// operator who types 0 auth tries means none, not six, and never unlimited.
func (f SFTPFlags) limits() (sftp.Limits, error) {
	switch {
	case f.Handshake <= 0:
		return sftp.Limits{}, flagError("--sftp-handshake-timeout", "%s is not a duration above zero", f.Handshake)
	case f.MaxAuthTries < 1 || f.MaxAuthTries > 100:
		return sftp.Limits{}, flagError("--sftp-max-auth-tries", "%d is not between 1 and 100", f.MaxAuthTries)
	case f.MaxSessions < 1 || f.MaxSessions > 1000:
		return sftp.Limits{}, flagError("--sftp-max-sessions-per-connection", "%d is not between 1 and 1000", f.MaxSessions)
	case f.DBTimeout < 0:
		return sftp.Limits{}, flagError("--sftp-db-timeout", "%s is negative", f.DBTimeout)
	case f.DBGrace < 0:
		return sftp.Limits{}, flagError("--sftp-db-grace", "%s is negative", f.DBGrace)
	case f.SharesTTL < 0:
		return sftp.Limits{}, flagError("--sftp-shares-ttl", "%s is negative", f.SharesTTL)
	case f.SessionsEvery <= 0:
		return sftp.Limits{}, flagError("--sftp-sessions-refresh", "%s is not a duration above zero", f.SessionsEvery)
	case f.SessionsTTL < 2*f.SessionsEvery:
		return sftp.Limits{}, flagError("--sftp-sessions-ttl", "%s is less than twice --sftp-sessions-refresh (%s)", f.SessionsTTL, f.SessionsEvery)
	}
	if err := f.Resources.check(); err != nil {
		return sftp.Limits{}, err
	}
	r := f.Resources
	return sftp.Limits{
		MaxChannelsPerUser:       r.ChannelsPerUser,
		MaxChannelsPerAccount:    r.ChannelsPerAccount,
		MaxChannels:              r.Channels,
		MaxConnectionsPerUser:    r.ConnsPerUser,
		MaxConnectionsPerAccount: r.ConnsPerAccount,
		HandshakeTimeout:         f.Handshake,
		IdleTimeout:              f.IdleTimeout,
		MaxAuthTries:             f.MaxAuthTries,
		MaxConnections:           f.MaxConns,
		MaxConnectionsPerAddress: f.MaxConnsPerIP,
		MaxSessionsPerConnection: f.MaxSessions,
	}, nil
}

// config checks the flags and turns them into the server's configuration,
// without the backend.
func (f SFTPFlags) config(log *slog.Logger) (sftp.Config, error) {
	addrs := splitList(f.Addrs)
	if len(addrs) == 0 {
		return sftp.Config{}, flagError("--sftp-addr", "give at least one address")
	}
	if _, _, err := publicEndpoint(addrs[0], f.Host, f.Port); err != nil {
		return sftp.Config{}, err
	}
	limits, err := f.limits()
	if err != nil {
		return sftp.Config{}, err
	}
	trusted, err := parsePrefixes("--proxy-trusted", splitList(f.ProxyTrusted))
	if err != nil {
		return sftp.Config{}, err
	}
	return sftp.Config{
		ListenAddresses:    addrs,
		Logger:             log,
		TrustedProxies:     trusted,
		RequireProxyHeader: f.ProxyRequired,
		Ciphers:            splitList(f.Ciphers),
		MACs:               strictMACs(f.StrictMACs),
		Limits:             limits,
	}, nil
}

// startSFTP starts the SFTP server in bg, with the directory of logins that
// routes by dedicated IP, and tells svc where users connect.
func (c *ServeCmd) startSFTP(ctx context.Context, log *slog.Logger, d *database, svc *domain.Domain, store storage.Storage, rec sftp.ActivityLog, bg *background, m *metrics) (*sftp.Server, error) {
	clientLog := sftp.SafeLogger(log) // clients' strings clipped, identical lines rate-limited
	cfg, err := c.SFTP.config(clientLog)
	if err != nil {
		return nil, err
	}
	dedicated, err := c.DedicatedIPs.config()
	if err != nil {
		return nil, err
	}
	dir, err := c.HostKeys.loadDirectory(ctx, log, d.DB, svc)
	if err != nil {
		return nil, err
	}
	dedicated.Changed = dir.DedicatedIPsChanged
	// Sessions list their project folders through the service, so they ask
	// the same policy enforcer as GraphQL (svc.Policy).
	backend := &sftp.TenantBackend{Directory: dir, Storage: store, Shares: svc.Sharing, Quotas: svc.Storage, Logger: clientLog,
		DBTimeout: c.SFTP.DBTimeout, Grace: c.SFTP.DBGrace, SharesTTL: c.SFTP.SharesTTL, Activity: rec}
	// The enforcer (newService's, on the node's notification connection)
	// tells the sessions of every change to an account's rights, made on
	// this node or another: a share removed, a preset lowered, a group
	// change or a folder deleted reaches open sessions at once.
	if e, ok := svc.Sharing.Policy.(*policy.Enforcer); ok {
		e.OnChange(backend.SharesChanged)
	}
	if backend.Handles, backend.Replies, err = c.sftpResources(log); err != nil {
		return nil, err
	}
	cfg.Metrics, backend.Metrics = m.sftp, m.sftp.VFSMetrics()
	m.watchSFTPResources(backend.Handles, backend.Replies)
	cfg.Directory, cfg.HostKeys, cfg.Sessions, cfg.Activity = backend, backend, backend, rec
	srv, err := sftp.NewServer(cfg)
	if err != nil {
		return nil, err
	}
	// A release, or the address going to another account, on any node ends
	// the sessions logged in through it on this one.
	dir.OnDedicatedIPsChange(func() { srv.DedicatedIPsChanged() })
	if err := srv.Listen(ctx); err != nil {
		return nil, listenError("--sftp-addr", strings.Join(cfg.ListenAddresses, ","), err)
	}
	// The public endpoint defaults to where we really listen (port 0 picks one).
	host, port, err := publicEndpoint(srv.Addrs()[0].String(), c.SFTP.Host, c.SFTP.Port)
	if err != nil {
		srv.Shutdown(ctx)
		return nil, err
	}
	svc.SFTP.Config.Host, svc.SFTP.Config.Port, svc.SFTP.Config.TrialLicences = host, port, c.SFTP.TrialLicences
	svc.Sessions = sftp.SessionEnder{Server: srv}
	svc.DedicatedIPs.Config = dedicated
	logDedicatedIPs(log, dedicated.Pool, srv.Addrs(), len(cfg.TrustedProxies) > 0)
	bg.run(srv.ListenAndServe)
	bg.run(func(ctx context.Context) error { return listenDedicatedIPs(ctx, dir, d.Notifications, log) })
	bg.run(func(ctx context.Context) error { return listenAccess(ctx, backend, d.Notifications, log) })
	c.publishSessions(srv, d, svc, bg, log)
	return srv, nil
}

// publishSessions keeps this node's live SFTP sessions in the database,
// where every node lists them, and ends those whose end was asked for.
func (c *ServeCmd) publishSessions(srv *sftp.Server, d *database, svc *domain.Domain, bg *background, log *slog.Logger) {
	node := &sftpsessions.Node{DB: d.DB, ID: uuid.NewString(), Name: sessionsNodeName(c.Activity.NodeName), TTL: c.SFTP.SessionsTTL}
	events := svc.LiveSessions.Events
	bg.run(func(ctx context.Context) error {
		if err := events.ListenOn(ctx, d.Notifications, log); err != nil && ctx.Err() == nil {
			log.Error("SFTP session notifications stopped; sessions asked to end end at their node's next refresh, and subscriptions hear nothing", "err", err)
		}
		return nil
	})
	pub := &sftp.SessionPublisher{Server: srv, Node: node, Events: events, Every: c.SFTP.SessionsEvery, Log: log}
	bg.run(pub.Run)
}

// sessionsNodeName is the name shown with the node's live sessions:
// --node-name, or the host name, within the 128 bytes a node name may take.
func sessionsNodeName(flag string) string {
	name := flag
	if name == "" {
		name, _ = os.Hostname()
	}
	if name == "" {
		name = "skiff"
	}
	return strings.ToValidUTF8(name[:min(len(name), 128)], "")
}

// fileLimits raises the open file limit to the hard limit and derives from
// it the server-wide cap on SFTP open handles; validate calls it so that a
// limit too small stops start-up before anything else starts.
func (c *ServeCmd) fileLimits() (soft, hard uint64, reserve, handles int, err error) {
	r := c.SFTP.Resources
	reserve = r.FDReserve
	if reserve == 0 {
		reserve = max(c.HTTP.MaxConns, 0) + max(c.Runtime.MaxConns, 0) + 2 + 128
	}
	soft, hard, err = raiseFileLimit()
	if err != nil && r.Handles == 0 {
		return 0, 0, 0, 0, flagError("--sftp-max-handles", "give it, since %v", err)
	}
	if err != nil {
		soft = 1 << 40 // unknown: the operator's cap stands
	}
	handles, err = r.handleCap(soft, reserve)
	return soft, hard, reserve, handles, err
}

// sftpResources are the sessions' handle counter and reply budget; it logs
// the open file limits they derive from.
func (c *ServeCmd) sftpResources(log *slog.Logger) (*vfs.Counter, *vfs.ReplyBudget, error) {
	soft, hard, reserve, process, err := c.fileLimits()
	if err != nil {
		return nil, nil, err
	}
	r := c.SFTP.Resources
	log.Info("open file limits", "soft", soft, "hard", hard, "reserve", reserve, "sftp_max_handles", process,
		"sftp_reply_memory", r.ReplyMemory, "sftp_reply_memory_per_connection", r.ReplyMemoryPerConn)
	if conns := c.SFTP.MaxConns; conns > 0 && uint64(reserve+conns) > soft {
		// Each connection's socket is a descriptor too, outside the
		// handle cap: connections alone could then take the reserve.
		log.Warn("SFTP connections alone could use up the file descriptors kept for the API and PostgreSQL: raise the hard open file limit or lower --sftp-max-connections",
			"soft", soft, "reserve", reserve, "sftp_max_connections", conns)
	}
	return vfs.NewCounter("open files", r.handleCaps(process)), vfs.NewReplyBudget(r.ReplyMemory, r.ReplyMemoryPerConn), nil
}

// listenDedicatedIPs hears other nodes' dedicated IP changes. Losing the
// notifications is no failure: the directory then re-reads every second.
func listenDedicatedIPs(ctx context.Context, dir *sftplogin.Directory, notifications *pglisten.Listener, log *slog.Logger) error {
	if err := dir.ListenOn(ctx, notifications, log); err != nil && ctx.Err() == nil {
		log.Error("dedicated IP change notifications stopped; the dedicated IPs are re-read every second instead", "err", err)
	}
	return nil
}

// listenAccess ends this node's sessions whose access another node
// withdrew. Losing the notifications is no failure: sessions then see
// revocations at their next operation.
func listenAccess(ctx context.Context, backend *sftp.TenantBackend, notifications *pglisten.Listener, log *slog.Logger) error {
	if err := sftplogin.ListenAccessOn(ctx, notifications, backend.AccessChanges(), log); err != nil && ctx.Err() == nil {
		log.Error("SFTP access change notifications stopped; open sessions see revocations at their next operation instead", "err", err)
	}
	return nil
}

func addrStrings(addrs []net.Addr) []string {
	var out []string
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}

// startCPUProfile starts writing a CPU profile to path, if set, and returns
// what ends it.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
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
		return "", 0, flagError("--sftp-addr", "%q: %v", listen, err)
	}
	if host == "" {
		host = h
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
	}
	if port == 0 {
		if port, err = strconv.Atoi(p); err != nil {
			return "", 0, flagError("--sftp-addr", "%q: bad port", listen)
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
				return nil, flagError(flag, "%q is not an address or CIDR", v)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, flagError(flag, "%q is not an address or CIDR", v)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// config reads the dedicated IP pool and its cool-down.
func (f DedicatedIPFlags) config() (sftplogin.DedicatedIPConfig, error) {
	prefixes, err := parsePrefixes("--dedicated-ip-pool", splitList(f.Pool))
	if err != nil {
		return sftplogin.DedicatedIPConfig{}, err
	}
	pool, err := sftplogin.NewDedicatedIPPool(prefixes)
	if err != nil {
		return sftplogin.DedicatedIPConfig{}, flagError("--dedicated-ip-pool", "%s", strings.TrimPrefix(err.Error(), "dedicated IP pool: "))
	}
	if f.Cooldown < 0 {
		return sftplogin.DedicatedIPConfig{}, flagError("--dedicated-ip-cooldown", "%s is negative", f.Cooldown)
	}
	return sftplogin.DedicatedIPConfig{Pool: pool, Cooldown: f.Cooldown}, nil
}

// logDedicatedIPs says how big the pool is and warns about addresses no
// connection can reach: Skiff listens neither on them nor on a wildcard
// address, and no load balancer may forward them with a PROXY header. Such
// an address can still be provisioned, but its account's users would find
// nothing there.
func logDedicatedIPs(log *slog.Logger, pool *sftplogin.DedicatedIPPool, listening []net.Addr, proxied bool) {
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

// startDemoTrial puts the demo account in TRIAL so the tour works at once,
// and returns the SFTP login the owner got with it.
func startDemoTrial(ctx context.Context, svc *domain.Domain, a *tenant.Account, owner *tenant.User) (string, error) {
	octx := tenant.WithPrincipal(ctx, &tenant.Principal{Kind: tenant.KindUser, ID: owner.ID, AccountID: a.ID, Role: tenant.RoleOwner, Name: owner.Name, Email: owner.Email})
	if _, err := svc.SFTP.StartSFTPTrial(octx); err != nil {
		return "", err
	}
	c, err := svc.SFTP.SFTPCredentials(octx, owner.ID)
	if err != nil {
		return "", err
	}
	if c == nil {
		return "", errors.New("the demo owner got no SFTP login with the trial")
	}
	return c.Login, nil
}
