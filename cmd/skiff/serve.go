package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/internal/pglisten"
	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/sftp"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/domain"
)

// ServeCmd runs Skiff. Its flags are grouped by the subsystem they
// configure (`skiff serve --help` shows the groups), and Run starts the
// subsystems one function each, in this order: database, storage, mail,
// SFTP, reminders, HTTP.
type ServeCmd struct {
	DatabaseFlags `group:"Database"`
	Runtime       RuntimeDatabaseFlags `embed:"" group:"Database"`
	Migrate       MigrateFlags         `embed:"" group:"Database"`

	HTTP         HTTPFlags        `embed:"" group:"GraphQL API"`
	SFTP         SFTPFlags        `embed:"" group:"SFTP"`
	HostKeys     HostKeyFlags     `embed:"" group:"SFTP"`
	DedicatedIPs DedicatedIPFlags `embed:"" group:"Dedicated IPs"`
	Storage      StorageFlags     `embed:"" group:"Storage"`
	Mail         MailFlags        `embed:"" group:"Mail"`
	Metrics      MetricsFlags     `embed:"" group:"Metrics"`
	Activity     ActivityFlags    `embed:"" group:"Activity log"`

	Demo          bool          `name:"demo" default:"true" negatable:"" env:"SKIFF_DEMO" help:"On first start with the private PostgreSQL, create a demo account and a staff login."`
	ShutdownGrace time.Duration `name:"shutdown-grace" default:"20s" env:"SKIFF_SHUTDOWN_GRACE" help:"How long SIGTERM waits for API requests and SFTP transfers under way to finish; idle SFTP sessions close at once, transfers still open at the end are cut (and logged). 0 cuts them at once."`
	CPUProfile    string        `name:"cpu-profile" hidden:"" env:"SKIFF_CPU_PROFILE" type:"path" help:"Write a CPU profile of the process to this file from start-up until it stops (for benchmarks)."`
	CgroupRoot    string        `name:"cgroup-root" hidden:"" env:"SKIFF_CGROUP_ROOT" type:"path" help:"Read the container's memory limit from proc/self/cgroup and sys/fs/cgroup under this directory instead of / (for tests)."`

	// ready, when set (by tests), is told where the servers listen once they do.
	ready func(httpURL string, sftpAddrs []string)
	life  *lifecycle // made by Run
	// jsonLog is set when logs are JSON: the start banner is then a log
	// line too.
	jsonLog bool
}

// Run serves until ctx is cancelled (SIGINT/SIGTERM), then shuts down gracefully.
func (c *ServeCmd) Run(ctx context.Context, log *slog.Logger) error {
	if err := c.validate(); err != nil {
		return err
	}
	releaseAddrs, err := c.probeListeners()
	if err != nil {
		return err
	}
	defer releaseAddrs()
	c.life = &lifecycle{}
	d, err := c.openServe(ctx, log)
	if err != nil {
		return err
	}
	defer d.Close()
	// One notification connection for the whole node, until the end. What
	// listens on it from here on ends with it, and Run waits for that
	// (Wait runs after stopListening), so that nothing logs after Run.
	lctx, stopListening := context.WithCancel(context.WithoutCancel(ctx))
	var listening sync.WaitGroup
	defer listening.Wait()
	defer stopListening()
	d.Notifications = pglisten.Start(lctx, d.URL, log)
	m := c.Metrics.newMetrics()
	m.watchDatabase(d.DB)
	svc, err := c.newService(lctx, log, d, &listening)
	if err != nil {
		return err
	}
	container := containerMemory(log, c.CgroupRoot)
	store, storeReady, closeStore, err := c.Storage.openMarked(ctx, log, d.DB, c.DataDir, container)
	if err != nil {
		return err
	}
	defer closeStore()
	c.limitMemory(log, container, store, d.Embedded)
	m.watchStore(store)
	mail, err := c.Mail.worker(log, d.DB, c.DataDir, d.Embedded)
	if err != nil {
		return err
	}
	mail.Metrics = m.notify
	stopProfile, err := startCPUProfile(c.CPUProfile)
	if err != nil {
		return err
	}
	defer stopProfile()

	// The background loops outlive ctx: SIGTERM lets transfers and mail
	// finish within the grace period; shutdown ends them.
	bg := newBackground(ctx, log)
	defer bg.cancel()
	// Metrics are served until the drain is over (bg.ctx), not only until
	// the signal. From here on serve binds its own listeners.
	releaseAddrs()
	if err := m.serve(bg.ctx, c.Metrics.Addr, log); err != nil {
		return err
	}
	bg.run(func(ctx context.Context) error { return m.lag.probe(ctx, d.DB) })
	recorder, err := c.Activity.start(svc, d.Notifications, log, bg)
	if err != nil {
		return err
	}
	defer closeRecorder(recorder, log) // after the SFTP server's drain
	sftpSrv, err := c.startSFTP(ctx, log, d, svc, store, recorder, bg, m)
	if err != nil {
		return err
	}
	bg.run(mail.Run)
	bg.run(func(ctx context.Context) error { return remindTrials(ctx, svc, log) })
	if err := c.Storage.startPurge(svc, store, bg); err != nil {
		return err
	}

	demo, err := c.demo(ctx, d, svc)
	if err != nil {
		return err
	}
	api, err := c.HTTP.start(log, d, svc, c.life.gate, storeReady, m.graph)
	if err != nil {
		return err
	}
	sftpAddrs := addrStrings(sftpSrv.Addrs())
	if c.jsonLog {
		logWelcome(log, api.base, api.playground, sftpAddrs, demo, c.DataDir)
	} else {
		printWelcome(api.base, api.playground, sftpAddrs, demo)
	}
	if c.ready != nil {
		c.ready(api.base, sftpAddrs)
	}
	return c.serveUntilDone(ctx, log, d, api, sftpSrv, bg)
}

// newService is the domain service with its permission enforcer. One
// enforcer answers every permission question, GraphQL's and SFTP's; it hears
// other nodes' changes through PostgreSQL notifications until ctx ends (the
// notification connection's context: through a shutdown's drain), in a
// goroutine that listening counts.
func (c *ServeCmd) newService(ctx context.Context, log *slog.Logger, d *database, listening *sync.WaitGroup) (*domain.Domain, error) {
	svc := domain.New(d.DB)
	svc.People.TokenTTL = c.HTTP.TokenTTL
	svc.People.AccessTokenTTL = c.HTTP.AccessTTL
	enforcer, err := policy.New(d.DB, policy.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	svc.Sharing.Policy = enforcer
	listening.Go(func() {
		if err := enforcer.ListenOn(ctx, d.Notifications); err != nil && ctx.Err() == nil {
			log.Error("policy change notifications stopped; permissions are re-read every second instead", "err", err)
		}
	})
	return svc, nil
}

// serveUntilDone waits for a signal or a server's failure, then lets SFTP
// transfers and GraphQL requests finish within the grace period.
func (c *ServeCmd) serveUntilDone(ctx context.Context, log *slog.Logger, d *database, api *httpServer, sftpSrv *sftp.Server, bg *background) error {
	select {
	case <-ctx.Done():
	case err := <-api.errc:
		return fmt.Errorf("GraphQL server: %w", err)
	case <-d.Died:
		return errors.New("the private PostgreSQL server stopped unexpectedly; see its log in the data folder (postgres/server.log)")
	}
	c.life.drain(log, c.ShutdownGrace, api, sftpSrv, bg)
	return nil
}

// background runs serve's long-lived loops (the SFTP server, the mail
// worker, reminders, notification listeners) until stop.
type background struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	log    *slog.Logger
}

// newBackground's loops keep running when ctx ends, until stop or cancel.
func newBackground(ctx context.Context, log *slog.Logger) *background {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &background{ctx: bctx, cancel: cancel, log: log}
}

// run starts fn; it logs the error fn ends with unless it was told to stop.
func (b *background) run(fn func(context.Context) error) {
	b.wg.Go(func() {
		if err := fn(b.ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, sftp.ErrServerClosed) {
			b.log.Error("background service stopped", "err", err)
		}
	})
}

// stop ends the loops and waits for them until ctx ends.
func (b *background) stop(ctx context.Context) {
	b.cancel()
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
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

// demo creates the demo account on the private PostgreSQL's first start
// (with --demo) and returns its logins; nil with another database.
func (c *ServeCmd) demo(ctx context.Context, d *database, svc *domain.Domain) (*demoLogins, error) {
	if !d.Embedded || !c.Demo {
		return nil, nil
	}
	dl, err := ensureDemo(ctx, svc, c.DataDir)
	if err != nil {
		return nil, fmt.Errorf("demo account: %w", err)
	}
	return dl, nil
}

// demoLogins are the demo account's credentials, kept in the data folder so
// every start can print them again.
type demoLogins struct {
	OwnerEmail, OwnerPassword string
	StaffEmail, StaffPassword string
	// OwnerSFTPLogin is the owner's SFTP login ID, theirs since the demo's
	// trial started (with the owner's password); empty in a demo file
	// written before owners got SFTP with the trial.
	OwnerSFTPLogin string
}

const demoFile = "demo-logins.txt"

// ensureDemo creates the demo account and a staff login on the first start
// (an empty database) and returns their logins; later starts read them back.
func ensureDemo(ctx context.Context, svc *domain.Domain, dataDir string) (*demoLogins, error) {
	path := filepath.Join(dataDir, demoFile)
	if dl, err := readDemoLogins(path); err == nil {
		return dl, nil
	}
	var n int
	if err := svc.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
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
	if _, err := svc.People.CreateStaff(sys, dl.StaffEmail, "Skiff Support", dl.StaffPassword); err != nil {
		return nil, err
	}
	a, owner, err := svc.Accounts.CreateAccount(sys, account.CreateAccountInput{
		Name: "Demo Company", OwnerEmail: dl.OwnerEmail, OwnerName: "Demo Owner", OwnerPassword: dl.OwnerPassword,
	})
	if err != nil {
		return nil, err
	}
	if dl.OwnerSFTPLogin, err = startDemoTrial(ctx, svc, a, owner); err != nil {
		return nil, err
	}
	content := fmt.Sprintf("owner %s %s\nstaff %s %s\nsftp %s\n", dl.OwnerEmail, dl.OwnerPassword, dl.StaffEmail, dl.StaffPassword, dl.OwnerSFTPLogin)
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
	lines := strings.SplitAfterN(string(b), "\n", 3)
	if len(lines) < 2 {
		return nil, fmt.Errorf("%s: too short", path)
	}
	if _, err := fmt.Sscanf(lines[0]+lines[1], "owner %s %s\nstaff %s %s\n", &dl.OwnerEmail, &dl.OwnerPassword, &dl.StaffEmail, &dl.StaffPassword); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(lines) == 3 && lines[2] != "" { // an older file has no SFTP line
		if _, err := fmt.Sscanf(lines[2], "sftp %s\n", &dl.OwnerSFTPLogin); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return &dl, nil
}

func randomPassword() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// logWelcome is the start banner as a log line, for JSON logs. The demo's
// passwords stay in their file.
func logWelcome(log *slog.Logger, base string, playground bool, sftpAddrs []string, demo *demoLogins, dataDir string) {
	attrs := []any{"graphql", base + "/graphql", "sftp", sftpAddrs}
	if playground {
		attrs = append(attrs, "playground", base+"/playground")
	}
	if demo != nil {
		attrs = append(attrs, "demo_owner", demo.OwnerEmail, "demo_staff", demo.StaffEmail,
			"demo_logins_file", filepath.Join(dataDir, demoFile))
	}
	log.Info("Skiff is running", attrs...)
}

func printWelcome(base string, playground bool, sftpAddrs []string, demo *demoLogins) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nSkiff is running.\n")
	fmt.Fprintf(&b, "  GraphQL:    %s/graphql\n", base)
	if playground {
		fmt.Fprintf(&b, "  Playground: %s/playground\n", base)
	}
	for _, a := range sftpAddrs {
		fmt.Fprintf(&b, "  SFTP:       %s\n", a)
	}
	if demo != nil {
		fmt.Fprintf(&b, "\nDemo account owner: %s  password: %s\n", demo.OwnerEmail, demo.OwnerPassword)
		fmt.Fprintf(&b, "Support staff:      %s  password: %s\n", demo.StaffEmail, demo.StaffPassword)
		if demo.OwnerSFTPLogin != "" && len(sftpAddrs) > 0 {
			host, port, _ := net.SplitHostPort(sftpAddrs[0])
			fmt.Fprintf(&b, "Owner's SFTP:       sftp -P %s %s@%s  (the owner's password; also in the trial email in mail/)\n", port, demo.OwnerSFTPLogin, host)
		}
		fmt.Fprintf(&b, "\nLog in:\n  curl -s %s/graphql -H 'Content-Type: application/json' \\\n", base)
		fmt.Fprintf(&b, "    -d '{\"query\":\"mutation { login(input: {email: \\\"%s\\\", password: \\\"%s\\\"}) { token userErrors { message } } }\"}'\n", demo.OwnerEmail, demo.OwnerPassword)
	}
	fmt.Fprintln(os.Stdout, b.String())
}
