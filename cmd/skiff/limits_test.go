package main

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

// parseServe parses a serve command line as main does, without running it.
func parseServe(t *testing.T, args ...string) *ServeCmd {
	t.Helper()
	var cli CLI
	p, err := kong.New(&cli, kong.Name("skiff"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse(append([]string{"serve"}, args...)); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return &cli.Serve
}

// The SFTP limit flags reach the server, with the documented defaults, and
// values the server would read as "default" or "unlimited" are refused with
// the flag's name.
func TestSFTPLimitFlags(t *testing.T) {
	l, err := parseServe(t).SFTP.limits()
	if err != nil {
		t.Fatal(err)
	}
	if l.HandshakeTimeout != 30*time.Second || l.MaxAuthTries != 6 || l.MaxSessionsPerConnection != 10 ||
		l.IdleTimeout != 15*time.Minute || l.MaxConnections != 10000 || l.MaxConnectionsPerAddress != 50 {
		t.Fatalf("defaults: %+v", l)
	}

	l, err = parseServe(t, "--sftp-handshake-timeout", "10s", "--sftp-max-auth-tries", "3",
		"--sftp-max-sessions-per-connection", "2").SFTP.limits()
	if err != nil {
		t.Fatal(err)
	}
	if l.HandshakeTimeout != 10*time.Second || l.MaxAuthTries != 3 || l.MaxSessionsPerConnection != 2 {
		t.Fatalf("set: %+v", l)
	}

	for _, bad := range [][]string{
		{"--sftp-handshake-timeout", "0s"},
		{"--sftp-handshake-timeout", "-5s"},
		{"--sftp-max-auth-tries", "0"},
		{"--sftp-max-auth-tries", "-1"},
		{"--sftp-max-auth-tries", "101"},
		{"--sftp-max-sessions-per-connection", "0"},
		{"--sftp-max-sessions-per-connection", "1001"},
		{"--sftp-db-timeout", "-1s"},
		{"--sftp-db-grace", "-1s"},
		{"--sftp-sessions-refresh", "0s"},
		{"--sftp-sessions-ttl", "3s"}, // less than twice the refresh
	} {
		_, err := parseServe(t, bad[0]+"="+bad[1]).SFTP.limits()
		if named := bad[0] + " (" + flagVariable(bad[0]) + "): "; err == nil || !strings.Contains(err.Error(), named) || exitCode(err) != exitConfig {
			t.Errorf("%v: got %v, want an error naming %s", bad, err, named)
		}
	}
}

// --email-retention defaults to the worker's 90 days, and the value given
// is what the worker gets.
func TestEmailRetentionFlag(t *testing.T) {
	if got := parseServe(t).Mail.Retention; got != 90*24*time.Hour {
		t.Errorf("default %v, want 90 days", got)
	}
	if got := parseServe(t, "--email-retention=0").Mail.Retention; got != 0 {
		t.Errorf("--email-retention=0 gave %v", got)
	}
}

// The SFTP resource flags reach the server and the sessions with their
// documented defaults; counts below one, negative derived values and reply
// budgets too small to bound anything are refused naming the flag.
func TestSFTPResourceFlags(t *testing.T) {
	cmd := parseServe(t)
	l, err := cmd.SFTP.limits()
	if err != nil {
		t.Fatal(err)
	}
	if l.MaxConnectionsPerUser != 64 || l.MaxConnectionsPerAccount != 1000 || l.MaxChannelsPerUser != 100 ||
		l.MaxChannelsPerAccount != 1000 || l.MaxChannels != 20000 {
		t.Fatalf("defaults: %+v", l)
	}
	r := cmd.SFTP.Resources
	if r.HandlesPerConn != 1024 || r.HandlesPerUser != 2048 || r.HandlesPerAccount != 8192 || r.Handles != 0 ||
		r.FDReserve != 0 || r.ReplyMemory != 256<<20 || r.ReplyMemoryPerConn != 8<<20 {
		t.Fatalf("defaults: %+v", r)
	}

	for _, bad := range [][]string{
		{"--sftp-max-connections-per-user", "0"},
		{"--sftp-max-connections-per-account", "-1"},
		{"--sftp-max-channels-per-user", "0"},
		{"--sftp-max-channels-per-account", "0"},
		{"--sftp-max-channels", "-5"},
		{"--sftp-max-handles-per-connection", "0"},
		{"--sftp-max-handles-per-user", "-1"},
		{"--sftp-max-handles-per-account", "0"},
		{"--sftp-max-handles", "-1"},
		{"--fd-reserve", "-1"},
		{"--sftp-reply-memory", "1000"},
		{"--sftp-reply-memory-per-connection", "1000"},
		{"--sftp-reply-memory-per-connection", "300000000"}, // more than the whole budget
	} {
		_, err := parseServe(t, bad[0]+"="+bad[1]).SFTP.limits()
		if named := bad[0] + " (" + flagVariable(bad[0]) + "): "; err == nil || !strings.Contains(err.Error(), named) || exitCode(err) != exitConfig {
			t.Errorf("%v: got %v, want an error naming %s", bad, err, named)
		}
	}
}

// The server-wide handle cap is what the open file limit leaves after the
// reserve; a cap the limit cannot honour is refused at start-up.
func TestSFTPHandleCapFromFileLimit(t *testing.T) {
	var r SFTPResourceFlags
	if got, err := r.handleCap(20000, 1162); err != nil || got != 18838 {
		t.Errorf("derived: %d, %v; want 18838", got, err)
	}
	if _, err := r.handleCap(1024, 1162); err == nil || !strings.Contains(err.Error(), "open file limit") {
		t.Errorf("a limit below the reserve: %v", err)
	}
	r.Handles = 500
	if got, err := r.handleCap(20000, 1162); err != nil || got != 500 {
		t.Errorf("given: %d, %v", got, err)
	}
	r.Handles = 19000
	if _, err := r.handleCap(20000, 1162); err == nil || !strings.Contains(err.Error(), "--sftp-max-handles") {
		t.Errorf("given above what the limit leaves: %v", err)
	}
}

// Start-up raises the soft descriptor limit to the hard one.
func TestRaiseFileLimit(t *testing.T) {
	soft, hard, err := raiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	if soft == 0 || soft > hard || runtime.GOOS == "linux" && soft != hard {
		t.Errorf("soft %d, hard %d", soft, hard)
	}
}

// A descriptor limit that leaves SFTP no open file stops start-up with
// the configuration exit code, before anything starts.
func TestServeRefusesAFileLimitTooSmall(t *testing.T) {
	err := parseServe(t, "--fd-reserve=1000000000000").validate()
	if err == nil || !strings.Contains(err.Error(), "open file limit") || exitCode(err) != exitConfig {
		t.Fatalf("validate: %v (exit %d), want the open file limit named, exit %d", err, exitCode(err), exitConfig)
	}
	if err := parseServe(t).validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

// Every limit flag refuses 0 and negative values, or gives 0 the meaning
// its help states, and refuses negative ones; the error names the flag and
// its variable.
func TestLimitFlagsRefuseNonsense(t *testing.T) {
	if err := parseServe(t).checkLimits(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, flag := range []string{
		"--max-body-bytes", "--max-complexity", "--max-depth", "--max-tokens", "--max-selections", "--max-fields",
		"--max-response-bytes", "--http-max-connections", "--http-max-requests-per-address",
		"--sftp-max-connections", "--sftp-max-connections-per-address", "--trial-licences",
	} {
		for _, v := range []string{"0", "-1"} {
			err := parseServe(t, flag+"="+v).checkLimits()
			if err == nil || !strings.Contains(err.Error(), flag+" (SKIFF_") || exitCode(err) != exitConfig {
				t.Errorf("%s=%s: %v", flag, v, err)
			}
		}
	}
	for _, flag := range []string{"--http-read-header-timeout", "--http-read-timeout", "--http-write-timeout",
		"--http-idle-timeout", "--token-ttl", "--access-token-ttl", "--sftp-idle-timeout"} {
		for _, v := range []string{"0s", "-1s"} {
			if err := parseServe(t, flag+"="+v).checkLimits(); err == nil || !strings.Contains(err.Error(), flag) {
				t.Errorf("%s=%s: %v", flag, v, err)
			}
		}
	}
	for _, flag := range []string{"--shutdown-grace", "--purge-grace", "--dedicated-ip-cooldown"} {
		if err := parseServe(t, flag+"=0s").checkLimits(); err != nil {
			t.Errorf("%s=0s: %v", flag, err)
		}
		if err := parseServe(t, flag+"=-1s").checkLimits(); err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%s=-1s: %v", flag, err)
		}
	}
}

// 0 lifts --http-max-connections-per-address; a negative cap is refused,
// from the flag or its variable, before serve starts anything.
func TestHTTPConnectionsPerAddressFlag(t *testing.T) {
	if err := parseServe(t, "--http-max-connections-per-address=0").checkLimits(); err != nil {
		t.Errorf("--http-max-connections-per-address=0: %v", err)
	}
	if err := parseServe(t, "--http-max-connections-per-address=-1").validate(); err == nil ||
		!strings.Contains(err.Error(), "--http-max-connections-per-address (SKIFF_HTTP_MAX_CONNECTIONS_PER_ADDRESS)") ||
		!strings.Contains(err.Error(), "-1 is negative") || exitCode(err) != exitConfig {
		t.Errorf("--http-max-connections-per-address=-1: %v (exit %d), want the flag and variable named, exit %d", err, exitCode(err), exitConfig)
	}
	t.Setenv("SKIFF_HTTP_MAX_CONNECTIONS_PER_ADDRESS", "-5")
	if err := parseServe(t).validate(); err == nil || !strings.Contains(err.Error(), "SKIFF_HTTP_MAX_CONNECTIONS_PER_ADDRESS") || exitCode(err) != exitConfig {
		t.Errorf("SKIFF_HTTP_MAX_CONNECTIONS_PER_ADDRESS=-5: %v", err)
	}
}
