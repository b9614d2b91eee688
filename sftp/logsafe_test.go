package sftp

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Strings clients send are clipped in the log, on a rune boundary, saying
// how long they were; errors keep more of their text.
func TestSafeLogClipsClientStrings(t *testing.T) {
	var buf bytes.Buffer
	log := SafeLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	if SafeLogger(log) != log {
		t.Fatal("SafeLogger wrapped its own logger again")
	}
	huge := strings.Repeat("é", 100000) // 200,000 bytes
	log.With("login", huge).Info("sftp login refused", "client", "SSH-2.0-"+strings.Repeat("x", 300),
		"path", "/"+strings.Repeat("d/", 1000), "err", errors.New("invalid path: "+huge))
	out := buf.String()
	if len(out) > 2000 {
		t.Fatalf("one line of %d bytes for a 200,000-byte login", len(out))
	}
	for _, want := range []string{"…(200000 bytes)", "…(308 bytes)", "…(2001 bytes)", "…(200014 bytes)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not say %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, `login="`+strings.Repeat("é", 64)+"…") {
		t.Errorf("the login is not clipped on a rune boundary:\n%s", out)
	}
	buf.Reset()
	log.Info("sftp login refused", "login", strings.Repeat("a", 128))
	if strings.Contains(buf.String(), "…") {
		t.Errorf("a 128-byte login was clipped: %s", buf.String())
	}
}

// Identical lines are written logBurst times a window; the first line of the
// next window says how many were dropped. Lines that differ (another login)
// are not held back by them.
func TestSafeLogRateLimitsIdenticalLines(t *testing.T) {
	var buf bytes.Buffer
	log := SafeLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	for i := range 100 {
		log.With("peer", "192.0.2.1:"+string(rune('0'+i%10))+"000").Info("sftp login refused",
			"login", "nobody", "reason", "unknown login", "duration", time.Duration(i))
	}
	log.Info("sftp login refused", "login", "alice", "reason", "unknown login")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != logBurst+1 || !strings.Contains(lines[logBurst], "login=alice") {
		t.Fatalf("want %d lines for nobody and one for alice, got:\n%s", logBurst, buf.String())
	}

	lim := &logLimiter{}
	start := time.Now()
	for range 50 {
		lim.admit(1, start)
	}
	if ok, dropped := lim.admit(1, start.Add(logWindow)); !ok || dropped != 50-logBurst {
		t.Fatalf("next window: admitted %v, dropped %d; want true, %d", ok, dropped, 50-logBurst)
	}
	if ok, dropped := lim.admit(1, start.Add(logWindow+time.Second)); !ok || dropped != 0 {
		t.Fatalf("the drop count was reported twice: %v %d", ok, dropped)
	}
}
