package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// A listen address, network list, cipher or public URL that cannot work
// stops serve before anything starts, with the configuration exit code
// and a last line naming the flag and its variable, as OPERATIONS.md
// promises: no private PostgreSQL, no migration, no demo data first. So
// does an address another program holds, whichever listener it is for.
func TestServeChecksAddressesBeforeStarting(t *testing.T) {
	t.Parallel()
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	taken := held.Addr().String()
	for _, c := range []struct {
		flag string
		set  func(*ServeCmd)
		want string
	}{
		{"--http-addr", func(c *ServeCmd) { c.HTTP.Addr = "nonsense" }, `"nonsense" is not host:port`},
		{"--http-addr", func(c *ServeCmd) { c.HTTP.Addr = "127.0.0.1:99999" }, "is not a port"},
		{"--http-addr", func(c *ServeCmd) { c.HTTP.Addr = taken }, "cannot listen on " + taken},
		{"--sftp-addr", func(c *ServeCmd) { c.SFTP.Addrs = []string{"nonsense"} }, `"nonsense" is not host:port`},
		{"--sftp-addr", func(c *ServeCmd) { c.SFTP.Addrs = []string{"127.0.0.1:0", "127.0.0.1:x"} }, `"x" is not a port`},
		{"--sftp-addr", func(c *ServeCmd) { c.SFTP.Addrs = []string{"127.0.0.1:0", taken} }, "cannot listen on " + taken},
		{"--metrics-addr", func(c *ServeCmd) { c.Metrics.Addr = "nonsense" }, `"nonsense" is not host:port`},
		{"--metrics-addr", func(c *ServeCmd) { c.Metrics.Addr = taken }, "cannot listen on " + taken},
		{"--http-trusted-proxies", func(c *ServeCmd) { c.HTTP.TrustedProxies = []string{"garbage"} }, `"garbage" is not an address or CIDR`},
		{"--proxy-trusted", func(c *ServeCmd) { c.SFTP.ProxyTrusted = []string{"10.0.0.0/33"} }, "is not an address or CIDR"},
		{"--dedicated-ip-pool", func(c *ServeCmd) { c.DedicatedIPs.Pool = []string{"garbage"} }, `"garbage" is not an address or CIDR`},
		{"--dedicated-ip-pool", func(c *ServeCmd) { c.DedicatedIPs.Pool = []string{"10.0.0.0/8"} }, "more than"},
		{"--public-url", func(c *ServeCmd) { c.Mail.PublicURL = "garbage" }, "want an absolute http or https URL"},
		{"--sftp-ciphers", func(c *ServeCmd) { c.SFTP.Ciphers = []string{"aes128-ctr", "rot13"} }, `"rot13" is not a cipher`},
		{"--sftp-port", func(c *ServeCmd) { c.SFTP.Port = 70000 }, "is not a port"},
		{"--sftp-max-auth-tries", func(c *ServeCmd) { c.SFTP.MaxAuthTries = 0 }, "not between 1 and 100"},
		{"--sftp-sessions-ttl", func(c *ServeCmd) { c.SFTP.SessionsTTL = c.SFTP.SessionsEvery }, "less than twice"},
		{"--max-subscriptions-per-token", func(c *ServeCmd) { c.HTTP.MaxSubs = 0 }, "is below 1"},
		{"--activity-retention", func(c *ServeCmd) { c.Activity.Retention = -1 }, "is negative"},
		{"--upload-digest-interval", func(c *ServeCmd) { c.Activity.DigestInterval = -1 }, "is negative"},
		{"--storage-reconcile-every", func(c *ServeCmd) { c.Storage.ReconcileEvery = -1 }, "is negative"},
	} {
		cmd := testServeCmd(t, newDataDir(t))
		c.set(cmd)
		err := serveFails(t, cmd)
		named := c.flag + " (" + flagVariable(c.flag) + "): "
		if exitCode(err) != exitConfig || !strings.Contains(err.Error(), named) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: exit %d, %v; want exit %d and %q ... %q", c.flag, exitCode(err), err, exitConfig, named, c.want)
		}
		if _, err := os.Stat(cmd.DataDir); err == nil {
			t.Errorf("%s: serve made its data folder (a private PostgreSQL?) before refusing the setting", c.flag)
		}
	}
}

// A metrics address taken after the start-up check is refused the same
// way when the metrics server binds it.
func TestMetricsAddressInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	f := MetricsFlags{Addr: held.Addr().String()}
	err = f.newMetrics().serve(context.Background(), f.Addr, slog.New(slog.DiscardHandler))
	if exitCode(err) != exitConfig || !strings.Contains(err.Error(), "--metrics-addr (SKIFF_METRICS_ADDR): cannot listen on "+f.Addr) {
		t.Errorf("exit %d, %v", exitCode(err), err)
	}
}

// flagError names a flag's variable by the flag's name: every serve flag's
// variable must be that name, or its errors would name the wrong one.
func TestFlagVariablesFollowTheirNames(t *testing.T) {
	for _, f := range serveModel(t).Flags {
		if len(f.Envs) != 1 || f.Envs[0] != flagVariable("--"+f.Name) {
			t.Errorf("--%s: variable %v, flagError would name %s", f.Name, f.Envs, flagVariable("--"+f.Name))
		}
	}
}

// serve holds its listen addresses from its first check until its own
// listeners bind: while the private PostgreSQL starts (it picks a free port)
// and the schema migrates, nothing else can take them. Released early, the
// metrics address was once taken by the private PostgreSQL itself.
func TestServeHoldsItsAddressesWhileStarting(t *testing.T) {
	t.Parallel()
	metricsAddr := freeAddr(t)
	cmd := testServeCmd(t, newDataDir(t))
	cmd.Metrics.Addr = metricsAddr
	ready := make(chan struct{})
	cmd.ready = func(string, []string) { close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.Run(ctx, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(50 * time.Millisecond) // past the first check
	for {
		select {
		case <-ready:
			return
		case err := <-done:
			t.Fatalf("serve stopped: %v", err)
		default:
		}
		if ln, err := net.Listen("tcp", metricsAddr); err == nil {
			ln.Close()
			t.Fatal("the metrics address was free while serve started: the private PostgreSQL could take it")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
