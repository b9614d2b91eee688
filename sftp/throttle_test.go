package sftp

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLogThrottleDropsFloodAndCountsIt(t *testing.T) {
	var buf logBuffer
	l := slog.New(slog.NewTextHandler(&buf, nil))
	th := logThrottle{every: time.Hour}
	for range 5 {
		th.log(l, "refused")
	}
	if n := strings.Count(buf.String(), "refused"); n != 1 {
		t.Fatalf("%d lines within the interval, want 1:\n%s", n, buf.String())
	}
	th.last = time.Now().Add(-2 * time.Hour) // the interval has passed
	th.log(l, "refused")
	if !strings.Contains(buf.String(), "similar_lines_dropped=4") {
		t.Errorf("next line does not count the 4 dropped:\n%s", buf.String())
	}
}
