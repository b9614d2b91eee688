package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/skiffhq/skiff/notify"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/domain"
)

// MailFlags configure email: where it goes and what its links point to.
type MailFlags struct {
	SMTPURL   string        `name:"smtp-url" env:"SKIFF_SMTP_URL" help:"SMTP server for email (smtp://user:pass@host:587?from=...&starttls=required, or smtps://), or file:///dir to write .eml files into dir. Empty: .eml files in <data-dir>/mail with the private PostgreSQL; an error with --database-url."`
	Retention time.Duration `name:"email-retention" default:"2160h" env:"SKIFF_EMAIL_RETENTION" help:"How long sent and failed emails stay in the outbox (and in account.notifications) before the worker deletes them; 0 keeps them."`
	PublicURL string        `name:"public-url" default:"http://localhost:3000" env:"SKIFF_PUBLIC_URL" help:"The web client's address, the base of links in emails."`
}

// worker is the outbox worker that sends the emails changes commit, over
// SMTP or as .eml files (mailTarget).
func (f MailFlags) worker(log *slog.Logger, db *tenant.DB, dataDir string, embedded bool) (*notify.Worker, error) {
	if f.Retention < 0 {
		return nil, flagError("--email-retention", "%s is negative (0 keeps emails forever)", f.Retention)
	}
	smtpURL, mailDir, err := f.mailTarget(dataDir, embedded)
	if err != nil {
		return nil, err
	}
	sender, err := notify.NewSender(smtpURL, mailDir)
	if err != nil {
		return nil, fmt.Errorf("--smtp-url: %w", err)
	}
	renderer, err := notify.NewRenderer(f.PublicURL, "Skiff")
	if err != nil {
		return nil, err
	}
	if smtpURL == "" {
		log.Info("mail is written as .eml files, not sent", "dir", mailDir)
	}
	w := notify.NewWorker(db, renderer, sender)
	w.Log = log
	w.Retention = f.Retention
	return w, nil
}

// mailTarget is where email goes: an SMTP URL, or (smtpURL "") the folder
// of .eml files. Files are the default only with the private PostgreSQL (a
// developer's machine). With an external database, a production setup that
// may run several nodes, an unset --smtp-url is an error rather than
// customers' email written to one node's disk and marked sent: files there
// must be asked for with file:///dir.
func (f MailFlags) mailTarget(dataDir string, embedded bool) (smtpURL, mailDir string, err error) {
	switch {
	case strings.HasPrefix(f.SMTPURL, "file:"):
		u, err := url.Parse(f.SMTPURL)
		if err != nil || u.Host != "" || u.Path == "" || !filepath.IsAbs(u.Path) {
			return "", "", fmt.Errorf("--smtp-url %q: write .eml files with file:///absolute/dir", f.SMTPURL)
		}
		return "", u.Path, nil
	case f.SMTPURL != "":
		return f.SMTPURL, "", nil
	case embedded:
		return "", filepath.Join(dataDir, "mail"), nil
	}
	return "", "", errors.New("--smtp-url (SKIFF_SMTP_URL) is not set: with --database-url (an external database) " +
		"emails are sent over SMTP (smtp://user:pass@host:587?from=... or smtps://), or written as .eml files " +
		"only when asked with file:///dir (see docs/OPERATIONS.md#email)")
}

// remindTrials sends "trial ending" and SSH key expiry emails and purges
// expired one-time tokens; hourly is plenty for a 3-day or 7-day notice (an
// expired key stops logging in at once: the email only tells of it). A job
// cut short by the server's stop is not a failure, and is not logged as one.
func remindTrials(ctx context.Context, svc *domain.Domain, log *slog.Logger) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	failed := func(err error) bool { return err != nil && ctx.Err() == nil }
	for {
		if n, err := svc.SFTP.SendTrialEndingReminders(tenant.SystemContext(ctx)); failed(err) {
			log.Warn("trial reminders", "err", err)
		} else if n > 0 {
			log.Info("trial reminders queued", "count", n)
		}
		if n, err := svc.SFTP.SendSSHKeyExpiryReminders(tenant.SystemContext(ctx)); failed(err) {
			log.Warn("SSH key expiry reminders", "err", err)
		} else if n > 0 {
			log.Info("SSH key expiry reminders queued", "count", n)
		}
		if _, err := svc.People.PurgeExpiredTokens(tenant.SystemContext(ctx)); failed(err) {
			log.Warn("purge expired tokens", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
