package sftp

import (
	"log/slog"
	"sync"
	"time"
)

// logThrottle keeps a flood of identical refusals (a client hammering the
// connection caps) from flooding the log: it lets one line a second through
// and counts the ones it dropped in between.
type logThrottle struct {
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// log writes the line unless one went out less than every ago.
func (t *logThrottle) log(l *slog.Logger, msg string, args ...any) {
	t.mu.Lock()
	now := time.Now()
	if !t.last.IsZero() && now.Sub(t.last) < t.every {
		t.suppressed++
		t.mu.Unlock()
		return
	}
	dropped := t.suppressed
	t.last, t.suppressed = now, 0
	t.mu.Unlock()
	if dropped > 0 {
		args = append(args, "similar_lines_dropped", dropped)
	}
	l.Warn(msg, args...)
}
