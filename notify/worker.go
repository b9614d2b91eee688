package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/outbox"
)

// outboxDB is what the worker needs of the store: transactions on the outbox scope.
type outboxDB interface {
	CrossTenant(ctx context.Context, scope tenant.Scope, fn func(tx *sqlx.Tx) error) error
}

var _ outboxDB = (*tenant.DB)(nil)

// Worker drains the outbox: it claims due emails, renders and sends them, and
// records the outcome. Several workers (one per Skiff node) may run at once;
// each email is claimed by one of them at a time.
//
// Delivery is exactly once as far as SMTP allows. An email is marked SENDING,
// in its own committed transaction, before the SMTP conversation, and SENT as
// soon as the server has accepted it; a worker that stops (or is cancelled)
// finishes the email in hand first. The one gap is a crash or lost database
// between the server's acceptance and the SENT update. Such an email stays
// SENDING until its lease runs out, and is then sent again: a credentials or
// password-reset email that never arrives is worse than one that arrives
// twice, and every attempt carries the same Message-ID, so mail clients and
// servers can tell the duplicate. An email whose interrupted attempt was its
// last is marked FAILED for a human to check instead.
//
// A failed attempt is retried after BaseDelay × 2^(attempts−1), capped at
// MaxDelay, with jitter (between half and all of that delay); after
// MaxAttempts attempts, or at once when the server refuses the recipient or
// the message for good, the email is FAILED.
//
// Make one with NewWorker and adjust its fields before Run.
type Worker struct {
	DB       outboxDB // a *tenant.DB
	Renderer *Renderer
	Sender   Sender

	Now          func() time.Time
	PollInterval time.Duration // how often to look for due emails when idle
	MaxAttempts  int
	BaseDelay    time.Duration
	MaxDelay     time.Duration
	// Lease is how long an email may stay SENDING before another worker
	// decides its worker died and retries it. It must exceed SendTimeout.
	Lease       time.Duration
	SendTimeout time.Duration
	// MessageIDDomain is the right-hand side of Message-IDs: "<outbox id>@domain".
	MessageIDDomain string
	// Retention is how long finished emails (sent, or failed for good)
	// stay in the outbox, and so in account.notifications; Run deletes
	// older ones every PurgeInterval. Zero keeps them forever.
	Retention     time.Duration
	PurgeInterval time.Duration
	Log           *slog.Logger
	// Metrics counts sends by result; nil counts nothing.
	Metrics *Metrics
}

// ErrMailUnavailable ends SendDue's round when the mail system itself
// failed (DeliveryError.Unavailable): the email in hand keeps its place in
// the queue, and Run pauses before trying again, from that email on.
var ErrMailUnavailable = errors.New("outbox: the mail server is unavailable")

// maxPause caps Run's pause while the mail server is unavailable, so that
// email flows again within minutes of it coming back.
const maxPause = 5 * time.Minute

// DefaultRetention is how long finished emails are kept unless the worker
// is told otherwise: 90 days.
const DefaultRetention = 90 * 24 * time.Hour

// purgeBatch is how many emails one purge transaction deletes, so a large
// backlog never holds locks for long.
const purgeBatch = 1000

// NewWorker returns a worker with the defaults: poll every 5 s, 10 attempts,
// 30 s doubling to 1 h between them, 10 min lease, 1 min per send, finished
// emails kept for DefaultRetention and purged hourly.
func NewWorker(db *tenant.DB, r *Renderer, s Sender) *Worker {
	return &Worker{
		DB: db, Renderer: r, Sender: s,
		Now:             time.Now,
		PollInterval:    5 * time.Second,
		MaxAttempts:     10,
		BaseDelay:       30 * time.Second,
		MaxDelay:        time.Hour,
		Lease:           10 * time.Minute,
		SendTimeout:     time.Minute,
		MessageIDDomain: "skiff",
		Retention:       DefaultRetention,
		PurgeInterval:   time.Hour,
		Log:             slog.Default(),
	}
}

// Run sends due emails until ctx is cancelled, then returns nil once the
// email in hand is finished. Database trouble is logged and retried at the
// next poll.
func (w *Worker) Run(ctx context.Context) error {
	interval := w.PollInterval
	if interval <= 0 { // a zero interval would hammer the database
		interval = 5 * time.Second
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	var nextPurge time.Time
	pause := time.Duration(0) // while the mail server is unavailable
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		_, err := w.SendDue(ctx)
		switch {
		case errors.Is(err, ErrMailUnavailable):
			if pause == 0 {
				w.Log.Warn("outbox: the mail server is unavailable; emails wait in order and are tried again from the first", "err", err)
			}
			pause = min(max(2*pause, interval), maxPause)
		case err != nil && ctx.Err() == nil:
			w.Log.Error("outbox: poll failed", "err", err)
		case err == nil && pause > 0:
			w.Log.Info("outbox: the mail server is available again")
			pause = 0
		}
		if now := w.Now(); w.Retention > 0 && !now.Before(nextPurge) {
			nextPurge = now.Add(max(w.PurgeInterval, time.Minute))
			if n, err := w.Purge(ctx); err != nil && ctx.Err() == nil {
				w.Log.Error("outbox: purge failed", "err", err)
			} else if n > 0 {
				w.Log.Info("outbox: finished emails past their retention deleted", "count", n, "retention", w.Retention)
			}
		}
		timer.Reset(max(interval, pause))
	}
}

// Purge deletes the finished emails (sent, or failed for good) created more
// than Retention ago, in batches, and returns how many it deleted. Emails
// not yet sent stay, however old. With no Retention it deletes nothing.
func (w *Worker) Purge(ctx context.Context) (int, error) {
	if w.Retention <= 0 {
		return 0, nil
	}
	before := w.Now().Add(-w.Retention)
	total := 0
	for ctx.Err() == nil {
		var n int
		err := w.DB.CrossTenant(ctx, tenant.ScopeOutbox, func(tx *sqlx.Tx) (err error) {
			n, err = outbox.PurgeEmails(ctx, tx, before, purgeBatch)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("purge emails: %w", err)
		}
		total += n
		if n < purgeBatch {
			break
		}
	}
	return total, nil
}

// SendDue handles every email due now, one at a time, and returns how many it
// handled (sent, rescheduled or failed). It stops early when ctx is cancelled,
// after finishing the email in hand.
func (w *Worker) SendDue(ctx context.Context) (int, error) {
	n := 0
	for ctx.Err() == nil {
		var e *outbox.OutboxEmail
		err := w.DB.CrossTenant(ctx, tenant.ScopeOutbox, func(tx *sqlx.Tx) (err error) {
			e, err = outbox.ClaimEmail(ctx, tx, w.Now(), w.Lease)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("claim email: %w", err)
		}
		if e == nil {
			return n, nil
		}
		// The email is claimed: see it through even if ctx ends now.
		o := w.deliver(context.WithoutCancel(ctx), e)
		n++
		if o.unavailable {
			return n, fmt.Errorf("%w: %s", ErrMailUnavailable, o.reason)
		}
	}
	return n, nil
}

// outcome is what happened to one attempt.
type outcome struct {
	subject, messageID string
	sent               bool
	reason             string // user-safe, when not sent
	permanent          bool
	unavailable        bool // the mail system failed, not this email
}

// result names the outcome for Metrics.
func (w *Worker) result(e *outbox.OutboxEmail, o outcome) string {
	switch {
	case o.sent:
		return "sent"
	case o.unavailable:
		return "deferred"
	case o.permanent || e.Attempts >= w.MaxAttempts:
		return "failed"
	}
	return "retry"
}

func (w *Worker) deliver(ctx context.Context, e *outbox.OutboxEmail) outcome {
	log := w.Log.With("outbox_id", e.ID, "kind", e.Kind, "account_id", e.AccountID, "attempt", e.Attempts)
	o := w.attempt(ctx, e, log)
	w.Metrics.sent(w.result(e, o))
	if err := w.record(ctx, e, o); err != nil {
		// The email stays SENDING; after the lease another worker retries it.
		log.Error("outbox: could not record the outcome", "sent", o.sent, "err", err)
		return o
	}
	if o.sent {
		log.Info("outbox: email sent", "message_id", o.messageID)
	}
	return o
}

func (w *Worker) attempt(ctx context.Context, e *outbox.OutboxEmail, log *slog.Logger) outcome {
	o := outcome{messageID: e.ID + "@" + w.MessageIDDomain}
	if e.Unfinished {
		log.Warn("outbox: an earlier attempt was interrupted; it may have been delivered")
		if e.Attempts > w.MaxAttempts {
			o.reason, o.permanent = "sending was interrupted; the email may or may not have arrived", true
			return o
		}
	}
	r, err := w.Renderer.Render(e.Kind, e.Data)
	if err != nil {
		// Templates and data are ours: this is a bug, and retrying will not fix it.
		log.Error("outbox: cannot render email", "err", err)
		o.reason, o.permanent = "the email could not be composed", true
		return o
	}
	o.subject = r.Subject
	sendCtx, cancel := context.WithTimeout(ctx, w.SendTimeout)
	defer cancel()
	err = w.Sender.Send(sendCtx, &Message{
		ID: o.messageID, To: e.To, Subject: r.Subject, Text: r.Text, HTML: r.HTML, Date: w.Now(),
	})
	if err == nil {
		o.sent = true
		return o
	}
	var de *DeliveryError
	if errors.As(err, &de) {
		o.reason, o.permanent, o.unavailable = de.Reason, de.Permanent && !de.Unavailable, de.Unavailable
	} else {
		o.reason = "the email could not be handed to the mail system"
	}
	if o.unavailable {
		log.Info("outbox: mail server unavailable, email kept in its place", "err", err)
	} else {
		log.Warn("outbox: send failed", "permanent", o.permanent, "err", err)
	}
	return o
}

// record writes the outcome. Writing SENT is what stands between an accepted
// email and a duplicate, so a failed write is retried briefly.
func (w *Worker) record(ctx context.Context, e *outbox.OutboxEmail, o outcome) error {
	now := w.Now()
	write := func(tx *sqlx.Tx) error {
		switch {
		case o.sent:
			return outbox.MarkEmailSent(ctx, tx, e, now, o.subject, o.messageID)
		case o.unavailable:
			return outbox.DeferEmail(ctx, tx, e, o.reason)
		case o.permanent || e.Attempts >= w.MaxAttempts:
			return outbox.MarkEmailFailed(ctx, tx, e, o.reason, time.Time{}, o.subject, o.messageID)
		default:
			return outbox.MarkEmailFailed(ctx, tx, e, o.reason, now.Add(w.backoff(e.Attempts)), o.subject, o.messageID)
		}
	}
	var err error
	for try := range 3 {
		if try > 0 {
			time.Sleep(time.Duration(try) * time.Second)
		}
		err = w.DB.CrossTenant(ctx, tenant.ScopeOutbox, write)
		if err == nil || errors.Is(err, outbox.ErrClaimLost) {
			return err
		}
	}
	return err
}

// backoff is the wait after the given number of failed attempts.
func (w *Worker) backoff(attempts int) time.Duration {
	d := w.MaxDelay
	if shift := attempts - 1; shift < 32 && w.BaseDelay<<shift < w.MaxDelay && w.BaseDelay<<shift > 0 {
		d = w.BaseDelay << shift
	}
	// Jitter spreads retries of emails that failed together (a mail server outage).
	return d/2 + rand.N(d/2+1)
}
