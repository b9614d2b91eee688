package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/internal/testkit"
	"github.com/skiffhq/skiff/tenant/domain"
)

// The hourly reminders stop without a word when the server stops (an
// operator would otherwise read "internal error" at every shutdown that
// meets them mid-run), and still warn when they fail while it runs.
func TestRemindersWarnOnlyWhileRunning(t *testing.T) {
	db := pgtest.OpenStore(t)
	svc := domain.New(db)
	run := func(ctx context.Context) (string, error) {
		var logs testkit.SyncBuffer
		err := remindTrials(ctx, svc, slog.New(slog.NewTextHandler(&logs, nil)))
		return logs.String(), err
	}

	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	logs, err := run(stopped)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("stopped: got %v, want context.Canceled", err)
	}
	if logs != "" {
		t.Errorf("stopped, the reminders logged:\n%s", logs)
	}

	// The database gone while the server runs: each job says it failed.
	db.Close()
	running, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	logs, err = run(running)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("running: got %v, want the context's end", err)
	}
	for _, job := range []string{"trial reminders", "SSH key expiry reminders", "purge expired tokens"} {
		if !strings.Contains(logs, "level=WARN msg=\""+job+"\"") {
			t.Errorf("no warning for %q in:\n%s", job, logs)
		}
	}
}
