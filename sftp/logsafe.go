package sftp

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/skiffhq/skiff/internal/runecut"
)

// The SFTP server logs what unauthenticated clients send (login names,
// client versions, paths), so its logger is wrapped in safeLog: every string
// is clipped to maxLogField bytes (an error's text to maxLogError), and a
// line identical to one already written (same level, message and
// attributes; the peer's port, the session ID and durations aside) is written at most
// logBurst times per logWindow, the first one of the next window carrying
// how many were dropped.
const (
	maxLogField = 128
	maxLogError = 1024
	logBurst    = 5
	logWindow   = 10 * time.Second
	logKeys     = 10000 // distinct lines remembered per window
)

// clipLog shortens s to at most maxLogField bytes (on a rune boundary),
// saying how long it was.
func clipLog(s string) string { return clipTo(s, maxLogField) }

func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s…(%d bytes)", runecut.Prefix(s, n), len(s))
}

func clipValue(v slog.Value) slog.Value {
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(clipLog(v.String()))
	case slog.KindAny:
		switch a := v.Any().(type) {
		case error:
			return slog.StringValue(clipTo(a.Error(), maxLogError))
		case fmt.Stringer:
			return slog.StringValue(clipLog(a.String()))
		case []byte:
			return slog.StringValue(clipLog(string(a)))
		}
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]slog.Attr, len(attrs))
		for i, a := range attrs {
			out[i] = clipAttr(a)
		}
		return slog.GroupValue(out...)
	case slog.KindLogValuer:
		return clipValue(v.Resolve())
	}
	return v
}

func clipAttr(a slog.Attr) slog.Attr {
	return slog.Attr{Key: clipLog(a.Key), Value: clipValue(a.Value)}
}

// logLimiter counts identical lines per window; it is shared by a logger
// and all loggers derived from it.
type logLimiter struct {
	seed maphash.Seed

	mu    sync.Mutex
	start time.Time
	seen  map[uint64]int // lines written or dropped in this window
	// dropped carries the previous window's drops to the next line of each kind.
	dropped map[uint64]int
}

// admit reports whether the line with key may be written, and how many
// identical lines were dropped before it.
func (l *logLimiter) admit(key uint64, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil || now.Sub(l.start) >= logWindow {
		carried := map[uint64]int{}
		for k, n := range l.seen {
			if n > logBurst {
				carried[k] = n - logBurst
			}
		}
		l.start, l.seen, l.dropped = now, map[uint64]int{}, carried
	}
	n, ok := l.seen[key]
	if !ok && len(l.seen) >= logKeys {
		return true, 0 // too many kinds to remember: the clipping still bounds each line
	}
	l.seen[key] = n + 1
	if n >= logBurst {
		return false, 0
	}
	d := l.dropped[key]
	delete(l.dropped, key)
	return true, d
}

type safeLog struct {
	next   slog.Handler
	lim    *logLimiter
	prefix string // the attributes and groups added with WithAttrs and WithGroup, for the key
}

// SafeLogger returns l with the SFTP server's log hygiene: strings clipped
// to 200 bytes, identical lines rate-limited. A logger it returned is
// returned as it is; nil means slog.Default().
func SafeLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		l = slog.Default()
	}
	if _, ok := l.Handler().(*safeLog); ok {
		return l
	}
	return slog.New(&safeLog{next: l.Handler(), lim: &logLimiter{seed: maphash.MakeSeed()}})
}

func (h *safeLog) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h *safeLog) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, clipLog(r.Message), r.PC)
	var key strings.Builder
	key.WriteString(r.Level.String())
	key.WriteString(h.prefix)
	key.WriteString("\x00" + out.Message)
	r.Attrs(func(a slog.Attr) bool {
		a = clipAttr(a)
		out.AddAttrs(a)
		keyAttr(&key, a)
		return true
	})
	ok, dropped := h.lim.admit(maphash.String(h.lim.seed, key.String()), time.Now())
	if !ok {
		return nil
	}
	if dropped > 0 {
		out.AddAttrs(slog.Int("identical_lines_dropped", dropped))
	}
	return h.next.Handle(ctx, out)
}

// keyAttr adds a to a line's identity: the peer's address without its port,
// and no durations or session IDs (each connection has its own).
func keyAttr(key *strings.Builder, a slog.Attr) {
	v := a.Value.String()
	switch a.Key {
	case "duration", "retry_in", "session":
		return
	case "peer", "remote":
		if host, _, err := net.SplitHostPort(v); err == nil {
			v = host
		}
	}
	key.WriteString("\x00" + a.Key + "=" + v)
}

func (h *safeLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	clipped := make([]slog.Attr, len(attrs))
	var key strings.Builder
	key.WriteString(h.prefix)
	for i, a := range attrs {
		clipped[i] = clipAttr(a)
		keyAttr(&key, clipped[i])
	}
	return &safeLog{next: h.next.WithAttrs(clipped), lim: h.lim, prefix: key.String()}
}

func (h *safeLog) WithGroup(name string) slog.Handler {
	return &safeLog{next: h.next.WithGroup(clipLog(name)), lim: h.lim, prefix: h.prefix + "\x00group=" + name}
}
