package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/skiffhq/skiff/notify"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/domain"
)

// MailFlags configure email: where it goes and what its links point to.
type MailFlags struct {
	SMTPURL   string        `name:"smtp-url" env:"SKIFF_SMTP_URL" help:"SMTP server for email (smtp://user:pass@host:587?from=...&starttls=required, or smtps://). Empty: write .eml files into <data-dir>/mail."`
	Retention time.Duration `name:"email-retention" default:"2160h" env:"SKIFF_EMAIL_RETENTION" help:"How long sent and failed emails stay in the outbox (and in account.notifications) before the worker deletes them; 0 keeps them."`
	PublicURL string        `name:"public-url" default:"http://localhost:3000" env:"SKIFF_PUBLIC_URL" help:"The web client's address, the base of links in emails."`
}

// worker is the outbox worker that sends the emails changes commit, over
// SMTP or, without --smtp-url, as .eml files in <dataDir>/mail.
func (f MailFlags) worker(log *slog.Logger, db *tenant.DB, dataDir string) (*notify.Worker, error) {
	if f.Retention < 0 {
		return nil, fmt.Errorf("--email-retention: %s is negative (0 keeps emails forever)", f.Retention)
	}
	mailDir := filepath.Join(dataDir, "mail")
	sender, err := notify.NewSender(f.SMTPURL, mailDir)
	if err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	renderer, err := notify.NewRenderer(f.PublicURL, "Skiff")
	if err != nil {
		return nil, err
	}
	if f.SMTPURL == "" {
		log.Info("mail is written as .eml files", "dir", mailDir)
	}
	w := notify.NewWorker(db, renderer, sender)
	w.Log = log
	w.Retention = f.Retention
	return w, nil
}

// remindTrials sends "trial ending" and SSH key expiry emails and purges
// expired one-time tokens; hourly is plenty for a 3-day or 7-day notice (an
// expired key stops logging in at once: the email only tells of it).
func remindTrials(ctx context.Context, svc *domain.Domain, log *slog.Logger) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := svc.SFTP.SendTrialEndingReminders(tenant.SystemContext(ctx)); err != nil {
			log.Warn("trial reminders", "err", err)
		} else if n > 0 {
			log.Info("trial reminders queued", "count", n)
		}
		if n, err := svc.SFTP.SendSSHKeyExpiryReminders(tenant.SystemContext(ctx)); err != nil {
			log.Warn("SSH key expiry reminders", "err", err)
		} else if n > 0 {
			log.Info("SSH key expiry reminders queued", "count", n)
		}
		if _, err := svc.People.PurgeExpiredTokens(tenant.SystemContext(ctx)); err != nil {
			log.Warn("purge expired tokens", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
