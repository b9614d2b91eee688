package main

import (
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
	} {
		_, err := parseServe(t, bad[0]+"="+bad[1]).SFTP.limits()
		if err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: got %v, want an error naming %s", bad, err, bad[0])
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
