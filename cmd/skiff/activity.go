package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/skiffhq/skiff/internal/pglisten"
	"github.com/skiffhq/skiff/tenant/activity"
	"github.com/skiffhq/skiff/tenant/domain"
)

// ActivityFlags configure the SFTP activity log and the folders' upload digests.
type ActivityFlags struct {
	Retention      time.Duration `name:"activity-retention" default:"2160h" env:"SKIFF_ACTIVITY_RETENTION" help:"How long SFTP activity events are kept (default 90 days); older ones are deleted every hour. 0 keeps them forever."`
	DigestInterval time.Duration `name:"upload-digest-interval" default:"15m" env:"SKIFF_UPLOAD_DIGEST_INTERVAL" help:"How often a member of a project folder with upload notifications on gets the digest of its uploads (one email per folder per interval)."`
	NodeName       string        `name:"node-name" env:"SKIFF_NODE_NAME" help:"This node's name in the SFTP activity log and with its live SFTP sessions (default: the host name)."`
}

// start makes the node's activity recorder and starts it, the retention
// purge, the digests and the notifications of sftpActivity subscriptions. The recorder is closed by Run after the SFTP
// server has stopped, so the last transfers and logouts are written.
func (f ActivityFlags) start(svc *domain.Domain, notifications *pglisten.Listener, log *slog.Logger, bg *background) (*activity.Recorder, error) {
	if f.Retention < 0 {
		return nil, flagError("--activity-retention", "%s is negative (0 keeps events forever)", f.Retention)
	}
	if f.DigestInterval < 0 {
		return nil, flagError("--upload-digest-interval", "%s is negative (0 is the default, 15m)", f.DigestInterval)
	}
	node := f.NodeName
	if node == "" {
		node, _ = os.Hostname()
	}
	rec := activity.NewRecorder(svc.DB, activity.RecorderConfig{Node: node, Logger: log})
	rec.Start()
	svc.Activity.DigestInterval = f.DigestInterval
	bg.run(func(ctx context.Context) error { return svc.Activity.RunRetention(ctx, f.Retention, log) })
	bg.run(func(ctx context.Context) error { return svc.Activity.RunDigests(ctx, log) })
	bg.run(func(ctx context.Context) error {
		if err := svc.Activity.Live.ListenOn(ctx, notifications, log); err != nil && ctx.Err() == nil {
			log.Error("SFTP activity notifications stopped; sftpActivity subscriptions hear nothing", "err", err)
		}
		return nil
	})
	return rec, nil
}

// closeRecorder writes what the recorder still holds, for up to a few seconds.
func closeRecorder(rec *activity.Recorder, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.Close(ctx); err != nil {
		log.Warn("sftp activity not all written at shutdown; the rest is in this log", "err", err)
	}
}
